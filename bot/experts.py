"""Experts called into threads: who was called where, so a thread calls its experts once.

A call also marks the thread: when its asker later marks it resolved, the experts' replies are what
the proposed Q&A is drafted from (``bot.slack.resolved``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import JSON, Column, Float, MetaData, String, Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from bot.table_store import TableStore

metadata = MetaData()

expert_calls = Table(
    "expert_calls",
    metadata,
    Column("key", String(120), primary_key=True),  # team:channel:thread_ts
    Column("called_by", String(32), nullable=False),
    Column("experts", JSON, nullable=False),  # user ids, and "subteam:<id>" for a user group
    Column("called_at", Float, nullable=False),
)


@dataclass(frozen=True)
class ExpertCall:
    key: str
    called_by: str
    experts: tuple[str, ...]
    called_at: float


class ExpertCalls(TableStore):
    metadata = metadata

    async def get(self, key: str) -> ExpertCall | None:
        await self.create()
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(expert_calls).where(expert_calls.c.key == key))).first()
        return ExpertCall(row.key, row.called_by, tuple(row.experts), row.called_at) if row else None

    async def call_once(self, key: str, called_by: str, experts: tuple[str, ...]) -> ExpertCall | None:
        """Record the call; None if the thread had called its experts before (the earlier call stands)."""
        await self.create()
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        values = {"key": key, "called_by": called_by, "experts": list(experts), "called_at": time.time()}
        statement = dialect.insert(expert_calls).values(**values).on_conflict_do_nothing()
        async with self.engine.begin() as conn:  # RETURNING: psycopg's rowcount here is -1
            added = (await conn.execute(statement.returning(expert_calls.c.key))).first() is not None
        return ExpertCall(key, called_by, experts, values["called_at"]) if added else None

    async def cancel(self, key: str) -> None:
        """The call could not be posted: the thread has not called anyone."""
        await self.create()
        async with self.engine.begin() as conn:
            await conn.execute(delete(expert_calls).where(expert_calls.c.key == key))


__all__ = ["ExpertCall", "ExpertCalls", "expert_calls", "metadata"]
