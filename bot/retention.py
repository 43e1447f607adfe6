"""Retention: what the bot keeps about conversations is deleted after THREADWISE_RETENTION_DAYS.

Every answered message leaves a ledger claim, an ``answers`` row (what was shown, for feedback) and
turns in its Agno session; without a bound they grow for the life of the deployment. ``prune``
deletes, older than the retention:

- ledger claims that are finished (open ones are someone's work in progress, whatever their age),
  by their last update;
- ``answers`` rows, by when they were shown (a click after that says the answer is gone);
- Agno sessions (with their runs), by their last update, through Agno's own ``delete_sessions``.

Feedback rows are kept: each holds its own copy of the question, answer and sources, and they are the
record of how well the bot did. The job runs once a day beside the sync, in the scheduler the serving
process already runs (``schedule_pruning``); every replica may run it, as deleting twice is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.conversations import ConversationStore
from bot.feedback import answers
from bot.ledger import claims
from bot.settings import Settings
from knowledge.database import make_async_engine

log = logging.getLogger(__name__)

JOB_ID = "retention"
DAY = 86_400
SESSION_PAGE = 500  # session ids read and deleted per batch
FIRST_RUN_MINUTES = 10


@dataclass
class PruneReport:
    claims: int = 0
    answers: int = 0
    sessions: int = 0


async def prune(
    engine: AsyncEngine, conversations: ConversationStore, *, days: float, now: float | None = None
) -> PruneReport:
    """Delete what is older than ``days`` (see the module); ``days <= 0`` keeps everything."""
    report = PruneReport()
    if days <= 0:
        return report
    cutoff = (time.time() if now is None else now) - days * DAY
    async with engine.begin() as conn:
        done = claims.c.status != "open"
        report.claims = (
            await conn.execute(delete(claims).where(done, claims.c.updated_at < cutoff))
        ).rowcount
        report.answers = (await conn.execute(delete(answers).where(answers.c.created_at < cutoff))).rowcount
    report.sessions = await _prune_sessions(conversations, cutoff)
    return report


async def _prune_sessions(conversations: ConversationStore, cutoff: float) -> int:
    """Sessions last updated before ``cutoff``. Agno filters on creation only: a session created
    before the cutoff may still be in use, so its last update decides."""
    db = conversations.db
    doomed: list[str] = []
    page = 1
    while True:
        found = await db.get_sessions(
            end_timestamp=int(cutoff),
            limit=SESSION_PAGE,
            page=page,
            sort_by="created_at",
            sort_order="asc",
            deserialize=False,
            include_runs=False,
        )
        rows = found[0] if isinstance(found, tuple) else found
        doomed += [
            row["session_id"]
            for row in rows
            if (row.get("updated_at") or row.get("created_at") or 0) < cutoff
        ]
        if len(rows) < SESSION_PAGE:
            break
        page += 1
    for start in range(0, len(doomed), SESSION_PAGE):
        await db.delete_sessions(doomed[start : start + SESSION_PAGE])
    return len(doomed)


async def prune_database(settings: Settings, *, days: float | None = None) -> PruneReport:
    """``prune`` on DATABASE_URL with its own connections (the scheduler's thread, ``threadwise db prune``)."""
    engine = make_async_engine(settings.database_url)
    conversations = ConversationStore(settings.database_url)
    try:
        return await prune(engine, conversations, days=settings.retention_days if days is None else days)
    finally:
        await conversations.close()
        await engine.dispose()


def run_pruning_job(settings: Settings) -> PruneReport | None:
    """One scheduled run. Never raises: a failure is logged and the next day tries again."""
    try:
        report = asyncio.run(prune_database(settings))
    except Exception:
        log.exception("retention: pruning failed")
        return None
    log.info(
        "retention: deleted %d claims, %d answers, %d conversation sessions older than %g days",
        report.claims,
        report.answers,
        report.sessions,
        settings.retention_days,
    )
    return report


def schedule_pruning(scheduler: BackgroundScheduler | None, settings: Settings) -> BackgroundScheduler | None:
    """Add the daily pruning to the process's scheduler (started here if the sync has none)."""
    if settings.retention_days <= 0:
        log.info("retention: everything is kept (THREADWISE_RETENTION_DAYS=0)")
        return scheduler
    if scheduler is None:
        scheduler = BackgroundScheduler(timezone=UTC)
        scheduler.start()
    scheduler.add_job(
        run_pruning_job,
        "interval",
        args=[settings],
        hours=24,
        id=JOB_ID,
        max_instances=1,
        coalesce=True,
        # Soon after start (processes restarted daily would otherwise never prune), not at once.
        next_run_time=datetime.now(UTC) + timedelta(minutes=FIRST_RUN_MINUTES),
    )
    return scheduler


__all__ = ["PruneReport", "prune", "prune_database", "run_pruning_job", "schedule_pruning"]
