"""The chunk store against real Milvus Lite files (one per test) and a real Milvus server process
(``milvus-lite server``, one collection per test), with the real WordLlama embedder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from knowledge.config import KnowledgeConfig
from knowledge.embedders import LocalEmbedder
from knowledge.errors import EmbedderMismatch, StoreUnavailable
from knowledge.store import ChunkStore, render_filter
from knowledge.types import SEARCH_MODES, WORKSPACE, AccessScope, Chunk
from tests.milvus_server import lite_and_server_uri  # noqa: F401  (every store test on both)

REPO = Path(__file__).resolve().parents[1]
PRIVATE = AccessScope.for_channel("C0PRIVATE", private=True)

TEXTS = {
    "vpn-reset": "If you forgot your VPN password, open the Gatekeeper portal and choose Reset credentials. "
    "The reset link expires after 20 minutes.",
    "vpn-clients": "We support the WireGuard client on macOS, Windows and Linux.",
    "leave": "Every employee gets 27 days of paid annual leave per calendar year. "
    "Unused days can be carried over until the end of March.",
    "deploys": "Production deploys happen Monday to Thursday between 10:00 and 16:00 UTC. "
    "No deploys on Fridays unless the incident commander approves a hotfix.",
    "expenses": "Meals while travelling are reimbursed up to 60 euros per day. "
    "Submit receipts in the Ledgerly app within 30 days of the purchase.",
    "private": "The Zanzibar acquisition closes in the fourth quarter; keep this confidential.",
}
DOC_OF = {
    "vpn-reset": "vpn",
    "vpn-clients": "vpn",
    "leave": "hr",
    "deploys": "eng",
    "expenses": "hr",
    "private": "ma",
}


def chunk(key: str, text: str | None = None, *, version: str = "v1") -> Chunk:
    doc = DOC_OF[key]
    return Chunk(
        chunk_id=f"{doc}-{key}-{version}",
        doc_id=doc,
        doc_path=f"docs/{doc}.md",
        title=doc.upper(),
        heading=f"{doc.upper()} > {key}",
        page=3 if key == "leave" else None,
        position=list(TEXTS).index(key),
        text=text or TEXTS[key],
        access="channel:C0PRIVATE" if key == "private" else WORKSPACE,
        url=f"https://wiki.example.com/{doc}" if doc == "vpn" else "",
    )


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    return LocalEmbedder()


def config_for(tmp_path: Path, **overrides) -> KnowledgeConfig:
    """A Milvus Lite file's config (for what only Lite has: a file another process may hold)."""
    return KnowledgeConfig(milvus_uri=str(tmp_path / "milvus.db"), collection="chunks", **overrides)


@pytest.fixture
def config(milvus_uri: str, collection: str) -> KnowledgeConfig:
    """This test's Milvus: a Lite file, or its own collection on the server."""
    return KnowledgeConfig(milvus_uri=milvus_uri, collection=collection)


@pytest.fixture
def store(config: KnowledgeConfig, embedder: LocalEmbedder) -> Iterator[ChunkStore]:
    chunk_store = ChunkStore(config, embedder.name, embedder.dimension)
    chunk_store.open()
    yield chunk_store
    chunk_store.close()


@pytest.fixture
def filled(store: ChunkStore, embedder: LocalEmbedder) -> ChunkStore:
    chunks = [chunk(key) for key in TEXTS]
    store.upsert(chunks, embedder.embed_documents([c.text for c in chunks]))
    return store


def search(store: ChunkStore, embedder: LocalEmbedder, text: str, mode: str, scope=None, **kw):
    vector = embedder.embed_query(text) if mode != "bm25" else None
    return store.search(text, vector, mode=mode, scope=scope or AccessScope.workspace(), **kw)


def ids(hits) -> list[str]:
    return [hit.chunk.chunk_id for hit in hits]


def test_bm25_finds_a_keyword(filled: ChunkStore, embedder: LocalEmbedder):
    hits = search(filled, embedder, "WireGuard", "bm25")
    assert ids(hits) == ["vpn-vpn-clients-v1"]
    assert hits[0].rank == 1 and hits[0].score > 0
    # "days" is twice in the leave policy, once in the expense policy: higher BM25 first
    hits = search(filled, embedder, "days", "bm25")
    assert ids(hits) == ["hr-leave-v1", "hr-expenses-v1"]
    assert hits[0].score > hits[1].score > 0 and [h.rank for h in hits] == [1, 2]
    # stop words neither match nor score: a question finds what its keywords find
    question = search(filled, embedder, "How many days do I have, and what are they for?", "bm25")
    assert [(h.chunk.chunk_id, h.score) for h in question] == [(h.chunk.chunk_id, h.score) for h in hits]


