"""threadwise db upgrade / current: the schema migrations."""

from __future__ import annotations

import argparse

from bot.cli.output import CommandError, out
from bot.settings import Settings


def cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from bot.migrations import upgrade
    from knowledge.database import redacted

    where = redacted(settings.database_url)
    try:
        before, after = upgrade(settings.database_url, args.revision)
    except SQLAlchemyError as exc:
        raise CommandError(f"cannot upgrade {where}: {getattr(exc, 'orig', None) or exc}") from None
    if before == after:
        out.print(f"{where}: schema already at {after}", markup=False)
    else:
        out.print(f"{where}: schema upgraded from {before or 'nothing'} to {after}", markup=False)
    return 0


def cmd_db_current(settings: Settings, args: argparse.Namespace) -> int:
    from bot.migrations import current, head
    from knowledge.database import redacted

    at, want = current(settings.database_url), head()
    state = "current" if at == want else "behind: run `threadwise db upgrade`"
    out.print(f"{redacted(settings.database_url)}: schema at {at or 'nothing'}, code needs {want} ({state})")
    return 0 if at == want else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("db", help="the database schema (migrations)")
    db = p.add_subparsers(dest="db_command", required=True, metavar="action")
    q = db.add_parser("upgrade", help="apply the schema migrations to DATABASE_URL")
    q.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    q.set_defaults(func=cmd_db_upgrade)
    q = db.add_parser("current", help="the schema revision of DATABASE_URL; exit 1 when behind")
    q.set_defaults(func=cmd_db_current)
