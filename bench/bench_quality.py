"""Retrieval quality against the settings and against outside references: so the defaults are chosen by figures.

    .venv/bin/python bench/bench_quality.py                  # every sweep, on the sample handbook
    .venv/bin/python bench/bench_quality.py --only fusion    # one sweep (repeatable)
    .venv/bin/python bench/bench_quality.py --only references --only lexical --docs bench/data/medline/docs

The sweeps, each printed as a Markdown table (bench/README.md, "Retrieval quality", keeps the figures):

- references: the product's three modes, with and without the second stage, beside bm25s, the
  embedding model alone and the two fused by RRF (bench/references.py), on the same chunks;
- lexical: the BM25 route replayed with and without stemming, fused with the product's dense route at
  several RRF constants and depths (what a stemmed BM25 field would change, the schema untouched); then
  fusion methods that use the routes' scores (min-max, z-score, Milvus's WeightedRanker, cosine plus
  weighted BM25, a per-question BM25 weight) on the product's own two routes; last, the product's score
  fusion with each BM25 route, Milvus's and the replays (stemmed or not), question by question;
- second_stage: each step of knowledge/passages.py on and off;
- chunking: THREADWISE_CHUNK_SIZE x THREADWISE_CHUNK_OVERLAP, each indexed into its own collection;
- fusion: with THREADWISE_FUSION=rrf, the RRF constant k (``KnowledgeConfig.rrf_k``) x how many ranks of each route vote
  (``knowledge.fusion.FUSION_DEPTH``); depth 50 with k = 60 is the fusion before this sweep
  (Milvus's RRFRanker over 50 candidates per route);
- dense: the HNSW index, M and efConstruction at build time (``knowledge.store.HNSW_BUILD``) and the
  least ef at query time (``HNSW_EF_MIN``).

Quality is ``knowledge.evaluation`` on DOCS/questions.jsonl (default: the sample handbook), as
``threadwise eval`` reports it (documents ranked by their best chunk; unanswerable questions left out).
``--docs`` takes any labelled set, such as the MEDLINE test collection in bench/data/medline or another
SMART collection converted by bench/convert_ir_collection.py. Latency is one search as the analyst runs
it (query embedding included), p50/p95 over the questions, with the product's embedder on Milvus Lite: it
shows what a setting costs relative to another, not what a large collection costs (bench_search.py).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import knowledge.store.schema as store_schema
import knowledge.store.search as store_search
from bot.answering import SEARCH_K as ANALYST_K
from knowledge.base import KnowledgeBase
from knowledge.config import KnowledgeConfig
from knowledge.embedders import make_embedder
from knowledge.evaluation import (
    ANSWER_KS,
    CHUNKS_FETCHED,
    LabelledQuestion,
    fact_found,
    load_questions,
    mean_metrics,
    percentiles_ms,
    question_metrics,
    retrieval_report,
    shipped_handbook,
)
from knowledge.passages import PassageSettings
from knowledge.types import SEARCH_MODES, Chunk

SEARCH_K = ANALYST_K  # passages per analyst search
CHUNK_SIZES = (400, 800, 1200, 1600, 2400)
CHUNK_OVERLAPS = (0, 150, 300)
RRF_KS = (1, 5, 10, 20, 60, 100)
FUSION_DEPTHS = (5, 10, 20, 50)
HNSW_BUILDS = ((8, 100), (16, 200), (32, 200))
HNSW_EFS = (16, 64, 128)


class Bench:
    def __init__(self, workdir: Path, docs: Path | None = None, questions: Path | None = None):
        self.workdir = workdir
        self.docs = (docs or shipped_handbook()).resolve()
        self.questions = load_questions(questions or self.docs / "questions.jsonl", self.docs)
        self.base = KnowledgeConfig(docs=(self.docs,), milvus_uri=str(workdir / "milvus.db"))
        self.embedder = make_embedder(self.base)  # the product's default
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
                    kb.config = replace(kb.config, rrf_k=k, fusion="rrf")
                    kb.store.config = kb.config  # the store reads the fusion from its config at each search
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


Search = Callable[[str, int], list[Chunk]]  # (question, k) -> passages, best first


def score_system(search: Search, questions: list[LabelledQuestion], kinds: list[str]) -> list[object]:
    """One table row: document metrics of a 50-passage search; answer recall@k of the passages of one
    search as the analyst runs it (k = SEARCH_K), and of a k = 10 search for larger k; answer recall
    per kind at SEARCH_K; mean characters the model reads from one search; p50/p95 ms of that search."""
    metrics, answers, by_kind = [], [], {kind: [] for kind in kinds}
    seconds, chars = [], []
    for q in questions:
        found = search(q.question, CHUNKS_FETCHED)
        metrics.append(question_metrics(list(dict.fromkeys(c.doc_path for c in found)), q.relevant))
        started = time.perf_counter()
        first = search(q.question, SEARCH_K)
        seconds.append(time.perf_counter() - started)
        chars.append(sum(len(c.text) for c in first))
        if q.must_contain:
            texts = [c.text for c in first]
            recall = {k: float(fact_found(texts[:k], q.must_contain)) for k in ANSWER_KS if k <= SEARCH_K}
            wider = [c.text for c in search(q.question, max(ANSWER_KS))]
            recall |= {k: float(fact_found(wider[:k], q.must_contain)) for k in ANSWER_KS if k > SEARCH_K}
            answers.append(recall)
            by_kind[q.kind].append(float(fact_found(texts, q.must_contain)))
    means = mean_metrics(metrics)
    # a collection judged by documents alone (no must_contain) gets no answer columns
    answer_means = [statistics.fmean(a[k] for a in answers) for k in ANSWER_KS] if answers else []
    kind_means = [statistics.fmean(v) if v else math.nan for v in by_kind.values()]
    latency = percentiles_ms(seconds)
    return [
        means["ndcg@10"],
        means["recall@10"],
        means["mrr"],
        *answer_means,
        *kind_means,
        round(statistics.fmean(chars)),
        f"{latency['p50']:.1f}",
        f"{latency['p95']:.1f}",
    ]


def score_header(kinds: list[str]) -> list[str]:
    return [
        "nDCG@10",
        "recall@10",
        "MRR",
        *(f"answer@{k}" for k in ANSWER_KS if kinds),
        *(f"answer@{SEARCH_K} {kind}" for kind in kinds),
        f"chars in {SEARCH_K}",
        "p50 ms",
        "p95 ms",
    ]


def product(kb: KnowledgeBase, mode: str, passages: PassageSettings | None = None) -> Search:
    def search(question: str, k: int) -> list[Chunk]:
        if passages is not None:
            kb.config = replace(kb.config, passages=passages)
        return [h.chunk for h in kb.search(question, k=k, mode=mode)]

    return search


FIRST_STAGE_ONLY = PassageSettings(neighbours=0, dedup=1.0, fold_gap=0)


def sweep_references(bench: Bench) -> None:
    """The product's three modes beside the usual baselines, on the same chunks, in one run."""
    from bench.references import References, corpus_chunks

    print("### The product's search beside outside references (same chunks, same run)\n")
    scored = [q for q in bench.questions if q.answerable]
    kinds = sorted({q.kind for q in scored if q.must_contain})
    rows = []
    with bench.indexed() as (kb, chunks, _):
        references = References(corpus_chunks(kb.config), bench.embedder)
        print(f"{chunks} chunks indexed by the product, {len(references.chunks)} ranked by the references\n")
        default = kb.config.passages
        systems: dict[str, Search] = {f"product {mode}": product(kb, mode, default) for mode in SEARCH_MODES}
        systems |= {
            f"product {mode}, first stage only": product(kb, mode, FIRST_STAGE_ONLY) for mode in SEARCH_MODES
        }
        for name, ranker in references.rankers().items():
            systems[name] = lambda q, k, ranker=ranker: [references.chunks[i] for i in ranker(q, k)]
        for name, search in systems.items():
            rows.append([name, *score_system(search, scored, kinds)])
        kb.config = replace(kb.config, passages=default)
    print(
        f"{len(scored)} answerable questions; answer recall over the "
        f"{sum(bool(q.must_contain) for q in scored)} with must_contain\n"
    )
    table(["system", *score_header(kinds)], rows)


