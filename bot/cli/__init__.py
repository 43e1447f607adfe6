"""The ``threadwise`` command. Thin: each subcommand parses its arguments and calls one library function.

One module per group of commands, each with a ``register(sub)`` that adds its subcommands:
``index`` (sync, search, status), ``answers`` (ask), ``evaluate`` (eval), ``serving`` (serve, socket,
playground), ``feedback`` (feedback export), ``db`` (db upgrade, db current).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from bot.cli import answers, db, evaluate, feedback, index, serving
from bot.cli.output import CommandError, err
from bot.logs import register_settings_secrets
from bot.settings import SettingsError, load_settings
from knowledge.errors import KnowledgeError

GROUPS = (index, answers, evaluate, serving, feedback, db)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="threadwise",
        description="Answers a team's questions in Slack from its own documents, with sources.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load_settings()
        register_settings_secrets(settings)  # masked in every log line, whatever their shape
        return args.func(settings, args)
    except (SettingsError, KnowledgeError, CommandError, ValueError) as exc:
        err.print(f"threadwise: {exc}", markup=False)
        return 2 if isinstance(exc, SettingsError) else 1
    except KeyboardInterrupt:
        err.print("threadwise: interrupted", markup=False)
        return 130
