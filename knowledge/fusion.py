"""How the dense and BM25 routes become one ranking: by score (the default) or by reciprocal rank.

**Score fusion** (``fuse_scores``) keeps the dense route's cosine similarity as the base and adds the
BM25 route's score, min-max normalised over its first ``SCORE_DEPTH`` hits, times a weight: a chunk the
embedding model is sure of stays ahead unless BM25 is sure of another, and a keyword match lifts a chunk
by how strongly it matches, not just by where it ranks. Measured beside rank fusions (depths, weights)
and other score fusions (min-max and z-score of both routes, Milvus's WeightedRanker, per-question
weights) on the handbook and three public collections (bench/README.md, "Fusion by score"), it puts
hybrid above the outside references on two of the three (MEDLINE, CISI) with the handbook's facts kept.

**Reciprocal rank fusion** (``fuse_ranks``, ``THREADWISE_FUSION=rrf``) counts only the head of each
ranking.

Plain RRF scores a chunk ``Σ 1/(k + rank)`` over every route that returned it. With the usual k = 60
and 50+ candidates per route, rank 1 and rank 50 differ by less than a factor of two, so a chunk both
routes place mid-list outranks the one chunk a route is sure of: on the sample handbook that made
hybrid worse than dense alone (bench/README.md, "Retrieval quality"). Here only a route's first
``depth`` ranks vote; a chunk no route ranks that high scores its best route's ``1/(k + rank)`` alone,
which is always below any voted chunk, so it can only fill the list after them. The result is the same
for any number of results asked for, and barely depends on k (measured for k = 5...60).
"""

from __future__ import annotations

from collections.abc import Sequence

# Hits per route that score fusion reads; 20-100 measured, 30 best over the four collections.
SCORE_DEPTH = 30
# The BM25 route's weight, in cosine units: MiniLM's cosines of a question's first 30 chunks span
# 0.13-0.29 (medians on the four collections), so the best keyword match moves a chunk up about half
# the dense list. Another embedder spreads its cosines differently: measure before reusing 0.12.
SCORE_WEIGHT = 0.12

# Ranks per route that vote. 10 was chosen with the static embedder (5 and 10 within one question);
# with the transformer embedder 5 puts the fact in the first 6 chunks for every keyword question
# (29/29 against 28/29) and 1 more question overall, at the same nDCG@10 (bench/README.md, "Passages").
FUSION_DEPTH = 5


def fuse_ranks(
    routes: Sequence[Sequence[str]], *, k: int = 60, depth: int = FUSION_DEPTH
) -> list[tuple[str, float]]:
    """Ids from several best-first rankings, fused best first, with their scores.

    A chunk first in both of two routes scores ``2 / (k + 1)``, as in plain RRF. Ties keep the order
    of the best rank reached, then of the routes as given.
    """
    if k < 0 or depth < 1:
        raise ValueError(f"fusion needs k >= 0 and depth >= 1 (got k={k}, depth={depth})")
    voted: dict[str, float] = {}
    best: dict[str, int] = {}  # id -> best 1-based rank in any route
    for route in routes:
        for rank, item in enumerate(route, start=1):
            if rank <= depth:
                voted[item] = voted.get(item, 0.0) + 1.0 / (k + rank)
            best[item] = min(best.get(item, rank), rank)
    scores = {item: voted.get(item) or 1.0 / (k + rank) for item, rank in best.items()}
    order = sorted(best, key=lambda item: (-scores[item], best[item]))  # sorted() is stable
    return [(item, scores[item]) for item in order]


def fuse_scores(
    dense: Sequence[tuple[str, float]],
    lexical: Sequence[tuple[str, float]],
    *,
    weight: float = SCORE_WEIGHT,
    depth: int = SCORE_DEPTH,
) -> list[tuple[str, float]]:
    """Ids from the dense route (cosine, best first) and the BM25 route (score, best first), fused best
    first with their scores: cosine + ``weight`` x the BM25 score min-max normalised over the first
    ``depth`` BM25 hits.

    The lowest cosine of the dense route's first ``depth`` hits is a floor: a chunk in BM25's first
    ``depth`` but not in dense's counts its cosine as the floor; a chunk in neither counts its own
    cosine (below the floor) or the floor, and gets nothing from BM25. So every chunk in either head
    scores at least the floor and every other chunk at most it: the first results do not depend on
    how many candidates a caller asks for. Ties keep the order of the best rank reached, dense first.
    """
    if weight < 0 or depth < 1:
        raise ValueError(
            f"score fusion needs weight >= 0 and depth >= 1 (got weight={weight}, depth={depth})"
        )
    head = [score for _, score in lexical[:depth]]
    low, high = (min(head), max(head)) if head else (0.0, 0.0)
    boost = {item: (score - low) / (high - low) if high > low else 1.0 for item, score in lexical[:depth]}
    floor = min((score for _, score in dense[:depth]), default=0.0)
    cosine = {item: score for item, score in dense[depth:]} | {item: floor for item in boost}
    cosine |= dict(dense[:depth])
    best: dict[str, int] = {}
    for route in (dense, lexical):
        for rank, (item, _) in enumerate(route, start=1):
            best[item] = min(best.get(item, rank), rank)
    scores = {item: cosine.get(item, floor) + weight * boost.get(item, 0.0) for item in best}
    order = sorted(best, key=lambda item: (-scores[item], best[item]))  # sorted() is stable
    return [(item, scores[item]) for item in order]
