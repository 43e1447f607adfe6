"""The schema as migrations: a fresh database, one made before migrations, the start-up check, the command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, select

from bot import migrations
from bot.feedback import FeedbackStore
from bot.ledger import Ledger
from knowledge.database import make_async_engine, make_engine
from knowledge.manifest import Manifest, locks

ROOT = Path(__file__).resolve().parents[1]


def schema_drift(database_url: str) -> list:
    """What the migrated database lacks or has beyond the tables the code declares."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = compare_metadata(context, migrations.target_metadata())
    finally:
        engine.dispose()
    return [d for d in diffs if not (d[0] == "remove_table" and d[1].name == migrations.VERSION_TABLE)]


def test_upgrade_builds_exactly_the_declared_tables(database_url: str):
    assert migrations.current(database_url) is None
    assert migrations.upgrade(database_url) == (None, migrations.head())
    assert migrations.current(database_url) == migrations.head()
    assert schema_drift(database_url) == []
    assert migrations.upgrade(database_url) == (migrations.head(), migrations.head())  # idempotent


async def test_a_database_made_before_migrations_is_adopted_with_its_rows(database_url: str):
    manifest = Manifest(database_url)  # metadata.create_all, as every earlier version did
    with manifest.engine.begin() as conn:
        conn.execute(insert(locks).values(name="sync", owner="old", expires_at=manifest_now()))
    manifest.close()
    engine = make_async_engine(database_url)
    await Ledger(engine).create()
    await FeedbackStore(engine).create()
    await engine.dispose()

    migrations.upgrade(database_url)

    assert schema_drift(database_url) == []
    engine_sync = make_engine(database_url)
    with engine_sync.connect() as conn:
        assert conn.execute(select(locks.c.owner)).scalars().all() == ["old"]
    engine_sync.dispose()


def manifest_now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


def test_start_upgrades_sqlite_by_itself(sqlite_url: str):
    assert "upgraded from nothing" in migrations.prepare(sqlite_url)
    assert migrations.prepare(sqlite_url) == f"database schema is current ({migrations.head()})"


@pytest.mark.postgres
def test_start_refuses_a_postgres_schema_that_is_behind_until_upgraded(postgres_url: str):
    with pytest.raises(migrations.SchemaBehind) as caught:
        migrations.prepare(postgres_url)
    message = str(caught.value)
    assert "threadwise db upgrade" in message and "THREADWISE_AUTO_MIGRATE=1" in message
    assert "not migrated yet" in message
    assert not inspect(make_engine(postgres_url)).has_table("slack_claims")  # nothing touched
    assert "upgraded" in migrations.prepare(postgres_url, auto=True)
    assert migrations.current(postgres_url) == migrations.head()


def test_a_schema_from_a_newer_version_is_named(sqlite_url: str):
    migrations.upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE {migrations.VERSION_TABLE} SET version_num = '9999'")
    engine.dispose()
    with pytest.raises(migrations.SchemaBehind, match=r"does not know.*upgrade threadwise"):
        migrations.prepare(sqlite_url)


def _threadwise(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "THREADWISE_", "OPENAI_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
@pytest.mark.postgres
def test_serve_says_to_run_db_upgrade_and_the_command_does_it(postgres_url: str, tmp_path: Path):
    env = {
        "DATABASE_URL": postgres_url,
        "SLACK_BOT_TOKEN": "xoxb-not-used",
        "SLACK_SIGNING_SECRET": "not-used",
        "MILVUS_URI": str(tmp_path / "milvus.db"),
    }
    refused = _threadwise("serve", "--port", "1", env=env, cwd=tmp_path)
    assert refused.returncode == 1
    assert "schema is behind" in refused.stderr and "threadwise db upgrade" in refused.stderr
    assert "Traceback" not in refused.stderr

    behind = _threadwise("db", "current", env=env, cwd=tmp_path)
    assert behind.returncode == 1 and "behind" in behind.stdout

    done = _threadwise("db", "upgrade", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"schema upgraded from nothing to {migrations.head()}" in done.stdout
    assert "xoxb" not in done.stdout + done.stderr
    again = _threadwise("db", "upgrade", env=env, cwd=tmp_path)
    assert f"schema already at {migrations.head()}" in again.stdout
    assert _threadwise("db", "current", env=env, cwd=tmp_path).returncode == 0


def test_db_upgrade_on_an_unreachable_database_is_one_line(tmp_path: Path):
    env = {"DATABASE_URL": "postgresql+psycopg://nobody:secret-pw@127.0.0.1:1/none"}
    result = _threadwise("db", "upgrade", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith(
        "threadwise: cannot upgrade postgresql+psycopg://nobody:***@127.0.0.1:1/none"
    )
    assert "Traceback" not in result.stderr and "secret-pw" not in result.stderr


def test_the_migrations_ship_inside_the_package():
    assert migrations.SCRIPTS == ROOT / "bot" / "migrations"
    assert (migrations.SCRIPTS / "versions" / "__init__.py").exists()  # a package: the wheel carries it
    assert not (ROOT / "alembic.ini").exists()
