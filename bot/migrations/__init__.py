"""The schema of every table threadwise owns, as Alembic migrations shipped inside the package.

Tables: the manifest (``kb_documents``, ``kb_sync_runs``, ``locks``), the ledger (``slack_claims``),
feedback (``answers``, ``feedback``), the knowledge jobs (``knowledge_jobs``) and the loop (``gaps``,
``channel_configs``, ``saved_answers``, ``expert_calls``). Agno creates and upgrades its own session tables.

The migration scripts are found next to this module (no ``alembic.ini`` needed), so
``threadwise db upgrade`` works from any folder and in the installed wheel. Start-up policy
(:func:`prepare`): SQLite upgrades itself, so a first run needs no extra command; PostgreSQL, shared
by replicas, is upgraded by ``threadwise db upgrade`` (or at start with THREADWISE_AUTO_MIGRATE=1),
and a server refuses to start on a schema that is behind.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import make_url

from knowledge.database import make_engine, redacted

SCRIPTS = Path(__file__).resolve().parent
VERSION_TABLE = "threadwise_schema_version"


class SchemaBehind(Exception):
    """The database's schema is older (or newer) than this version of threadwise expects."""


def target_metadata() -> list[MetaData]:
    """The tables as the code declares them; the migrations must produce exactly these."""
    from bot import channel_config, experts, feedback, gaps, jobs, ledger, resolutions
    from knowledge import manifest

    return [
        manifest.metadata,
        ledger.metadata,
        jobs.metadata,
        feedback.metadata,
        gaps.metadata,
        channel_config.metadata,
        resolutions.metadata,
        experts.metadata,
    ]


def _config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["database_url"] = database_url  # not a main option: '%' in passwords
    return config


def head() -> str:
    revision = ScriptDirectory.from_config(_config("sqlite://")).get_current_head()
    assert revision is not None
    return revision


def current(database_url: str) -> str | None:
    """The revision the database is at; None for a database never migrated."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(VERSION_TABLE):
                return None
            return MigrationContext.configure(
                conn, opts={"version_table": VERSION_TABLE}
            ).get_current_revision()
    finally:
        engine.dispose()


def upgrade(database_url: str, revision: str = "head") -> tuple[str | None, str]:
    """Apply the migrations up to ``revision``; (revision before, revision after).

    Tables an earlier version created without migrations are adopted, not created twice.
    """
    before = current(database_url)
    command.upgrade(_config(database_url), revision)
    after = current(database_url)
    assert after is not None
    return before, after


def is_sqlite(database_url: str) -> bool:
    return make_url(database_url).get_backend_name() == "sqlite"


def prepare(database_url: str, *, auto: bool | None = None) -> str:
    """At the start of ``serve``/``socket``: make sure the schema is current, or say what to run.

    ``auto`` (THREADWISE_AUTO_MIGRATE) None means: upgrade SQLite, only check anything else.
    Returns a line saying what was done; raises :class:`SchemaBehind` with the fix otherwise.
    """
    auto = is_sqlite(database_url) if auto is None else auto
    at, want = current(database_url), head()
    if at == want:
        return f"database schema is current ({want})"
    known = {
        script.revision for script in ScriptDirectory.from_config(_config(database_url)).walk_revisions()
    }
    if at is not None and at not in known:
        raise SchemaBehind(
            f"the database {redacted(database_url)} is at schema revision {at}, which this version of "
            "threadwise does not know (a newer version migrated it): upgrade threadwise"
        )
    if not auto:
        where = "not migrated yet" if at is None else f"at revision {at}"
        raise SchemaBehind(
            f"the database schema is behind: {redacted(database_url)} is {where}, this version needs {want}. "
            "Run `threadwise db upgrade` once (with the same DATABASE_URL), then start again; "
            "or set THREADWISE_AUTO_MIGRATE=1 to upgrade at start"
        )
    before, after = upgrade(database_url)
    return f"database schema upgraded from {before or 'nothing'} to {after}"


__all__ = [
    "SCRIPTS",
    "VERSION_TABLE",
    "SchemaBehind",
    "current",
    "head",
    "is_sqlite",
    "prepare",
    "target_metadata",
    "upgrade",
]
