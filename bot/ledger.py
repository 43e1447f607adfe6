"""The ledger: which Slack messages the bot has taken on, who is answering them, and how far it got.

Slack delivers at least once (retries, and ``app_mention`` plus ``message`` for one mention), and a
process can die mid-answer. So every message the bot answers is first *claimed* here, in the one
database (``DATABASE_URL``):

- a claim is keyed by the message's identity, (team, channel, ts), and recorded by one atomic
  ``INSERT ... ON CONFLICT DO NOTHING``: of all the deliveries of one message, to one front or
  several, exactly one wins;
- the ledger is the queue: the Slack front records a message unowned, and answer workers ``take``
  claims, oldest first, one conversation at a time across every process (a claim is taken only while
  no other claim of its conversation is held or waiting ahead of it; on PostgreSQL the check runs
  under a transaction-scoped advisory lock on the conversation, SQLite has one writer anyway);
- a taken claim carries a lease (owner, expiry) that its worker renews while it works on it. A claim
  whose lease ran out is taken again by whichever worker asks first, as long as it is younger than a
  bound; older ones are marked expired so the thread can be told;
- every message of the reply (the placeholder or stream, then the later parts of a long answer) is
  recorded as soon as it exists, so a resumed answer edits those messages instead of posting again;
- "has the bot been called in this thread" is a question about claims, which is how follow-ups
  without a mention are recognised.

Times are wall-clock seconds (``time.time()``): leases are compared across processes.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
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
    Text,
    and_,
    func,
    not_,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.metrics import DUPLICATES_DROPPED
from bot.table_store import upsert_insert

Kind = Literal["mention", "message", "dm", "assistant", "command"]
Status = Literal["open", "done", "failed", "expired"]
ReplyMode = Literal["stream", "message"]
RECORD_BATCH = 200  # rows per INSERT when many messages arrive at once

metadata = MetaData()

claims = Table(
    "slack_claims",
    metadata,
    Column("team", String(32), primary_key=True),
    Column("channel", String(32), primary_key=True),
    Column("ts", String(160), primary_key=True),  # the message's ts; "cmd:<trigger_id>" for /ask
    Column("kind", String(16), nullable=False),
    Column("conversation", String(200), nullable=False),
    Column("thread_ts", String(32)),  # where the reply goes; NULL: top level (a DM)
    Column("user_id", String(32), nullable=False),
    Column("question", Text, nullable=False),
    Column("sent_at", Float, nullable=False),  # when the person sent it: the order within a conversation
    Column("context", JSON, nullable=False),  # what the reply needs besides: channel_type, response_url
    Column("status", String(16), nullable=False),
    Column("owner", String(160)),
    Column("lease_until", Float, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("reply_ts", String(32)),
    Column("reply_mode", String(16)),
    Column("reply_parts", JSON),  # ts of the messages after the first of a long answer, in order
    Column("error", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
Index("ix_slack_claims_conversation", claims.c.conversation)
Index("ix_slack_claims_open", claims.c.status, claims.c.lease_until)
Index("ix_slack_claims_owner", claims.c.owner, claims.c.status)


@dataclass
class Claim:
    """One message the bot has taken on, as stored in the ledger."""

    team: str
    channel: str
    ts: str
    kind: Kind
    conversation: str
    thread_ts: str | None
    user: str
    question: str
    sent_at: float
    context: dict[str, Any] = field(default_factory=dict)
    status: Status = "open"
    owner: str | None = None
    attempts: int = 1
    reply_ts: str | None = None
    reply_mode: ReplyMode | None = None
    reply_parts: list[str] = field(default_factory=list)
    error: str | None = None
    created_at: float = 0.0

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.team, self.channel, self.ts)

    @property
    def id(self) -> str:
        """A short stable name for logs and for the feedback buttons."""
        return f"{self.team}:{self.channel}:{self.ts}"

    @property
    def resumed(self) -> bool:
        return self.attempts > 1


def new_owner() -> str:
    """A name unique to this process: a restarted process is a new owner and waits for old leases."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _row_to_claim(row: Any) -> Claim:
    return Claim(
        team=row.team,
        channel=row.channel,
        ts=row.ts,
        kind=row.kind,
        conversation=row.conversation,
        thread_ts=row.thread_ts,
        user=row.user_id,
        question=row.question,
        sent_at=row.sent_at,
        context=dict(row.context or {}),
        status=row.status,
        owner=row.owner,
        attempts=row.attempts,
        reply_ts=row.reply_ts,
        reply_mode=row.reply_mode,
        reply_parts=list(row.reply_parts or []),
        error=row.error,
        created_at=row.created_at,
    )


def _key(values: dict[str, Any]) -> tuple[str, str, str]:
    return (values["team"], values["channel"], values["ts"])


def _is(claim: Claim):
    return and_(claims.c.team == claim.team, claims.c.channel == claim.channel, claims.c.ts == claim.ts)


