"""threadwise sync, search and status: the knowledge base from the command line."""

from __future__ import annotations

import argparse
import asyncio
import json

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from bot.cli.output import err, open_knowledge, out, print_sync
from bot.settings import Settings
from knowledge.saved_answers import saved_documents
from knowledge.types import SEARCH_MODES, Status


def cmd_sync(settings: Settings, args: argparse.Namespace) -> int:
    kb = open_knowledge(settings)
    allow = args.allow_mass_delete or None  # None: THREADWISE_ALLOW_MASS_DELETE decides
    try:
        if args.json or not err.is_terminal:
            report = kb.sync(rebuild=args.rebuild, allow_mass_delete=allow)
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
                    allow_mass_delete=allow,
                    progress=lambda _phase, done, total: bar.update(task, completed=done, total=total),
                )
    finally:
        kb.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print_sync(report)
    return 0 if report.ok else 1


def cmd_search(settings: Settings, args: argparse.Namespace) -> int:
    scope = None
    if args.channel:
        from bot.slack.files import channel_scope

        scope, how = asyncio.run(channel_scope(settings, args.channel))
        err.print(f"searching as {args.channel}: {how}", markup=False)
    kb = open_knowledge(settings)
    try:
        hits = kb.search(args.query, k=args.k, mode=args.mode, scope=scope)
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
        text = " ".join(chunk.quote.split())
        out.print(f"   {text[:400]}{'…' if len(text) > 400 else ''}", markup=False)
    return 0


# status ---------------------------------------------------------------------------------------


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    kb = open_knowledge(settings)
    try:
        status = kb.status()
        saved = sorted(saved_documents(kb).values(), key=lambda row: -int(row.mtime_ns))
    finally:
        kb.close()
    if args.json:
        listed = [{"title": row.title, "thread": row.location, "access": row.access} for row in saved]
        print(json.dumps(status.to_dict() | {"saved_answers": listed}, indent=2, default=str))
    else:
        _print_status(status)
        if saved:  # answers saved from resolved Slack threads (documents of their own, not files)
            out.print(f"saved answers ({len(saved)}):")
            for row in saved:
                out.print(f"  {row.title} ({row.access}): {row.location}", markup=False)
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


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sync", help="index the document folders (THREADWISE_DOCS) into Milvus")
    p.add_argument("--rebuild", action="store_true", help="drop the collection and index everything anew")
    p.add_argument(
        "--allow-mass-delete",
        action="store_true",
        help="let this sync remove more than half of a folder's documents (refused otherwise: an empty "
        "or unmounted folder would wipe the index)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("search", help="search the indexed documents")
    p.add_argument("query")
    p.add_argument("-k", type=int, default=5, help="how many chunks (default 5)")
    p.add_argument("--mode", choices=SEARCH_MODES, default="hybrid")
    p.add_argument(
        "--channel",
        metavar="C",
        help="see only what conversation C may see (its privacy from Slack with SLACK_BOT_TOKEN; "
        "unknown counts as private)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("status", help="what is indexed, the last sync, skipped documents")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
