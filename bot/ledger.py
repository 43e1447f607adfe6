"""The ledger: which Slack messages the bot has taken on, who is answering them, and how far it got.

Slack delivers at least once (retries, and ``app_mention`` plus ``message`` for one mention), and a
process can die mid-answer. So every message the bot answers is first *claimed* here, in the one
database (``DATABASE_URL``):

- a claim is keyed by the message's identity, (team, channel, ts), and made by one atomic
  ``INSERT ... ON CONFLICT DO NOTHING``: of all the deliveries of one message, in one process or
  several, exactly one wins;
- a claim carries a lease (owner, expiry) that the owner renews while it works. A claim whose lease
  ran out is taken over (one conditional ``UPDATE``) by whichever process sweeps first, as long as it
  is younger than a bound; older ones are marked expired so the thread can be told;
- the reply message (the placeholder or stream) is recorded as soon as it exists, so a resumed answer
  updates that message instead of posting a second one;
- "has the bot been called in this thread" is a question about claims, which is how follow-ups
  without a mention are recognised.

Times are wall-clock seconds (``time.time()``): leases are compared across processes.
"""

from __future__ import annotations

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
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.metrics import DUPLICATES_DROPPED

Kind = Literal["mention", "message", "dm", "assistant", "command"]
Status = Literal["open", "done", "failed", "expired"]
ReplyMode = Literal["stream", "message"]

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
        error=row.error,
        created_at=row.created_at,
    )


def _is(claim: Claim):
    return and_(claims.c.team == claim.team, claims.c.channel == claim.channel, claims.c.ts == claim.ts)


class Ledger:
    """Claims on DATABASE_URL. One per process; ``owner`` names this process in every lease it holds."""

    def __init__(self, engine: AsyncEngine, *, lease: float = 30.0, owner: str | None = None):
        self.engine = engine
        self.lease = lease
        self.owner = owner or new_owner()

    async def create(self) -> None:
        """Create the table if it is missing (migrations take this over in issue 6)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

    def _insert(self):
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            return postgresql.insert(claims)
        if dialect == "sqlite":
            return sqlite.insert(claims)
        raise ValueError(f"DATABASE_URL: the ledger needs SQLite or PostgreSQL, not {dialect}")

    async def claim(self, claim: Claim) -> bool:
        """Take ``claim`` for this process; False if any delivery of the message was claimed before."""
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
            "owner": self.owner,
            "lease_until": now + self.lease,
            "attempts": 1,
            "created_at": now,
            "updated_at": now,
        }
        statement = (
            self._insert()
            .values(**values)
            .on_conflict_do_nothing(index_elements=["team", "channel", "ts"])
            .returning(claims.c.ts)
        )
        if not await self._changed(statement):
            DUPLICATES_DROPPED.inc()
            return False
        claim.status, claim.owner, claim.attempts, claim.created_at = "open", self.owner, 1, now
        return True

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

    async def record_thread(self, claim: Claim, thread_ts: str, conversation: str) -> bool:
        """For /ask: the thread (and so the conversation) exists only once its first message is posted."""
        claim.thread_ts, claim.conversation = thread_ts, conversation
        return await self._update_mine(claim, thread_ts=thread_ts, conversation=conversation)

    async def finish(self, claim: Claim, status: Status = "done", error: str | None = None) -> bool:
        claim.status, claim.error = status, error
        return await self._update_mine(claim, status=status, error=error, owner=None, lease_until=0.0)

    async def release(self, claim: Claim) -> bool:
        """Hand an unfinished claim back (on shutdown): the next sweep, here or elsewhere, resumes it."""
        return await self._update_mine(claim, owner=None, lease_until=0.0)

    async def renew(self) -> int:
        """Extend the lease of every open claim this process holds; returns how many."""
        now = time.time()
        statement = (
            update(claims)
            .where(claims.c.owner == self.owner, claims.c.status == "open")
            .values(lease_until=now + self.lease)
        )
        return await self._changed(statement.returning(claims.c.ts))

    async def take_over(self, max_age: float) -> list[Claim]:
        """Open claims whose lease ran out and that are younger than ``max_age`` s, now held by this process.

        Each is taken by a conditional UPDATE, so two processes sweeping at once never both get one.
        Oldest message first.
        """
        now = time.time()
        found = await self._lapsed(claims.c.created_at >= now - max_age)
        taken = []
        for claim in found:
            statement = (
                update(claims)
                .where(_is(claim), claims.c.status == "open", claims.c.lease_until < now)
                .values(
                    owner=self.owner,
                    lease_until=now + self.lease,
                    attempts=claims.c.attempts + 1,
                    updated_at=now,
                )
            )
            if await self._changed(statement.returning(claims.c.ts)):
                claim.owner, claim.attempts = self.owner, claim.attempts + 1
                taken.append(claim)
        return taken

    async def expire_stale(self, max_age: float) -> list[Claim]:
        """Open claims older than ``max_age`` s whose owner is gone: marked expired, returned to be told."""
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
