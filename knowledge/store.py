"""The chunk store: one Milvus collection holding every chunk, searched by dense vectors, BM25 or both.

This is the only module that speaks to Milvus (pymilvus's MilvusClient, against Milvus Lite for a
local ``.db`` path or a Milvus server for an http(s)/tcp URI). Retries, timeouts and the translation
of Milvus errors into ``StoreUnavailable`` / ``EmbedderMismatch`` live here.

Every search is filtered inside Milvus to the caller's access tokens; filters are built by one
function, ``render_filter``, which validates each value against a strict pattern.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from knowledge.config import KnowledgeConfig
from knowledge.errors import EmbedderMismatch, KnowledgeError, StoreUnavailable
from knowledge.fusion import FUSION_DEPTH, fuse_ranks
from knowledge.types import SEARCH_MODES, AccessScope, Chunk, Hit, SearchMode

log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA_VERSION = "1"
PROP_EMBEDDER = "threadwise.embedder"
PROP_DIMENSION = "threadwise.dimension"
PROP_SCHEMA = "threadwise.schema"

# Milvus VARCHAR limits are bytes (UTF-8), not characters.
ID_BYTES = 64
PATH_BYTES = 4096  # a full filesystem path (PATH_MAX) or URL must fit: citations point at it
LABEL_BYTES = 1024  # title and heading are display text: cut to fit rather than refused
ACCESS_BYTES = 256
TEXT_BYTES = 65535

# HNSW: M=16 / efConstruction=200 is the usual recall-vs-memory point for 256-1536-d text vectors;
# ef at query time is max(64, 2k) - above ~64 recall@10 barely moves while latency keeps growing.
HNSW_BUILD = {"M": 16, "efConstruction": 200}
HNSW_EF_MIN = 64

# BM25 skips these words, in documents and in questions alike: they match nearly every chunk, so they
# add little to a ranking but make every query walk huge posting lists (Milvus Lite scores those in
# Python). Lucene's English list ("_english_") plus pronouns and question words, spelled out so that
# Milvus Lite and a Milvus server analyse text the same way.
_STOP_TEXT = """
    a an and are as at be but by for if in into is it no not of on or such that the their then there
    these they this to was will with
    i me my we our us you your he him his she her its them what which who whom when where why how
    do does did can could should would have has had been am were
