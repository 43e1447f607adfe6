"""Knowledge jobs: what the Slack front hands the answer workers besides messages, on DATABASE_URL.

Files shared, changed or deleted in Slack, the bot leaving a conversation, a conversation's privacy
or audience changing, and ``/kb sync``: the front only records a job here; the answer workers
(``bot.slack.worker``) take and run them. The table works like the ledger (``bot.ledger``):

- a job is keyed by what it is about (``file:F1``, ``deleted:F1``, ``privacy:C1``, ``sync:<trigger>``)
  and recorded by one atomic ``INSERT ... ON CONFLICT``: repeated events for one thing coalesce into
  the job already waiting. One arriving while the job runs bumps its ``generation``, and the job runs
  once more afterwards (what the running one looked up may already be out of date);
- jobs of one lane run one at a time, oldest first, across every worker: the Slack-file jobs share
  one lane (a share, an edit and a delete of one file apply in the order Slack sent them, and a
  reconcile never runs beside them); each ``/kb sync`` is a lane of its own, so two at once meet the
  manifest's sync lock and the second person is told a sync is running;
- a taken job carries a lease (owner, expiry) that its worker renews with its claims; a worker that
  dies stops renewing and the job is taken again once the lease runs out, at most ``MAX_ATTEMPTS``
  times (then it is dropped with a log line: a job that kills its worker must not kill them all);
- a finished job is deleted: the table holds only work to do.

Times are wall-clock seconds (``time.time()``): leases are compared across processes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    delete,
    func,
    not_,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.ledger import new_owner
from bot.table_store import TableStore, upsert_insert

JobKind = Literal["file", "changed", "deleted", "left", "audience", "privacy", "reconcile", "sync"]

FILES_LANE = "files"
MAX_ATTEMPTS = 3

metadata = MetaData()

jobs = Table(
    "knowledge_jobs",
    metadata,
    Column("key", String(200), primary_key=True),  # kind:subject
    Column("kind", String(16), nullable=False),
    Column("subject", String(160), nullable=False),  # a file or conversation id; the trigger of a /kb sync
    Column("lane", String(200), nullable=False),  # one job of a lane runs at a time
    Column("args", JSON, nullable=False),  # what the job needs besides: response_url, private
    Column("requested_at", Float, nullable=False),  # its place in the lane
    Column("generation", Integer, nullable=False),  # requests folded into it (a rerun if one came mid-run)
    Column("owner", String(160)),
    Column("lease_until", Float, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),  # the last request
)
Index("ix_knowledge_jobs_lane", jobs.c.lane, jobs.c.requested_at)


@dataclass
class Job:
    """One job as taken from the table."""

    key: str
    kind: JobKind
    subject: str
    lane: str
    args: dict[str, Any] = field(default_factory=dict)
    requested_at: float = 0.0
    generation: int = 1
    owner: str | None = None
    attempts: int = 0


def _row_to_job(row: Any) -> Job:
    return Job(
        key=row.key,
        kind=row.kind,
        subject=row.subject,
        lane=row.lane,
        args=dict(row.args or {}),
        requested_at=row.requested_at,
        generation=row.generation,
        owner=row.owner,
        attempts=row.attempts,
    )


class JobQueue(TableStore):
    """Knowledge jobs on DATABASE_URL. ``owner`` names this process in every lease it holds."""

    metadata = metadata

    def __init__(self, engine: AsyncEngine, *, lease: float = 30.0, owner: str | None = None):
        super().__init__(engine)
        self.lease = lease
        self.owner = owner or new_owner()

    async def record(self, kind: JobKind, subject: str = "", args: dict[str, Any] | None = None) -> str:
        """Queue a job, or fold it into the one of the same key already queued (its args updated); its key."""
        await self.create()
        key = f"{kind}:{subject}"
        now = time.time()
        statement = upsert_insert(self.engine, jobs).values(
            key=key,
            kind=kind,
            subject=subject,
            lane=key if kind == "sync" else FILES_LANE,
            args=args or {},
            requested_at=now,
            generation=1,
            owner=None,
            lease_until=0.0,
            attempts=0,
            updated_at=now,
        )
        statement = statement.on_conflict_do_update(
            index_elements=["key"],
            set_={"generation": jobs.c.generation + 1, "args": statement.excluded.args, "updated_at": now},
        )
        async with self.engine.begin() as conn:
            await conn.execute(statement)
        return key

    async def take(self, limit: int) -> list[Job]:
        """Up to ``limit`` jobs nobody holds, now held by this process: the oldest of each free lane."""
        if limit <= 0:
            return []
        await self.create()
        now = time.time()
        statement = (
            select(jobs)
            .where(jobs.c.lease_until < now, jobs.c.attempts < MAX_ATTEMPTS)
            .order_by(jobs.c.requested_at)
        )
        async with self.engine.connect() as conn:
            found = [_row_to_job(row) for row in (await conn.execute(statement)).all()]
        taken: list[Job] = []
        busy: set[str] = set()
        for job in found:
            if len(taken) >= limit:
                break
            if job.lane in busy:
                continue
            busy.add(job.lane)
            if (held := await self._take_one(job)) is not None:
                taken.append(held)
        return taken

    async def _take_one(self, job: Job) -> Job | None:
        now = time.time()
        other = jobs.alias("other")
        ahead_or_held = (
            select(other.c.key)
            .where(
                other.c.lane == jobs.c.lane,
                other.c.key != jobs.c.key,
                or_(other.c.requested_at < jobs.c.requested_at, other.c.lease_until >= now),
            )
            .exists()
        )
        statement = (
            update(jobs)
            .where(
                jobs.c.key == job.key,
                jobs.c.lease_until < now,
                jobs.c.attempts < MAX_ATTEMPTS,
                not_(ahead_or_held),
            )
            .values(owner=self.owner, lease_until=now + self.lease, attempts=jobs.c.attempts + 1)
            .returning(*jobs.c)
        )
        async with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                # Two workers checking one lane at once must not both see it free.
                lock = text("SELECT pg_advisory_xact_lock(hashtextextended(:lane, 1))")
                await conn.execute(lock, {"lane": job.lane})
            row = (await conn.execute(statement)).first()
        return _row_to_job(row) if row is not None else None

    async def finish(self, job: Job) -> None:
        """Done: deleted, unless it was asked for again while it ran (then it is queued to run again)."""
        mine = and_(jobs.c.key == job.key, jobs.c.owner == self.owner)
        async with self.engine.begin() as conn:
            gone = await conn.execute(
                delete(jobs).where(mine, jobs.c.generation == job.generation).returning(jobs.c.key)
            )
            if not gone.all():
                await conn.execute(
                    update(jobs)
                    .where(mine)
                    .values(owner=None, lease_until=0.0, attempts=0, requested_at=jobs.c.updated_at)
                )

    async def release(self, job: Job) -> None:
        """Hand an unfinished job back (this process is stopping): not counted as an attempt."""
        statement = (
            update(jobs)
            .where(jobs.c.key == job.key, jobs.c.owner == self.owner)
            .values(owner=None, lease_until=0.0, attempts=jobs.c.attempts - 1)
        )
        async with self.engine.begin() as conn:
            await conn.execute(statement)

    def renewal(self, held: list[Job]):
        """The statement that extends the lease of ``held`` (only those this process still holds)."""
        return (
            update(jobs)
            .where(jobs.c.key.in_([job.key for job in held]), jobs.c.owner == self.owner)
            .values(lease_until=time.time() + self.lease)
            .returning(jobs.c.key)
        )

    async def drop_stuck(self) -> list[Job]:
        """Jobs whose worker died ``MAX_ATTEMPTS`` times in them: deleted, returned to be told."""
        await self.create()
        now = time.time()
        stuck = and_(jobs.c.lease_until < now, jobs.c.attempts >= MAX_ATTEMPTS)
        async with self.engine.begin() as conn:
            rows = (await conn.execute(delete(jobs).where(stuck).returning(*jobs.c))).all()
        return [_row_to_job(row) for row in rows]

    async def pending(self) -> int:
        """How many jobs are queued or running, in every process."""
        await self.create()
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(jobs))).scalar_one())

    async def all(self) -> list[Job]:
        """Every job, oldest first (tests)."""
        await self.create()
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(jobs).order_by(jobs.c.requested_at))).all()
        return [_row_to_job(row) for row in rows]


__all__ = ["FILES_LANE", "MAX_ATTEMPTS", "Job", "JobKind", "JobQueue", "jobs", "metadata"]