def test_dense_finds_a_paraphrase_that_bm25_misses(filled: ChunkStore, embedder: LocalEmbedder):
    question = "How much holiday allowance do staff receive?"  # no word in common with the answer
    assert "hr-leave-v1" not in ids(search(filled, embedder, question, "bm25"))
    hits = search(filled, embedder, question, "dense", k=3)
    assert hits[0].chunk == chunk("leave")  # every field comes back as written, page included
    assert [h.rank for h in hits] == [1, 2, 3]
    assert hits[0].score > hits[1].score >= hits[2].score


def test_hybrid_fuses_keywords_and_meaning(filled: ChunkStore, embedder: LocalEmbedder):
    hits = search(filled, embedder, "lost my Gatekeeper login secret", "hybrid", k=4)
    assert hits[0].chunk.chunk_id == "vpn-vpn-reset-v1"
    assert hits[0].chunk.url == "https://wiki.example.com/vpn" and hits[0].chunk.page is None
    # first in both routes: its cosine plus the whole BM25 weight
    cosine = search(filled, embedder, "lost my Gatekeeper login secret", "dense", k=1)[0].score
    assert hits[0].score == pytest.approx(cosine + filled.config.fusion_weight, rel=1e-3)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    # RRF, still selectable: a chunk first in both routes scores 2/(k+1)
    filled.config = replace(filled.config, fusion="rrf")
    hits = search(filled, embedder, "lost my Gatekeeper login secret", "hybrid", k=4)
    assert hits[0].chunk.chunk_id == "vpn-vpn-reset-v1"
    assert hits[0].score == pytest.approx(2 / (filled.config.rrf_k + 1), rel=1e-3)


def test_hybrid_keeps_the_clear_answer_ahead_of_a_chunk_sharing_generic_words(
    filled: ChunkStore, embedder: LocalEmbedder
):
    # Only the laptop policy shares words with the question ("staff", "receive"); the embedding model
    # is clearly surest of the leave policy. Ranks alone (RRF) put the laptop policy first: the only
    # BM25 hit, second for dense. By score, a weak keyword match does not outweigh the meaning.
    laptops = replace(
        chunk("vpn-clients", "Staff receive a new laptop every three years and may keep the old one."),
        chunk_id="it-laptops-v1",
        doc_id="it",
        doc_path="docs/it.md",
    )
    filled.upsert([laptops], embedder.embed_documents([laptops.text]))
    question = "How much holiday allowance do staff receive?"
    assert ids(search(filled, embedder, question, "bm25")) == ["it-laptops-v1"]
    assert ids(search(filled, embedder, question, "dense", k=2)) == ["hr-leave-v1", "it-laptops-v1"]
    assert ids(search(filled, embedder, question, "hybrid", k=2)) == ["hr-leave-v1", "it-laptops-v1"]
    filled.config = replace(filled.config, fusion="rrf")
    assert ids(search(filled, embedder, question, "hybrid", k=2)) == ["it-laptops-v1", "hr-leave-v1"]


@pytest.mark.parametrize("mode", SEARCH_MODES)
def test_access_filter_hides_a_private_chunk(filled: ChunkStore, embedder: LocalEmbedder, mode: str):
    question = "Zanzibar acquisition"
    assert "ma-private-v1" not in ids(search(filled, embedder, question, mode, k=10))
    assert ids(search(filled, embedder, question, mode, PRIVATE))[0] == "ma-private-v1"
    assert search(filled, embedder, question, mode, AccessScope(())) == []


@pytest.mark.parametrize("mode", SEARCH_MODES)
def test_search_can_be_limited_to_documents(filled: ChunkStore, embedder: LocalEmbedder, mode: str):
    hits = search(filled, embedder, "VPN password reset deploys", mode, k=10, doc_ids=["eng"])
    assert {h.chunk.doc_id for h in hits} == {"eng"}