"""
STOP_WORDS = _STOP_TEXT.split()
ANALYZER = {"tokenizer": "standard", "filter": ["lowercase", {"type": "stop", "stop_words": STOP_WORDS}]}

UPSERT_ROWS = 500  # rows per upsert request
UPSERT_BYTES = 16 * 1024 * 1024  # and at most this much text+vector per request (gRPC limits)
DELETE_IDS = 1000  # primary keys per delete request
READ_TIMEOUT = 20.0  # bounds pymilvus's own retries too: a dead server fails a call after this
WRITE_TIMEOUT = 60.0

OUTPUT_FIELDS = [
    "chunk_id",
    "doc_id",
    "doc_path",
    "title",
    "heading",
    "page",
    "position",
    "access",
    "url",
    "text",
]

# pymilvus pings every 10 s even when idle; Milvus Lite's in-process gRPC server keeps gRPC's default
# ping policy and once answered GOAWAY "too_many_pings" after a quiet minute (seen in bench_search),
# dropping the connection. Over loopback to our own process a keepalive has nothing to detect anyway.
LITE_GRPC = {"grpc.keepalive_time_ms": 600_000, "grpc.keepalive_permit_without_calls": False}

LITE_LOCKED = (
    "Milvus Lite file {uri} is open in another process (a running `threadwise serve`?). "
    "Stop it, or point MILVUS_URI at a Milvus server."
)

# --- filters ----------------------------------------------------------------------------------------

# Access tokens ("workspace", "channel:C123"), document ids and chunk ids all fit this.
SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.:\-]{1,200}$")
_FILTER_FIELDS = frozenset({"access", "doc_id", "chunk_id"})
_FILTER_OPS = frozenset({"==", "in", "not in"})


def check_value(field: str, value: object) -> str:
    """The value itself, if it may appear in a filter; ValueError naming the field otherwise."""
    if not isinstance(value, str) or not SAFE_VALUE.fullmatch(value):
        raise ValueError(f"invalid {field} {value!r}: expected 1-200 characters of A-Z a-z 0-9 _ . : -")
    return value


def _literal(value: str) -> str:
    # Values are already restricted to SAFE_VALUE; escaping anyway keeps this function safe on its own.
    return json.dumps(value, ensure_ascii=True)


def render_filter(
    conditions: Sequence[tuple[str, str, str | Sequence[str]]], *, templates: bool
) -> tuple[str, dict[str, Any]]:
    """Build a Milvus boolean expression from ``(field, op, value)`` conditions joined by ``and``.

    Every value is validated (``check_value``). With ``templates`` (a Milvus server) the values travel
    as expression-template parameters (``access in {p0}`` + ``{"p0": [...]}``); Milvus Lite does not
    support templates, so there they are rendered as escaped string literals.
    """
    parts: list[str] = []
    params: dict[str, Any] = {}
    for field, op, value in conditions:
        if field not in _FILTER_FIELDS or op not in _FILTER_OPS:
            raise ValueError(f"unsupported filter condition {field} {op}")
        if op == "==":
            if not isinstance(value, str):
                raise ValueError(f"{field} == needs one value")
            rendered: Any = check_value(field, value)
        else:
            if isinstance(value, str):
                raise ValueError(f"{field} {op} needs a list of values")
            rendered = [check_value(field, item) for item in value]
        if templates:
            name = f"p{len(params)}"
            params[name] = rendered
            parts.append(f"{field} {op} {{{name}}}")
        elif op == "==":
            parts.append(f"{field} == {_literal(rendered)}")
        else:
            parts.append(f"{field} {op} [{', '.join(_literal(item) for item in rendered)}]")
    return " and ".join(parts), params


# --- Milvus Lite: one server per file per process ---------------------------------------------------

_lite_lock = threading.Lock()
_lite_users: dict[str, int] = {}  # absolute .db path -> open ChunkStores using it in this process
_write_locks: dict[tuple[str, str], threading.Lock] = {}


def _write_lock(where: str, collection: str) -> threading.Lock:
    # Milvus Lite's engine is single-writer per collection: serialise this process's writes.
    with _lite_lock:
        return _write_locks.setdefault((where, collection), threading.Lock())


def _lite_path_is_locked(path: Path) -> bool:
    """Whether another process holds the Milvus Lite data directory (its advisory flock on LOCK)."""
    try:
        import fcntl
    except ImportError:  # Windows: cannot tell
        return False
    lock_file = path / "LOCK"
    if not lock_file.exists():
        return False
    with open(lock_file, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def _redact(uri: str) -> str:
    """The URI as it can be shown: without user:password."""
    parts = urlsplit(uri)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit(parts._replace(netloc=netloc))
    return uri


def _clip(value: str, limit: int) -> str:
    data = value.encode("utf-8")
    if len(data) <= limit:
        return value
    return data[: limit - 3].decode("utf-8", errors="ignore") + "…"


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
        self._where = config.milvus_uri if config.is_lite else _redact(config.milvus_uri)
        # Inline values on every Milvus (they are whitelisted): Lite and Milvus before 2.5 take no
        # expression templates, and the milvus-lite server rejects them.
        self._templates = False
        self._client = None
        self._lite_path: str | None = None
        self._connect_lock = threading.Lock()
        self._write = _write_lock(
            str(Path(config.milvus_uri).resolve()) if config.is_lite else self._where, self.collection
        )

    # --- lifecycle --------------------------------------------------------------------------------

    def open(self) -> None:
        """Connect, create the collection if missing, and check it was built with this embedder."""
        client = self._connect()
        if not self._call("has_collection", client.has_collection, self.collection, timeout=READ_TIMEOUT):
            self._create(client)
        else:
            self._check_properties(client)
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
                self._release_lite(self._lite_path)
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
        rows = [self._row(chunk, vector) for chunk, vector in zip(chunks, matrix.tolist(), strict=True)]
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
        (cosine similarity for dense, BM25 for bm25, the fused RRF score of ``knowledge.fusion`` for
        hybrid)."""
        if mode not in SEARCH_MODES:
            raise ValueError(f"unknown search mode {mode!r}: use one of {', '.join(SEARCH_MODES)}")
        if not 1 <= k <= 1000:
            raise ValueError(f"k must be between 1 and 1000, got {k}")
        conditions: list[tuple[str, str, str | Sequence[str]]] = [("access", "in", list(scope.tokens))]
        if doc_ids is not None:
            conditions.append(("doc_id", "in", list(doc_ids)))
        expr, params = render_filter(conditions, templates=self._templates)  # validates before anything
        if mode != "bm25":
            if vector is None:
                raise ValueError(f"{mode} search needs a query vector")
            if len(vector) != self.dimension or not all(map(math.isfinite, vector)):
                raise ValueError(f"the query vector must be {self.dimension} finite numbers")
        if not scope.tokens or doc_ids == [] or (mode != "dense" and not text.strip()):
            return []  # nothing visible, or no words to match

        if mode != "hybrid":
            ranked = self._route(mode, text, vector, k, expr, params)
            return [
                Hit(chunk=_chunk(entity), score=score, rank=rank)
                for rank, (score, entity) in enumerate(ranked, start=1)
            ]
        # Hybrid: both routes, fused here (knowledge.fusion) rather than by Milvus's RRFRanker, which
        # lets every candidate vote and so let mid-list agreement outrank either route's best chunk.
        limit = max(k, FUSION_DEPTH)
        routes = [self._route(route, text, vector, limit, expr, params) for route in ("dense", "bm25")]
        entities = {entity["chunk_id"]: entity for ranked in routes for _, entity in ranked}
        fused = fuse_ranks(
            [[entity["chunk_id"] for _, entity in ranked] for ranked in routes],
            k=self.config.rrf_k,
            depth=FUSION_DEPTH,
        )
        return [
            Hit(chunk=_chunk(entities[chunk_id]), score=score, rank=rank)
            for rank, (chunk_id, score) in enumerate(fused[:k], start=1)
        ]

    def _route(
        self,
        mode: SearchMode,
        text: str,
        vector: list[float] | None,
        limit: int,
        expr: str,
        params: dict[str, Any],
    ) -> list[tuple[float, dict[str, Any]]]:
        """One route's best ``limit`` chunks as (score, entity), best first."""
        client = self._require()
        if mode == "dense":
            search_params = {"metric_type": "COSINE", "params": {"ef": max(HNSW_EF_MIN, 2 * limit)}}
        else:
            search_params = {"metric_type": "BM25"}
        result = self._call(
            f"{mode} search",
            client.search,
            self.collection,
            [vector] if mode == "dense" else [text],
            filter=expr,
            filter_params=params,
            anns_field="dense" if mode == "dense" else "sparse",
            search_params=search_params,
            limit=limit,
            output_fields=OUTPUT_FIELDS,
            timeout=READ_TIMEOUT,
        )
        hits = result[0] if result else []
        # Milvus Lite reports BM25 as a negative distance (smaller = better), a server as a positive
        # score: the magnitude is the BM25 score either way.
        scores = [abs(hit["distance"]) if mode == "bm25" else float(hit["distance"]) for hit in hits]
        ranked = sorted(
            zip(scores, range(len(hits)), hits, strict=True), key=lambda item: (-item[0], item[1])
        )
        return [(score, hit["entity"]) for score, _, hit in ranked]

    def count(self, doc_id: str | None = None) -> int:
        """The exact number of chunks, in the whole collection or in one document."""
        client = self._require()
        expr, params = render_filter(
            [("doc_id", "==", doc_id)] if doc_id is not None else [], templates=self._templates
        )
        rows = self._call(
            "count",
            client.query,
            self.collection,
            filter=expr,
            filter_params=params,
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
                self._client = self._new_client()
            return self._client

    def _new_client(self):
        from pymilvus import MilvusClient
        from pymilvus.exceptions import MilvusException

        uri = self.config.milvus_uri
        if self.config.is_lite:
            if not uri.endswith(".db"):
                raise StoreUnavailable(
                    f"MILVUS_URI {uri!r} is neither a Milvus Lite file (ending in .db) "
                    "nor a Milvus server URL (http://, https://, tcp://)"
                )
            path = Path(uri).expanduser()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailable(
                    f"cannot create the folder for Milvus Lite file {uri}: {exc.strerror}"
                ) from None
            if path.is_file():
                raise StoreUnavailable(
                    f"{uri} is a file (an older Milvus Lite's format?); this Milvus Lite keeps a directory "
                    "there. Move it away, or point MILVUS_URI at another path."
                )
            with _lite_lock:
                try:
                    client = MilvusClient(str(path), timeout=self.connect_timeout, grpc_options=LITE_GRPC)
                except MilvusException as exc:
                    if _lite_path_is_locked(path):
                        raise StoreUnavailable(LITE_LOCKED.format(uri=uri)) from None
                    raise StoreUnavailable(f"cannot open Milvus Lite file {uri}: {exc.message}") from None
                self._lite_path = str(path.resolve())
                _lite_users[self._lite_path] = _lite_users.get(self._lite_path, 0) + 1
            return client
        try:
            return MilvusClient(uri, token=self.config.milvus_token or "", timeout=self.connect_timeout)
        except MilvusException as exc:
            if _unreachable(exc):
                wait = f"{self.connect_timeout:g}s"
                raise StoreUnavailable(
                    f"cannot reach Milvus at {self._where} (refused, or no answer in {wait})"
                ) from None
            raise StoreUnavailable(f"cannot connect to Milvus at {self._where}: {_one_line(exc)}") from None

    @staticmethod
    def _release_lite(path: str) -> None:
        # The last store on a Lite file stops its in-process server, which frees the file's lock.
        with _lite_lock:
            _lite_users[path] -= 1
            if _lite_users[path] > 0:
                return
            del _lite_users[path]
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(path)

    def _require(self):
        if self._client is None:
            raise StoreUnavailable("the chunk store is not open (call open() first)")
        return self._client

    def _create(self, client) -> None:
        from pymilvus import DataType, Function, FunctionType

        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=ID_BYTES)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=ID_BYTES)
        schema.add_field("doc_path", DataType.VARCHAR, max_length=PATH_BYTES)
        schema.add_field("title", DataType.VARCHAR, max_length=LABEL_BYTES)
        schema.add_field("heading", DataType.VARCHAR, max_length=LABEL_BYTES)
        schema.add_field("page", DataType.INT64, nullable=True)
        schema.add_field("position", DataType.INT64)
        schema.add_field("access", DataType.VARCHAR, max_length=ACCESS_BYTES)
        schema.add_field("url", DataType.VARCHAR, max_length=PATH_BYTES)
        schema.add_field(
            "text", DataType.VARCHAR, max_length=TEXT_BYTES, enable_analyzer=True, analyzer_params=ANALYZER
        )
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=self.dimension)
        schema.add_function(
            Function(
                name="text_bm25",
                function_type=FunctionType.BM25,
                input_field_names=["text"],
                output_field_names=["sparse"],
            )
        )
        index = client.prepare_index_params()
        index.add_index("dense", index_type="HNSW", metric_type="COSINE", params=HNSW_BUILD)
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        index.add_index("doc_id", index_type="INVERTED")
        index.add_index("access", index_type="INVERTED")
        properties = {
            PROP_EMBEDDER: self.embedder_name,
            PROP_DIMENSION: str(self.dimension),
            PROP_SCHEMA: SCHEMA_VERSION,
        }
        with self._write:
            self._call(
                "create_collection",
                client.create_collection,
                self.collection,
                schema=schema,
                properties=properties,
                consistency_level="Strong",  # sync reads its own writes (chunk_ids after upsert)
                timeout=WRITE_TIMEOUT,
            )
            # sync=False: the collection is empty, so there is nothing to wait for (pymilvus would
            # otherwise poll each index for at least half a second).
            self._call(
                "create_index", client.create_index, self.collection, index, sync=False, timeout=WRITE_TIMEOUT
            )
        log.info(
            "created Milvus collection %r for %s (%d-d)", self.collection, self.embedder_name, self.dimension
        )

    def _check_properties(self, client) -> None:
        info = self._call(
            "describe_collection", client.describe_collection, self.collection, timeout=READ_TIMEOUT
        )
        props = info.get("properties") or {}
        built_with, built_dim = props.get(PROP_EMBEDDER), props.get(PROP_DIMENSION)
        if built_with is None or props.get(PROP_SCHEMA) != SCHEMA_VERSION:
            what = "was not created by threadwise" if built_with is None else "has an older threadwise layout"
            raise EmbedderMismatch(
                f"collection {self.collection!r} {what}. Rebuild it: threadwise sync --rebuild "
                "(or set MILVUS_COLLECTION to another name)"
            )
        if built_with != self.embedder_name or built_dim != str(self.dimension):
            raise EmbedderMismatch(
                f"collection {self.collection!r} was built with {built_with} ({built_dim}-d); "
                f"THREADWISE_EMBEDDER is {self.embedder_name} ({self.dimension}-d). "
                "Rebuild it: threadwise sync --rebuild"
            )

    def _row(self, chunk: Chunk, vector: list[float]) -> dict[str, Any]:
        check_value("chunk_id", chunk.chunk_id)
        check_value("doc_id", chunk.doc_id)
        check_value("access token", chunk.access)
        if len(chunk.chunk_id) > ID_BYTES or len(chunk.doc_id) > ID_BYTES:
            raise ValueError(
                f"chunk and document ids must be at most {ID_BYTES} characters ({chunk.doc_path})"
            )
        for name, value in (("doc_path", chunk.doc_path), ("url", chunk.url)):
            if len(value.encode("utf-8")) > PATH_BYTES:
                raise ValueError(f"{name} longer than {PATH_BYTES} bytes: {value[:80]}…")
        if len(chunk.text.encode("utf-8")) > TEXT_BYTES:
            raise ValueError(
                f"chunk {chunk.position} of {chunk.doc_path} is longer than {TEXT_BYTES} bytes; "
                "use a smaller chunk size"
            )
        return {
            "chunk_id": chunk.chunk_id,
            "doc_id": chunk.doc_id,
            "doc_path": chunk.doc_path,
            "title": _clip(chunk.title, LABEL_BYTES),
            "heading": _clip(chunk.heading, LABEL_BYTES),
            "page": chunk.page,
            "position": chunk.position,
            "access": chunk.access,
            "url": chunk.url,
            "text": chunk.text,
            "dense": vector,
        }

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

    def _rows(self, conditions: Sequence[tuple[str, str, str | Sequence[str]]]) -> list[tuple[str, str]]:
        """(chunk_id, doc_id) of every chunk matching the conditions."""
        client = self._require()
        expr, params = render_filter(conditions, templates=self._templates)
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
            expr_params=params,
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
        except _milvus_errors() as exc:
            raise self._translate(what, exc) from None

    def _retrying(self, what: str, fn: Callable[[], T], attempts: int = 3) -> T:
        """Writes are idempotent (upsert by id, delete by id), so a transient failure is tried again.

        pymilvus itself retries UNAVAILABLE and rate limits until each call's timeout; this adds what
        it does not: a deadline exceeded on a busy server, or an error the server marks retriable.
        """
        for attempt in range(1, attempts + 1):
            try:
                return fn()
            except _milvus_errors() as exc:
                if attempt == attempts or not _transient(exc):
                    raise self._translate(what, exc) from None
                log.warning(
                    "Milvus %s failed (%s); attempt %d of %d", what, _one_line(exc), attempt, attempts
                )
                time.sleep(2**attempt)
        raise AssertionError("unreachable")

    def _translate(self, what: str, exc: Exception) -> KnowledgeError:
        if _unreachable(exc):
            return StoreUnavailable(f"Milvus at {self._where} did not answer ({what}): {_one_line(exc)}")
        return KnowledgeError(f"Milvus {what} failed: {_one_line(exc)}")


