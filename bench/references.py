"""Outside references for bench_quality.py: the usual baselines, run on the product's own chunks.

- ``bm25s``: Okapi BM25 (Lucene variant, k1 = 1.5, b = 0.75) from the ``bm25s`` library with
  English stop words and the Snowball English stemmer (PyStemmer);
- ``embedding``: the product's embedder used alone, brute-force cosine over every chunk (no index);
- ``bm25s+embedding``: the two fused by plain reciprocal rank fusion (k = 60, the first 100 of each).

Every reference ranks the same chunks the product indexes (same readers, same chunker, same settings),
so the comparison is of the ranking alone. Install them with ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from knowledge.chunking import chunk_document
from knowledge.config import KnowledgeConfig
from knowledge.embedders import Embedder
from knowledge.readers import read_bytes
from knowledge.sync import crawl
from knowledge.types import Chunk

RRF_K = 60
DEPTH = 100  # candidates per route for the fused reference

Ranker = Callable[[str, int], list[int]]  # (question, how many) -> chunk indices, best first


def corpus_chunks(config: KnowledgeConfig) -> list[Chunk]:
    """The chunks a sync of ``config.docs`` writes, read and cut the same way (unreadable files left out)."""
    import hashlib

    chunks: list[Chunk] = []
    for item in crawl(config.docs).files:
        data = item.location.read_bytes()
        try:
            parsed = read_bytes(data, item.location.name)
        except Exception:  # sync skips what it cannot read; so does the reference
            continue
        chunks += chunk_document(
            parsed,
            doc_id=item.doc_id,
            doc_path=item.path,
            version=hashlib.sha256(data).hexdigest()[:16],
            size=config.chunk_size,
            overlap=config.chunk_overlap,
        )
    return chunks


@dataclass
class References:
    chunks: list[Chunk]
    embedder: Embedder

    def __post_init__(self) -> None:
        import bm25s
        import Stemmer

        self._stemmer = Stemmer.Stemmer("english")
        self._bm25s = bm25s
        tokens = bm25s.tokenize(
            [c.text for c in self.chunks], stopwords="en", stemmer=self._stemmer, show_progress=False
        )
        self._bm25 = bm25s.BM25()
        self._bm25.index(tokens, show_progress=False)
        self._matrix = np.asarray(self.embedder.embed_documents([c.text for c in self.chunks]), np.float32)

    def rankers(self) -> dict[str, Ranker]:
        return {"bm25s": self.bm25, "embedding": self.embedding, "bm25s+embedding": self.fused}

    def bm25(self, question: str, limit: int) -> list[int]:
        query = self._bm25s.tokenize(
            [question], stopwords="en", stemmer=self._stemmer, show_progress=False, return_ids=False
        )
        if not query[0]:
            return []
        found, scores = self._bm25.retrieve(
            query, k=min(limit, len(self.chunks)), show_progress=False, n_threads=1
        )
        return [int(i) for i, s in zip(found[0], scores[0], strict=True) if s > 0]

    def embedding(self, question: str, limit: int) -> list[int]:
        vector = np.asarray(self.embedder.embed_query(question), np.float32)
        scores = self._matrix @ vector
        order = np.argsort(-scores, kind="stable")[:limit]
        return [int(i) for i in order]

    def fused(self, question: str, limit: int) -> list[int]:
        return rrf([self.bm25(question, DEPTH), self.embedding(question, DEPTH)])[:limit]


def rrf(routes: Sequence[Sequence[int]], k: int = RRF_K) -> list[int]:
    """Plain reciprocal rank fusion: every candidate of every route votes ``1 / (k + rank)``."""
    scores: dict[int, float] = {}
    for route in routes:
        for rank, item in enumerate(route, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores, key=lambda item: -scores[item])