HOSTILE = [
    'workspace"] or access != "',
    "workspace' or 1==1 or '",
    "channel:C1\n",
    "",
    "x" * 201,
    "works pace",
    "{p0}",
    "wörkspace",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_filter_values_are_refused(filled: ChunkStore, embedder: LocalEmbedder, value: str):
    for mode in SEARCH_MODES:
        with pytest.raises(ValueError, match="invalid access"):
            search(filled, embedder, "password", mode, AccessScope((WORKSPACE, value)))
        with pytest.raises(ValueError, match="invalid doc_id"):
            search(filled, embedder, "password", mode, doc_ids=["vpn", value])
    with pytest.raises(ValueError):
        filled.delete_document(value)
    with pytest.raises(ValueError):
        filled.delete_document("vpn", keep=[value])
    with pytest.raises(ValueError):
        filled.delete_documents(["hr", value])
    with pytest.raises(ValueError):
        filled.upsert(
            [chunk("leave").__class__(**{**chunk("leave").to_dict(), "access": value})], [[0.1] * 256]
        )
    assert filled.count() == len(TEXTS)  # nothing was deleted or written


def test_filters_are_escaped_literals_for_every_milvus():
    conditions = [("access", "in", ["workspace", "channel:C1"]), ("doc_id", "==", "a.b-c_d")]
    assert render_filter(conditions) == 'access in ["workspace", "channel:C1"] and doc_id == "a.b-c_d"'
    assert render_filter([("doc_id", "not in", ["x"])]) == 'doc_id not in ["x"]'
    assert render_filter([]) == ""
    with pytest.raises(ValueError):
        render_filter([("text", "==", "x")])
    with pytest.raises(ValueError):
        render_filter([("doc_id", "or", "x")])
    with pytest.raises(ValueError):
        render_filter([("doc_id", "in", "x")])  # one string where a list belongs


def test_delete_document_keeps_the_new_version(filled: ChunkStore, embedder: LocalEmbedder):
    new = [chunk("vpn-reset", "Reset your VPN password in the Portcullis portal.", version="v2")]
    filled.upsert(new, embedder.embed_documents([c.text for c in new]))
    assert filled.count("vpn") == 3

    assert filled.delete_document("vpn", keep={"vpn-vpn-reset-v2"}) == 2
    assert filled.chunk_ids("vpn") == {"vpn-vpn-reset-v2"}
    assert filled.count() == len(TEXTS) - 1
    assert ids(search(filled, embedder, "Gatekeeper WireGuard Portcullis", "bm25")) == ["vpn-vpn-reset-v2"]

    assert filled.delete_documents(["hr", "eng", "never-indexed"]) == 3
    assert filled.count("hr") == 0 and filled.count("eng") == 0 and filled.count("ma") == 1


def test_many_documents_are_pruned_in_one_call(filled: ChunkStore, embedder: LocalEmbedder):
    new = [chunk("vpn-reset", "Reset your VPN password in the Portcullis portal.", version="v2")]
    filled.upsert(new, embedder.embed_documents([c.text for c in new]))
    removed = filled.delete_documents_except({"vpn": ["vpn-vpn-reset-v2"], "hr": {"hr-leave-v1"}, "gone": ()})
    assert removed == 3
    assert filled.chunk_ids("vpn") == {"vpn-vpn-reset-v2"} and filled.chunk_ids("hr") == {"hr-leave-v1"}
    assert filled.count() == len(TEXTS) - 2
    with pytest.raises(ValueError, match="not one string"):
        filled.delete_documents_except({"eng": "eng-deploys-v1"})
    assert filled.count("eng") == 1


def test_upsert_is_idempotent_and_replaces_by_id(filled: ChunkStore, embedder: LocalEmbedder):
    again = [chunk(key) for key in TEXTS]
    filled.upsert(again, embedder.embed_documents([c.text for c in again]))
    assert filled.count() == len(TEXTS)

    edited = [chunk("deploys", "Deploys are frozen during the Kestrel migration.")]
    filled.upsert(edited, embedder.embed_documents([edited[0].text]))
    assert filled.count() == len(TEXTS)
    assert ids(search(filled, embedder, "Kestrel", "bm25")) == ["eng-deploys-v1"]
    assert search(filled, embedder, "Thursday hotfix", "bm25") == []


def test_bad_vectors_write_nothing(store: ChunkStore):
    one = [chunk("leave")]
    with pytest.raises(ValueError, match="1 chunks but 2 vectors"):
        store.upsert(one, [[0.1] * 256, [0.1] * 256])
    with pytest.raises(ValueError, match="256-d"):
        store.upsert(one, [[0.1] * 255])
    with pytest.raises(ValueError, match="NaN"):
        store.upsert(one, [[float("nan")] * 256])
    assert store.count() == 0


def test_upsert_batches_many_rows_and_survives_a_reopen(config: KnowledgeConfig, store: ChunkStore):
    many = [
        Chunk(f"c{i:05d}", f"doc{i % 7}", f"docs/{i % 7}.md", "t", "h", None, i, f"row number {i} of many")
        for i in range(1203)
    ]
    vector = [1.0] + [0.0] * 255
    store.upsert(many, [vector] * len(many))
    assert store.count() == 1203 and len(store.chunk_ids("doc3")) == 172
    store.close()

    reopened = ChunkStore(config, store.embedder_name, store.dimension)
    reopened.open()
    try:
        assert reopened.count() == 1203
        hits = reopened.search("number 1202", None, mode="bm25", scope=AccessScope.workspace(), k=1)
        assert ids(hits) == ["c01202"]
    finally:
        reopened.close()


def test_another_embedder_is_refused_until_rebuilt(config: KnowledgeConfig, filled: ChunkStore):
    filled.close()
    other = ChunkStore(config, "openai:text-embedding-3-small", 1536)
    with pytest.raises(EmbedderMismatch) as raised:
        other.open()
    assert str(raised.value) == (
        f"collection '{config.collection}' was built with local:wordllama-l2-supercat-256 (256-d); "
        "THREADWISE_EMBEDDER is openai:text-embedding-3-small (1536-d). Rebuild it: threadwise sync --rebuild"
        " (or keep the old embedder: THREADWISE_EMBEDDER=wordllama)"
    )
    other.drop()
    other.open()
    assert other.count() == 0
    other.close()


def test_a_lite_file_held_by_another_process(tmp_path: Path, embedder: LocalEmbedder):
    config = config_for(tmp_path / "data")  # the parent folder does not exist yet: it is created
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, config.milvus_uri],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        blocked = ChunkStore(config, embedder.name, embedder.dimension)
        with pytest.raises(StoreUnavailable) as raised:
            blocked.open()
        assert str(raised.value) == (
            f"Milvus Lite file {config.milvus_uri} is open in another process "
            "(a running `threadwise serve`?). Stop it, or point MILVUS_URI at a Milvus server."
        )
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert holder.returncode == 0
    with ChunkStore(config, embedder.name, embedder.dimension) as store:  # released: it opens, data intact
        assert store.count() == 1


