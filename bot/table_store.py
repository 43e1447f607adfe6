"""The base of the small SQL stores: their tables, created once per process on first use."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from sqlalchemy import MetaData, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine


def upsert_insert(engine: AsyncEngine, table: Table):
    """An INSERT on ``table`` that takes ``ON CONFLICT`` clauses: the queues need SQLite or PostgreSQL."""
    dialect = engine.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"DATABASE_URL: {table.name} needs SQLite or PostgreSQL, not {dialect}")


class TableStore:
    """Tables of one ``MetaData`` on one engine. Migrations own the schema in production;
    ``create_all`` (which skips existing tables) lets a fresh database work at once."""

    metadata: ClassVar[MetaData]

    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self._created = False
        self._lock = asyncio.Lock()

    async def create(self) -> None:
        async with self._lock:
            if not self._created:
                async with self.engine.begin() as conn:
                    await conn.run_sync(self.metadata.create_all)
                self._created = True
