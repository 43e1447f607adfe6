"""The write-ahead protocol between the SQL manifest and Milvus, for every source of documents.

The manifest row of a document changes *before* Milvus is touched, so a process killed at any moment
leaves a row that tells the next sync or reconcile to redo that document:

- a new version: rows ``pending``, new chunks in, older chunks out, rows ``indexed``;
- a skipped version: rows ``pending``, the older version's chunks out, rows ``skipped``;
- a removal: rows ``deleting``, chunks out, rows gone.

Every document with chunks in Milvus therefore has a row whose status is not ``skipped`` or ``indexed``
until Milvus holds exactly what the row says; nothing has to scan Milvus to find orphans.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from knowledge.manifest import DocumentRow, Manifest
from knowledge.store import ChunkStore
from knowledge.types import Chunk


@dataclass(frozen=True)
class Version:
    """One document's new version: its manifest row (status set here) and its chunks."""

    row: DocumentRow
    chunks: Sequence[Chunk]
    replaces: bool  # the manifest knew the document, so Milvus may hold chunks of an older version


def may_hold_chunks(row: DocumentRow | None) -> bool:
    """Whether Milvus may hold chunks of this document: indexed ones, or a change cut short."""
    return row is not None and (row.chunk_count > 0 or row.status in ("pending", "deleting"))


def write_versions(
    manifest: Manifest, store: ChunkStore, versions: Sequence[Version], vectors: Sequence[Sequence[float]]
) -> None:
    """Index new versions, one vector per chunk in order; a document is never missing from search."""
    if not versions:
        return
    manifest.put_many(replace(v.row, status="pending", reason=None) for v in versions)
    store.upsert([c for v in versions for c in v.chunks], [list(vector) for vector in vectors])
    # New chunks are in; only now do older versions' chunks go. A document the manifest did not know
    # has none (rows are written first), so only known documents are looked up: one round trip.
    known = {v.row.doc_id: {c.chunk_id for c in v.chunks} for v in versions if v.replaces}
    if known:
        store.delete_documents_except(known)
    manifest.put_many(replace(v.row, status="indexed", reason=None) for v in versions)


def mark_skipped(
    manifest: Manifest, store: ChunkStore, rows: Sequence[DocumentRow], *, indexed: Iterable[str] = ()
) -> None:
    """Record skipped documents; ``indexed`` (doc ids with chunks of an earlier version) leave Milvus."""
    doomed = sorted(set(indexed))
    if doomed:
        manifest.put_many(replace(row, status="pending", chunk_count=0) for row in rows)
        store.delete_documents(doomed)
    manifest.put_many(replace(row, status="skipped", chunk_count=0) for row in rows)


def remove_documents(manifest: Manifest, store: ChunkStore, doc_ids: Iterable[str]) -> None:
    """Take documents out of Milvus, then out of the manifest."""
    ids = list(doc_ids)
    if not ids:
        return
    manifest.set_status(ids, "deleting")
    store.delete_documents(ids)
    manifest.remove(ids)


__all__ = ["Version", "mark_skipped", "may_hold_chunks", "remove_documents", "write_versions"]