HOLDER = textwrap.dedent(
    """
    import sys
    from knowledge.config import KnowledgeConfig
    from knowledge.store import ChunkStore
    from knowledge.types import Chunk

    store = ChunkStore(KnowledgeConfig(milvus_uri=sys.argv[1], collection="chunks"),
                       "local:wordllama-l2-supercat-256", 256)
    store.open()
    store.upsert([Chunk("c1", "d1", "a.md", "A", "", None, 0, "held")], [[1.0] + [0.0] * 255])
    print("ready", flush=True)
    sys.stdin.read()
    store.close()
    """
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_server_is_reported_without_secrets():
    config = KnowledgeConfig(
        milvus_uri=f"http://admin:hunter2@127.0.0.1:{free_port()}", milvus_token="tok-secret"
    )
    store = ChunkStore(config, "local:x", 256, connect_timeout=2)
    with pytest.raises(StoreUnavailable) as raised:
        store.open()
    message = str(raised.value)
    assert message.startswith(
        f"cannot reach Milvus at http://127.0.0.1:{config.milvus_uri.rsplit(':', 1)[1]} "
    )
    assert "hunter2" not in message and "tok-secret" not in message and "admin" not in message


def test_a_silent_server_times_out_quickly():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    store = ChunkStore(
        KnowledgeConfig(milvus_uri=f"tcp://127.0.0.1:{listener.getsockname()[1]}"), "x", 8, connect_timeout=1
    )
    started = time.monotonic()
    try:
        with pytest.raises(
            StoreUnavailable,
            match=r"cannot reach Milvus at tcp://127\.0\.0\.1:\d+ \(refused, or no answer in 1s\)",
        ):
            store.open()
        assert time.monotonic() - started < 5
    finally:
        listener.close()
        for conn in accepted:
            conn.close()


def test_ping_answers_while_open(store: ChunkStore):
    store.ping()
    store.close()
    with pytest.raises(StoreUnavailable):
        store.ping()


def test_a_store_keeps_its_own_connection_to_a_server_other_clients_use(
    milvus_server, embedder: LocalEmbedder, tmp_path: Path
):
    """pymilvus shares one channel per address and keeps the first client's gRPC options: a client made
    with its defaults (10 s keepalive pings, which `milvus-lite server` answers with GOAWAY) must not
    impose them on the store, and the store's channel goes away with it."""
    from pymilvus import MilvusClient
    from pymilvus.client.connection_manager import ConnectionManager

    def dedicated() -> int:
        return ConnectionManager.get_instance().get_stats()["dedicated_connections"]

    foreign = MilvusClient(milvus_server.uri, timeout=5)  # pymilvus's defaults, shared by address
    try:
        before = dedicated()
        store = ChunkStore(
            KnowledgeConfig(docs=(), milvus_uri=milvus_server.uri, collection=f"own_{uuid.uuid4().hex[:12]}"),
            embedder.name,
            embedder.dimension,
        )
        store.open()
        assert dedicated() == before + 1
        leave = chunk("leave")
        store.upsert([leave], embedder.embed_documents([leave.text]))
        assert ids(search(store, embedder, "paid annual leave", "hybrid")) == ["hr-leave-v1"]
        store.close()
        assert dedicated() == before
    finally:
        foreign.close()
