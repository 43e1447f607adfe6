"""Raw throughput of the local embedder (WordLlama l2_supercat, 256-d), on one process.

    .venv/bin/python bench/bench_embed.py            # 20,000 chunk-sized texts + 2,000 queries
    .venv/bin/python bench/bench_embed.py --n 50000

Chunk-sized texts are the synthetic ~1,000-character chunks of bench_search.py; queries are short
questions embedded one at a time, as the bot embeds them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_search import synthetic_chunks, synthetic_queries

from knowledge.embedders import LocalEmbedder


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=20_000, help="chunk-sized texts to embed")
    parser.add_argument("--queries", type=int, default=2_000)
    args = parser.parse_args()

    embedder = LocalEmbedder()
    started = time.perf_counter()
    embedder.embed_query("warm up: load the model")
    print(f"model load: {(time.perf_counter() - started) * 1000:.0f} ms")

    texts = [chunk.text for chunk in synthetic_chunks(args.n)]
    megabytes = sum(len(t.encode()) for t in texts) / 1e6
    for label, batch in (("one call", texts), ("sync-sized calls of 512", None)):
        started = time.perf_counter()
        if batch is not None:
            embedder.embed_documents(batch)
        else:
            for start in range(0, len(texts), 512):
                embedder.embed_documents(texts[start : start + 512])
        took = time.perf_counter() - started
        print(
            f"documents ({label}): {len(texts):,} texts of ~{megabytes * 1e6 / len(texts):,.0f} chars "
            f"in {took:.1f}s = {len(texts) / took:,.0f} texts/s ({megabytes / took:.1f} MB/s)"
        )

    queries = synthetic_queries(args.queries)
    started = time.perf_counter()
    for query in queries:
        embedder.embed_query(query)
    took = time.perf_counter() - started
    print(
        f"queries one at a time: {len(queries) / took:,.0f} queries/s ({took / len(queries) * 1000:.2f} ms each)"
    )


if __name__ == "__main__":
    main()