SECOND_STAGES = {
    "first stage only": FIRST_STAGE_ONLY,
    "dedup 0.8": PassageSettings(neighbours=0, dedup=0.8, fold_gap=0),
    "fold gap 2": PassageSettings(neighbours=0, dedup=1.0, fold_gap=2),
    "neighbours 1": PassageSettings(neighbours=1, dedup=1.0, fold_gap=0),
    "neighbours 1, same heading": PassageSettings(neighbours=1, dedup=1.0, fold_gap=0, same_heading=True),
    "dedup 0.8 + fold 2 + neighbours 1, after the hit only": PassageSettings(backward=False),
    "dedup 0.8 + fold 2 + neighbours 1, before the hit too (default)": PassageSettings(),
    "dedup 0.8 + fold 2 + neighbours 2": PassageSettings(neighbours=2),
}


def sweep_second_stage(bench: Bench) -> None:
    """Each step of knowledge/passages.py on and off, hybrid, as the analyst searches."""
    print("### Second stage (knowledge/passages.py), hybrid\n")
    scored = [q for q in bench.questions if q.answerable]
    kinds = sorted({q.kind for q in scored if q.must_contain})
    rows = []
    with bench.indexed() as (kb, _, _):
        default = kb.config.passages
        for name, settings in SECOND_STAGES.items():
            rows.append([name, *score_system(product(kb, "hybrid", settings), scored, kinds)])
        kb.config = replace(kb.config, passages=default)
    table(["second stage", *score_header(kinds)], rows)