class Ledger:
    """Claims on DATABASE_URL. ``owner`` names this process in every lease it holds."""

    def __init__(self, engine: AsyncEngine, *, lease: float = 30.0, owner: str | None = None):
        self.engine = engine
        self.lease = lease
        self.owner = owner or new_owner()
        self._pending: list[tuple[dict[str, Any], asyncio.Future[bool]]] = []  # records to write
        self._writer: asyncio.Task | None = None

    async def create(self) -> None:
        """Create the table if it is missing (SQLite; PostgreSQL schemas come from migrations)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def record(self, claim: Claim, *, hold: bool = False) -> bool:
        """Queue ``claim`` for the workers; False if any delivery of the message was recorded before.

        With ``hold`` this process keeps it (leased) until it calls ``release``: /ask posts the thread
        the answer goes in first.

        Records that arrive together (a burst of mentions) are written by one multi-row INSERT in one
        transaction: on the front, one statement per message made the database round trips the largest
        share of its CPU, competing with the acknowledgements (bench/README.md, "Slack acknowledgements").
        """
        now = time.time()
        values = {
            "team": claim.team,
            "channel": claim.channel,
            "ts": claim.ts,
            "kind": claim.kind,
            "conversation": claim.conversation,
            "thread_ts": claim.thread_ts,
            "user_id": claim.user,
            "question": claim.question,
            "sent_at": claim.sent_at,
            "context": claim.context,
            "status": "open",
            "owner": self.owner if hold else None,
            "lease_until": now + self.lease if hold else 0.0,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        written: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((values, written))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_pending())
        if not await written:
            DUPLICATES_DROPPED.inc()
            return False
        claim.status, claim.attempts, claim.created_at = "open", 0, now
        claim.owner = self.owner if hold else None
        return True

    async def _write_pending(self) -> None:
        """Write what ``record`` queued, in batches, until nothing waits; each caller learns its outcome."""
        await asyncio.sleep(0)  # let the other deliveries of this loop turn join the batch
        while self._pending:
            batch, self._pending = self._pending[:RECORD_BATCH], self._pending[RECORD_BATCH:]
            first: dict[tuple[str, str, str], dict[str, Any]] = {}  # a message delivered twice in one
            for values, _ in batch:  # batch: the first delivery is the one written
                first.setdefault(_key(values), values)
            statement = (
                upsert_insert(self.engine, claims)
                .values(list(first.values()))
                .on_conflict_do_nothing(index_elements=["team", "channel", "ts"])
                .returning(claims.c.team, claims.c.channel, claims.c.ts)
            )
            try:
                async with self.engine.begin() as conn:
                    inserted = {tuple(row) for row in (await conn.execute(statement)).all()}
            except Exception as exc:
                for _, written in batch:
                    if not written.done():  # done: its caller was cancelled meanwhile
                        written.set_exception(exc)
                continue
            for values, written in batch:
                key = _key(values)
                if not written.done():
                    written.set_result(first[key] is values and key in inserted)

    async def _changed(self, statement) -> int:
        """Run one write with RETURNING; how many rows it wrote (rowcount is not reliable on every driver)."""
        async with self.engine.begin() as conn:
            return len((await conn.execute(statement)).all())

    async def _update_mine(self, claim: Claim, **values: Any) -> bool:
        """Change an open claim this process holds; False if it is no longer ours (lease lost)."""
        statement = (
            update(claims)
            .where(_is(claim), claims.c.owner == self.owner, claims.c.status == "open")
            .values(updated_at=time.time(), **values)
        )
        return await self._changed(statement.returning(claims.c.ts)) == 1

    async def record_reply(self, claim: Claim, reply_ts: str, mode: ReplyMode) -> bool:
        """Remember the message the answer goes into, so that a resumed answer reuses it."""
        claim.reply_ts, claim.reply_mode = reply_ts, mode
        return await self._update_mine(claim, reply_ts=reply_ts, reply_mode=mode)

    async def record_parts(self, claim: Claim, parts: list[str]) -> bool:
        """Remember the later messages of a long answer, so that a resumed answer edits them."""
        claim.reply_parts = list(parts)
        return await self._update_mine(claim, reply_parts=list(parts))

    async def record_thread(self, claim: Claim, thread_ts: str, conversation: str) -> bool:
        """For /ask: the thread (and so the conversation) exists only once its first message is posted."""
        claim.thread_ts, claim.conversation = thread_ts, conversation
        return await self._update_mine(claim, thread_ts=thread_ts, conversation=conversation)

    async def finish(self, claim: Claim, status: Status = "done", error: str | None = None) -> bool:
        claim.status, claim.error = status, error
        return await self._update_mine(claim, status=status, error=error, owner=None, lease_until=0.0)

    async def release(self, claim: Claim) -> bool:
        """Hand an unfinished claim back: the next worker to ask for work takes it."""
        return await self._update_mine(claim, owner=None, lease_until=0.0)

    def renewal(self, held: list[Claim]):
        """The statement that extends the lease of ``held`` (only those this process still holds)."""
        keys = [(c.team, c.channel, c.ts) for c in held]
        return (
            update(claims)
            .where(
                tuple_(claims.c.team, claims.c.channel, claims.c.ts).in_(keys),
                claims.c.owner == self.owner,
                claims.c.status == "open",
            )
            .values(lease_until=time.time() + self.lease)
            .returning(claims.c.team, claims.c.channel, claims.c.ts)
        )

    async def renew(self, held: list[Claim]) -> int:
        """Extend the lease of the claims this process still works on; returns how many it still holds."""
        if not held:
            return 0
        return await self._changed(self.renewal(held))

    async def take(self, limit: int, *, max_age: float, settle: float = 0.0) -> list[Claim]:
        """Up to ``limit`` claims nobody holds, younger than ``max_age`` s, now held by this process.

        Oldest message first, and one per conversation across every process: a claim is taken only
        when no other open claim of its conversation is held or was sent before it. ``settle``: a
        claim is left alone for that long after it was recorded, because Slack delivers the events
        of messages sent close together in no fixed order.
        """
        if limit <= 0:
            return []
        now = time.time()
        found = await self._lapsed(
            and_(claims.c.created_at >= now - max_age, claims.c.created_at <= now - settle)
        )
        taken: list[Claim] = []
        busy: set[str] = set()
        for claim in found:
            if len(taken) >= limit:
                break
            if claim.conversation in busy:
                continue
            busy.add(claim.conversation)
            if (held := await self._take_one(claim)) is not None:
                taken.append(held)
        return taken

    async def _take_one(self, claim: Claim) -> Claim | None:
        """The claim as it is now (reply messages recorded by an earlier holder included) if taken."""
        now = time.time()  # now, not when the sweep began: a lease must run from when it is granted
        other = claims.alias("other")
        ahead_or_held = (
            select(other.c.ts)
            .where(
                other.c.conversation == claims.c.conversation,
                other.c.status == "open",
                not_(and_(other.c.channel == claims.c.channel, other.c.ts == claims.c.ts)),
                or_(other.c.sent_at < claims.c.sent_at, other.c.lease_until >= now),
            )
            .exists()
        )
        statement = (
            update(claims)
            .where(_is(claim), claims.c.status == "open", claims.c.lease_until < now, ~ahead_or_held)
            .values(
                owner=self.owner,
                lease_until=now + self.lease,
                attempts=claims.c.attempts + 1,
                updated_at=now,
            )
            .returning(*claims.c)
        )
        async with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                # Two workers checking one conversation at once must not both see it free.
                lock = text("SELECT pg_advisory_xact_lock(hashtextextended(:conversation, 0))")
                await conn.execute(lock, {"conversation": claim.conversation})
            row = (await conn.execute(statement)).first()
        return _row_to_claim(row) if row is not None else None

    async def expire_stale(self, max_age: float) -> list[Claim]:
        """Open claims older than ``max_age`` s that nobody holds: marked expired, returned to be told."""
        now = time.time()
        found = await self._lapsed(claims.c.created_at < now - max_age)
        expired = []
        for claim in found:
            statement = (
                update(claims)
                .where(_is(claim), claims.c.status == "open", claims.c.lease_until < now)
                .values(status="expired", owner=None, error="too old to resume", updated_at=now)
            )
            if await self._changed(statement.returning(claims.c.ts)):
                claim.status = "expired"
                expired.append(claim)
        return expired

    async def _lapsed(self, condition) -> list[Claim]:
        statement = (
            select(claims)
            .where(claims.c.status == "open", claims.c.lease_until < time.time(), condition)
            .order_by(claims.c.sent_at)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return [_row_to_claim(row) for row in rows]

    async def holds(self, claim: Claim) -> bool:
        """Whether this process still holds ``claim`` (checked before the final post)."""
        statement = select(claims.c.owner).where(_is(claim), claims.c.status == "open")
        async with self.engine.connect() as conn:
            row = (await conn.execute(statement)).first()
        return row is not None and row.owner == self.owner

    async def open_count(self) -> int:
        """How many claims are still open (queued or being answered), in every process."""
        statement = select(func.count()).select_from(claims).where(claims.c.status == "open")
        async with self.engine.connect() as conn:
            return int((await conn.execute(statement)).scalar_one())

    async def answered(self, conversation: str) -> bool:
        """Whether the bot was ever called in this conversation (so a follow-up needs no mention)."""
        statement = select(claims.c.ts).where(claims.c.conversation == conversation).limit(1)
        async with self.engine.connect() as conn:
            return (await conn.execute(statement)).first() is not None

    async def get(self, team: str, channel: str, ts: str) -> Claim | None:
        statement = select(claims).where(
            claims.c.team == team, claims.c.channel == channel, claims.c.ts == ts
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(statement)).first()
        return _row_to_claim(row) if row else None

    async def all(self) -> list[Claim]:
        """Every claim, oldest message first (for tests and status pages; not for hot paths)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(claims).order_by(claims.c.sent_at))).all()
        return [_row_to_claim(row) for row in rows]


__all__ = ["Claim", "Kind", "Ledger", "ReplyMode", "Status", "claims", "metadata", "new_owner"]
