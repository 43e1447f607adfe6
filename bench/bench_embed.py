"""Raw throughput of the local embedders on 1,200-character chunks, each run beside the others.

    .venv/bin/python bench/bench_embed.py              # 256 chunks per embedder + 200 queries
    .venv/bin/python bench/bench_embed.py --n 1000

Embedders: the default transformer (all-MiniLM-L6-v2 int8, onnxruntime with the machine's threads,
batches of 32, truncated at 128 (the default) and 256 word pieces) and WordLlama (the fast static model, the
reference: its figure says how busy the machine was during the run). Chunks are the synthetic text of
bench_search.py cut to 1,200 characters, the default chunk size; queries are short questions embedded
one at a time, as the bot embeds them. Also printed: the time to load each model (first text).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_search import synthetic_chunks, synthetic_queries

from knowledge.embedders import Embedder, LocalEmbedder
from knowledge.transformer_embedder import TransformerEmbedder


def chunks_of(n: int, size: int = 1200) -> list[str]:
    texts = [chunk.text for chunk in synthetic_chunks(n * 2)]
    joined = [(a + " " + b)[:size] for a, b in zip(texts[::2], texts[1::2], strict=True)]
    return joined[:n]


def measure(label: str, embedder: Embedder, texts: list[str], queries: list[str]) -> None:
    started = time.perf_counter()
    embedder.embed_query("warm up: load the model")
    load = time.perf_counter() - started
    started = time.perf_counter()
    embedder.embed_documents(texts)
    took = time.perf_counter() - started
    started = time.perf_counter()
    for query in queries:
        embedder.embed_query(query)
    per_query = (time.perf_counter() - started) / len(queries) * 1000
    print(
        f"| {label} | {load * 1000:.0f} | {len(texts) / took:,.1f} | {per_query:.1f} | "
        f"{10_000 / (len(texts) / took) / 60:.1f} |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=256, help="1,200-character chunks per embedder")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    texts = chunks_of(args.n)
    queries = synthetic_queries(args.queries)
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {len(texts)} chunks of 1,200 chars\n"
    )
    print("| embedder | model load ms | chunks/s | ms per query | minutes per 10k chunks |")
    print("| --- | ---: | ---: | ---: | ---: |")
    measure("wordllama-l2-supercat-256 (reference)", LocalEmbedder(), texts * 10, queries)
    measure("all-MiniLM-L6-v2 int8, 128 pieces (default)", TransformerEmbedder(), texts, queries)
    measure("all-MiniLM-L6-v2 int8, 256 pieces", TransformerEmbedder(max_tokens=256), texts, queries)
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
