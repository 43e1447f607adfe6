"""The one settings object: read from the environment and an optional ``.env``, validated at start.

Built once by the command (``bot.cli``) and passed down. Nothing else reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from knowledge.config import KnowledgeConfig
from knowledge.fusion import SCORE_WEIGHT
from knowledge.passages import PassageSettings


def _env(name: str, **kw):
    """A field read from exactly the environment variable ``name`` (and settable by field name)."""
    return Field(validation_alias=AliasChoices(name, name.lower()), **kw)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # Knowledge
    docs: Annotated[list[Path], NoDecode] = _env("THREADWISE_DOCS", default_factory=list)
    milvus_uri: str = _env("MILVUS_URI", default="./data/milvus.db")
    milvus_token: SecretStr | None = _env("MILVUS_TOKEN", default=None)
    milvus_collection: str = _env(
        "MILVUS_COLLECTION", default="threadwise", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$"
    )
    database_url: str = _env("DATABASE_URL", default="sqlite:///./data/threadwise.db")
    embedder: Literal["local", "wordllama", "openai"] = _env("THREADWISE_EMBEDDER", default="local")
    embedding_model: str | None = _env("THREADWISE_EMBEDDING_MODEL", default=None)
    openai_api_key: SecretStr | None = _env("OPENAI_API_KEY", default=None)
    openai_base_url: str | None = _env("OPENAI_BASE_URL", default=None)
    sync_minutes: float = _env("THREADWISE_SYNC_MINUTES", default=15, ge=0)
    max_file_mb: float = _env("THREADWISE_MAX_FILE_MB", default=50, gt=0)
    chunk_size: int = _env("THREADWISE_CHUNK_SIZE", default=1200, ge=200, le=8000)
    chunk_overlap: int = _env("THREADWISE_CHUNK_OVERLAP", default=150, ge=0, le=2000)
    # How hybrid search fuses its two routes (knowledge/fusion.py); measured in bench/README.md.
    fusion: Literal["score", "rrf"] = _env("THREADWISE_FUSION", default="score")
    fusion_weight: float = _env("THREADWISE_FUSION_WEIGHT", default=SCORE_WEIGHT, ge=0, le=10)
    # The second stage of a search (knowledge/passages.py); defaults measured in bench/README.md.
    passage_neighbours: int = _env("THREADWISE_PASSAGE_NEIGHBOURS", default=1, ge=0, le=3)
    passage_fold: int = _env("THREADWISE_PASSAGE_FOLD", default=2, ge=0, le=4)
    passage_dedup: float = _env("THREADWISE_PASSAGE_DEDUP", default=0.8, gt=0, le=1)
    passage_backward: bool = _env("THREADWISE_PASSAGE_BACKWARD", default=True)
    # Off: a sync refuses to remove more than half of a folder's documents (an unmounted volume).
    embed_threads: int = _env("THREADWISE_EMBED_THREADS", default=0, ge=0, le=64)
    allow_mass_delete: bool = _env("THREADWISE_ALLOW_MASS_DELETE", default=False)

    # The agent team
    model: str = _env("THREADWISE_MODEL", default="gpt-4o-mini")
    analyst_model: str | None = _env("THREADWISE_ANALYST_MODEL", default=None)
    writer_model: str | None = _env("THREADWISE_WRITER_MODEL", default=None)
    history_turns: int = _env("THREADWISE_HISTORY_TURNS", default=6, ge=0, le=100)
    model_timeout: float = _env("THREADWISE_MODEL_TIMEOUT", default=60, gt=0)
    # Retries of one model request on 429/5xx/connection errors (the OpenAI SDK's, honouring Retry-After).
    model_retries: int = _env("THREADWISE_MODEL_RETRIES", default=3, ge=0, le=10)
    # "search": reply with the best passages and their sources, no model (also the case without one).
    answer_mode: Literal["team", "search"] = _env("THREADWISE_ANSWER_MODE", default="team")

    # Slack. Tokens are checked when `serve` / `socket` start, not here: other commands run without them.
    slack_bot_token: SecretStr | None = _env("SLACK_BOT_TOKEN", default=None)
    slack_signing_secret: SecretStr | None = _env("SLACK_SIGNING_SECRET", default=None)
    slack_app_token: SecretStr | None = _env("SLACK_APP_TOKEN", default=None)
    slack_api_url: str = _env("SLACK_API_URL", default="https://slack.com/api/")
    slack_allow_bots: bool = _env("SLACK_ALLOW_BOTS", default=False)
    slack_streaming: bool = _env("SLACK_STREAMING", default=True)
    host: str = _env("THREADWISE_HOST", default="0.0.0.0")
    port: int = _env("THREADWISE_PORT", default=3000, ge=1, le=65535)
    max_concurrent_answers: int = _env("THREADWISE_MAX_CONCURRENT_ANSWERS", default=8, ge=1, le=256)
    # Answer worker processes `serve` / `socket` start beside the front; 0 when deployed on their own.
    workers: int = _env("THREADWISE_WORKERS", default=2, ge=0, le=64)
    # How much an answer worker process lowers its own CPU priority (Unix nice increment, 0: none), so
    # that on a machine it shares with the front, a wave of answers being written never delays the
    # acknowledgements Slack waits for (bench/README.md, "Slack acknowledgements").
    worker_nice: int = _env("THREADWISE_WORKER_NICE", default=10, ge=0, le=19)
    # A worker deployed on its own (not started by a front, which shows its counters) serves GET
    # /metrics on this port for Prometheus; unset: none.
    worker_metrics_port: int | None = _env("THREADWISE_WORKER_METRICS_PORT", default=None, ge=1, le=65535)
    answer_timeout: float = _env("THREADWISE_ANSWER_TIMEOUT", default=180, gt=0)
    claim_lease: float = _env("THREADWISE_CLAIM_LEASE", default=30, ge=0.5, le=3600)
    max_resume_age: float = _env("THREADWISE_MAX_RESUME_AGE", default=600, gt=0)
    # A DM's top-level messages start a new conversation after this long without one (0: never).
    dm_gap_minutes: float = _env("THREADWISE_DM_GAP_MINUTES", default=240, ge=0)
    # Claims, answers and conversation histories older than this are deleted (0: kept forever);
    # feedback (the 👍/👎 with its question and answer) is kept.
    retention_days: float = _env("THREADWISE_RETENTION_DAYS", default=90, ge=0)
    # Guests and channels shared with other organisations: "conversation" answers them only from the
    # files shared in that conversation; "workspace" gives them the internal documents too.
    external: Literal["conversation", "workspace"] = _env("THREADWISE_EXTERNAL", default="conversation")

    # Production. Unset: SQLite upgrades its schema at start, PostgreSQL needs `threadwise db upgrade`.
    auto_migrate: bool | None = _env("THREADWISE_AUTO_MIGRATE", default=None)
    # AgentOS, Agno's control plane, on its own port of the `serve` process; the key is checked at start.
    agentos: bool = _env("THREADWISE_AGENTOS", default=False)
    agentos_key: SecretStr | None = _env("THREADWISE_AGENTOS_KEY", default=None)
    agentos_port: int = _env("THREADWISE_AGENTOS_PORT", default=7777, ge=1, le=65535)

    # The loop: who may run /kb config, besides the workspace's admins and owners.
    admins: Annotated[list[str], NoDecode] = _env("THREADWISE_ADMINS", default_factory=list)

    # Logging
    log_level: str = _env("THREADWISE_LOG_LEVEL", default="INFO")
    log_format: Literal["text", "json"] = _env("THREADWISE_LOG_FORMAT", default="text")

    @field_validator("docs", mode="before")
    @classmethod
    def _split_docs(cls, value: object) -> object:
        if isinstance(value, str):
            return [Path(part.strip()).expanduser() for part in value.split(",") if part.strip()]
        return value

    @field_validator("admins", mode="before")
    @classmethod
    def _split_admins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("openai_base_url", "embedding_model", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("slack_api_url")
    @classmethod
    def _check_slack_api_url(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL such as https://slack.com/api/")
        return value if value.endswith("/") else value + "/"  # the SDK appends the method name

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url

        try:
            make_url(value)
        except Exception as exc:  # sqlalchemy raises ArgumentError with a terse message
            raise ValueError(f"not a SQLAlchemy URL ({exc})") from None
        return value

    @model_validator(mode="after")
    def _check_chunking(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"THREADWISE_CHUNK_OVERLAP ({self.chunk_overlap}) must be smaller than "
                f"THREADWISE_CHUNK_SIZE ({self.chunk_size})"
            )
        return self

    def knowledge(self) -> KnowledgeConfig:
        return KnowledgeConfig(
            docs=tuple(self.docs),
            milvus_uri=self.milvus_uri,
            milvus_token=self.milvus_token.get_secret_value() if self.milvus_token else None,
            collection=self.milvus_collection,
            database_url=self.database_url,
            embedder=self.embedder,
            embedding_model=self.embedding_model,
            openai_api_key=self.openai_api_key.get_secret_value() if self.openai_api_key else None,
            openai_base_url=self.openai_base_url,
            max_file_mb=self.max_file_mb,
            chunk_size=self.chunk_size,
            chunk_overlap=self.chunk_overlap,
            fusion=self.fusion,
            fusion_weight=self.fusion_weight,
            passages=PassageSettings(
                neighbours=self.passage_neighbours,
                fold_gap=self.passage_fold,
                dedup=self.passage_dedup,
                backward=self.passage_backward,
            ),
            embed_threads=self.embed_threads,
            allow_mass_delete=self.allow_mass_delete,
        )

    @property
    def model_configured(self) -> bool:
        return bool(self.openai_api_key or self.openai_base_url)

    @property
    def search_only(self) -> bool:
        """Answers are passages, not written text: asked for, or no model to write them."""
        return self.answer_mode == "search" or not self.model_configured


class SettingsError(Exception):
    """A bad setting, with one line per problem naming the environment variable."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else "?"
            field = Settings.model_fields.get(name)
            alias = field.validation_alias.choices[0] if field and field.validation_alias else name
            secret = any(word in alias for word in ("TOKEN", "KEY", "SECRET"))
            shown = "" if secret or not err["loc"] else f" (got {err.get('input')!r})"
            lines.append(f"{alias}: {err['msg']}{shown}" if err["loc"] else err["msg"])
        raise SettingsError("bad setting " + "; ".join(lines)) from None
