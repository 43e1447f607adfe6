"""Text -> vectors: a local sentence-transformer (the default, ``knowledge.transformer_embedder``), the
fast static WordLlama model, or an OpenAI-compatible embeddings API.

``THREADWISE_EMBEDDER``: ``local`` (all-MiniLM-L6-v2 int8 on CPU; ``THREADWISE_EMBEDDING_MODEL`` may
name any model of ``LOCAL_MODELS`` or ``TRANSFORMER_MODELS``), ``wordllama`` (256-d static word
vectors: ~50x faster to index, weaker on paraphrases) or ``openai``.

The embedder's ``name`` and ``dimension`` are recorded on the Milvus collection, so a collection built
with one model is never searched with another (see ``knowledge.store``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from knowledge.config import KnowledgeConfig
from knowledge.errors import EmbeddingError
from knowledge.retry_after import retry_after_seconds
from knowledge.transformer_embedder import TRANSFORMER_MODELS, TransformerEmbedder

if TYPE_CHECKING:
    import openai

log = logging.getLogger(__name__)


class Embedder(Protocol):
    name: str  # "local:wordllama-l2-supercat-256", "openai:text-embedding-3-small"
    dimension: int

    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...


EMBEDDERS = ("local", "wordllama", "openai")


def make_embedder(config: KnowledgeConfig) -> Embedder:
    if config.embedder in ("local", "wordllama"):
        if config.model_name in TRANSFORMER_MODELS:
            return TransformerEmbedder(config.model_name, threads=config.embed_threads)
        return LocalEmbedder(config.model_name)
    if config.embedder == "openai":
        return OpenAIEmbedder(
            config.model_name,
            api_key=config.openai_api_key,
            base_url=config.openai_base_url,
            batch_size=config.embed_batch,
        )
    raise EmbeddingError(f"unknown embedder {config.embedder!r}: use one of {', '.join(EMBEDDERS)}")


def _normalised(matrix: np.ndarray) -> list[list[float]]:
    """Unit-length rows; an all-zero row (empty text, no known tokens) stays zero instead of NaN."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.divide(matrix, norms, out=matrix, where=norms > 0)
    return matrix.tolist()


# --- local: WordLlama -----------------------------------------------------------------------------

# model name -> (WordLlama config, dimension). The l2_supercat 256-d weights ship inside the wheel.
LOCAL_MODELS: dict[str, tuple[str, int]] = {"wordllama-l2-supercat-256": ("l2_supercat", 256)}

_local_models: dict[str, object] = {}
_local_lock = threading.Lock()


def _load_wordllama(model: str):
    with _local_lock:
        if model not in _local_models:
            config_name, dim = LOCAL_MODELS[model]
            # wordllama calls logging.basicConfig(level=INFO) on import: keep the root logger as the
            # application configured it.
            root = logging.getLogger()
            handlers, level = root.handlers[:], root.level
            try:
                import wordllama
                from wordllama import WordLlama
            finally:
                root.handlers[:] = handlers
                root.setLevel(level)
            _local_models[model] = WordLlama.load(
                config_name,
                cache_dir=Path(wordllama.__file__).parent,
                disable_download=True,  # never reach for the network: the weights are in the wheel
                dim=dim,
            )
        return _local_models[model]


class LocalEmbedder:
    """WordLlama: averaged token embeddings from an LLM's embedding table. ~16 MB, CPU only, fast."""

    def __init__(self, model: str = "wordllama-l2-supercat-256", batch_size: int = 256):
        if model not in LOCAL_MODELS:
            supported = ", ".join(sorted([*LOCAL_MODELS, *TRANSFORMER_MODELS]))
            raise EmbeddingError(
                f"unknown local embedding model {model!r}; supported local models: {supported} "
                "(or set THREADWISE_EMBEDDER=openai)"
            )
        self.model = model
        self.name = f"local:{model}"
        self.dimension = LOCAL_MODELS[model][1]
        self.batch_size = batch_size

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        model = _load_wordllama(self.model)
        # The tokenizer pads each batch to its longest text: embedding texts in length order keeps
        # the padding (and the memory) small.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors = model.embed([texts[i] for i in order], norm=False, batch_size=self.batch_size)
        result = np.empty_like(vectors)
        result[order] = vectors
        return _normalised(result)

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


# --- openai: any OpenAI-compatible /embeddings endpoint -------------------------------------------

