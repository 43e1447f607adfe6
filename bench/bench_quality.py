"""Retrieval quality against the settings, on the sample handbook: so the defaults are chosen by figures.

    .venv/bin/python bench/bench_quality.py                  # every sweep (~3 minutes on 2 cores)
    .venv/bin/python bench/bench_quality.py --only fusion    # one of: chunking, fusion, dense

Three sweeps, each printed as a Markdown table (bench/README.md, "Retrieval quality", keeps the figures):

- chunking: THREADWISE_CHUNK_SIZE x THREADWISE_CHUNK_OVERLAP, each indexed into its own collection;
- fusion: the RRF constant k (``KnowledgeConfig.rrf_k``) x how many ranks of each route vote
  (``knowledge.fusion.FUSION_DEPTH``); depth 50 with k = 60 is the fusion before this sweep
  (Milvus's RRFRanker over 50 candidates per route);
- dense: the HNSW index, M and efConstruction at build time (``knowledge.store.HNSW_BUILD``) and the
  least ef at query time (``HNSW_EF_MIN``).

Quality is ``knowledge.evaluation`` on examples/handbook/questions.jsonl, as ``threadwise eval`` reports it
(documents ranked by their best chunk; unanswerable questions left out). Latency is one search as the
analyst runs it (k = 6, query embedding included), p50/p95 over the questions, with the local embedder on
Milvus Lite: at 400 chunks it shows what a setting costs relative to another, not what a large collection
costs (bench_search.py measures that).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import knowledge.store.schema as store_schema
import knowledge.store.search as store_search
from knowledge.base import KnowledgeBase
from knowledge.config import KnowledgeConfig
from knowledge.embedders import LocalEmbedder
from knowledge.evaluation import load_questions, retrieval_report, shipped_handbook
from knowledge.types import SEARCH_MODES

SEARCH_K = 6  # passages per analyst search (bot.answering.SEARCH_K)
CHUNK_SIZES = (400, 800, 1200, 1600, 2400)
CHUNK_OVERLAPS = (0, 150, 300)
RRF_KS = (1, 5, 10, 20, 60, 100)
FUSION_DEPTHS = (5, 10, 20, 50)
HNSW_BUILDS = ((8, 100), (16, 200), (32, 200))
HNSW_EFS = (16, 64, 128)


class Bench:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.docs = shipped_handbook()
        self.questions = load_questions(self.docs / "questions.jsonl", self.docs)
        self.embedder = LocalEmbedder()
        self.base = KnowledgeConfig(docs=(self.docs,), milvus_uri=str(workdir / "milvus.db"))
        self._n = 0

    @contextmanager
    def indexed(self, **settings: int) -> Iterator[tuple[KnowledgeBase, int, float]]:
        """A fresh collection of the handbook with these settings: (knowledge base, chunks, seconds)."""
        self._n += 1
        config = replace(
            self.base,
            collection=f"quality_{self._n}",
            database_url=f"sqlite:///{self.workdir / f'manifest_{self._n}.db'}",
            **settings,
        )
        kb = KnowledgeBase(config, embedder=self.embedder)
        try:
            report = kb.sync()
            yield kb, report.chunks, report.seconds
        finally:
            kb.close()

    def quality(self, kb: KnowledgeBase, modes=SEARCH_MODES) -> dict[str, dict]:
        return retrieval_report(kb, self.questions, modes)

    def latency(self, kb: KnowledgeBase, mode: str) -> tuple[float, float]:
        """p50, p95 in ms of one search as the analyst runs it."""
        seconds = []
        for q in self.questions:
            started = time.perf_counter()
            kb.search(q.question, k=SEARCH_K, mode=mode)
            seconds.append(time.perf_counter() - started)
        seconds.sort()
        at = lambda share: seconds[min(len(seconds) - 1, math.ceil(share * len(seconds)) - 1)] * 1000  # noqa: E731
        return at(0.5), at(0.95)


def table(header: list[str], rows: list[list[object]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(" ---: " if i else " --- " for i in range(len(header))) + "|")
    for row in rows:
        print(
            "| " + " | ".join(f"{cell:.3f}" if isinstance(cell, float) else str(cell) for cell in row) + " |"
        )
    print(flush=True)


def sweep_chunking(bench: Bench) -> None:
    print("### Chunk size and overlap (characters)\n")
    rows = []
    for size in CHUNK_SIZES:
        for overlap in CHUNK_OVERLAPS:
            if overlap >= size / 2:
                continue
            with bench.indexed(chunk_size=size, chunk_overlap=overlap) as (kb, chunks, seconds):
                report = bench.quality(kb)
                p50, p95 = bench.latency(kb, "hybrid")
            rows.append(
                [size, overlap, chunks]
                + [report[mode]["ndcg@10"] for mode in SEARCH_MODES]
                + [report["hybrid"]["recall@5"], f"{p50:.1f}", f"{p95:.1f}", f"{seconds:.1f}"]
            )
    table(
        [
            "size",
            "overlap",
            "chunks",
            *(f"nDCG@10 {m}" for m in SEARCH_MODES),
            *("recall@5 hybrid", "hybrid p50 ms", "hybrid p95 ms", "index s"),
        ],
        rows,
    )


def sweep_fusion(bench: Bench) -> None:
    print("### Fusion: the RRF constant k and the ranks of each route that vote (depth)\n")
    default_depth = store_search.FUSION_DEPTH
    rows = []
    with bench.indexed() as (kb, _, _):
        singles = bench.quality(kb, ("dense", "bm25"))
        for mode in ("dense", "bm25"):
            p50, p95 = bench.latency(kb, mode)
            rows.append(
                [
                    f"{mode} alone",
                    "",
                    singles[mode]["ndcg@10"],
                    singles[mode]["recall@5"],
                    f"{p50:.1f}",
                    f"{p95:.1f}",
                ]
            )
        try:
            for depth in FUSION_DEPTHS:
                store_search.FUSION_DEPTH = depth
                for k in RRF_KS:
                    kb.config = replace(kb.config, rrf_k=k)
                    kb.store.config = kb.config  # the store reads rrf_k from its config at each search
                    hybrid = bench.quality(kb, ("hybrid",))["hybrid"]
                    p50, p95 = bench.latency(kb, "hybrid")
                    label = f"{k} (before)" if (k, depth) == (60, 50) else str(k)
                    rows.append(
                        [label, depth, hybrid["ndcg@10"], hybrid["recall@5"], f"{p50:.1f}", f"{p95:.1f}"]
                    )
        finally:
            store_search.FUSION_DEPTH = default_depth
    table(["rrf k", "depth", "nDCG@10 hybrid", "recall@5 hybrid", "p50 ms", "p95 ms"], rows)


def sweep_dense(bench: Bench) -> None:
    print("### Dense index (HNSW): M, efConstruction, and the least ef per query\n")
    build, ef_min = dict(store_schema.HNSW_BUILD), store_schema.HNSW_EF_MIN
    rows = []
    try:
        for m, ef_construction in HNSW_BUILDS:
            store_schema.HNSW_BUILD = {"M": m, "efConstruction": ef_construction}
            with bench.indexed() as (kb, _, seconds):
                for ef in HNSW_EFS:
                    store_schema.HNSW_EF_MIN = ef
                    report = bench.quality(kb, ("dense", "hybrid"))
                    p50, p95 = bench.latency(kb, "dense")
                    quality = [report["dense"]["ndcg@10"], report["hybrid"]["ndcg@10"]]
                    rows.append(
                        [m, ef_construction, ef, *quality, f"{p50:.1f}", f"{p95:.1f}", f"{seconds:.1f}"]
                    )
    finally:
        store_schema.HNSW_BUILD, store_schema.HNSW_EF_MIN = build, ef_min
    table(
        [
            "M",
            "efConstruction",
            "ef",
            "nDCG@10 dense",
            "nDCG@10 hybrid",
            "dense p50 ms",
            "dense p95 ms",
            "index s",
        ],
        rows,
    )


SWEEPS = {"chunking": sweep_chunking, "fusion": sweep_fusion, "dense": sweep_dense}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=SWEEPS, action="append", help="run only this sweep (repeatable)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="threadwise-quality-") as tmp:
        bench = Bench(Path(tmp))
        answerable = sum(q.answerable for q in bench.questions)
        defaults = bench.base
        print(
            f"## {answerable} questions ({len(bench.questions) - answerable} unanswerable left out), "
            f"{bench.embedder.name}; defaults: chunk {defaults.chunk_size}/{defaults.chunk_overlap}, "
            f"rrf k {defaults.rrf_k}, depth {store_search.FUSION_DEPTH}, HNSW {store_schema.HNSW_BUILD}, "
            f"ef >= {store_schema.HNSW_EF_MIN}\n"
        )
        for name in args.only or SWEEPS:
            SWEEPS[name](bench)


if __name__ == "__main__":
    main()