# (rrf k, depth, BM25 weight); (60, 5, 1) is the product's fusion, (60, 100, 1) the reference's plain RRF
LEXICAL_FUSIONS = (
    (60, 5, 1.0),
    (60, 10, 1.0),
    (60, 20, 1.0),
    (10, 20, 1.0),
    (60, 100, 1.0),
    (60, 5, 0.5),
    (60, 20, 0.5),
    (60, 100, 0.5),
    (60, 100, 0.3),
)
# Score fusion's BM25 weight with a stemmed route: the default and its neighbours, not tuned per set
STEM_SCORE_WEIGHTS = (0.10, 0.12, 0.15)
REPLAY_DEPTH = 100  # chunks per route replayed: plain RRF over 100, as the bm25s+embedding reference fuses


def lexical_analyzers() -> dict[str, Callable[[str], list[str]]]:
    """The BM25 route's text analysis, as Milvus does it and with the stemming the bm25s reference has."""
    import re

    import bm25s
    import Stemmer

    words, stop = re.compile(r"\w+"), frozenset(store_schema.STOP_WORDS)
    stemmer = Stemmer.Stemmer("english")

    def standard(text: str) -> list[str]:  # Milvus Lite's standard analyzer with the product's stop words
        return [t for t in words.findall(text.lower()) if t not in stop]

    def reference(text: str) -> list[str]:
        return bm25s.tokenize([text], stopwords="en", stemmer=stemmer, show_progress=False, return_ids=False)[
            0
        ]

    return {
        "standard + stop words (as Milvus)": standard,
        "+ Snowball stemmer": lambda text: stemmer.stemWords(standard(text)),
        "bm25s's tokens, stop words and stemmer": reference,
    }


def weighted_fusion(dense: list[str], lexical: list[str], k: int, depth: int, weight: float) -> list[str]:
    """knowledge/fusion.py's fusion with the BM25 route's votes scaled by ``weight`` (a replay of a
    setting the product does not have; at weight 1 it is ``fuse_ranks`` exactly)."""
    voted: dict[str, float] = {}
    fallback: dict[str, float] = {}
    best: dict[str, int] = {}
    for route, scale in ((dense, 1.0), (lexical, weight)):
        for rank, item in enumerate(route, start=1):
            if rank <= depth:
                voted[item] = voted.get(item, 0.0) + scale / (k + rank)
            fallback[item] = max(fallback.get(item, 0.0), scale / (k + rank))
            best[item] = min(best.get(item, rank), rank)
    scores = {item: voted.get(item) or fallback[item] for item in best}
    return sorted(best, key=lambda item: (-scores[item], best[item]))


