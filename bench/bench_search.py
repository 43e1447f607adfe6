"""Search latency of the chunk store at scale: dense, BM25 and hybrid, p50/p95/p99, plus insert rate.

    .venv/bin/python bench/bench_search.py              # 100,000 chunks (takes a while on Milvus Lite)
    .venv/bin/python bench/bench_search.py --n 10000    # a quick look
    .venv/bin/python bench/bench_search.py --uri http://localhost:19530   # against a Milvus server

Builds a throwaway collection of synthetic but document-like chunks (~1,000 characters of workplace
prose each, 5% of them private to one of 20 channels) embedded with the local WordLlama model, then
times ``ChunkStore.search`` as the bot calls it: k=8, scoped to the workspace plus one channel.
Query embedding is timed separately (it is not part of the store's latency).

Targets at 100k chunks: dense p95 < 50 ms, hybrid p95 < 100 ms.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.answering import SEARCH_K as ANALYST_K  # passages per analyst search
from knowledge.base import KnowledgeBase
from knowledge.chunking import chunk_id
from knowledge.config import KnowledgeConfig
from knowledge.embedders import LocalEmbedder
from knowledge.manifest import DocumentRow, Manifest
from knowledge.passages import PassageSettings
from knowledge.store import ChunkStore
from knowledge.types import SEARCH_MODES, WORKSPACE, AccessScope, Chunk

TARGETS_MS = {"dense": 50.0, "hybrid": 100.0}


def manifest_rows(chunks: list[Chunk]) -> list[DocumentRow]:
    """One indexed manifest row per synthetic document, with the version its chunk ids were made from."""
    rows: dict[str, DocumentRow] = {}
    for c in chunks:
        if c.doc_id not in rows:
            rows[c.doc_id] = DocumentRow(
                doc_id=c.doc_id,
                source="folder",
                path=c.doc_path,
                location=c.doc_path,
                title=c.title,
                access=c.access,
                size=0,
                mtime_ns=0,
                byte_hash=version(int(c.doc_id[1:])) + "0" * 48,
                chunk_count=0,
                status="indexed",
                chunking="",
                reason=None,
                last_sync=None,
            )
        rows[c.doc_id].chunk_count += 1
    return list(rows.values())


def _words(text: str) -> list[str]:
    return text.split()


TOPICS = {
    "vpn": "VPN WireGuard tunnel credentials Gatekeeper portal certificate laptop remote reset token",
    "leave": "vacation leave holiday allowance carry-over booking manager calendar absence sabbatical",
    "deploy": "deploy release rollback pipeline canary production freeze hotfix incident window",
    "expenses": "expenses receipts reimbursement travel meals taxi per-diem Ledgerly invoice mileage",
    "oncall": "on-call pager rotation escalation handover runbook alert severity acknowledgement shift",
    "security": "phishing password manager two-factor hardware key audit encryption laptop badge",
    "hiring": "interview candidate referral offer onboarding recruiter scorecard panel headcount",
    "benefits": "pension insurance gym stipend parental wellbeing dental coverage enrolment childcare",
    "office": "desk badge visitor parking kitchen printer meeting room floor locker",
    "data": "warehouse dashboard metrics schema retention backup replication query latency",
    "sales": "revenue forecast quota renewal churn discount contract customer territory",
    "legal": "NDA privacy GDPR processing agreement compliance retention counsel trademark",
}
# Everyday workplace words, most common first: sampled with Zipf-like weights, as real prose is.
COMMON = _words("""
    team request week month process time owner people manager approval policy document update
    change project plan review issue ticket tracker support access account system service tool
    email channel meeting report question answer information details example case step form
    days hours date deadline budget cost price limit rule exception note page section list link
    employee colleague lead director group department company office customer partner vendor
    first next last new current previous standard internal external shared personal urgent
    check confirm submit book cancel approve reject escalate assign schedule track record share
    usually always never often normally quickly early late before after during within between
""")
FUNCTION = _words("the the the a a of of to to and and in in for is is on with that be by this as are")
TEMPLATES = [
    "{F} {t} {c} {v} {F} {c} {c} {p} {F} {t}.",
    "{C} {F} {t} {c} {v} {F} {c} {p} {n} {c}.",
    "If {F} {t} {c} is {c}, {v} {F} {t} {c} {p} {F} {c}.",
    "Ask {F} {c} {p} {F} {t} {c} before you {v} {F} {c}.",
    "{C} {t} {c} {v} {n} {c} {p} {F} {c} {c}.",
]
VERBS = _words("check confirm submit book cancel approve reject escalate assign schedule track record share")
PREPS = _words("for with before after during within about from")
_CUMULATIVE = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(COMMON))))


def version(doc: int) -> str:
    """A synthetic document's indexed version, as sync records it (the first 16 hex of its hash)."""
    return f"{doc:016x}"


