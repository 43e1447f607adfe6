"""``KnowledgeBase``: the small interface the bot and the commands use (sync, search, status)."""

from __future__ import annotations

import logging
import threading
from urllib.parse import urlsplit, urlunsplit

from knowledge.chunking import chunk_id
from knowledge.config import KnowledgeConfig
from knowledge.embedders import Embedder, make_embedder
from knowledge.errors import SyncBusy
from knowledge.manifest import Manifest, owner_id
from knowledge.passages import build_passages
from knowledge.store import ChunkStore
from knowledge.sync import Progress, Syncer
from knowledge.types import SEARCH_MODES, AccessScope, Chunk, Hit, SearchMode, Status, SyncReport

log = logging.getLogger(__name__)

SHUTDOWN_WAIT = 8.0  # seconds close() waits for a running sync's safe point: a replica stops within 15 s


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
    """Opened lazily: building one costs nothing until it is used. Thread-safe."""

    def __init__(self, config: KnowledgeConfig, *, embedder: Embedder | None = None):
        self.config = config
        self._embedder = embedder
        self._manifest: Manifest | None = None
        self._store: ChunkStore | None = None
        self._build_lock = threading.RLock()  # re-entrant: the store is built from the embedder
        self._open_lock = threading.Lock()
        self._opened = False
        self._sync_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._closing = False
        self._stop: threading.Event | None = None  # the running sync's: set, it ends at a safe point
        self._owner = owner_id()  # one per knowledge base: its own stale sync lock is its own to retake

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            with self._build_lock:
                if self._embedder is None:
                    self._embedder = make_embedder(self.config)
        return self._embedder

    @property
    def manifest(self) -> Manifest:
        if self._manifest is None:
            with self._build_lock:
                if self._manifest is None:
                    self._manifest = Manifest(self.config.database_url)
        return self._manifest

    @property
    def store(self) -> ChunkStore:
        """The chunk store, built but not necessarily open (``open_store``)."""
        if self._store is None:
            with self._build_lock:
                if self._store is None:
                    self._store = ChunkStore(self.config, self.embedder.name, self.embedder.dimension)
        return self._store

    def open_store(self) -> ChunkStore:
        """The chunk store, opened once (connected, collection created or checked)."""
        with self._open_lock:
            if not self._opened:
                self.store.open()
                self._opened = True
        return self.store

    def sync(
        self,
        *,
        rebuild: bool = False,
        allow_mass_delete: bool | None = None,
        progress: Progress | None = None,
    ) -> SyncReport:
        """Bring the collection in line with the folders. Raises SyncBusy if one is running.

        ``allow_mass_delete`` (default: the config's) lets this sync remove more than half of a
        folder's documents (``knowledge.mass_delete``).
        """
        if not self._sync_lock.acquire(blocking=False):
            raise SyncBusy("a sync is already running in this process")
        try:
            with self._state_lock:
                if self._closing:
                    raise SyncBusy("the knowledge base is closing")
                self._stop = stop = threading.Event()
            syncer = Syncer(
                self.config, self.manifest, self.store, self.embedder, owner=self._owner, stop=stop
            )
            allow = self.config.allow_mass_delete if allow_mass_delete is None else allow_mass_delete
            report = syncer.run(rebuild=rebuild, allow_mass_delete=allow, progress=progress)
            with self._open_lock:
                self._opened = True  # the sync opened the store
            return report
        finally:
            with self._state_lock:
                self._stop = None
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
        store = self.open_store()
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

    def refused_deletions(self) -> list[str]:
        """What the last finished sync refused to remove (``knowledge.mass_delete``): empty if nothing."""
        last = self.manifest.last_run()
        return list((last or {}).get("refused_deletions") or [])

    def ping(self) -> None:
        self.open_store().ping()

    def close(self, *, wait: float = SHUTDOWN_WAIT) -> None:
        """Close the store and the manifest; a running sync is first asked to stop at a safe point and
        waited for up to ``wait`` seconds (past that the store closes under it, and the next sync redoes
        what it left pending). The knowledge base opens again lazily if used afterwards."""
        with self._state_lock:
            self._closing = True
            if self._stop is not None:
                self._stop.set()
        acquired = self._sync_lock.acquire(timeout=wait)
        if not acquired:
            log.warning("a sync is still running after %gs; closing the knowledge base under it", wait)
        try:
            with self._open_lock:
                if self._store is not None:
                    self._store.close()
                if self._manifest is not None:
                    self._manifest.close()
                self._opened = False
        finally:
            if acquired:
                self._sync_lock.release()
            with self._state_lock:
                self._closing = False


__all__ = ["KnowledgeBase", "SyncBusy", "redact_uri"]