def _milvus_errors() -> tuple[type[Exception], ...]:
    import grpc
    from pymilvus.exceptions import MilvusException

    return (MilvusException, grpc.RpcError, grpc.FutureTimeoutError)


def _code(exc: Exception) -> object:
    code = getattr(exc, "code", None)
    return code() if callable(code) else code


def _unreachable(exc: Exception) -> bool:
    import grpc
    from pymilvus.exceptions import MilvusUnavailableException

    return (
        isinstance(exc, (MilvusUnavailableException, grpc.FutureTimeoutError))
        or _code(exc)
        in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, 2)  # 2: ConnectFailed
        or "Fail connecting to server" in _one_line(exc)
    )


def _transient(exc: Exception) -> bool:
    import grpc

    return _code(exc) == grpc.StatusCode.DEADLINE_EXCEEDED or bool(getattr(exc, "retriable", False))


def _one_line(exc: Exception) -> str:
    code = _code(exc)
    message = getattr(exc, "message", None) or (code.name if hasattr(code, "name") else str(exc))
    message = message or type(exc).__name__
    return " ".join(str(message).split())[:300]


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


def _chunk(entity: dict[str, Any]) -> Chunk:
    page = entity.get("page")
    return Chunk(
        chunk_id=entity["chunk_id"],
        doc_id=entity["doc_id"],
        doc_path=entity["doc_path"],
        title=entity["title"],
        heading=entity["heading"],
        page=None if page is None or page < 0 else int(page),
        position=int(entity["position"]),
        text=entity["text"],
        access=entity["access"],
        url=entity["url"],
    )
