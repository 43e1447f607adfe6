"""Embedders: the bundled transformer (the default) and WordLlama models, and the OpenAI client against a
real HTTP server on loopback."""

from __future__ import annotations

import hashlib
import json
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from knowledge.config import KnowledgeConfig
from knowledge.embedders import LocalEmbedder, OpenAIEmbedder, make_embedder
from knowledge.errors import EmbeddingError
from knowledge.transformer_embedder import VOCAB, TransformerEmbedder


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def norm(vector: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


# --- local ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local() -> LocalEmbedder:
    return LocalEmbedder()


def test_wordllama_is_kept_as_an_option(local: LocalEmbedder):
    embedder = make_embedder(KnowledgeConfig(embedder="wordllama"))
    assert (embedder.name, embedder.dimension) == ("local:wordllama-l2-supercat-256", 256)
    vector = local.embed_query("How do I reset my VPN password?")
    assert len(vector) == 256
    assert norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_local_paraphrase_is_closer_than_an_unrelated_text(local: LocalEmbedder):
    leave, deploys = local.embed_documents(
        [
            "Every employee gets 27 days of paid annual leave per calendar year.",
            "Production deploys happen Monday to Thursday between 10:00 and 16:00 UTC.",
        ]
    )
    query = local.embed_query("How much holiday allowance do staff receive?")
    assert cosine(query, leave) > cosine(query, deploys) + 0.15


def test_local_keeps_input_order_and_gives_empty_text_a_zero_vector(local: LocalEmbedder):
    texts = ["a much longer text about the quarterly revenue report and its many figures", "", "short", "   "]
    batch = local.embed_documents(texts)
    assert len(batch) == 4
    for text, vector in zip(texts, batch, strict=True):
        assert vector == pytest.approx(local.embed_query(text), abs=1e-6)
    assert all(not math.isnan(x) for vector in batch for x in vector)
    assert norm(batch[1]) == 0.0
    assert local.embed_documents([]) == []


def test_unknown_local_model_lists_the_supported_ones():
    supported = "supported local models: all-minilm-l6-v2-int8, wordllama-l2-supercat-256"
    with pytest.raises(EmbeddingError, match=supported):
        make_embedder(KnowledgeConfig(embedder="local", embedding_model="all-MiniLM-L6-v2"))


# --- the default: all-MiniLM-L6-v2, int8 ONNX ------------------------------------------------------


@pytest.fixture(scope="module")
def transformer() -> TransformerEmbedder:
    return TransformerEmbedder()


def test_the_default_embedder_is_the_offline_transformer(transformer: TransformerEmbedder):
    embedder = make_embedder(KnowledgeConfig())
    assert isinstance(embedder, TransformerEmbedder)
    assert (embedder.name, embedder.dimension) == ("local:all-minilm-l6-v2-int8", 384)
    vector = transformer.embed_query("How do I reset my VPN password?")
    assert len(vector) == 384 and norm(vector) == pytest.approx(1.0, abs=1e-5)
    vocab = VOCAB.read_text(encoding="utf-8").splitlines()
    assert (len(vocab), vocab[100:104]) == (30522, ["[UNK]", "[CLS]", "[SEP]", "[MASK]"])


PASSAGES = [
    "Every employee gets 27 days of paid annual leave per calendar year.",
    "Production deploys happen Monday to Thursday between 10:00 and 16:00 UTC.",
    "Report a lost or stolen laptop to the security team within one hour.",
    "Meals while travelling are reimbursed up to 60 euros per day.",
]
PARAPHRASES = [  # (question sharing almost no word with its passage, index of that passage)
    ("How much holiday allowance do staff receive?", 0),
    ("When am I allowed to ship code to the live system?", 1),
    ("Someone took my computer from the train. What now?", 2),
    ("What can I spend on food on a work trip?", 3),
]


def test_the_transformer_ranks_each_paraphrase_to_its_passage(transformer: TransformerEmbedder):
    passages = transformer.embed_documents(PASSAGES)
    for question, expected in PARAPHRASES:
        query = transformer.embed_query(question)
        scores = [cosine(query, passage) for passage in passages]
        best = max(range(len(scores)), key=scores.__getitem__)
        assert best == expected, (question, scores)
        assert scores[expected] > sorted(scores)[-2] + 0.1, (question, scores)


def test_the_transformer_keeps_order_truncates_long_texts_and_zeroes_empty_ones(
    transformer: TransformerEmbedder,
):
    long = "The quarterly revenue report lists figures per region. " * 200  # far past 256 word pieces
    texts = [long, "", "short text about leave", "   ", PASSAGES[0]]
    batch = transformer.embed_documents(texts)
    assert len(batch) == 5
    for text, vector in zip(texts, batch, strict=True):
        assert vector == pytest.approx(transformer.embed_query(text), abs=1e-4)  # batching changes nothing
    assert norm(batch[1]) == 0.0 and norm(batch[3]) == 0.0
    assert norm(batch[0]) == pytest.approx(1.0, abs=1e-5)
    assert transformer.embed_documents([]) == []


# --- openai: a small OpenAI-compatible server on loopback ------------------------------------------


def fake_vector(text: str, dimension: int = 8) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [digest[i] / 255 - 0.5 for i in range(dimension)]


Reply = tuple[int, dict, dict[str, str]]  # status, JSON body, headers


class EmbeddingServer:
    """POST /v1/embeddings answered from a script of replies (then 200 with deterministic vectors)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.script: list[Callable[[dict], Reply]] = []
        self.forever: Callable[[dict], Reply] | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                body["authorization"] = self.headers.get("Authorization")
                body["path"] = self.path
                server.requests.append(body)
                if server.script:
                    status, payload, headers = server.script.pop(0)(body)
                elif server.forever:
                    status, payload, headers = server.forever(body)
                else:
                    status, payload, headers = ok(body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> EmbeddingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def ok(body: dict) -> Reply:
    data = [
        {"object": "embedding", "index": i, "embedding": fake_vector(t)} for i, t in enumerate(body["input"])
    ]
    data.reverse()  # the API does not promise order: the client must sort by index
    return 200, {"object": "list", "data": data, "model": body["model"], "usage": {}}, {}


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Callable[[dict], Reply]:
    return lambda body: (status, {"error": {"message": message, "type": "x"}}, headers or {})


@pytest.fixture
def server() -> Iterator[EmbeddingServer]:
    with EmbeddingServer() as running:
        yield running


def normalised(vector: list[float]) -> list[float]:
    length = norm(vector)
    return [x / length for x in vector]


def test_openai_batches_requests_and_learns_the_dimension(server: EmbeddingServer):
    config = KnowledgeConfig(
        embedder="openai",
        embedding_model="nomic-embed-text",
        openai_api_key="sk-test-123",
        openai_base_url=server.base_url,
        embed_batch=2,
    )
    embedder = make_embedder(config)
    assert embedder.name == "openai:nomic-embed-text"
    assert embedder.dimension == 8
    assert server.requests[0]["input"] == ["dimension probe"]

    texts = ["alpha", "beta", "gamma", "delta", "epsilon"]
    vectors = embedder.embed_documents(texts)
    assert vectors == [pytest.approx(normalised(fake_vector(t))) for t in texts]
    batches = [r["input"] for r in server.requests[1:]]
    assert batches == [["alpha", "beta"], ["gamma", "delta"], ["epsilon"]]
    assert all(r["authorization"] == "Bearer sk-test-123" for r in server.requests)
    assert all(r["path"] == "/v1/embeddings" and r["encoding_format"] == "float" for r in server.requests)
    assert embedder.dimension == 8 and len(server.requests) == 4  # the probe ran once


def test_openai_empty_text_is_not_sent(server: EmbeddingServer):
    embedder = OpenAIEmbedder("m", api_key=None, base_url=server.base_url)
    vectors = embedder.embed_documents(["", "kept"])
    assert vectors[0] == [0.0] * 8
    assert vectors[1] == pytest.approx(normalised(fake_vector("kept")))
    assert [r["input"] for r in server.requests] == [["kept"]]
    assert server.requests[0]["authorization"] == "Bearer not-needed"


def test_openai_retries_after_429_honouring_retry_after(server: EmbeddingServer):
    server.script = [error(429, "Rate limit reached", {"Retry-After": "0.3"})]
    embedder = OpenAIEmbedder("m", api_key="k", base_url=server.base_url, retry_budget=10)
    started = time.monotonic()
    vector = embedder.embed_query("hello")
    assert time.monotonic() - started >= 0.3
    assert vector == pytest.approx(normalised(fake_vector("hello")))
    assert [r["input"] for r in server.requests] == [["hello"], ["hello"]]


def test_openai_gives_up_on_a_failing_server_within_its_budget(server: EmbeddingServer):
    server.forever = error(500, "The server had an error\nwhile processing your request")
    embedder = OpenAIEmbedder("m", api_key="sk-secret", base_url=server.base_url, retry_budget=1.5)
    started = time.monotonic()
    with pytest.raises(EmbeddingError) as raised:
        embedder.embed_documents(["hello"])
    assert time.monotonic() - started < 3
    message = str(raised.value)
    assert "\n" not in message and "sk-secret" not in message
    assert message.startswith(f"openai:m at {server.base_url} failed after ")
    assert "HTTP 500: The server had an error while processing your request" in message
    assert len(server.requests) >= 2


def test_openai_does_not_retry_a_refused_key(server: EmbeddingServer):
    server.forever = error(401, "Incorrect API key provided")
    embedder = OpenAIEmbedder("m", api_key="sk-wrong", base_url=server.base_url)
    with pytest.raises(EmbeddingError, match="refused the request: HTTP 401: Incorrect API key provided"):
        embedder.embed_query("hello")
    assert len(server.requests) == 1


def test_openai_unreachable_server_is_an_embedding_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    embedder = OpenAIEmbedder("m", api_key="k", base_url=f"http://127.0.0.1:{port}/v1", retry_budget=1)
    with pytest.raises(EmbeddingError, match=r"failed after \d+ attempts"):
        embedder.embed_query("hello")


def test_openai_needs_a_key_or_a_base_url():
    with pytest.raises(EmbeddingError) as raised:
        make_embedder(KnowledgeConfig(embedder="openai"))
    assert str(raised.value) == (
        "THREADWISE_EMBEDDER=openai needs OPENAI_API_KEY (or OPENAI_BASE_URL for a compatible server)"
    )


def test_openai_known_model_dimension_needs_no_request():
    embedder = make_embedder(KnowledgeConfig(embedder="openai", openai_api_key="sk-x"))
    assert (embedder.name, embedder.dimension) == ("openai:text-embedding-3-small", 1536)


def test_sync_after_the_default_changed_says_to_rebuild_and_how_to_keep_the_old_one(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    """A collection built by the old default (wordllama) is refused by `threadwise sync` with the
    new default, in one message that names both embedders and what to do."""
    import os

    from bot.cli import main
    from knowledge.base import KnowledgeBase
    from tests.corpus import write_corpus

    docs = tmp_path / "docs"
    write_corpus(docs)
    database = f"sqlite:///{tmp_path / 'threadwise.db'}"
    old = KnowledgeConfig(
        docs=(docs,), milvus_uri=str(tmp_path / "milvus.db"), database_url=database, embedder="wordllama"
    )
    kb = KnowledgeBase(old)
    assert kb.sync().ok
    kb.close()

    for name in list(os.environ):
        if name.startswith(("OPENAI_", "THREADWISE_", "MILVUS_")) or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("THREADWISE_DOCS", str(docs))
    monkeypatch.setenv("DATABASE_URL", database)
    (tmp_path / ".env").write_text(f"MILVUS_URI={tmp_path / 'milvus.db'}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    assert main(["sync"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "was built with local:wordllama-l2-supercat-256 (256-d)" in err
    assert "THREADWISE_EMBEDDER is local:all-minilm-l6-v2-int8 (384-d)" in err
    assert "Rebuild it: threadwise sync --rebuild" in err
    assert "keep the old embedder: THREADWISE_EMBEDDER=wordllama" in err

    monkeypatch.setenv("THREADWISE_EMBEDDER", "wordllama")  # the old collection still serves as it was
    assert main(["search", "Gatekeeper reset credentials", "--json"]) == 0
    assert "engineering/vpn.md" in capsys.readouterr().out