def sweep_lexical(bench: Bench) -> None:
    """The BM25 route replayed in Python with other analyzers, fused with the product's own dense route
    exactly as knowledge/fusion.py fuses: what stemming the BM25 text would change, without changing the
    schema. BM25 as Milvus scores it (k1 = 1.2, b = 0.75); "Milvus" rows use the product's own BM25 route,
    so they check the replay of the fusion against the references table."""
    import bm25s

    from bench.references import corpus_chunks
    from knowledge.fusion import fuse_ranks

    print("### The BM25 route's analyzer and the fusion, replayed on the product's routes\n")
    scored = [q for q in bench.questions if q.answerable]
    with bench.indexed() as (kb, _, _):
        kb.config = replace(kb.config, passages=FIRST_STAGE_ONLY)
        chunks = corpus_chunks(kb.config)
        scored_routes = {  # (chunk id, the route's own score: cosine or BM25), best first
            mode: [
                [(h.chunk.chunk_id, h.score) for h in kb.search(q.question, k=REPLAY_DEPTH, mode=mode)]
                for q in scored
            ]
            for mode in ("dense", "bm25")
        }
    routes = {mode: [[i for i, _ in ranked] for ranked in found] for mode, found in scored_routes.items()}
    by_id = {c.chunk_id: c for c in chunks}
    missing = {i for ranked in routes["dense"] + routes["bm25"] for i in ranked} - by_id.keys()
    if missing:
        raise SystemExit(f"{len(missing)} chunk ids of the product are not among the replayed chunks")
    bm25_routes = {"Milvus BM25 route (the product)": routes["bm25"]}
    replayed_scores: dict[str, list[Scored]] = {}
    for name, analyze in lexical_analyzers().items():
        index = bm25s.BM25(k1=1.2, b=0.75)
        index.index([analyze(c.text) for c in chunks], show_progress=False)
        ranked = []
        for q in scored:
            tokens = [t for t in analyze(q.question) if t in index.vocab_dict]
            if not tokens:
                ranked.append([])
                continue
            found, scores = index.retrieve([tokens], k=REPLAY_DEPTH, show_progress=False, n_threads=1)
            ranked.append(
                [
                    (chunks[int(i)].chunk_id, float(s))
                    for i, s in zip(found[0], scores[0], strict=True)
                    if s > 0
                ]
            )
        replayed_scores[name] = ranked
        bm25_routes[f"replay: {name}"] = [[i for i, _ in hits] for hits in ranked]

    def documents(ids: list[str]) -> list[str]:  # ranked by their best chunk, as threadwise eval ranks them
        return list(dict.fromkeys(by_id[i].doc_path for i in ids))[:CHUNKS_FETCHED]

    def scores(ranked_chunks: list[list[str]]) -> list[float]:
        rows = []
        for q, ids in zip(scored, ranked_chunks, strict=True):
            row = question_metrics(documents(ids), q.relevant)
            if q.must_contain:
                row["answer"] = float(fact_found([by_id[i].text for i in ids[:SEARCH_K]], q.must_contain))
            rows.append(row)
        answers = [r.pop("answer") for r in rows if "answer" in r]
        means = mean_metrics(rows)
        return [means["ndcg@10"], means["recall@10"], *([statistics.fmean(answers)] if answers else [])]

    rows = [["dense alone (the product)", "", "", "", *scores(routes["dense"])]]
    for name, bm25_ranked in bm25_routes.items():
        rows.append([name, "bm25 alone", "", "", *scores(bm25_ranked)])
        for rrf_k, depth, weight in LEXICAL_FUSIONS:
            fused = []
            for dense, lexical in zip(routes["dense"], bm25_routes[name], strict=True):
                fused.append(weighted_fusion(dense, lexical, rrf_k, depth, weight))
                if weight == 1.0:  # the replay is the product's fusion
                    assert fused[-1] == [i for i, _ in fuse_ranks([dense, lexical], k=rrf_k, depth=depth)]
            rows.append([name, f"hybrid, k {rrf_k}", depth, f"{weight:g}", *scores(fused)])
    facts = [f"answer@{SEARCH_K}"] if any(q.must_contain for q in scored) else []
    table(["BM25 analysis", "search", "depth", "BM25 weight", "nDCG@10", "recall@10", *facts], rows)

    print("### Fusion methods on the product's own two routes (cosine and Milvus BM25 scores)\n")
    rows = []
    for name, fuse in FUSION_METHODS.items():
        fused = [
            fuse(dense, lexical, q.question)
            for q, dense, lexical in zip(scored, scored_routes["dense"], scored_routes["bm25"], strict=True)
        ]
        rows.append([name, *scores(fused)])
    table(["fusion", "nDCG@10", "recall@10", *facts], rows)

    print("### Score fusion (the product's) with the BM25 route replayed, unstemmed and stemmed\n")
    lexical_routes = {"Milvus BM25 route (the product)": scored_routes["bm25"]}
    lexical_routes |= {f"replay: {name}": found for name, found in replayed_scores.items()}

    def ndcg_each(ranked_chunks: list[list[str]]) -> list[float]:
        return [
            question_metrics(documents(ids), q.relevant)["ndcg@10"]
            for q, ids in zip(scored, ranked_chunks, strict=True)
        ]

    rows, product_ndcg = [], {}
    for name, lexical_found in lexical_routes.items():
        for weight in STEM_SCORE_WEIGHTS:
            fuse = by_cosine_plus_bm25(weight)
            fused = [
                fuse(dense, lexical, q.question)
                for q, dense, lexical in zip(scored, scored_routes["dense"], lexical_found, strict=True)
            ]
            each = ndcg_each(fused)
            base = product_ndcg.setdefault(weight, each)  # the first route is the product's
            pairs = list(zip(each, base, strict=True))
            moved = f"{sum(a > b for a, b in pairs)} / {sum(a < b for a, b in pairs)}"
            rows.append([name, f"{weight:g}", *scores(fused), moved])
    table(
        [
            "BM25 analysis",
            "BM25 weight (cosine + w x min-max BM25, depth 30)",
            "nDCG@10",
            "recall@10",
            *facts,
            "questions up / down against the product's route",
        ],
        rows,
    )


