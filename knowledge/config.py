"""What the knowledge layer needs to know, as a plain value.

The one settings object (``bot.settings.Settings``) builds this at the edge; ``knowledge`` never
reads the environment itself and never imports ``bot``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from knowledge.fusion import SCORE_WEIGHT
from knowledge.passages import PassageSettings
from knowledge.types import Fusion

DEFAULT_LOCAL_MODEL = "all-minilm-l6-v2-int8"  # knowledge.transformer_embedder
WORDLLAMA_MODEL = "wordllama-l2-supercat-256"
DEFAULT_OPENAI_MODEL = "text-embedding-3-small"


@dataclass(frozen=True)
class KnowledgeConfig:
    docs: tuple[Path, ...] = ()
    milvus_uri: str = "./data/milvus.db"
    milvus_token: str | None = field(default=None, repr=False)
    collection: str = "threadwise"
    database_url: str = "sqlite:///./data/threadwise.db"
    embedder: str = "local"  # "local", "wordllama" or "openai"
    embedding_model: str | None = None
    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    max_file_mb: float = 50.0
    chunk_size: int = 1200  # characters, see bench/README.md
    chunk_overlap: int = 150
    fusion: Fusion = "score"  # hybrid: cosine plus weighted BM25 (knowledge/fusion.py), or "rrf"
    fusion_weight: float = SCORE_WEIGHT  # the BM25 route's weight in score fusion
    rrf_k: int = 60
    passages: PassageSettings = field(default_factory=PassageSettings)  # knowledge/passages.py
    embed_batch: int = 64
    embed_threads: int = 0  # onnxruntime threads for the local transformer model; 0: every core
    allow_mass_delete: bool = False  # a sync may remove more than half of a folder's documents

    @property
    def model_name(self) -> str:
        if self.embedding_model:
            return self.embedding_model
        defaults = {"openai": DEFAULT_OPENAI_MODEL, "wordllama": WORDLLAMA_MODEL}
        return defaults.get(self.embedder, DEFAULT_LOCAL_MODEL)

    @property
    def is_lite(self) -> bool:
        """Milvus Lite is a local file; http(s)/tcp URIs are a Milvus server or Zilliz."""
        return "://" not in self.milvus_uri
