"""Alembic's environment for threadwise: the URL comes from the caller (``bot.migrations``), not a file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from bot.migrations import VERSION_TABLE, target_metadata
from knowledge.database import make_engine

# Any number for PostgreSQL's advisory lock: replicas upgrading at once take turns.
_LOCK_KEY = 7_316_046_001


def run() -> None:
    config = context.config
    engine = make_engine(config.attributes["database_url"])
    try:
        with engine.connect() as conn:
            context.configure(
                connection=conn,
                target_metadata=target_metadata(),
                version_table=VERSION_TABLE,
                render_as_batch=conn.dialect.name == "sqlite",  # ALTER TABLE on SQLite
                compare_type=True,
            )
            with context.begin_transaction():
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("threadwise migrations run against a database (threadwise db upgrade), not offline")
run()
