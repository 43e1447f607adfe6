"""Sync end to end on real Milvus Lite, real parsers, the real local embedder and a real SQL manifest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from knowledge.base import KnowledgeBase
from knowledge.config import KnowledgeConfig
from knowledge.embedders import make_embedder
from knowledge.errors import SyncBusy
from knowledge.manifest import Manifest
from knowledge.sync import SYNC_LOCK
from tests.corpus import DOCS, KEYWORD_QUESTIONS, PARAPHRASE_QUESTIONS, write_corpus
from tests.milvus_server import lite_and_server_uri  # noqa: F401  (every test here on both)

ROOT = Path(__file__).resolve().parents[1]


class CountingEmbedder:
    """The real local embedder, counting the texts it is asked to embed."""

    def __init__(self, config: KnowledgeConfig):
        self.inner = make_embedder(config)
        self.name = self.inner.name
        self.dimension = self.inner.dimension
        self.embedded = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.embedded += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


@pytest.fixture
def kb(kb_config: KnowledgeConfig, docs_dir: Path):
    write_corpus(docs_dir)
    base = KnowledgeBase(kb_config, embedder=CountingEmbedder(kb_config))
    yield base
    base.close()


def top_docs(kb: KnowledgeBase, query: str, k: int = 5, mode: str = "hybrid") -> list[str]:
    return [hit.chunk.doc_path for hit in kb.search(query, k=k, mode=mode)]


def test_first_sync_indexes_every_document_and_finds_them(kb: KnowledgeBase) -> None:
    report = kb.sync()
    assert report.ok and report.error is None
    assert report.added == len(DOCS)
    assert report.chunks >= len(DOCS)
    for question, expected in KEYWORD_QUESTIONS + PARAPHRASE_QUESTIONS:
        assert expected in top_docs(kb, question), question
    hit = kb.search("Gatekeeper reset link expires", k=1)[0]
    assert hit.chunk.doc_path == "engineering/vpn.md"
    assert hit.chunk.title == "VPN access"
    assert hit.chunk.heading.endswith("Resetting your VPN password")


def test_resync_of_unchanged_documents_parses_and_embeds_nothing(kb: KnowledgeBase, docs_dir: Path) -> None:
    kb.sync()
    embedded = kb.embedder.embedded
    # Touch one file without changing its bytes: the hash, not the mtime, decides.
    os.utime(docs_dir / "people/vacation.md", None)
    report = kb.sync()
    assert (report.added, report.updated, report.deleted, report.chunks) == (0, 0, 0, 0)
    assert report.unchanged == len(DOCS)
    assert kb.embedder.embedded == embedded


def test_edit_replaces_old_text(kb: KnowledgeBase, docs_dir: Path) -> None:
    kb.sync()
    path = docs_dir / "people/vacation.md"
    path.write_text(path.read_text().replace("27 days", "31 days"), encoding="utf-8")
    report = kb.sync()
    assert report.updated == 1 and report.unchanged == len(DOCS) - 1
    texts = [h.chunk.text for h in kb.search("paid annual leave days", k=10, mode="bm25")]
    assert any("31 days" in t for t in texts)
    assert not any("27 days" in t for t in texts)
    assert kb.store.count() == kb.status().chunks


def test_deleted_document_leaves_the_index(kb: KnowledgeBase, docs_dir: Path) -> None:
    kb.sync()
    (docs_dir / "engineering/deploys.md").unlink()
    report = kb.sync()
    assert report.deleted == 1
    assert "engineering/deploys.md" not in top_docs(kb, "shipit rollback", k=10, mode="bm25")
    assert kb.status().documents == len(DOCS) - 1


def test_incomplete_crawl_deletes_nothing(
    kb: KnowledgeBase, kb_config: KnowledgeConfig, tmp_path: Path
) -> None:
    kb.sync()
    broken = KnowledgeBase(
        replace(kb_config, docs=(kb_config.docs[0], tmp_path / "missing")), embedder=kb.embedder
    )
    try:
        report = broken.sync()
        assert not report.ok
        assert "missing" in report.error and "nothing deleted" in report.error
        assert broken.status().documents == len(DOCS)
    finally:
        broken.close()


def test_bad_files_are_skipped_with_reasons_and_the_rest_indexed(
    kb: KnowledgeBase, kb_config, docs_dir: Path
) -> None:
    (docs_dir / "empty.md").write_bytes(b"")
    (docs_dir / "binary.txt").write_bytes(bytes(range(256)) * 3)
    (docs_dir / "archive.xyz").write_bytes(b"whatever")
    (docs_dir / "truncated.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog")
    (docs_dir / "broken.docx").write_bytes(b"PK\x03\x04 not really a zip")
    small = KnowledgeBase(replace(kb_config, max_file_mb=0.001), embedder=kb.embedder)
    (docs_dir / "big.txt").write_text("word " * 400)  # 2 kB > 1 kB limit
    try:
        report = small.sync()
    finally:
        small.close()
    reasons = {s.path: s.reason for s in report.skipped}
    assert report.added == len(DOCS)
    assert reasons["empty.md"] == "empty file"
    assert "binary" in reasons["binary.txt"]
    assert reasons["archive.xyz"] == "unsupported format .xyz"
    assert "PDF" in reasons["truncated.pdf"]
    assert "DOCX" in reasons["broken.docx"] or "docx" in reasons["broken.docx"].lower()
    assert reasons["big.txt"].startswith("too large")
    status = kb.status()
    assert {s.path for s in status.skipped} == set(reasons)
    # Skipped again on the next sync, without re-reading them.
    assert {s.path for s in kb.sync().skipped} == set(reasons) - {"big.txt"}


def test_a_file_that_becomes_unreadable_leaves_the_index(kb: KnowledgeBase, docs_dir: Path) -> None:
    kb.sync()
    (docs_dir / "people/expenses.txt").write_bytes(b"")
    report = kb.sync()
    assert [s.reason for s in report.skipped] == ["empty file"]
    assert "people/expenses.txt" not in top_docs(kb, "Ledgerly receipts", k=10, mode="bm25")


def test_one_sync_at_a_time(kb: KnowledgeBase, kb_config: KnowledgeConfig) -> None:
    manifest = Manifest(kb_config.database_url)
    try:
        assert manifest.acquire_lock(
            SYNC_LOCK, "another-replica", __import__("datetime").timedelta(minutes=5)
        )
        with pytest.raises(SyncBusy):
            kb.sync()
        manifest.release_lock(SYNC_LOCK, "another-replica")
        assert kb.sync().ok
    finally:
        manifest.close()


def test_manifest_and_lock_on_each_database(database_url: str) -> None:
    from datetime import timedelta

    manifest = Manifest(database_url)
    try:
        assert manifest.acquire_lock("x", "a", timedelta(minutes=1))
        assert not manifest.acquire_lock("x", "b", timedelta(minutes=1))
        assert manifest.acquire_lock("x", "a", timedelta(minutes=1))  # re-entrant for its owner
        manifest.release_lock("x", "a")
        assert manifest.acquire_lock("x", "b", timedelta(seconds=-1))  # expired at once
        assert manifest.acquire_lock("x", "c", timedelta(minutes=1))  # takes over an expired lease
    finally:
        manifest.close()


KILLER = textwrap.dedent(
    """
    import sys, time
    import knowledge.sync as sync
    sync.BATCH_CHUNKS = 4  # many small rounds, so the kill lands between writes
    from knowledge.base import KnowledgeBase
    from knowledge.config import KnowledgeConfig
    from pathlib import Path
    docs, milvus, db, collection = sys.argv[1:5]
    kb = KnowledgeBase(KnowledgeConfig(docs=(Path(docs),), milvus_uri=milvus, collection=collection, database_url=db))
    real = kb.store.upsert
    def slow_upsert(chunks, vectors):
        real(chunks, vectors)
        time.sleep(0.3)
    kb.store.upsert = slow_upsert
    kb.sync()
    """
)


def _index_snapshot(kb: KnowledgeBase) -> dict[str, set[str]]:
    rows = kb.manifest.documents()
    return {row.path: kb.store.chunk_ids(doc_id) for doc_id, row in rows.items() if row.status == "indexed"}


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["first", "update"])
def test_sync_killed_half_way_then_rerun_equals_a_clean_sync(
    kb_config: KnowledgeConfig, docs_dir: Path, tmp_path: Path, phase: str
) -> None:
    # Enough documents for many write rounds.
    for i in range(30):
        (docs_dir / f"note-{i:02}.md").write_text(
            f"# Note {i}\n\n" + f"Fact number {i} about topic {i}. " * 30
        )
    if phase == "update":
        kb = KnowledgeBase(kb_config)
        kb.sync()
        kb.close()
        for i in range(0, 30, 2):
            (docs_dir / f"note-{i:02}.md").write_text(f"# Note {i}\n\nRevised fact {i}. " * 20)
        (docs_dir / "note-29.md").unlink()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            KILLER,
            str(docs_dir),
            kb_config.milvus_uri,
            kb_config.database_url,
            kb_config.collection,
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
    )
    manifest = Manifest(kb_config.database_url)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            rows = manifest.documents().values()
            written = [r for r in rows if r.status == "indexed"]
            pending = [r for r in rows if r.status == "pending"]
            if pending and len(written) > 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, (
            f"sync ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
        )
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert any(r.status == "pending" for r in manifest.documents().values())
    finally:
        manifest.close()

    resumed = KnowledgeBase(kb_config)
    clean = KnowledgeBase(
        replace(
            kb_config,
            milvus_uri=str(tmp_path / "clean.db"),
            database_url=f"sqlite:///{tmp_path / 'clean.sqlite'}",
        )
    )
    try:
        assert resumed.sync().ok
        assert clean.sync().ok
        got, want = _index_snapshot(resumed), _index_snapshot(clean)
        assert got == want
        assert resumed.store.count() == clean.store.count() == sum(len(v) for v in want.values())
        assert json.dumps(resumed.status().by_status) == json.dumps(clean.status().by_status)
    finally:
        resumed.close()
        clean.close()


def test_changed_chunk_settings_recut_every_document(kb: KnowledgeBase, kb_config: KnowledgeConfig) -> None:
    kb.sync()
    smaller = KnowledgeBase(replace(kb_config, chunk_size=300, chunk_overlap=30), embedder=kb.embedder)
    try:
        report = smaller.sync()
        assert report.updated == len(DOCS) and report.unchanged == 0
        assert all(len(hit.chunk.text) <= 300 + 160 for hit in smaller.search("policy", k=20, mode="bm25"))
        assert smaller.sync().unchanged == len(DOCS)
    finally:
        smaller.close()
