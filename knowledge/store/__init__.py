"""The only package that speaks to Milvus (pymilvus's MilvusClient, against Milvus Lite for a local
``.db`` path or a Milvus server for an http(s)/tcp URI).

- ``connection``: clients, the Milvus Lite file lock, error translation into ``StoreUnavailable``.
- ``schema``: fields, analyzer, indexes, the embedder recorded on the collection, rows.
- ``filters``: every filter expression, from validated values.
- ``search``: one route's request and ranking, and the hybrid fused in code.
- ``chunk_store``: ``ChunkStore``, the collection's reads and writes.
"""

from knowledge.store.chunk_store import ChunkStore
from knowledge.store.filters import SAFE_VALUE, check_value, render_filter
from knowledge.store.schema import ANALYZER, HNSW_BUILD, HNSW_EF_MIN, STOP_WORDS

__all__ = [
    "ANALYZER",
    "HNSW_BUILD",
    "HNSW_EF_MIN",
    "SAFE_VALUE",
    "STOP_WORDS",
    "ChunkStore",
    "check_value",
    "render_filter",
]
