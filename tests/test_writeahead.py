"""The write-ahead protocol for Slack files: a Milvus failure half way leaves rows the next reconcile
redoes, never a settled row over chunks still in Milvus. Real Milvus Lite, a real SQL manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.base import KnowledgeBase
from knowledge.config import KnowledgeConfig
from knowledge.errors import StoreUnavailable, UnreadableDocument
from knowledge.slack_files import SOURCE, SlackFile, index_file, reconcile_files, skip_file
from knowledge.types import AccessScope

FALCON = b"# Falcon launch plan\n\nThe Falcon launch code word is BLUE-HERON-42.\n"
PLAN = SlackFile("F1", "falcon.md", {"C_PRIVATE": True}, updated=100, size=len(FALCON))
PRIVATE = AccessScope.for_channel("C_PRIVATE", private=True)


@pytest.fixture
def kb(tmp_path: Path):
    base = KnowledgeBase(
        KnowledgeConfig(
            milvus_uri=str(tmp_path / "milvus.db"),
            collection="slack_files",
            database_url=f"sqlite:///{tmp_path / 'manifest.db'}",
        )
    )
    yield base
    base.close()


def statuses(kb: KnowledgeBase) -> list[str]:
    return [row.status for row in kb.manifest.documents(SOURCE).values()]


def test_a_skip_that_fails_half_way_is_redone(kb: KnowledgeBase) -> None:
    index_file(kb, PLAN, FALCON)
    assert "BLUE-HERON-42" in kb.search("Falcon launch code word", scope=PRIVATE)[0].chunk.text

    kb.store.close()  # Milvus goes away between the manifest and the delete
    with pytest.raises(StoreUnavailable):
        skip_file(kb, PLAN, "too large: 61.2 MB > 50 MB limit")
    assert statuses(kb) == ["pending"]  # not "skipped": its chunks are still in Milvus
    kb.close()  # back again

    def too_large(_file: SlackFile) -> bytes:
        raise UnreadableDocument("too large: 61.2 MB > 50 MB limit")

    report = reconcile_files(kb, [PLAN], complete=True, fetch=too_large)
    assert [s.reason for s in report.skipped] == ["too large: 61.2 MB > 50 MB limit"]
    assert statuses(kb) == ["skipped"]
    assert kb.search("Falcon launch code word", scope=PRIVATE) == []
    assert kb.store.count() == 0
