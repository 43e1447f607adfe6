"""The scheduled sync: APScheduler runs the real sync on its interval; failures are survived."""

from __future__ import annotations

import time
from pathlib import Path

from knowledge.base import KnowledgeBase
from knowledge.config import KnowledgeConfig
from knowledge.scheduler import run_sync_job, start_sync_scheduler
from tests.corpus import DOCS, write_corpus


def _wait(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_the_schedule_picks_up_new_and_removed_documents(kb_config: KnowledgeConfig, docs_dir: Path) -> None:
    write_corpus(docs_dir)
    kb = KnowledgeBase(kb_config)
    scheduler = start_sync_scheduler(kb, minutes=0.01)  # every 0.6 s, first run at once
    try:
        assert scheduler is not None
        assert _wait(lambda: kb.status().documents == len(DOCS))
        (docs_dir / "new.md").write_text("# Parking\n\nThe visitor car park is behind building Zephyr.\n")
        (docs_dir / "people/expenses.txt").unlink()
        assert _wait(
            lambda: "new.md" in [h.chunk.doc_path for h in kb.search("visitor car park Zephyr", k=3)]
        )
        assert _wait(lambda: kb.status().documents == len(DOCS))  # one added, one removed
        assert scheduler.get_job("knowledge-sync").max_instances == 1
    finally:
        scheduler.shutdown(wait=True)
        kb.close()


def test_zero_minutes_turns_the_schedule_off(kb_config: KnowledgeConfig) -> None:
    kb = KnowledgeBase(kb_config)
    try:
        assert start_sync_scheduler(kb, minutes=0) is None
    finally:
        kb.close()


def test_a_failing_scheduled_sync_is_logged_not_raised(
    kb_config: KnowledgeConfig, tmp_path: Path, caplog
) -> None:
    from dataclasses import replace

    kb = KnowledgeBase(replace(kb_config, milvus_uri=str(tmp_path / "not-a-dir" / "x" / "milvus.db")))
    (tmp_path / "not-a-dir").write_text("a file where a folder should be")
    try:
        assert run_sync_job(kb) is None
        assert "scheduled sync failed" in caplog.text
    finally:
        kb.close()
