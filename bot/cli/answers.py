"""threadwise ask: one answer from the agent team, with its sources."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging

from bot.answer import Answer
from bot.answering import AnswerError, ask
from bot.cli.output import err, out
from bot.conversations import new_conversation_key
from bot.settings import Settings
from bot.team import route_agno_logging


def cmd_ask(settings: Settings, args: argparse.Namespace) -> int:
    conversation = args.conversation or new_conversation_key("cli")
    # Agno logs its own copy of every failure; the command says it once, in one line (unless -v).
    route_agno_logging(None if args.verbose else logging.CRITICAL + 1)
    try:
        answer = asyncio.run(ask(settings, args.question, conversation=conversation))
    except (AnswerError, ValueError) as exc:
        err.print(f"threadwise: {exc}", markup=False, soft_wrap=True)  # one line, however long
        return 1
    if args.json:
        print(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
    else:
        _print_answer(answer)
    return 0


def _print_answer(answer: Answer) -> None:
    out.print(answer.text, markup=False)
    if answer.sources:
        out.print()
        out.print("[bold]Sources[/bold]")
        for source in answer.sources:
            where = source.doc + (f" › {source.heading}" if source.heading else "")
            if source.page:
                where += f" (p. {source.page})"
            out.print(f"  [{source.n}] {where}", markup=False)
            out.print(f"      {source.snippet}", markup=False, style="dim")
    if answer.stripped_citations:
        err.print(f"{answer.stripped_citations} citation(s) to passages that were not retrieved were removed")
    err.print(f"conversation {answer.conversation} (continue it with --conversation {answer.conversation})")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ask", help="answer a question from the documents, with sources")
    p.add_argument("question")
    p.add_argument("--conversation", metavar="KEY", help="continue a conversation (default: a new one)")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.set_defaults(func=cmd_ask)
