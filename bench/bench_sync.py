"""Sync figures: a first sync against the embedder's raw throughput, and a re-sync of an unchanged corpus.

    .venv/bin/python bench/bench_sync.py [--docs 10000]

Targets (issue 3): re-sync of an unchanged 10,000-document corpus under 10 s; a first sync at 80% or
more of the embedder's raw throughput. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from knowledge.base import KnowledgeBase
from knowledge.chunking import chunk_document
from knowledge.config import KnowledgeConfig
from knowledge.readers import read_document

WORDS = [
    *[
        "deploy",
        "rollback",
        "database",
        "failover",
        "incident",
        "pager",
        "runbook",
        "policy",
        "leave",
        "expense",
        "laptop",
    ],
    *[
        "encryption",
        "invoice",
        "approval",
        "tenant",
        "region",
        "latency",
        "quota",
        "backup",
        "restore",
        "certificate",
    ],
    *[
        "rotation",
        "access",
        "review",
        "onboarding",
        "payroll",
        "holiday",
        "travel",
        "budget",
        "vendor",
        "contract",
    ],
    *["retention", "audit", "alert", "dashboard", "metric"],
]


def write_corpus(root: Path, count: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    for i in range(count):
        folder = root / f"team-{i % 40:02}"
        folder.mkdir(exist_ok=True)
        sections = []
        for s in range(rng.randint(1, 3)):
            words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(60, 160)))
            sections.append(f"## Section {s}\n\n{words.capitalize()}.\n")
        (folder / f"doc-{i:05}.md").write_text(f"# Document {i}\n\n" + "\n".join(sections), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        docs = root / "docs"
        docs.mkdir()
        write_corpus(docs, args.docs)
        config = KnowledgeConfig(
            docs=(docs,),
            milvus_uri=str(root / "milvus.db"),
            collection="bench_sync",
            database_url=f"sqlite:///{root / 'bench.db'}",
        )
        kb = KnowledgeBase(config)

        # The embedder's raw throughput on exactly the chunks the sync will embed.
        texts = []
        for path in sorted(docs.rglob("*.md")):
            parsed = read_document(path, 10**8)
            texts += [c.text for c in chunk_document(parsed, doc_id="x", doc_path=path.name, version="v")]
        kb.embedder.embed_documents(texts[:64])  # load the model
        started = time.perf_counter()
        for i in range(0, len(texts), 512):
            kb.embedder.embed_documents(texts[i : i + 512])
        raw = len(texts) / (time.perf_counter() - started)

        first = kb.sync()
        again = kb.sync()
        kb.close()
        through = first.chunks / first.seconds
        print(f"corpus: {args.docs} documents, {first.chunks} chunks")
        print(f"embedder raw throughput: {raw:,.0f} chunks/s")
        print(
            f"first sync: {first.seconds:.1f} s = {through:,.0f} chunks/s "
            f"({100 * through / raw:.1f}% of the embedder's raw throughput; target >= 80%)"
        )
        print(f"re-sync, nothing changed: {again.seconds:.2f} s (target < 10 s); unchanged={again.unchanged}")


if __name__ == "__main__":
    main()
