"""Passage-level retrieval on the sample handbook: answer recall@k per embedder, chunking and mode.

    .venv/bin/python bench/bench_passages.py                      # every variant (~10 minutes on 2 busy cores)
    .venv/bin/python bench/bench_passages.py --only embedder      # one of: embedder, tables, k

Answer recall@k is ``threadwise eval``'s figure: the share of answerable questions whose ``must_contain``
strings all appear in the first k chunks a search returns (bench/README.md, "Passages"). Each variant
indexes the handbook into a collection of its own; the vectors of a text are computed once per embedder
and reused across variants (a cache in this process), so a chunking variant costs only the store.

- embedder: wordllama (static, 256-d) against all-MiniLM-L6-v2 int8 truncated at 128 and 256 word pieces;
- tables: Markdown/HTML/DOCX tables and CSV rows as one block (before) or in row groups of 300-1200
  characters, each repeating the header row;
- k: how many passages one search hands the analyst (recall at 4, 6, 8, 10 of the default).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import knowledge.chunking as chunking
from knowledge.base import KnowledgeBase
from knowledge.config import KnowledgeConfig
from knowledge.embedders import Embedder, LocalEmbedder
from knowledge.evaluation import fact_found, load_questions, retrieval_report, shipped_handbook
from knowledge.transformer_embedder import TransformerEmbedder
from knowledge.types import SEARCH_MODES

KINDS = ("keyword", "paraphrase", "multihop")


class Cached:
    """An embedder that embeds each distinct text once in this process, and times what it embeds."""

    def __init__(self, inner: Embedder):
        self.inner = inner
        self.name, self.dimension = inner.name, inner.dimension
        self._vectors: dict[str, list[float]] = {}
        self.embedded = 0
        self.seconds = 0.0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        new = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if new:
            started = time.perf_counter()
            self._vectors.update(zip(new, self.inner.embed_documents(new), strict=True))
            self.seconds += time.perf_counter() - started
            self.embedded += len(new)
        return [self._vectors[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


class Bench:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.docs = shipped_handbook()
        self.questions = load_questions(self.docs / "questions.jsonl", self.docs)
        self.base = KnowledgeConfig(docs=(self.docs,), milvus_uri=str(workdir / "milvus.db"))
        self.embedders: dict[str, Cached] = {}
        self._n = 0

    def embedder(self, name: str) -> Cached:
        if name not in self.embedders:
            inner = LocalEmbedder() if name == "wordllama" else TransformerEmbedder(max_tokens=int(name))
            self.embedders[name] = Cached(inner)
        return self.embedders[name]

    @contextmanager
    def indexed(self, embedder: str) -> Iterator[tuple[KnowledgeBase, int]]:
        self._n += 1
        config = replace(
            self.base,
            collection=f"passages_{self._n}",
            database_url=f"sqlite:///{self.workdir / f'manifest_{self._n}.db'}",
        )
        kb = KnowledgeBase(config, embedder=self.embedder(embedder))
        try:
            yield kb, kb.sync().chunks
        finally:
            kb.close()


@contextmanager
def tables(rows_size: int | None) -> Iterator[None]:
    """Row groups of ``rows_size`` characters, or (None) tables kept whole as before."""
    saved = (chunking.TABLE_SIZE, chunking._segments, chunking._bodies)
    try:
        if rows_size is None:
            chunking._segments = lambda text: [(text, None)]
            chunking.TABLE_SIZE = 10**9
        else:
            chunking.TABLE_SIZE = rows_size
        yield
    finally:
        chunking.TABLE_SIZE, chunking._segments, chunking._bodies = saved


def row(label: str, chunks: int, report: dict, modes=SEARCH_MODES) -> list[object]:
    cells: list[object] = [label, chunks]
    for mode in modes:
        entry = report[mode]
        cells += [entry["ndcg@10"], entry["answer_recall@6"]]
        cells += [entry["by_kind"][kind]["answer_recall@6"] for kind in KINDS if kind in entry["by_kind"]]
    return cells


def header(modes=SEARCH_MODES) -> list[str]:
    names = ["variant", "chunks"]
    for mode in modes:
        names += [f"nDCG@10 {mode}", f"ans@6 {mode}", *(f"{kind[:4]} {mode}" for kind in KINDS)]
    return names


def table(names: list[str], rows: list[list[object]]) -> None:
    print("| " + " | ".join(names) + " |")
    print("|" + "|".join(" ---: " if i else " --- " for i in range(len(names))) + "|")
    for cells in rows:
        print("| " + " | ".join(f"{c:.3f}" if isinstance(c, float) else str(c) for c in cells) + " |")
    print(flush=True)


def sweep_embedder(bench: Bench) -> None:
    print("### Embedders (tables in row groups, as shipped)\n")
    rows = []
    for name in ("wordllama", "128", "256"):
        with bench.indexed(name) as (kb, chunks):
            report = retrieval_report(kb, bench.questions)
        label = (
            "wordllama-l2-supercat-256" if name == "wordllama" else f"all-MiniLM-L6-v2 int8, {name} pieces"
        )
        rows.append(row(label, chunks, report))
    table(header(), rows)
    for name, cached in bench.embedders.items():
        if cached.embedded:
            rate = cached.embedded / cached.seconds
            print(f"- {name}: {cached.embedded} chunks embedded at {rate:.1f} chunks/s (while indexing)")
    print()


def sweep_tables(bench: Bench, embedder: str = "128") -> None:
    print(f"### Tables: one block, or row groups of N characters (embedder {embedder})\n")
    rows = []
    for size in (None, 300, 500, 800):
        with tables(size), bench.indexed(embedder) as (kb, chunks):
            report = retrieval_report(kb, bench.questions)
        rows.append(row("one block (before)" if size is None else f"row groups <= {size}", chunks, report))
    table(header(), rows)


def sweep_k(bench: Bench, embedder: str = "128") -> None:
    print(f"### Passages per search (hybrid, embedder {embedder}): answer recall@k by kind\n")
    rows = []
    with bench.indexed(embedder) as (kb, _):
        scored = [q for q in bench.questions if q.answerable and q.must_contain]
        texts = {q.line: [h.chunk.text for h in kb.search(q.question, k=12, mode="hybrid")] for q in scored}
    for k in (3, 4, 6, 8, 10, 12):
        cells: list[object] = [k]
        for kind in KINDS:
            of_kind = [q for q in scored if q.kind == kind]
            cells.append(sum(fact_found(texts[q.line][:k], q.must_contain) for q in of_kind) / len(of_kind))
        cells.append(sum(fact_found(texts[q.line][:k], q.must_contain) for q in scored) / len(scored))
        rows.append(cells)
    table(["k", *KINDS, "all"], rows)


SWEEPS: dict[str, Callable[[Bench], None]] = {
    "embedder": sweep_embedder,
    "tables": sweep_tables,
    "k": sweep_k,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=SWEEPS, action="append", help="run only this sweep (repeatable)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="threadwise-passages-") as tmp:
        bench = Bench(Path(tmp))
        scored = [q for q in bench.questions if q.answerable and q.must_contain]
        print(
            f"## {len(scored)} answerable questions with must_contain; answer recall@6 = one analyst search\n"
        )
        for name in args.only or SWEEPS:
            SWEEPS[name](bench)


if __name__ == "__main__":
    main()