def synthetic_chunks(n: int, seed: int = 7) -> list[Chunk]:
    """n chunks of ~1,000 characters, grouped ~20 to a document, each mostly about one topic; 5% of
    the documents are private to one of 20 channels. Ids are made as sync makes them, so the second
    stage can fetch a chunk's neighbours."""
    rng = random.Random(seed)
    topics = list(TOPICS)
    chunks = []
    private_docs = random.Random(seed + 1)
    access = WORKSPACE
    for i in range(n):
        doc = i // 20
        if i % 20 == 0:
            private = private_docs.random() < 0.05
            access = f"channel:C{private_docs.randrange(20):04d}" if private else WORKSPACE
        topic = topics[doc % len(topics)]
        words = TOPICS[topic].split() * 3 + TOPICS[rng.choice(topics)].split()
        sentences: list[str] = []
        while sum(len(s) + 1 for s in sentences) < 1000:
            sentence = rng.choice(TEMPLATES).format_map(_Filler(rng, words))
            sentences.append(sentence[0].upper() + sentence[1:])
        chunks.append(
            Chunk(
                chunk_id=chunk_id(f"d{doc:07d}", version(doc), i % 20),
                doc_id=f"d{doc:07d}",
                doc_path=f"docs/{topic}/doc-{doc}.md",
                title=f"{topic.title()} handbook {doc}",
                heading=f"{topic.title()} > Section {i % 20}",
                page=None,
                position=i % 20,
                text=" ".join(sentences),
                access=access,
            )
        )
    return chunks


class _Filler(dict):
    """Template slots: F function word, t topic word, c/C common word, v verb, p preposition, n number."""

    def __init__(self, rng: random.Random, topic_words: list[str]):
        super().__init__()
        self.rng, self.topic_words = rng, topic_words

    def __missing__(self, slot: str) -> str:
        rng = self.rng
        if slot == "F":
            return rng.choice(FUNCTION)
        if slot == "t":
            return rng.choice(self.topic_words)
        if slot in "cC":
            return rng.choices(COMMON, cum_weights=_CUMULATIVE)[0]
        if slot == "v":
            return rng.choice(VERBS)
        if slot == "p":
            return rng.choice(PREPS)
        return str(rng.randint(2, 90))


def synthetic_queries(count: int, seed: int = 11) -> list[str]:
    """Half keyword queries, half questions as people type them into Slack."""
    rng = random.Random(seed)
    queries = []
    for _ in range(count):
        words = TOPICS[rng.choice(list(TOPICS))].split()
        if rng.random() < 0.5:
            queries.append(" ".join(rng.sample(words, rng.randint(2, 3))))
        else:
            first, second = rng.sample(words, 2)
            common = rng.choices(COMMON, cum_weights=_CUMULATIVE)[0]
            queries.append(f"how do I {rng.choice(VERBS)} the {first} {common} for {second}?")
    return queries


