"""The sync job: APScheduler runs ``KnowledgeBase.sync`` every THREADWISE_SYNC_MINUTES, never two at once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from knowledge.base import KnowledgeBase
from knowledge.errors import KnowledgeError, SyncBusy
from knowledge.types import SyncReport

log = logging.getLogger(__name__)

JOB_ID = "knowledge-sync"


def run_sync_job(
    kb: KnowledgeBase, on_report: Callable[[SyncReport], None] | None = None
) -> SyncReport | None:
    """One scheduled sync. Never raises: a failed run is logged and recorded, the next one tries again."""
    try:
        report = kb.sync()
    except SyncBusy as exc:
        log.info("scheduled sync skipped: %s", exc)
        return None
    except KnowledgeError as exc:
        log.error("scheduled sync failed: %s", exc)
        return None
    except Exception:
        log.exception("scheduled sync failed")
        return None
    log.info(
        "sync done: added=%d updated=%d deleted=%d unchanged=%d skipped=%d chunks=%d in %.1fs%s",
        report.added,
        report.updated,
        report.deleted,
        report.unchanged,
        len(report.skipped),
        report.chunks,
        report.seconds,
        f" ({report.error})" if report.error else "",
    )
    if on_report:
        on_report(report)
    return report


def start_sync_scheduler(
    kb: KnowledgeBase,
    minutes: float,
    *,
    run_now: bool = True,
    on_report: Callable[[SyncReport], None] | None = None,
) -> BackgroundScheduler | None:
    """Start the periodic sync in a background thread; ``minutes == 0`` disables it."""
    if minutes <= 0:
        log.info("periodic sync disabled (THREADWISE_SYNC_MINUTES=0)")
        return None
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(
        run_sync_job,
        "interval",
        args=[kb, on_report],
        minutes=minutes,
        id=JOB_ID,
        max_instances=1,  # never two at once in this process; the manifest lock covers replicas
        coalesce=True,  # a backlog of missed runs collapses into one
        next_run_time=datetime.now(UTC) if run_now else None,
    )
    scheduler.start()
    return scheduler
