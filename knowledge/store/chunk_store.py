"""The chunk store: one Milvus collection holding every chunk, searched by dense vectors, BM25 or both."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from knowledge.config import KnowledgeConfig
from knowledge.errors import StoreUnavailable
from knowledge.store import search as searching
from knowledge.store.connection import (
    is_transient,
    milvus_errors,
    one_line,
    open_client,
    redact_uri,
    release_lite,
    translate,
    write_lock,
)
from knowledge.store.filters import check_value, render_filter
from knowledge.store.schema import (
    OUTPUT_FIELDS,
    check_properties,
    collection_indexes,
    collection_properties,
    collection_schema,
    to_chunk,
    to_row,
)
from knowledge.types import AccessScope, Chunk, Hit, SearchMode

log = logging.getLogger(__name__)
T = TypeVar("T")

UPSERT_ROWS = 500  # rows per upsert request
UPSERT_BYTES = 16 * 1024 * 1024  # and at most this much text+vector per request (gRPC limits)
DELETE_IDS = 1000  # primary keys per delete request
READ_TIMEOUT = 20.0  # bounds pymilvus's own retries too: a dead server fails a call after this
WRITE_TIMEOUT = 60.0
RETRY_WAIT = 2.0  # seconds before a write's second attempt, doubling for the next (tenacity)
RETRY_WAIT_MAX = 30.0

Conditions = Sequence[tuple[str, str, str | Sequence[str]]]


class ChunkStore:
    """All chunks of all documents, in one Milvus collection. Thread-safe; open() before use."""

    def __init__(
        self, config: KnowledgeConfig, embedder_name: str, dimension: int, *, connect_timeout: float = 10.0
    ):
        self.config = config
        self.collection = config.collection
        self.embedder_name = embedder_name
        self.dimension = dimension
        self.connect_timeout = connect_timeout
        self._where = config.milvus_uri if config.is_lite else redact_uri(config.milvus_uri)
        self._client = None
        self._lite_path: str | None = None
        self._connect_lock = threading.Lock()
        self._open_lock = threading.Lock()  # two first opens (a sync, a search) must not both create
        self._write = write_lock(
            str(Path(config.milvus_uri).resolve()) if config.is_lite else self._where, self.collection
        )

    # --- lifecycle --------------------------------------------------------------------------------

    def open(self) -> None:
        """Connect, create the collection if missing, and check it was built with this embedder."""
        client = self._connect()
        with self._open_lock:
            if not self._call("has_collection", client.has_collection, self.collection, timeout=READ_TIMEOUT):
                self._create(client)
            else:
                info = self._call(
                    "describe_collection", client.describe_collection, self.collection, timeout=READ_TIMEOUT
                )
                check_properties(
                    self.collection, info.get("properties") or {}, self.embedder_name, self.dimension
                )
            self._call("load_collection", client.load_collection, self.collection, timeout=WRITE_TIMEOUT)

    def drop(self) -> None:
        """Drop the collection (``sync --rebuild``); ``open()`` then creates it anew."""
        client = self._connect()
        with self._write:
            if self._call("has_collection", client.has_collection, self.collection, timeout=READ_TIMEOUT):
                self._call("drop_collection", client.drop_collection, self.collection, timeout=WRITE_TIMEOUT)

    def ping(self) -> None:
        """Raise StoreUnavailable unless Milvus answers right now."""
        if self._client is None:
            raise StoreUnavailable(f"not connected to Milvus at {self._where}")
        self._call("ping", self._client.get_server_version, timeout=5.0)

    def close(self) -> None:
        with self._connect_lock:
            client, self._client = self._client, None
            if client is not None:
                try:
                    client.close()
                except Exception:  # closing a dead connection must not hide the caller's own error
                    log.debug("closing the Milvus client failed", exc_info=True)
            if self._lite_path is not None:
                release_lite(self._lite_path)
                self._lite_path = None

    def __enter__(self) -> ChunkStore:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writes -----------------------------------------------------------------------------------

    def upsert(self, chunks: list[Chunk], vectors: list[list[float]]) -> None:
        """Insert or replace chunks by chunk_id, in batched requests. Validates everything first."""
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        if not chunks:
            return
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.dimension:
            raise ValueError(
                f"vectors must be {self.dimension}-d (this collection's embedder is {self.embedder_name})"
            )
        if not np.isfinite(matrix).all():
            raise ValueError("vectors contain NaN or infinite values")
        rows = [to_row(chunk, vector) for chunk, vector in zip(chunks, matrix.tolist(), strict=True)]
        client = self._require()
        with self._write:
            for batch in _batches(rows):
                self._retrying(
                    "upsert", lambda batch=batch: client.upsert(self.collection, batch, timeout=WRITE_TIMEOUT)
                )
            self._settle()

    def delete_document(self, doc_id: str, keep: Iterable[str] = ()) -> int:
        """Remove a document's chunks except those in ``keep``; returns how many were removed.

        Sync writes a new version first and then calls this with the new chunk ids, so a document is
        never missing from search while it is being replaced.
        """
        return self.delete_documents_except({doc_id: keep})

    def delete_documents(self, doc_ids: Iterable[str]) -> int:
        return self.delete_documents_except({doc_id: () for doc_id in doc_ids})

    def delete_documents_except(self, keep: Mapping[str, Iterable[str]]) -> int:
        """For each document, remove its chunks except the listed ids; returns how many were removed.

        ``delete_document`` for many documents at once, with one lookup per 100 documents: on Milvus
        Lite every lookup walks the whole collection in Python (~0.8 s at 100,000 chunks).
        """
        wanted: dict[str, set[str]] = {}
        for doc_id, ids in keep.items():
            if isinstance(ids, str):
                raise ValueError(f"chunk ids to keep for {doc_id!r} must be a collection, not one string")
            wanted[check_value("doc_id", doc_id)] = {check_value("chunk_id", chunk_id) for chunk_id in ids}
        docs = sorted(wanted)
        with self._write:
            doomed: list[str] = []
            for start in range(0, len(docs), 100):
                for chunk_id, doc_id in self._rows([("doc_id", "in", docs[start : start + 100])]):
                    if chunk_id not in wanted[doc_id]:
                        doomed.append(chunk_id)
            return self._delete_ids(doomed)

    # --- reads ------------------------------------------------------------------------------------

    def search(
        self,
        text: str,
        vector: list[float] | None,
        *,
        k: int = 8,
        mode: SearchMode = "hybrid",
        scope: AccessScope,
        doc_ids: list[str] | None = None,
    ) -> list[Hit]:
        """The k best chunks the scope may see, best first. Scores: higher is better in every mode
        (cosine similarity for dense, BM25 for bm25, the fused score of ``knowledge.fusion`` for
        hybrid)."""
        conditions: list[tuple[str, str, str | Sequence[str]]] = [("access", "in", list(scope.tokens))]
        if scope.folders is not None:  # a channel's settings: inside the filter, never after the search
            conditions.append(("folder", "in", list(scope.folders)))
        if scope.exclude_docs:
            conditions.append(("doc_id", "not in", list(scope.exclude_docs)))
        if doc_ids is not None:
            conditions.append(("doc_id", "in", list(doc_ids)))
        expr = render_filter(conditions)  # validates before anything
        searching.check_request(text, vector, k=k, mode=mode, dimension=self.dimension)
        if not scope.tokens or doc_ids == [] or (mode != "dense" and not text.strip()):
            return []  # nothing visible, or no words to match
        limit = searching.route_limit(k, mode, self.config.fusion)
        if mode != "hybrid":
            return searching.hits(self._route(mode, text, vector, limit, expr))
        dense, lexical = (self._route(route, text, vector, limit, expr) for route in ("dense", "bm25"))
        config = self.config
        return searching.fused_hits(
            dense, lexical, k=k, fusion=config.fusion, weight=config.fusion_weight, rrf_k=config.rrf_k
        )

    def _route(
        self,
        mode: SearchMode,
        text: str,
        vector: list[float] | None,
        limit: int,
        expr: str,
    ) -> searching.Ranked:
        """One route's best ``limit`` chunks as (score, entity), best first."""
        client = self._require()
        request = searching.route_request(mode, text, vector, limit)
        result = self._call(
            f"{mode} search",
            client.search,
            self.collection,
            filter=expr,
            limit=limit,
            output_fields=OUTPUT_FIELDS,
            timeout=READ_TIMEOUT,
            **request,
        )
        return searching.ranked_route(mode, result[0] if result else [])

    def chunks_by_id(self, chunk_ids: Sequence[str], scope: AccessScope) -> list[Chunk]:
        """The chunks with these ids that the scope may see; ids not in the collection are left out.

        A lookup by primary key alone, with the access check on the rows returned: Milvus Lite answers
        it in about a millisecond, where any other filter walks every row in Python.
        """
        ids = list(dict.fromkeys(check_value("chunk_id", chunk_id) for chunk_id in chunk_ids))
        if not ids or not scope.tokens:
            return []
        client = self._require()
        rows = self._call(
            "get", client.get, self.collection, ids=ids, output_fields=OUTPUT_FIELDS, timeout=READ_TIMEOUT
        )
        allowed = set(scope.tokens)
        return [to_chunk(row) for row in rows if row["access"] in allowed]

    def count(self, doc_id: str | None = None) -> int:
        """The exact number of chunks, in the whole collection or in one document."""
        client = self._require()
        expr = render_filter([("doc_id", "==", doc_id)] if doc_id is not None else [])
        rows = self._call(
            "count",
            client.query,
            self.collection,
            filter=expr,
            output_fields=["count(*)"],
            timeout=READ_TIMEOUT,
        )
        return int(rows[0]["count(*)"]) if rows else 0

    def chunk_ids(self, doc_id: str) -> set[str]:
        return {chunk_id for chunk_id, _ in self._rows([("doc_id", "==", doc_id)])}

    # --- internals --------------------------------------------------------------------------------

    def _connect(self):
        with self._connect_lock:
            if self._client is None:
                self._client, self._lite_path = open_client(self.config, self._where, self.connect_timeout)
            return self._client

    def _require(self):
        if self._client is None:
            raise StoreUnavailable("the chunk store is not open (call open() first)")
        return self._client

    def _create(self, client) -> None:
        with self._write:
            self._call(
                "create_collection",
                client.create_collection,
                self.collection,
                schema=collection_schema(client, self.dimension),
                properties=collection_properties(self.embedder_name, self.dimension),
                consistency_level="Strong",  # sync reads its own writes (chunk_ids after upsert)
                timeout=WRITE_TIMEOUT,
            )
            # sync=False: the collection is empty, so there is nothing to wait for (pymilvus would
            # otherwise poll each index for at least half a second).
            self._call(
                "create_index",
                client.create_index,
                self.collection,
                collection_indexes(client),
                sync=False,
                timeout=WRITE_TIMEOUT,
            )
        log.info(
            "created Milvus collection %r for %s (%d-d)", self.collection, self.embedder_name, self.dimension
        )

    def _settle(self) -> None:
        """On Milvus Lite, move fresh writes out of the memtable into indexed segments.

        Milvus Lite keeps up to 128 MB of writes in a memtable that every search scans row by row in
        Python (~100 ms per 5,000 rows); flushed segments are searched through their indexes. A Milvus
        server seals and indexes growing segments itself, and frequent flushes there only make small
        segments, so this is Lite only.
        """
        if self.config.is_lite:
            client = self._require()
            self._retrying("flush", lambda: client.flush(self.collection, timeout=WRITE_TIMEOUT))

    def _rows(self, conditions: Conditions) -> list[tuple[str, str]]:
        """(chunk_id, doc_id) of every chunk matching the conditions."""
        client = self._require()
        expr = render_filter(conditions)
        if self.config.is_lite:  # returns every match at once (and has no MVCC timestamp for an iterator)
            rows = self._call(
                "query",
                client.query,
                self.collection,
                filter=expr,
                output_fields=["chunk_id", "doc_id"],
                timeout=READ_TIMEOUT,
            )
            return [(row["chunk_id"], row["doc_id"]) for row in rows]
        # A server answers one query with at most 16384 rows: page through with an iterator.
        iterator = self._call(
            "query",
            client.query_iterator,
            self.collection,
            batch_size=1000,
            filter=expr,
            output_fields=["chunk_id", "doc_id"],
            timeout=READ_TIMEOUT,
        )
        found: list[tuple[str, str]] = []
        try:
            while page := self._call("query", iterator.next):
                found.extend((row["chunk_id"], row["doc_id"]) for row in page)
        finally:
            iterator.close()
        return found

    def _delete_ids(self, ids: list[str]) -> int:
        client = self._require()
        for start in range(0, len(ids), DELETE_IDS):
            batch = ids[start : start + DELETE_IDS]
            self._retrying(
                "delete", lambda batch=batch: client.delete(self.collection, ids=batch, timeout=WRITE_TIMEOUT)
            )
        return len(ids)

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one Milvus call, turning its errors into the knowledge layer's."""
        try:
            return fn(*args, **kwargs)
        except milvus_errors() as exc:
            raise translate(self._where, what, exc) from None

    def _retrying(self, what: str, fn: Callable[[], T], attempts: int = 3) -> T:
        """Writes are idempotent (upsert by id, delete by id), so a transient failure is tried again.

        pymilvus itself retries UNAVAILABLE and rate limits until each call's timeout; this adds what
        it does not: a deadline exceeded on a busy server, or an error the server marks retriable.
        """
        errors = milvus_errors()

        def note(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            shown = one_line(exc) if isinstance(exc, Exception) else "?"
            log.warning(
                "Milvus %s failed (%s); attempt %d of %d", what, shown, state.attempt_number, attempts
            )

        retrying = Retrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=RETRY_WAIT, max=RETRY_WAIT_MAX),
            retry=retry_if_exception(lambda exc: isinstance(exc, errors) and is_transient(exc)),
            before_sleep=note,
            reraise=True,
        )
        try:
            return retrying(fn)
        except errors as exc:
            raise translate(self._where, what, exc) from None


def _batches(rows: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    size = 0
    for row in rows:
        row_size = len(row["text"]) * 4 + len(row["dense"]) * 4 + 2048
        if batch and (len(batch) >= UPSERT_ROWS or size + row_size > UPSERT_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(row)
        size += row_size
    if batch:
        yield batch
