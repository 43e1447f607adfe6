"""threadwise serve, socket, worker and playground: the Slack app over HTTP, Socket Mode or a local
workspace, and the answer workers behind it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from bot.cli.output import CommandError, err, open_knowledge, out, print_sync
from bot.settings import Settings


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from bot.logs import configure_logging
    from bot.server import serve
    from bot.slack.app import require_slack

    require_slack(settings, "http")  # before anything starts, one clear line
    configure_logging("DEBUG" if args.verbose else settings.log_level, settings.log_format)
    _prepare_to_serve(settings)
    asyncio.run(serve(settings, args.host, args.port))
    return 0


def cmd_socket(settings: Settings, args: argparse.Namespace) -> int:
    from bot.logs import configure_logging
    from bot.server import socket_mode
    from bot.slack.app import require_slack

    require_slack(settings, "socket")
    configure_logging("DEBUG" if args.verbose else settings.log_level, settings.log_format)
    _prepare_to_serve(settings)
    asyncio.run(socket_mode(settings))
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from bot.logs import configure_logging
    from bot.server import stop_on_signals
    from bot.slack.app import require_slack
    from bot.slack.worker import run_worker

    require_slack(settings, "worker")
    configure_logging("DEBUG" if args.verbose else settings.log_level, settings.log_format)
    _prepare_to_serve(settings, single_process=True)
    if settings.worker_nice and hasattr(os, "nice"):
        os.nice(settings.worker_nice)  # answers yield the CPU to the front's acknowledgements

    async def work() -> None:
        await run_worker(settings, stop_on_signals())

    asyncio.run(work())
    return 0


def cmd_playground(settings: Settings, args: argparse.Namespace) -> int:
    from bot.logs import configure_logging

    try:
        from bot.playground.server import HANDBOOK, playground_settings, serve_playground
    except ModuleNotFoundError as exc:
        if exc.name != "localslack":
            raise
        raise CommandError(
            "the playground needs the local Slack workspace (the localslack package), which the "
            "production image leaves out: run it from a source checkout (pip install -e .)"
        ) from None

    docs = args.docs or HANDBOOK
    if not docs.is_dir():
        raise CommandError(f"--docs {docs}: not a folder")
    settings = playground_settings(settings, docs=[docs], data=args.data)
    configure_logging("DEBUG" if args.verbose else "WARNING", settings.log_format)
    _prepare_to_serve(settings, single_process=True)
    kb = open_knowledge(settings)
    try:
        with Progress(
            TextColumn(f"[bold]indexing {docs}"), BarColumn(), MofNCompleteColumn(), console=err
        ) as bar:
            task = bar.add_task("sync", total=None)
            report = kb.sync(
                progress=lambda _phase, done, total: bar.update(task, completed=done, total=total)
            )
    finally:
        kb.close()
    print_sync(report)
    if settings.search_only:
        out.print(
            "no model configured: the bot answers with passages (set OPENAI_API_KEY for written answers)"
        )
    asyncio.run(serve_playground(settings, host=args.host, port=args.port, open_browser=args.open))
    return 0


def _prepare_to_serve(settings: Settings, *, single_process: bool = False) -> None:
    from bot.health import warn_if_lite
    from bot.migrations import SchemaBehind, prepare

    try:
        logging.getLogger("threadwise.db").info(
            "%s", prepare(settings.database_url, auto=settings.auto_migrate)
        )
    except SchemaBehind as exc:
        raise CommandError(str(exc)) from None
    if not single_process:  # the playground is one process by design: no replica warning
        warn_if_lite(settings)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="run the Slack app over HTTP (POST /slack/events), with its answer workers"
    )
    p.add_argument("--host", help="address to listen on (default THREADWISE_HOST, 0.0.0.0)")
    p.add_argument("--port", type=int, help="port to listen on (default THREADWISE_PORT, 3000)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("socket", help="run the Slack app over Socket Mode (no public URL needed)")
    p.set_defaults(func=cmd_socket)

    p = sub.add_parser(
        "worker", help="answer the messages the Slack front recorded (serve/socket start THREADWISE_WORKERS)"
    )
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser(
        "playground", help="the bot in your browser, on a local Slack workspace (no Slack, no key)"
    )
    p.add_argument("--port", type=int, default=3000, help="port of the page (default 3000)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--docs", type=Path, metavar="FOLDER", help="documents to answer from (default: the sample handbook)"
    )
    p.add_argument(
        "--data",
        type=Path,
        default=Path("data/playground"),
        metavar="FOLDER",
        help="where its index and database live",
    )
    p.add_argument("--open", action="store_true", help="open the page in a browser")
    p.set_defaults(func=cmd_playground)
