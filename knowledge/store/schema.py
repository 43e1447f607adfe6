"""The collection's layout: fields, analyzer, indexes, the properties that record its embedder, and
the conversion between chunks and Milvus rows."""

from __future__ import annotations

from typing import Any

from knowledge.errors import EmbedderMismatch
from knowledge.store.filters import check_value
from knowledge.types import Chunk

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


def collection_schema(client: Any, dimension: int) -> Any:
    """Fields, the BM25 function over ``text``, and the dense vector of ``dimension``."""
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
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dimension)
    schema.add_function(
        Function(
            name="text_bm25",
            function_type=FunctionType.BM25,
            input_field_names=["text"],
            output_field_names=["sparse"],
        )
    )
    return schema


def collection_indexes(client: Any) -> Any:
    index = client.prepare_index_params()
    index.add_index("dense", index_type="HNSW", metric_type="COSINE", params=HNSW_BUILD)
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    index.add_index("doc_id", index_type="INVERTED")
    index.add_index("access", index_type="INVERTED")
    return index


def collection_properties(embedder_name: str, dimension: int) -> dict[str, str]:
    return {PROP_EMBEDDER: embedder_name, PROP_DIMENSION: str(dimension), PROP_SCHEMA: SCHEMA_VERSION}


def check_properties(collection: str, props: dict[str, Any], embedder_name: str, dimension: int) -> None:
    """EmbedderMismatch unless the collection was built by this layout with this embedder."""
    built_with, built_dim = props.get(PROP_EMBEDDER), props.get(PROP_DIMENSION)
    if built_with is None or props.get(PROP_SCHEMA) != SCHEMA_VERSION:
        what = "was not created by threadwise" if built_with is None else "has an older threadwise layout"
        raise EmbedderMismatch(
            f"collection {collection!r} {what}. Rebuild it: threadwise sync --rebuild "
            "(or set MILVUS_COLLECTION to another name)"
        )
    if built_with != embedder_name or built_dim != str(dimension):
        raise EmbedderMismatch(
            f"collection {collection!r} was built with {built_with} ({built_dim}-d); "
            f"THREADWISE_EMBEDDER is {embedder_name} ({dimension}-d). "
            "Rebuild it: threadwise sync --rebuild"
        )


def clip(value: str, limit: int) -> str:
    data = value.encode("utf-8")
    if len(data) <= limit:
        return value
    return data[: limit - 3].decode("utf-8", errors="ignore") + "…"


def to_row(chunk: Chunk, vector: list[float]) -> dict[str, Any]:
    """The Milvus row of a chunk, validated: ValueError names what does not fit."""
    check_value("chunk_id", chunk.chunk_id)
    check_value("doc_id", chunk.doc_id)
    check_value("access token", chunk.access)
    if len(chunk.chunk_id) > ID_BYTES or len(chunk.doc_id) > ID_BYTES:
        raise ValueError(f"chunk and document ids must be at most {ID_BYTES} characters ({chunk.doc_path})")
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
        "title": clip(chunk.title, LABEL_BYTES),
        "heading": clip(chunk.heading, LABEL_BYTES),
        "page": chunk.page,
        "position": chunk.position,
        "access": chunk.access,
        "url": chunk.url,
        "text": chunk.text,
        "dense": vector,
    }


def to_chunk(entity: dict[str, Any]) -> Chunk:
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
