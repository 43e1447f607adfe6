"""threadwise feedback export: the ratings people gave in Slack."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.cli.output import CommandError, err
from bot.settings import Settings


def cmd_feedback_export(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from bot.feedback_export import export_feedback, to_jsonl

    try:
        items = export_feedback(settings, labelled=args.labelled)
    except SQLAlchemyError as exc:
        raise CommandError(f"cannot read feedback: {getattr(exc, 'orig', None) or exc}") from None
    text = to_jsonl(items)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        err.print(
            f"wrote {len(items)} {'questions' if args.labelled else 'ratings'} to {args.out}", markup=False
        )
    else:
        sys.stdout.write(text)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("feedback", help="the feedback people gave in Slack")
    fb = p.add_subparsers(dest="feedback_command", required=True, metavar="action")
    q = fb.add_parser(
        "export", help="write the ratings as JSONL (question, answer, sources, rating, comment)"
    )
    q.add_argument("--out", type=Path, help="write to this file instead of standard output")
    q.add_argument("--labelled", action="store_true", help="write rated questions in the labelled-set format")
    q.set_defaults(func=cmd_feedback_export)
