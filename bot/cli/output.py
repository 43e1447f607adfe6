"""What every command shares: the consoles, the one-line error, the knowledge base, a sync summary."""

from __future__ import annotations

from rich.console import Console

from bot.settings import Settings
from knowledge.base import KnowledgeBase
from knowledge.types import SyncReport

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class CommandError(Exception):
    """A failure to report as one line and a non-zero exit."""


def open_knowledge(settings: Settings) -> KnowledgeBase:
    return KnowledgeBase(settings.knowledge())


def print_sync(report: SyncReport) -> None:
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
