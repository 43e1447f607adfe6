"""How a search is asked of Milvus and how its answers become ranked hits: one route at a time
(dense vectors or BM25), and the hybrid of both fused in code (``knowledge.fusion``)."""

from __future__ import annotations

import math
from typing import Any

from knowledge.fusion import FUSION_DEPTH, SCORE_DEPTH, fuse_ranks, fuse_scores
from knowledge.store import schema
from knowledge.store.schema import to_chunk
from knowledge.types import FUSIONS, SEARCH_MODES, Fusion, Hit, SearchMode

Ranked = list[tuple[float, dict[str, Any]]]  # (score, entity), best first


def check_request(text: str, vector: list[float] | None, *, k: int, mode: SearchMode, dimension: int) -> None:
    """ValueError for a search that cannot be asked."""
    if mode not in SEARCH_MODES:
        raise ValueError(f"unknown search mode {mode!r}: use one of {', '.join(SEARCH_MODES)}")
    if not 1 <= k <= 1000:
        raise ValueError(f"k must be between 1 and 1000, got {k}")
    if mode != "bm25":
        if vector is None:
            raise ValueError(f"{mode} search needs a query vector")
        if len(vector) != dimension or not all(map(math.isfinite, vector)):
            raise ValueError(f"the query vector must be {dimension} finite numbers")


def route_request(mode: SearchMode, text: str, vector: list[float] | None, limit: int) -> dict[str, Any]:
    """The arguments of ``MilvusClient.search`` for one route (besides collection, filter, limit)."""
    if mode == "dense":
        ef = max(schema.HNSW_EF_MIN, 2 * limit)
        return {
            "data": [vector],
            "anns_field": "dense",
            "search_params": {"metric_type": "COSINE", "params": {"ef": ef}},
        }
    return {"data": [text], "anns_field": "sparse", "search_params": {"metric_type": "BM25"}}


def ranked_route(mode: SearchMode, hits: list[dict[str, Any]]) -> Ranked:
    """One route's hits as (score, entity), best first, higher is better."""
    # Milvus Lite reports BM25 as a negative distance (smaller = better), a server as a positive
    # score: the magnitude is the BM25 score either way.
    scores = [abs(hit["distance"]) if mode == "bm25" else float(hit["distance"]) for hit in hits]
    ranked = sorted(zip(scores, range(len(hits)), hits, strict=True), key=lambda item: (-item[0], item[1]))
    return [(score, hit["entity"]) for score, _, hit in ranked]


def route_limit(k: int, mode: SearchMode, fusion: Fusion) -> int:
    """How many candidates each route returns: deeper for hybrid, whose fusion reads the first
    SCORE_DEPTH hits (score) or FUSION_DEPTH ranks (rrf) of each route."""
    if mode != "hybrid":
        return k
    return max(k, SCORE_DEPTH if fusion == "score" else FUSION_DEPTH)


def hits(ranked: Ranked) -> list[Hit]:
    return [
        Hit(chunk=to_chunk(entity), score=score, rank=rank) for rank, (score, entity) in enumerate(ranked, 1)
    ]


def fused_hits(
    dense: Ranked, lexical: Ranked, *, k: int, fusion: Fusion, weight: float, rrf_k: int
) -> list[Hit]:
    """The two routes fused here rather than by Milvus's rankers: its RRFRanker lets every candidate
    vote, so mid-list agreement outranks either route's best chunk, and its WeightedRanker squashes
    cosine and BM25 into fixed ranges that ignore how a question's own scores spread (both measured
    below ``knowledge.fusion``'s, bench/README.md)."""
    if fusion not in FUSIONS:
        raise ValueError(f"unknown fusion {fusion!r}: use one of {', '.join(FUSIONS)}")
    entities = {entity["chunk_id"]: entity for ranked in (dense, lexical) for _, entity in ranked}
    if fusion == "score":
        fused = fuse_scores(
            [(entity["chunk_id"], score) for score, entity in dense],
            [(entity["chunk_id"], score) for score, entity in lexical],
            weight=weight,
        )
    else:
        fused = fuse_ranks(
            [[entity["chunk_id"] for _, entity in ranked] for ranked in (dense, lexical)],
            k=rrf_k,
            depth=FUSION_DEPTH,
        )
    return [
        Hit(chunk=to_chunk(entities[chunk_id]), score=score, rank=rank)
        for rank, (chunk_id, score) in enumerate(fused[:k], start=1)
    ]