Scored = list[tuple[str, float]]  # (chunk id, route score), best first


def normalised(route: Scored, how: str, depth: int) -> dict[str, float]:
    """A route's first ``depth`` scores on a common scale: min-max to [0, 1], or z-scores."""
    head = route[:depth]
    values = [score for _, score in head]
    if not values:
        return {}
    if how == "z":
        mean, spread = statistics.fmean(values), statistics.pstdev(values) or 1.0
        return {item: (score - mean) / spread for item, score in head}
    low, high = min(values), max(values)
    return {item: (score - low) / (high - low) if high > low else 1.0 for item, score in head}


def by_normalised_scores(how: str, depth: int, weight: float) -> Callable[[Scored, Scored, str], list[str]]:
    """Both routes normalised, then (1 - weight) x dense + weight x BM25 (a chunk missing from a route
    takes that route's lowest normalised score), as Milvus's WeightedRanker combines them."""

    def fuse(dense: Scored, lexical: Scored, _: str) -> list[str]:
        routes = [normalised(dense, how, depth), normalised(lexical, how, depth)]
        floors = [min(route.values(), default=0.0) for route in routes]
        items = list(dict.fromkeys([*routes[0], *routes[1]]))
        score = {
            i: (1 - weight) * routes[0].get(i, floors[0]) + weight * routes[1].get(i, floors[1])
            for i in items
        }
        return sorted(items, key=lambda i: -score[i])

    return fuse


def by_milvus_weighted(depth: int, weight: float) -> Callable[[Scored, Scored, str], list[str]]:
    """Milvus's WeightedRanker with its own normalisation: (1 + cosine) / 2 and 2/pi x arctan(BM25)."""

    def fuse(dense: Scored, lexical: Scored, _: str) -> list[str]:
        score: dict[str, float] = {}
        for item, cosine in dense[:depth]:
            score[item] = (1 - weight) * (1 + cosine) / 2
        for item, bm25 in lexical[:depth]:
            score[item] = score.get(item, 0.0) + weight * 2 / math.pi * math.atan(bm25)
        return sorted(score, key=lambda i: -score[i])

    return fuse


def by_ranks(k: int, depth: int, weight: float) -> Callable[[Scored, Scored, str], list[str]]:
    def fuse(dense: Scored, lexical: Scored, _: str) -> list[str]:
        return weighted_fusion([i for i, _ in dense], [i for i, _ in lexical], k, depth, weight)

    return fuse


def by_cosine_plus_bm25(weight: float, depth: int = 30) -> Callable[[Scored, Scored, str], list[str]]:
    """The product's score fusion (knowledge.fusion.fuse_scores)."""
    from knowledge.fusion import fuse_scores

    def fuse(dense: Scored, lexical: Scored, _: str) -> list[str]:
        return [i for i, _ in fuse_scores(dense, lexical, weight=weight, depth=depth)]

    return fuse