OPENAI_BASE_URL = "https://api.openai.com/v1"
KNOWN_OPENAI_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


class OpenAIEmbedder:
    """POST {base_url}/embeddings in batches, retrying rate limits and server errors within a budget."""

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None,
        base_url: str | None,
        batch_size: int = 64,
        timeout: float = 30.0,
        retry_budget: float = 120.0,
    ):
        if not api_key and not base_url:
            raise EmbeddingError(
                "THREADWISE_EMBEDDER=openai needs OPENAI_API_KEY (or OPENAI_BASE_URL for a compatible server)"
            )
        import openai

        self.model = model
        self.name = f"openai:{model}"
        self.base_url = (base_url or OPENAI_BASE_URL).rstrip("/")
        self.batch_size = max(1, batch_size)
        self.retry_budget = retry_budget
        # The SDK's own retries are off: ours honour Retry-After within a time budget. base_url and
        # api_key are always passed so the SDK never falls back to reading the environment.
        self._client = openai.OpenAI(
            base_url=self.base_url, api_key=api_key or "not-needed", max_retries=0, timeout=timeout
        )
        # Trust the table only for OpenAI itself: a compatible server may serve any size under any name.
        self._dimension: int | None = None if base_url else KNOWN_OPENAI_DIMENSIONS.get(model)
        self._dimension_lock = threading.Lock()

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            with self._dimension_lock:
                if self._dimension is None:
                    self._dimension = len(self._request(["dimension probe"])[0])
        return self._dimension

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            vectors.extend(self._embed_batch(texts[start : start + self.batch_size]))
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        # The API rejects empty strings; an empty text carries no meaning, so it gets a zero vector.
        sent = [i for i, text in enumerate(texts) if text.strip()]
        got = self._request([texts[i] for i in sent]) if sent else []
        dimension = len(got[0]) if got else self.dimension
        if self._dimension is None:
            self._dimension = dimension
        if any(len(vector) != dimension for vector in got) or dimension != self.dimension:
            raise EmbeddingError(
                f"{self.name} at {self.base_url} returned vectors of varying or unexpected dimension "
                f"(expected {self.dimension})"
            )
        matrix = np.zeros((len(texts), dimension), dtype=np.float32)
        if got:
            matrix[sent] = np.asarray(got, dtype=np.float32)
        if not np.isfinite(matrix).all():
            raise EmbeddingError(f"{self.name} at {self.base_url} returned non-finite numbers")
        return _normalised(matrix)

    def _request(self, texts: list[str]) -> list[list[float]]:
        import openai

        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._client.embeddings.create(
                    model=self.model, input=texts, encoding_format="float"
                )
                data = sorted(response.data, key=lambda item: item.index)
                if len(data) != len(texts):
                    raise EmbeddingError(
                        f"{self.name} at {self.base_url} returned {len(data)} vectors for {len(texts)} texts"
                    )
                return [list(item.embedding) for item in data]
            except (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError) as exc:
                reason = _reason(exc)
                delay = _retry_after(exc)
                if delay is None:  # exponential backoff with jitter, so many clients do not retry in step
                    delay = min(30.0, 0.5 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
                elapsed = time.monotonic() - started
                if elapsed + delay > self.retry_budget:
                    raise EmbeddingError(
                        f"{self.name} at {self.base_url} failed after {attempt} attempts "
                        f"in {elapsed:.1f}s: {reason}"
                    ) from None
                log.warning("embedding request failed (%s); retrying in %.1fs", reason, delay)
                time.sleep(delay)
            except openai.APIStatusError as exc:  # 4xx other than 429: retrying will not help
                raise EmbeddingError(
                    f"{self.name} at {self.base_url} refused the request: {_reason(exc)}"
                ) from None
            except openai.OpenAIError as exc:
                raise EmbeddingError(f"{self.name} at {self.base_url} failed: {_reason(exc)}") from None


def _reason(exc: openai.OpenAIError) -> str:
    """One line: the status code and the server's own message, without request details."""
    import openai

    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        detail = body.get("error", body)
        if isinstance(detail, dict) and isinstance(detail.get("message"), str):
            message = detail["message"]
    message = " ".join(message.split())[:300]
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {message}"
    return message


def _retry_after(exc: Exception) -> float | None:
    """Seconds the server asked us to wait (Retry-After / retry-after-ms), if it said."""
    response = getattr(exc, "response", None)
    return retry_after_seconds(response.headers) if response is not None else None