def settle(limit: float = 900.0) -> None:
    """Wait until this process stops using CPU (Milvus Lite's background work runs in-process)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = time.process_time()
        time.sleep(2.0)
        if time.process_time() - before < 0.2:
            return


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000, help="chunks in the collection (default 100000)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument(
        "--batch", type=int, default=512, help="chunks per upsert() call, as sync writes them"
    )
    parser.add_argument("--uri", help="Milvus URI (default: a Milvus Lite file in a temporary folder)")
    parser.add_argument("--token", default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tw-bench-") as tmp:
        uri = args.uri or str(Path(tmp) / "milvus.db")
        config = KnowledgeConfig(milvus_uri=uri, milvus_token=args.token, collection="bench_search")
        embedder = LocalEmbedder()

        started = time.perf_counter()
        chunks = synthetic_chunks(args.n)
        print(f"generated {len(chunks):,} chunks in {time.perf_counter() - started:.1f}s")
        started = time.perf_counter()
        vectors = embedder.embed_documents([c.text for c in chunks])
        took = time.perf_counter() - started
        print(f"embedded them in {took:.1f}s ({len(chunks) / took:,.0f} chunks/s)")

        store = ChunkStore(config, embedder.name, embedder.dimension, connect_timeout=30)
        store.drop()
        store.open()
        started = time.perf_counter()
        step = args.batch
        for start in range(0, len(chunks), step):
            store.upsert(chunks[start : start + step], vectors[start : start + step])
        took = time.perf_counter() - started
        print(f"inserted in {took:.1f}s ({len(chunks) / took:,.0f} chunks/s); count = {store.count():,}")

        if config.is_lite:
            # Milvus Lite compacts segments and builds their HNSW indexes on a background thread of
            # this process after the writes: measure searches once that work is done.
            started = time.perf_counter()
            settle()
            print(
                f"background compaction and index builds finished {time.perf_counter() - started:.0f}s later"
            )

        queries = synthetic_queries(args.queries)
        started = time.perf_counter()
        query_vectors = [embedder.embed_query(q) for q in queries]
        per_query = (time.perf_counter() - started) / len(queries) * 1000
        print(f"query embedding: {per_query:.2f} ms per query")

        scope = AccessScope.for_channel("C0003", private=True)
        results: dict[str, list[float]] = {}
        for mode in SEARCH_MODES:
            for q, v in list(zip(queries, query_vectors, strict=True))[:10]:  # warm caches and indexes
                store.search(q, v, k=args.k, mode=mode, scope=scope)
            timings = []
            empty = 0
            for q, v in zip(queries, query_vectors, strict=True):
                started = time.perf_counter()
                hits = store.search(q, v, k=args.k, mode=mode, scope=scope)
                timings.append((time.perf_counter() - started) * 1000)
                empty += not hits
            results[mode] = timings
            if empty:
                print(f"  note: {empty} {mode} queries returned nothing")

        # As the analyst searches: KnowledgeBase.search, query embedding and the second stage included,
        # beside the same search without the second stage (the reference, measured in the same run).
        database_url = f"sqlite:///{Path(tmp) / 'manifest.db'}"
        manifest = Manifest(database_url)
        manifest.put_many(manifest_rows(chunks))
        manifest.close()
        kb = KnowledgeBase(replace(config, database_url=database_url), embedder=embedder)
        first_stage = PassageSettings(neighbours=0, dedup=1.0, fold_gap=0)
        base = kb.config
        variants = {  # the default fusion and rrf (the default before: shallower routes), interleaved
            "first stage": replace(base, passages=first_stage),
            "+ second stage": base,
            "+ second stage, rrf": replace(base, fusion="rrf"),
        }
        end_to_end: dict[str, list[float]] = {label: [] for label in variants}
        for warm in (True, False):
            for q in queries[:10] if warm else queries:
                for label, variant in variants.items():
                    kb.config = kb.store.config = variant  # the store reads the fusion at each search
                    started = time.perf_counter()
                    kb.search(q, k=ANALYST_K, scope=scope)
                    if not warm:
                        end_to_end[label].append((time.perf_counter() - started) * 1000)
        kb.close()

        doc_ids = sorted({c.doc_id for c in chunks})
        picked = random.Random(5).sample(doc_ids, min(50, len(doc_ids)))
        lookups = []
        for doc_id in picked:
            started = time.perf_counter()
            store.chunk_ids(doc_id)
            lookups.append((time.perf_counter() - started) * 1000)

        # A sync round (512 chunks, ~25 documents) prunes old versions in one batched call.
        by_doc: dict[str, set[str]] = {}
        for c in chunks:
            by_doc.setdefault(c.doc_id, set()).add(c.chunk_id)
        rounds = []
        for start in range(0, 125, 25):
            keep = {doc_id: by_doc[doc_id] for doc_id in picked[start % len(picked) :][:25]}
            started = time.perf_counter()
            store.delete_documents_except(keep)  # keeps every chunk: measures the lookup
            rounds.append((time.perf_counter() - started) * 1000)

        where = "Milvus Lite" if config.is_lite else "Milvus server"
        print(f"\nsearch latency, {args.n:,} chunks, k={args.k}, {len(queries)} queries, {where} (ms):")
        print(f"{'mode':8} {'p50':>8} {'p95':>8} {'p99':>8} {'mean':>8}  target p95")
        for mode, timings in results.items():
            p95 = percentile(timings, 95)
            target = TARGETS_MS.get(mode)
            verdict = "" if target is None else f"< {target:g}  {'ok' if p95 < target else 'MISSED'}"
            print(
                f"{mode:8} {percentile(timings, 50):8.1f} {p95:8.1f} {percentile(timings, 99):8.1f} "
                f"{statistics.mean(timings):8.1f}  {verdict}"
            )
        print(
            f"\nKnowledgeBase.search as the analyst runs it (k={ANALYST_K}, hybrid, {config.fusion} fusion "
            "unless named, query embedding included), ms:"
        )
        for label, timings in end_to_end.items():
            p95 = percentile(timings, 95)
            verdict = f"< 100  {'ok' if p95 < 100 else 'MISSED'}"
            print(
                f"{label:21} {percentile(timings, 50):8.1f} {p95:8.1f} {percentile(timings, 99):8.1f} "
                f"{statistics.mean(timings):8.1f}  {verdict}"
            )
        print(
            f"chunk_ids(doc_id) (sync runs one per changed document): p50 {percentile(lookups, 50):.1f} ms, "
            f"p95 {percentile(lookups, 95):.1f} ms"
        )
        print(
            f"delete_documents_except for 25 documents (one sync round): p50 {percentile(rounds, 50):.1f} ms"
        )
        if args.uri:
            store.drop()
        store.close()


if __name__ == "__main__":
    main()