def by_confidence(signal: str, low: float, high: float) -> Callable[[Scored, Scored, str], list[str]]:
    """Min-max score fusion (depth 30) whose BM25 weight moves from ``low`` to ``high`` with how sure the
    BM25 route is of this question: ``gap`` = (first - tenth BM25 score) / first; ``rare`` = the first
    BM25 score per question word / 3 (high when rare words match), capped at 1."""
    import re

    words, stop = re.compile(r"\w+"), frozenset(store_schema.STOP_WORDS)

    def fuse(dense: Scored, lexical: Scored, question: str) -> list[str]:
        values = [score for _, score in lexical]
        if not values or values[0] <= 0:
            sure = 0.0
        elif signal == "gap":
            sure = (values[0] - values[min(9, len(values) - 1)]) / values[0]
        else:
            terms = {t for t in words.findall(question.lower()) if t not in stop}
            sure = min(1.0, values[0] / max(1, len(terms)) / 3)
        return by_normalised_scores("minmax", 30, low + (high - low) * sure)(dense, lexical, question)

    return fuse


# Every method measured on the product's two routes (bench/README.md, "Fusion by score").
FUSION_METHODS: dict[str, Callable[[Scored, Scored, str], list[str]]] = {
    "rrf k 60, depth 5 (THREADWISE_FUSION=rrf, the default before)": by_ranks(60, 5, 1.0),
    "rrf k 60, depth 20": by_ranks(60, 20, 1.0),
    "rrf k 10, depth 50": by_ranks(10, 50, 1.0),
    "rrf k 60, depth 20, BM25 weight 0.5": by_ranks(60, 20, 0.5),
    "rrf k 10, depth 30, BM25 weight 0.7": by_ranks(10, 30, 0.7),
    "rrf k 10, depth 50, BM25 weight 0.5": by_ranks(10, 50, 0.5),
    "min-max, depth 30, BM25 weight 0.3": by_normalised_scores("minmax", 30, 0.3),
    "min-max, depth 30, BM25 weight 0.5": by_normalised_scores("minmax", 30, 0.5),
    "min-max, depth 100, BM25 weight 0.4": by_normalised_scores("minmax", 100, 0.4),
    "z-score, depth 30, BM25 weight 0.3": by_normalised_scores("z", 30, 0.3),
    "z-score, depth 30, BM25 weight 0.5": by_normalised_scores("z", 30, 0.5),
    "z-score, depth 100, BM25 weight 0.4": by_normalised_scores("z", 100, 0.4),
    "Milvus WeightedRanker, depth 100, BM25 weight 0.3": by_milvus_weighted(100, 0.3),
    "per question: min-max, BM25 weight 0-0.8 by the BM25 gap": by_confidence("gap", 0.0, 0.8),
    "per question: min-max, BM25 weight 0.1-0.5 by rare words": by_confidence("rare", 0.1, 0.5),
    "cosine + 0.08 x min-max BM25, depth 30": by_cosine_plus_bm25(0.08),
    "cosine + 0.12 x min-max BM25, depth 30 (THREADWISE_FUSION=score, default)": by_cosine_plus_bm25(0.12),
    "cosine + 0.15 x min-max BM25, depth 30": by_cosine_plus_bm25(0.15),
    "cosine + 0.12 x min-max BM25, depth 50": by_cosine_plus_bm25(0.12, 50),
}


SWEEPS = {
    "references": sweep_references,
    "lexical": sweep_lexical,
    "second_stage": sweep_second_stage,
    "chunking": sweep_chunking,
    "fusion": sweep_fusion,
    "dense": sweep_dense,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=SWEEPS, action="append", help="run only this sweep (repeatable)")
    parser.add_argument("--docs", type=Path, help="docs folder (default: the sample handbook)")
    parser.add_argument("--questions", type=Path, help="labelled set (default: DOCS/questions.jsonl)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="threadwise-quality-") as tmp:
        bench = Bench(Path(tmp), args.docs, args.questions)
        answerable = sum(q.answerable for q in bench.questions)
        defaults = bench.base
        print(
            f"## {answerable} questions ({len(bench.questions) - answerable} unanswerable left out), "
            f"{bench.embedder.name}; defaults: chunk {defaults.chunk_size}/{defaults.chunk_overlap}, "
            f"fusion {defaults.fusion} (weight {defaults.fusion_weight}; rrf k {defaults.rrf_k}, "
            f"depth {store_search.FUSION_DEPTH}), HNSW {store_schema.HNSW_BUILD}, "
            f"ef >= {store_schema.HNSW_EF_MIN}\n"
        )
        for name in args.only or SWEEPS:
            SWEEPS[name](bench)


if __name__ == "__main__":
    main()
