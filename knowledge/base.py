"""``KnowledgeBase``: the small interface the bot and the commands use (sync, search, status)."""

from __future__ import annotations

import threading
from functools import cached_property
from urllib.parse import urlsplit, urlunsplit

from knowledge.chunking import chunk_id
from knowledge.config import KnowledgeConfig
from knowledge.embedders import Embedder, make_embedder
from knowledge.errors import SyncBusy
from knowledge.manifest import Manifest
from knowledge.passages import build_passages
from knowledge.store import ChunkStore
from knowledge.sync import Progress, Syncer
from knowledge.types import SEARCH_MODES, AccessScope, Chunk, Hit, SearchMode, Status, SyncReport


def redact_uri(uri: str) -> str:
    """A Milvus URI fit to show: never a password or token embedded in it."""
    if "://" not in uri:
        return uri
    parts = urlsplit(uri)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class KnowledgeBase:
    """Opened lazily: building one costs nothing until it is used."""

    def __init__(self, config: KnowledgeConfig, *, embedder: Embedder | None = None):
        self.config = config
        self._embedder = embedder
        self._sync_lock = threading.Lock()
        self._open_lock = threading.Lock()
        self._opened = False

    @cached_property
    def embedder(self) -> Embedder:
        return self._embedder or make_embedder(self.config)

    @cached_property
    def manifest(self) -> Manifest:
        return Manifest(self.config.database_url)

    @cached_property
    def store(self) -> ChunkStore:
        return ChunkStore(self.config, self.embedder.name, self.embedder.dimension)

    def _ensure_open(self) -> ChunkStore:
        with self._open_lock:
            if not self._opened:
                self.store.open()
                self._opened = True
        return self.store

    def sync(self, *, rebuild: bool = False, progress: Progress | None = None) -> SyncReport:
        """Bring the collection in line with the folders. Raises SyncBusy if one is running."""
        if not self._sync_lock.acquire(blocking=False):
            raise SyncBusy("a sync is already running in this process")
        try:
            syncer = Syncer(self.config, self.manifest, self.store, self.embedder)
            report = syncer.run(rebuild=rebuild, progress=progress)
            self._opened = True
            return report
        finally:
            self._sync_lock.release()

    def search(
        self,
        query: str,
        *,
        k: int = 8,
        mode: SearchMode = "hybrid",
        scope: AccessScope | None = None,
        doc_ids: list[str] | None = None,
    ) -> list[Hit]:
        query = (query or "").strip()
        if not query:
            raise ValueError("empty query")
        if mode not in SEARCH_MODES:
            raise ValueError(f"unknown search mode {mode!r}; use one of {', '.join(SEARCH_MODES)}")
        if not 1 <= k <= 100:
            raise ValueError("k must be between 1 and 100")
        store = self._ensure_open()
        scope = scope or AccessScope.workspace()
        vector = self.embedder.embed_query(query) if mode in ("hybrid", "dense") else None
        second = self.config.passages
        hits = store.search(query, vector, k=second.candidates(k), mode=mode, scope=scope, doc_ids=doc_ids)
        if not second.enabled:
            return hits[:k]
        return build_passages(hits, k, second, lambda wanted: self._chunks_at(wanted, scope))

    def _chunks_at(self, wanted: list[tuple[str, int]], scope: AccessScope) -> list[Chunk]:
        """The indexed chunks at these (document, position) pairs, by id: the manifest knows each
        document's indexed version, and chunk ids are deterministic by document, version and position."""
        versions = self.manifest.versions(doc_id for doc_id, _ in wanted)
        ids = [
            chunk_id(doc_id, versions[doc_id][:16], position)
            for doc_id, position in wanted
            if doc_id in versions
        ]
        return self.store.chunks_by_id(ids, scope)

    def status(self) -> Status:
        documents, chunks, by_status = self.manifest.counts()
        return Status(
            collection=self.config.collection,
            milvus_uri=redact_uri(self.config.milvus_uri),
            embedder=self.embedder.name,
            dimension=self.embedder.dimension,
            documents=documents,
            chunks=chunks,
            by_status=by_status,
            last_sync=self.manifest.last_run(),
            skipped=self.manifest.skipped(),
        )

    def ping(self) -> None:
        self._ensure_open().ping()

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
        if "manifest" in self.__dict__:
            self.manifest.close()
        self._opened = False


__all__ = ["KnowledgeBase", "SyncBusy", "redact_uri"]
