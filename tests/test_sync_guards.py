"""What keeps a sync from doing harm: the mass-delete guard, the lock's heartbeat, start-up and shutdown.

Real Milvus Lite, the real local embedder, a real SQL manifest (PostgreSQL where it is set up).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

import knowledge.sync as sync_module
from bot import migrations
from knowledge.base import KnowledgeBase
from knowledge.config import KnowledgeConfig
from knowledge.embedders import make_embedder
from knowledge.scheduler import run_sync_job
from tests.corpus import DOCS, write_corpus


def paths(kb: KnowledgeBase) -> set[str]:
    return {row.path for row in kb.manifest.documents().values() if row.status == "indexed"}


@pytest.fixture
def kb(kb_config: KnowledgeConfig, docs_dir: Path):
    write_corpus(docs_dir)
    base = KnowledgeBase(kb_config)
    yield base
    base.close()


# --- an empty or unmounted folder -------------------------------------------------------------


def test_an_emptied_folder_removes_nothing_until_allowed(kb: KnowledgeBase, docs_dir: Path) -> None:
    assert kb.sync().added == len(DOCS)
    shutil.rmtree(docs_dir)
    docs_dir.mkdir()  # the mount point is there, the volume is not

    report = kb.sync()
    assert not report.ok and report.deleted == 0
    assert report.refused_deletions == [
        f"refused to remove {len(DOCS)} of {len(DOCS)} indexed documents of {docs_dir.resolve()} "
        "in one sync (an empty or unmounted folder?); nothing was removed there"
    ]
    assert "threadwise sync --allow-mass-delete" in report.error
    assert "THREADWISE_ALLOW_MASS_DELETE" in report.error
    assert paths(kb) == set(DOCS) and kb.status().documents == len(DOCS)
    assert kb.search("Gatekeeper reset link", k=1)[0].chunk.doc_path == "engineering/vpn.md"
    assert kb.refused_deletions() == report.refused_deletions
    assert kb.status().last_sync["refused_deletions"] == report.refused_deletions

    write_corpus(docs_dir)  # mounted again: all is well, nothing re-embedded
    report = kb.sync()
    assert report.ok and report.unchanged == len(DOCS) and kb.refused_deletions() == []

    shutil.rmtree(docs_dir)
    docs_dir.mkdir()
    report = kb.sync(allow_mass_delete=True)
    assert report.ok and report.deleted == len(DOCS) and report.refused_deletions == []
    assert paths(kb) == set() and kb.store.count() == 0


def test_more_than_half_of_a_folder_is_refused_half_is_not(kb: KnowledgeBase, docs_dir: Path) -> None:
    kb.sync()
    names = sorted(DOCS)  # five documents
    for name in names[:3]:
        (docs_dir / name).unlink()
    report = kb.sync()
    assert report.refused_deletions and report.deleted == 0 and paths(kb) == set(DOCS)

    write_corpus(docs_dir)
    for name in names[:2]:
        (docs_dir / name).unlink()
    report = kb.sync()
    assert report.ok and report.deleted == 2 and paths(kb) == set(names[2:])


def test_the_setting_allows_it_and_each_folder_is_judged_alone(
    kb_config: KnowledgeConfig, docs_dir: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    (other / "a").mkdir(parents=True)
    for i in range(4):
        (other / "a" / f"note-{i}.md").write_text(f"# Note {i}\n\nFact number {i} about kestrels.\n")
    write_corpus(docs_dir)
    kb = KnowledgeBase(replace(kb_config, docs=(docs_dir, other)))
    try:
        assert kb.sync().added == len(DOCS) + 4
        shutil.rmtree(other / "a")  # all of one folder, one document of the other
        (docs_dir / "engineering/vpn.md").unlink()
        report = kb.sync()
        assert report.deleted == 1 and len(report.refused_deletions) == 1
        assert str(other.resolve()) in report.refused_deletions[0]
        assert len(paths(kb)) == len(DOCS) - 1 + 4
    finally:
        kb.close()
    allowed = KnowledgeBase(replace(kb_config, docs=(docs_dir, other), allow_mass_delete=True))
    try:
        report = allowed.sync()
        assert report.ok and report.deleted == 4 and len(paths(allowed)) == len(DOCS) - 1
    finally:
        allowed.close()


def test_the_scheduled_sync_records_the_refusal(kb: KnowledgeBase, docs_dir: Path, caplog) -> None:
    run_sync_job(kb)
    shutil.rmtree(docs_dir)
    docs_dir.mkdir()
    report = run_sync_job(kb)
    assert report is not None and report.refused_deletions
    assert kb.status().last_sync["ok"] is False
    assert kb.refused_deletions() == report.refused_deletions
    assert any(r.levelname == "ERROR" and "refused to remove" in r.getMessage() for r in caplog.records)
    assert paths(kb) == set(DOCS)


# --- the sync lock ----------------------------------------------------------------------------


def blip(*_args, **_kwargs):
    raise OperationalError("INSERT INTO kb_sync_runs", {}, Exception("server closed the connection"))


def heartbeats() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sync-lock" and t.is_alive()]


@pytest.mark.parametrize("step", ["start_run", "finish_run"])
def test_a_database_blip_around_a_sync_does_not_hold_the_lock(
    kb: KnowledgeBase, kb_config: KnowledgeConfig, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    monkeypatch.setattr(sync_module, "LOCK_RENEW", 0.05)  # a heartbeat left running would renew at once
    monkeypatch.setattr(kb.manifest, step, blip)
    if step == "start_run":
        with pytest.raises(OperationalError):
            kb.sync()
    else:
        assert kb.sync().added == len(DOCS)  # the work is done; only its record is missing
    time.sleep(0.2)
    assert heartbeats() == []
    replica = KnowledgeBase(kb_config, embedder=kb.embedder)  # another process, another owner
    try:
        assert replica.sync().ok  # not refused as busy
    finally:
        replica.close()


# --- start-up and shutdown ---------------------------------------------------------------------


def first_calls_at_once(kb: KnowledgeBase) -> tuple[list[BaseException], set[tuple[int, int]]]:
    """A sync, searches, a ping and a status, all starting together on a knowledge base never used."""
    calls = [kb.sync] + [lambda: kb.search("Gatekeeper", k=1)] * 3 + [kb.ping, kb.status]
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []
    built: set[tuple[int, int]] = set()

    def call(fn) -> None:
        barrier.wait()
        try:
            fn()
            built.add((id(kb.store), id(kb.manifest)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(fn,)) for fn in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors, built


def test_concurrent_first_calls_build_and_open_the_store_once(
    kb_config: KnowledgeConfig, docs_dir: Path
) -> None:
    write_corpus(docs_dir)
    embedder = make_embedder(kb_config)
    for attempt in range(3):  # the race it guards against is a matter of timing: give it chances
        config = replace(
            kb_config,
            milvus_uri=str(docs_dir.parent / f"milvus-{attempt}.db"),
            database_url=f"sqlite:///{docs_dir.parent / f'manifest-{attempt}.db'}",
        )
        kb = KnowledgeBase(config, embedder=embedder)
        try:
            errors, built = first_calls_at_once(kb)
            assert errors == []
            assert len(built) == 1
            assert kb.search("Gatekeeper", k=1)[0].chunk.doc_path == "engineering/vpn.md"
        finally:
            kb.close()


class SlowEmbedder:
    """The real local embedder, taking its time over every batch (a remote model under load)."""

    def __init__(self, config: KnowledgeConfig, delay: float):
        self.inner = make_embedder(config)
        self.name, self.dimension, self.delay = self.inner.name, self.inner.dimension, delay
        self.batches = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        time.sleep(self.delay)
        self.batches += 1
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


def test_close_lets_a_running_sync_reach_a_safe_point(
    kb_config: KnowledgeConfig, docs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(20):
        (docs_dir / f"note-{i:02}.md").write_text(f"# Note {i}\n\nFact number {i} about topic {i}.\n")
    monkeypatch.setattr(sync_module, "BATCH_CHUNKS", 1)  # one write round per document
    kb = KnowledgeBase(kb_config, embedder=SlowEmbedder(kb_config, delay=0.3))
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["report"] = kb.sync()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 60
    while kb.embedder.batches < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    started = time.monotonic()
    kb.close(wait=10)
    waited = time.monotonic() - started
    thread.join(10)
    assert not thread.is_alive()
    assert "error" not in outcome, outcome.get("error")
    report = outcome["report"]
    assert not report.ok and "shutting down" in report.error and 2 <= report.added < 20
    assert waited < 5  # one write round, not the whole sync
    rows = kb.manifest.documents().values()  # the manifest opens again lazily
    assert {row.status for row in rows} == {"indexed"} and len(rows) == report.added
    assert kb.open_store().count() == sum(row.chunk_count for row in rows)  # nothing half written
    kb.close()

    again = KnowledgeBase(kb_config)
    try:
        assert again.sync().added == 20 - report.added
    finally:
        again.close()


@pytest.mark.postgres
def test_a_file_over_2_gib_is_recorded_on_postgres(
    kb_config: KnowledgeConfig, docs_dir: Path, postgres_url: str
) -> None:
    migrations.upgrade(postgres_url)  # the schema as an operator's `threadwise db upgrade` leaves it
    write_corpus(docs_dir)
    big = docs_dir / "archive/all-hands.md"
    big.parent.mkdir()
    with open(big, "wb") as handle:  # sparse: 3 GiB on paper, nothing on disk
        handle.truncate(3 * 1024**3)
    kb = KnowledgeBase(replace(kb_config, database_url=postgres_url))
    try:
        report = kb.sync()
        assert report.ok and report.added == len(DOCS)
        assert [(s.path, s.reason) for s in report.skipped] == [
            ("archive/all-hands.md", "too large: 3072.0 MB > 50 MB limit")
        ]
        row = next(r for r in kb.manifest.documents().values() if r.path == "archive/all-hands.md")
        assert row.size == os.stat(big).st_size == 3 * 1024**3
    finally:
        kb.close()
