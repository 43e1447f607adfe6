"""The one place that opens the SQL database (``DATABASE_URL``) for the knowledge layer and the bot.

SQLite is the zero-setup default (a file under ./data/); PostgreSQL via ``postgresql+psycopg://``.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def _prepare_sqlite(url: URL) -> None:
    if url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(engine_sync: Engine) -> None:
    # WAL lets readers go on while a sync writes; busy_timeout turns lock contention into waiting.
    @event.listens_for(engine_sync, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # pragma: no cover - trivial
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def sync_url(url: str) -> URL:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("", "psycopg2", "asyncpg"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        parsed = parsed.set(drivername="sqlite")
    return parsed


def async_url(url: str) -> URL:
    parsed = sync_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    return parsed  # psycopg 3 speaks both sync and async under one driver name


def make_engine(url: str) -> Engine:
    parsed = sync_url(url)
    if parsed.get_backend_name() == "sqlite":
        _prepare_sqlite(parsed)
        engine = create_engine(parsed, connect_args={"timeout": 30})
        _sqlite_pragmas(engine)
        return engine
    return create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=5)


def make_async_engine(url: str) -> AsyncEngine:
    parsed = async_url(url)
    if parsed.get_backend_name() == "sqlite":
        _prepare_sqlite(parsed)
        engine = create_async_engine(parsed, connect_args={"timeout": 30})
        _sqlite_pragmas(engine.sync_engine)
        return engine
    return create_async_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=5)


def redacted(url: str) -> str:
    """The URL with its password hidden, for logs and status."""
    return make_url(url).render_as_string(hide_password=True)
