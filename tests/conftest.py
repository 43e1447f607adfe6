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
from tests.milvus_server import MilvusServer

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


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusServer]:
    """One real Milvus server process (``milvus-lite server``) for the session; tests use own collections."""
    server = MilvusServer(tmp_path_factory.mktemp("milvus-server") / "data").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def milvus_uri(tmp_path: Path) -> str:
    """A Milvus Lite file of this test (``tests.milvus_server.lite_and_server_uri`` adds the server)."""
    return str(tmp_path / "milvus.db")


@pytest.fixture
def collection(milvus_uri: str) -> str:
    """A collection name of this test's own: tests share the one server."""
    return "test_kb" if "://" not in milvus_uri else f"test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def kb_config(docs_dir: Path, sqlite_url: str, milvus_uri: str, collection: str) -> KnowledgeConfig:
    return KnowledgeConfig(
        docs=(docs_dir,),
        milvus_uri=milvus_uri,
        collection=collection,
        database_url=sqlite_url,
        embedder="local",
    )
