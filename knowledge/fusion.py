"""Reciprocal rank fusion of the dense and BM25 routes, counting only the head of each ranking.

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
