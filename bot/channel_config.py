"""Per-channel settings: which documents count in a channel, when the bot answers there, who its experts are.

Set by an admin with ``/kb config`` (``bot.slack.channel_settings``), stored in the database, listed
by ``threadwise channels``. A channel without settings behaves as if it had the defaults below.

What a channel may search is narrowed inside Milvus, never after the search: the folders become a
path-prefix condition on folder documents, and Slack files shared only in other public channels are
left out by document id (``AccessScope.folders`` / ``AccessScope.exclude_docs``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import JSON, Boolean, Column, Float, MetaData, String, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from bot.table_store import TableStore
from knowledge.base import KnowledgeBase
from knowledge.slack_files import SOURCE as SLACK_SOURCE
from knowledge.types import WORKSPACE, AccessScope

FollowUps = Literal["always", "mention"]
FOLLOW_UPS: tuple[FollowUps, ...] = ("always", "mention")

metadata = MetaData()

channel_configs = Table(
    "channel_configs",
    metadata,
    Column("team", String(32), primary_key=True),
    Column("channel", String(32), primary_key=True),
    Column("folders", JSON, nullable=True),  # null: every folder
    Column("other_channel_files", Boolean, nullable=False),
    Column("follow_ups", String(16), nullable=False),
    Column("experts", JSON, nullable=False),
    Column("expert_group", String(32), nullable=True),
    Column("updated_by", String(32), nullable=False),
    Column("updated_at", Float, nullable=False),
)


@dataclass(frozen=True)
class ChannelConfig:
    team: str
    channel: str
    folders: tuple[str, ...] | None = None  # top-level document folders that count here; None: all
    other_channel_files: bool = True  # Slack files shared in other public channels count here
    follow_ups: FollowUps = "always"  # "mention": thread replies are answered only when they mention the bot
    experts: tuple[str, ...] = ()  # user ids
    expert_group: str | None = None  # a user group id
    updated_by: str = ""
    updated_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["folders"] = list(self.folders) if self.folders is not None else None
        data["experts"] = list(self.experts)
        return data

    def summary(self) -> list[tuple[str, str]]:
        """(setting, value) in the product's words, for the command line."""
        experts = list(self.experts) + ([f"group {self.expert_group}"] if self.expert_group else [])
        return [
            ("folders", ", ".join(self.folders) if self.folders is not None else "all"),
            ("files from other public channels", "count" if self.other_channel_files else "left out"),
            ("follow-ups", "without a mention" if self.follow_ups == "always" else "only when mentioned"),
            ("experts", ", ".join(experts) or "none"),
        ]


def folder_names(docs: Sequence[Path]) -> list[str]:
    """The folders a channel can choose: the document folders by name when there are several (their
    documents are cited as ``<name>/...``), else the top-level folders inside the one folder."""
    if len(docs) > 1:
        return sorted({Path(d).expanduser().resolve().name for d in docs})
    if not docs:
        return []
    root = Path(docs[0]).expanduser()
    try:
        return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


class ChannelConfigStore(TableStore):
    metadata = metadata

    async def get(self, team: str, channel: str) -> ChannelConfig | None:
        await self.create()
        statement = select(channel_configs).where(
            (channel_configs.c.team == team) & (channel_configs.c.channel == channel)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(statement)).first()
        return _config(row) if row is not None else None

    async def all(self) -> list[ChannelConfig]:
        await self.create()
        statement = select(channel_configs).order_by(channel_configs.c.team, channel_configs.c.channel)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return [_config(row) for row in rows]

    async def put(self, config: ChannelConfig) -> ChannelConfig:
        await self.create()
        if config.follow_ups not in FOLLOW_UPS:
            raise ValueError(f"follow_ups must be one of {FOLLOW_UPS}, not {config.follow_ups!r}")
        config = dataclasses.replace(config, updated_at=config.updated_at or time.time())
        values = config.to_dict()
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(channel_configs).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=["team", "channel"],
            set_={k: statement.excluded[k] for k in values if k not in ("team", "channel")},
        )
        async with self.engine.begin() as conn:
            await conn.execute(statement)
        return config


def _config(row: Any) -> ChannelConfig:
    return ChannelConfig(
        team=row.team,
        channel=row.channel,
        folders=tuple(row.folders) if row.folders is not None else None,
        other_channel_files=bool(row.other_channel_files),
        follow_ups=row.follow_ups,
        experts=tuple(row.experts or ()),
        expert_group=row.expert_group,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


FilesHere = Callable[[str], Awaitable[Iterable[str]]]  # channel -> ids of the Slack files shared there


async def narrowed_scope(
    scope: AccessScope,
    config: ChannelConfig | None,
    knowledge: KnowledgeBase,
    files_here: FilesHere,
) -> AccessScope:
    """``scope`` narrowed by the channel's settings (unchanged without any)."""
    if config is None:
        return scope
    exclude: tuple[str, ...] = ()
    if not config.other_channel_files:
        public = await asyncio.to_thread(_public_slack_files, knowledge)
        if public:
            here = set(await files_here(config.channel))
            exclude = tuple(sorted(doc for file_id, doc in public.items() if file_id not in here))
    return dataclasses.replace(scope, folders=config.folders, exclude_docs=exclude)


class ChannelScopes:
    """What the answer path asks of the channel settings: the narrowed scope, and whether a thread
    reply without a mention is answered."""

    def __init__(self, store: ChannelConfigStore, knowledge: KnowledgeBase, files_here: FilesHere):
        self.store = store
        self.knowledge = knowledge
        self.files_here = files_here

    async def narrow(self, team: str, channel: str, scope: AccessScope) -> AccessScope:
        return await narrowed_scope(
            scope, await self.store.get(team, channel), self.knowledge, self.files_here
        )

    async def follow_ups(self, team: str, channel: str) -> bool:
        config = await self.store.get(team, channel)
        return config is None or config.follow_ups == "always"


def list_channels(database_url: str) -> list[ChannelConfig]:
    """``threadwise channels``: every configured channel."""
    from knowledge.database import make_async_engine

    async def read() -> list[ChannelConfig]:
        engine = make_async_engine(database_url)
        try:
            return await ChannelConfigStore(engine).all()
        finally:
            await engine.dispose()

    return asyncio.run(read())


def _public_slack_files(knowledge: KnowledgeBase) -> dict[str, str]:
    """file id -> document id of every Slack file indexed for the whole workspace."""
    return {
        row.location.removeprefix("slack:"): doc_id
        for doc_id, row in knowledge.manifest.documents(SLACK_SOURCE).items()
        if row.access == WORKSPACE
    }


__all__ = [
    "FOLLOW_UPS",
    "ChannelConfig",
    "ChannelConfigStore",
    "ChannelScopes",
    "FollowUps",
    "channel_configs",
    "folder_names",
    "list_channels",
    "metadata",
    "narrowed_scope",
]
