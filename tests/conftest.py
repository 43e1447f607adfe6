"""Shared fixtures: databases (SQLite always, PostgreSQL where TEST_DATABASE_URL is set) and configs."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from knowledge.config import KnowledgeConfig

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
# No phoning home from tests (there is no network here anyway).
os.environ.setdefault("AGNO_TELEMETRY", "false")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'threadwise.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    if not TEST_DATABASE_URL:
        pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
    base = make_url(TEST_DATABASE_URL).set(drivername="postgresql+psycopg")
    name = f"tw_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Every database-backed test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def docs_dir(tmp_path: Path) -> Path:
    path = tmp_path / "docs"
    path.mkdir()
    return path


@pytest.fixture
def kb_config(tmp_path: Path, docs_dir: Path, sqlite_url: str) -> KnowledgeConfig:
    return KnowledgeConfig(
        docs=(docs_dir,),
        milvus_uri=str(tmp_path / "milvus.db"),
        collection="test_kb",
        database_url=sqlite_url,
        embedder="local",
    )
