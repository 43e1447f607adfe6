"""Conversations: their keys, who said what, and the Agno session store that keeps their history.

A conversation is one Slack thread (``slack:{team}:{channel}:{thread_ts}``). A DM's top-level
messages are a chat with no thread: they form one conversation until the DM has been quiet for
THREADWISE_DM_GAP_MINUTES; the next message then starts a new one, keyed by its own ts
(``slack:{team}:{channel}:dm-{ts}``), so a DM is not one session that grows forever. Its key is the Agno session id, and also the session's ``user_id``: Agno gives a
session to the first user_id that writes it and shows its history to no one else, so the people in
a thread are carried inside each turn (its text and metadata) instead.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from agno.db.base import AsyncBaseDb
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.ledger import claims
from knowledge.database import async_url, make_async_engine

log = logging.getLogger(__name__)

_KEY = re.compile(r"^[A-Za-z0-9_.:@/+=-]{1,200}$")


@dataclass(frozen=True)
class SlackUser:
    id: str
    name: str = ""

    @property
    def label(self) -> str:
        return f"{self.name} ({self.id})" if self.name else self.id


def conversation_key(team: str, channel: str, thread_ts: str | None = None) -> str:
    """The key of a Slack conversation: the thread, or the channel itself for a DM without a thread."""
    parts = [team, channel, thread_ts or channel]
    if not all(parts):
        raise ValueError("a conversation needs a team and a channel")
    return check_conversation_key("slack:" + ":".join(parts))


async def dm_conversation(engine: AsyncEngine, team: str, channel: str, ts: str, gap_seconds: float) -> str:
    """The conversation of a top-level DM message: the previous one's, unless the DM was quiet longer
    than ``gap_seconds`` (0: never), in which case this message starts a new conversation."""
    if gap_seconds <= 0:
        return conversation_key(team, channel)
    # The latest earlier top-level DM message the bot took on (the claims' primary key orders by ts).
    statement = (
        select(claims.c.conversation, claims.c.sent_at)
        .where(
            claims.c.team == team,
            claims.c.channel == channel,
            claims.c.kind == "dm",
            claims.c.thread_ts.is_(None),
            claims.c.ts < ts,
        )
        .order_by(claims.c.ts.desc())
        .limit(1)
    )
    async with engine.connect() as conn:
        last = (await conn.execute(statement)).first()
    if last is not None and float(ts) - last.sent_at <= gap_seconds:
        return last.conversation
    return conversation_key(team, channel, f"dm-{ts}")


def new_conversation_key(prefix: str = "cli") -> str:
    return f"{prefix}:{uuid.uuid4().hex[:12]}"


def check_conversation_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError(
            f"not a conversation key: {key!r} (1-200 characters: letters, digits and _ . : @ / + = -, "
            "e.g. slack:T1:C1:1712345678.000100)"
        )
    return key


def turn_text(question: str, user: SlackUser | None) -> str:
    """What the team is asked: the question, prefixed by who asks when a person is known."""
    return f"[{user.label} asks]\n{question}" if user else question


def turn_metadata(conversation: str, user: SlackUser | None) -> dict[str, Any]:
    data: dict[str, Any] = {"conversation": conversation}
    if user:
        data["slack_user_id"] = user.id
        data["slack_user_name"] = user.name
    return data


@dataclass
class Turn:
    """One stored exchange of a conversation, as the team's session keeps it."""

    run_id: str
    status: str
    question: str  # the turn text as sent (with who asked)
    answer: str
    metadata: dict[str, Any] = field(default_factory=dict)


def open_session_db(database_url: str) -> AsyncBaseDb:
    """Agno's async session store on DATABASE_URL (SQLite through aiosqlite, PostgreSQL through psycopg)."""
    url = async_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        from agno.db.sqlite import AsyncSqliteDb

        # Our engine, not Agno's: it sets WAL and a busy timeout, so concurrent answers wait for the
        # file lock instead of failing with "database is locked".
        return AsyncSqliteDb(db_engine=make_async_engine(database_url))
    if backend == "postgresql":
        from agno.db.postgres import AsyncPostgresDb

        return AsyncPostgresDb(db_url=url.render_as_string(hide_password=False))
    raise ValueError(
        f"DATABASE_URL: conversations need SQLite or PostgreSQL, not {make_url(database_url).drivername}"
    )


class ConversationStore:
    """The sessions of every conversation, in the one database (DATABASE_URL)."""

    def __init__(self, database_url: str):
        self.db = open_session_db(database_url)

    async def turns(self, conversation: str) -> list[Turn]:
        """The conversation's stored turns (team runs only), oldest first."""
        rows = await self._rows(conversation)
        turns = []
        for row in rows:
            if row.get("parent_run_id") or not row.get("team_id"):
                continue
            data = row.get("run_data") or {}
            turns.append(
                Turn(
                    run_id=row["run_id"],
                    status=str(row.get("status") or ""),
                    question=_input_text(data.get("input")),
                    answer=str(data.get("content") or ""),
                    metadata=data.get("metadata") or {},
                )
            )
        return turns

    async def discard_run(self, conversation: str, run_id: str) -> int:
        """Remove a turn that did not complete, with its members' runs; a session left empty goes too.

        Agno stores a failed or cancelled run (with its status, the error as its content, and the
        messages that led to it). History skips those, but a failed turn must leave nothing behind.
        """
        rows = await self._rows(conversation)
        doomed = [row["run_id"] for row in rows if run_id in (row["run_id"], row.get("parent_run_id"))]
        if doomed:
            await self.db.delete_runs(doomed)
        if len(doomed) == len(rows):
            await self.db.delete_session(conversation)
        log.info("discarded unfinished turn %s of %s (%d runs)", run_id, conversation, len(doomed))
        return len(doomed)

    async def close(self) -> None:
        await self.db.close()

    async def _rows(self, conversation: str) -> list[dict[str, Any]]:
        found = await self.db.get_runs(session_id=conversation, deserialize=False)
        rows, _total = found if isinstance(found, tuple) else (found, len(found))
        return list(rows)


def _input_text(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("input_content", value)
    return value if isinstance(value, str) else str(value or "")
