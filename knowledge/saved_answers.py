"""Answers saved from resolved Slack threads, as documents of the knowledge base.

The bot keeps each saved Q&A in its own table; this module indexes one as a document like any other:
the same chunker and store, a manifest row (``source="saved"``) written ``pending`` before Milvus is
touched and ``indexed`` after, so a kill half way is redone by the next save or reconcile. A folder
sync never removes these rows (it owns ``source="folder"`` only).

Access follows the thread's conversation (``workspace`` for a public channel, ``channel:<id>``
otherwise), so a saved answer is found only where its thread could be read. Its date is the thread's
(``mtime_ns`` holds seconds, as for Slack files), and it is cited by its title, "#channel thread, date",
linking to the thread.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from knowledge.chunking import chunk_document
from knowledge.manifest import DocumentRow
from knowledge.types import ParsedDocument, Section

if TYPE_CHECKING:
    from knowledge.base import KnowledgeBase

log = logging.getLogger(__name__)

SOURCE = "saved"


@dataclass(frozen=True)
class SavedQA:
    """One saved Q&A, as the knowledge base indexes it."""

    key: str  # stable per thread, e.g. "T1:C1:1712345678.000100"
    title: str  # how it is cited: "#general thread, 2026-12-05"
    question: str
    answer: str
    answered_by: str  # a name or a Slack mention, as written in the Q&A
    access: str  # "workspace" or "channel:<id>"
    url: str  # the thread's permalink
    date: int  # the thread's date, seconds since the epoch

    def text(self) -> str:
        by = f"\n(Answered by {self.answered_by}.)" if self.answered_by else ""
        return f"Q: {self.question}\nA: {self.answer}{by}"


def document_id(key: str) -> str:
    return hashlib.sha1(f"saved:{key}".encode()).hexdigest()


def index_saved(kb: KnowledgeBase, saved: SavedQA) -> int:
    """Index (or re-index) one saved Q&A; returns its number of chunks."""
    doc_id = document_id(saved.key)
    text = saved.text()
    version = hashlib.sha256(f"{saved.access}\n{saved.title}\n{text}".encode()).hexdigest()
    chunks = chunk_document(
        ParsedDocument(saved.title, [Section(text)]),
        doc_id=doc_id,
        doc_path=saved.title,
        version=version[:16],
        size=kb.config.chunk_size,
        overlap=kb.config.chunk_overlap,
        access=saved.access,
        url=saved.url,
    )
    had_row = kb.manifest.get(doc_id) is not None
    kb.manifest.put(_row(kb, saved, doc_id, version, len(chunks), "pending"))
    store = kb.store
    store.open()
    store.upsert(chunks, kb.embedder.embed_documents([c.text for c in chunks]))
    if had_row:  # the earlier version's chunks (or another access) go only now the new ones are in
        store.delete_document(doc_id, keep={c.chunk_id for c in chunks})
    kb.manifest.put(_row(kb, saved, doc_id, version, len(chunks), "indexed"))
    log.info(
        "indexed saved answer %s (%s) as %s: %d chunks", saved.key, saved.title, saved.access, len(chunks)
    )
    return len(chunks)


def remove_saved(kb: KnowledgeBase, key: str) -> bool:
    """The saved Q&A leaves the index; True if it was there."""
    doc_id = document_id(key)
    if kb.manifest.get(doc_id) is None:
        return False
    _drop(kb, [doc_id])
    return True


def keep_only(kb: KnowledgeBase, keys: list[str]) -> int:
    """Remove every saved Q&A but ``keys`` (an index that should mirror the saved list); how many went."""
    wanted = {document_id(key) for key in keys}
    doomed = [doc_id for doc_id in saved_documents(kb) if doc_id not in wanted]
    _drop(kb, doomed)
    return len(doomed)


def _drop(kb: KnowledgeBase, doc_ids: list[str]) -> None:
    """Out of Milvus, then out of the manifest (a kill in between leaves "deleting" rows to redo)."""
    if not doc_ids:
        return
    kb.manifest.set_status(doc_ids, "deleting")
    store = kb.store
    store.open()
    store.delete_documents(doc_ids)
    kb.manifest.remove(doc_ids)


def saved_documents(kb: KnowledgeBase) -> dict[str, DocumentRow]:
    """Every saved Q&A the manifest knows, by document id."""
    return kb.manifest.documents(SOURCE)


def _row(
    kb: KnowledgeBase, saved: SavedQA, doc_id: str, version: str, chunks: int, status: str
) -> DocumentRow:
    return DocumentRow(
        doc_id=doc_id,
        source=SOURCE,
        path=saved.title,
        location=saved.url or f"saved:{saved.key}",
        title=saved.title,
        access=saved.access,
        size=len(saved.text().encode()),
        mtime_ns=int(saved.date),
        byte_hash=version,
        chunk_count=chunks,
        status=status,
        chunking=f"{kb.config.chunk_size}/{kb.config.chunk_overlap}",
        reason=None,
        last_sync=None,
    )


__all__ = ["SOURCE", "SavedQA", "document_id", "index_saved", "keep_only", "remove_saved", "saved_documents"]
