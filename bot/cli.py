"""The ``threadwise`` command. Thin: each subcommand parses its arguments and calls one library function."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from bot.answer import Answer
from bot.answering import AnswerError, ask
from bot.conversations import new_conversation_key
from bot.settings import Settings, SettingsError, load_settings
from bot.team import route_agno_logging
from knowledge.base import KnowledgeBase
from knowledge.errors import KnowledgeError
from knowledge.types import SEARCH_MODES, Status, SyncReport

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


class CommandError(Exception):
    """A failure to report as one line and a non-zero exit."""


def _knowledge(settings: Settings) -> KnowledgeBase:
    return KnowledgeBase(settings.knowledge())


# sync -----------------------------------------------------------------------------------------


def cmd_sync(settings: Settings, args: argparse.Namespace) -> int:
    kb = _knowledge(settings)
    try:
        if args.json or not err.is_terminal:
            report = kb.sync(rebuild=args.rebuild)
        else:
            with Progress(
                TextColumn("[bold]syncing"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
            ) as bar:
                task = bar.add_task("sync", total=None)
                report = kb.sync(
                    rebuild=args.rebuild,
                    progress=lambda _phase, done, total: bar.update(task, completed=done, total=total),
                )
    finally:
        kb.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print_sync(report)
    return 0 if report.ok else 1


def _print_sync(report: SyncReport) -> None:
    out.print(
        f"added {report.added}, updated {report.updated}, deleted {report.deleted}, "
        f"unchanged {report.unchanged}, skipped {len(report.skipped)}; "
        f"{report.chunks} chunks written in {report.seconds:.1f} s"
    )
    for item in report.skipped:
        out.print(f"  skipped {item.path}: {item.reason}", markup=False)
    if report.error:
        err.print(f"threadwise: {report.error}", markup=False)


# search ---------------------------------------------------------------------------------------


def cmd_search(settings: Settings, args: argparse.Namespace) -> int:
    kb = _knowledge(settings)
    try:
        hits = kb.search(args.query, k=args.k, mode=args.mode)
    finally:
        kb.close()
    if args.json:
        print(json.dumps([hit.to_dict() for hit in hits], indent=2))
        return 0
    if not hits:
        out.print("no results (is anything indexed? run `threadwise sync`)")
        return 0
    for hit in hits:
        chunk = hit.chunk
        where = chunk.doc_path + (f" › {chunk.heading}" if chunk.heading else "")
        if chunk.page:
            where += f" (p. {chunk.page})"
        out.print(f"[bold]{hit.rank}. {where}[/bold]  [dim]score {hit.score:.4f}[/dim]")
        text = " ".join(chunk.text.split())
        out.print(f"   {text[:400]}{'…' if len(text) > 400 else ''}", markup=False)
    return 0


# status ---------------------------------------------------------------------------------------


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    kb = _knowledge(settings)
    try:
        status = kb.status()
    finally:
        kb.close()
    if args.json:
        print(json.dumps(status.to_dict(), indent=2, default=str))
    else:
        _print_status(status)
    return 0


def _print_status(status: Status) -> None:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("collection", Text(status.collection))
    table.add_row("milvus", Text(status.milvus_uri))
    table.add_row("embedder", Text(f"{status.embedder} ({status.dimension}-d)"))
    table.add_row("documents", f"{status.documents} indexed, {status.chunks} chunks")
    others = {k: v for k, v in status.by_status.items() if k != "indexed"}
    if others:
        table.add_row("", ", ".join(f"{v} {k}" for k, v in sorted(others.items())))
    last = status.last_sync
    if last:
        result = "ok" if last["ok"] else f"failed: {last['error']}"
        table.add_row(
            "last sync",
            Text(
                f"{last['finished_at']} ({result}; +{last['added']} ~{last['updated']} -{last['deleted']}, "
                f"{last['seconds']:.1f} s)"
            ),
        )
    else:
        table.add_row("last sync", "never (run `threadwise sync`)")
    out.print(table)
    if status.skipped:
        out.print(f"skipped documents ({len(status.skipped)}):")
        for item in status.skipped:
            out.print(f"  {item.path}: {item.reason}", markup=False)


# ask ------------------------------------------------------------------------------------------


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


# entry point ----------------------------------------------------------------------------------

Command = Callable[[Settings, argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="threadwise",
        description="Answers a team's questions in Slack from its own documents, with sources.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    p = sub.add_parser("sync", help="index the document folders (THREADWISE_DOCS) into Milvus")
    p.add_argument("--rebuild", action="store_true", help="drop the collection and index everything anew")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("search", help="search the indexed documents")
    p.add_argument("query")
    p.add_argument("-k", type=int, default=5, help="how many chunks (default 5)")
    p.add_argument("--mode", choices=SEARCH_MODES, default="hybrid")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("ask", help="answer a question from the documents, with sources")
    p.add_argument("question")
    p.add_argument("--conversation", metavar="KEY", help="continue a conversation (default: a new one)")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("status", help="what is indexed, the last sync, skipped documents")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load_settings()
        return args.func(settings, args)
    except (SettingsError, KnowledgeError, CommandError, ValueError) as exc:
        err.print(f"threadwise: {exc}", markup=False)
        return 2 if isinstance(exc, SettingsError) else 1
    except KeyboardInterrupt:
        err.print("threadwise: interrupted", markup=False)
        return 130


if __name__ == "__main__":
    sys.exit(main())
