"""The questions nobody could answer: every "the documents don't cover this" and every 👎, kept for
the people who write the documents, grouped by topic, most asked first.

A gap is recorded with the question, the conversation it came from (channel, and whether that is
private), when, and what was searched. Recording is idempotent (one row per answer and kind, and per
person for a 👎), and a person who changes a 👎 into a 👍 withdraws their gap.

Who sees what: a gap from a private conversation (private channel, group DM, DM) is listed only in
that conversation (``/kb gaps`` there) and to the operator (``threadwise gaps``); gaps from public
channels are listed everywhere.

Grouping is by meaning: the questions are embedded with the knowledge base's own embedder and a
question joins the first group whose centre is at least ``SIMILAR`` (cosine) from it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from sqlalchemy import JSON, Boolean, Column, Float, MetaData, String, Table, Text, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from bot.metrics import observe_gap
from bot.table_store import TableStore

log = logging.getLogger(__name__)

GapKind = Literal["not_found", "not_helpful"]
SIMILAR = 0.7  # cosine to a group's centre to join it: paraphrases score 0.78-0.92 with the local
# embedder, different questions below 0.5 (even "VPN password" vs "wifi password": 0.46)
EXAMPLES = 3

metadata = MetaData()

gaps = Table(
    "gaps",
    metadata,
    Column("gap_id", String(300), primary_key=True),  # kind:answer_id[:user]
    Column("kind", String(16), nullable=False),
    Column("team", String(32), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("private", Boolean, nullable=False),
    Column("conversation", String(200), nullable=False),
    Column("user_id", String(32), nullable=False),
    Column("question", Text, nullable=False),
    Column("searched", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
)


@dataclass(frozen=True)
class Gap:
    kind: GapKind
    team: str
    channel: str
    private: bool
    conversation: str
    user: str
    question: str
    searched: list[str]
    created_at: float


@dataclass
class Topic:
    """Questions close in meaning, with how often they were asked and where."""

    example: str
    count: int
    channels: list[str]
    kinds: dict[str, int]
    searched: list[str]
    last_asked: float
    questions: list[str] = field(default_factory=list)  # up to EXAMPLES distinct ones, newest first

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNIT = {"": 86400, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str) -> float:
    """``30d``, ``12h``, ``2w`` (a bare number is days) as seconds; ValueError naming the form."""
    found = _DURATION.match(text or "")
    if not found:
        raise ValueError(f"cannot read {text!r} as a duration: use e.g. 30d, 12h or 2w")
    return int(found.group(1)) * _UNIT[found.group(2)]


class GapStore(TableStore):
    metadata = metadata

    def _dialect(self):
        return postgresql if self.engine.dialect.name == "postgresql" else sqlite

    async def record(self, answer_id: str, gap: Gap) -> bool:
        """Keep one gap; False if it was recorded before (a retry, a second click)."""
        await self.create()
        gap_id = f"{gap.kind}:{answer_id}" + (f":{gap.user}" if gap.kind == "not_helpful" else "")
        values = asdict(gap) | {"gap_id": gap_id[:300], "user_id": gap.user}
        del values["user"]
        statement = self._dialect().insert(gaps).values(**values).on_conflict_do_nothing()
        async with self.engine.begin() as conn:  # RETURNING: psycopg's rowcount here is -1
            added = (await conn.execute(statement.returning(gaps.c.gap_id))).first() is not None
        if added:
            observe_gap(gap.kind)
        return added

    async def withdraw(self, answer_id: str, user: str) -> None:
        """A person who rated an answer 👎 and then 👍 no longer counts it as a gap."""
        await self.create()
        async with self.engine.begin() as conn:
            await conn.execute(delete(gaps).where(gaps.c.gap_id == f"not_helpful:{answer_id}:{user}"))

    async def list(
        self, *, since: float | None = None, channel: str | None = None, visible_in: str | None = None
    ) -> list[Gap]:
        """Gaps newest first. ``visible_in``: only what people in that conversation may see (public
        channels' gaps and that conversation's own); None: everything (the operator)."""
        await self.create()
        statement = select(gaps).order_by(gaps.c.created_at.desc())
        if since is not None:
            statement = statement.where(gaps.c.created_at >= time.time() - since)
        if channel is not None:
            statement = statement.where(gaps.c.channel == channel)
        if visible_in is not None:
            statement = statement.where((gaps.c.private.is_(False)) | (gaps.c.channel == visible_in))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return [
            Gap(
                r.kind,
                r.team,
                r.channel,
                bool(r.private),
                r.conversation,
                r.user_id,
                r.question,
                list(r.searched or []),
                r.created_at,
            )
            for r in rows
        ]


async def record_not_found(
    store: GapStore,
    answer_id: str,
    *,
    team: str,
    channel: str,
    private: bool,
    conversation: str,
    user: str,
    question: str,
    searched: list[str],
) -> None:
    """The documents did not cover a question. Bookkeeping: a failure is logged, never raised."""
    gap = Gap("not_found", team, channel, private, conversation, user, question, list(searched), time.time())
    try:
        await store.record(answer_id, gap)
    except Exception as exc:
        log.error("could not record the unanswered question of %s: %s", answer_id, exc)


async def record_rating(
    store: GapStore,
    answer_id: str,
    rating: str,
    *,
    team: str,
    channel: str,
    private: bool,
    conversation: str,
    user: str,
    question: str,
    searched: list[str],
) -> None:
    """A 👎 is a gap; a 👍 from the same person withdraws theirs. Logged, never raised."""
    try:
        if rating == "not_helpful":
            gap = Gap(
                "not_helpful",
                team,
                channel,
                private,
                conversation,
                user,
                question,
                list(searched),
                time.time(),
            )
            await store.record(answer_id, gap)
        else:
            await store.withdraw(answer_id, user)
    except Exception as exc:
        log.error("could not record the rating of %s as a gap: %s", answer_id, exc)


Embed = Callable[[list[str]], Sequence[Sequence[float]]]


def group_by_topic(found: list[Gap], embed: Embed, *, similar: float = SIMILAR) -> list[Topic]:
    """Questions close in meaning grouped together, the most asked topic first (then the latest)."""
    if not found:
        return []
    questions = [" ".join(g.question.split()) for g in found]
    vectors = np.asarray(embed([q.lower() for q in questions]), dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.where(norms == 0, 1, norms)
    members: list[list[int]] = []
    centres: list[np.ndarray] = []
    for i, vector in enumerate(vectors):
        best, score = -1, similar
        for g, centre in enumerate(centres):
            cosine = float(vector @ centre / (np.linalg.norm(centre) or 1))
            if cosine >= score:
                best, score = g, cosine
        if best < 0:
            members.append([i])
            centres.append(vector.copy())
        else:
            members[best].append(i)
            centres[best] = centres[best] + vector  # the sum points where the mean does
    topics = [_topic([found[i] for i in group], [questions[i] for i in group]) for group in members]
    return sorted(topics, key=lambda t: (-t.count, -t.last_asked))


def _topic(group: list[Gap], questions: list[str]) -> Topic:
    asked = Counter(q.lower() for q in questions)
    distinct: list[str] = []
    for q in questions:  # newest first, as listed
        if q.lower() not in {d.lower() for d in distinct}:
            distinct.append(q)
    example = max(distinct, key=lambda q: asked[q.lower()])  # the most asked wording
    searched = Counter(s for g in group for s in g.searched)
    return Topic(
        example=example,
        count=len(group),
        channels=sorted({g.channel for g in group}),
        kinds=dict(Counter(g.kind for g in group)),
        searched=[s for s, _ in searched.most_common(5)],
        last_asked=max(g.created_at for g in group),
        questions=distinct[:EXAMPLES],
    )


def list_topics(
    database_url: str, embed: Embed, *, since: float | None = None, channel: str | None = None
) -> list[Topic]:
    """``threadwise gaps``: every gap (private conversations' too: the operator sees all), by topic."""
    from knowledge.database import make_async_engine

    async def read() -> list[Gap]:
        engine = make_async_engine(database_url)
        try:
            return await GapStore(engine).list(since=since, channel=channel)
        finally:
            await engine.dispose()

    return group_by_topic(asyncio.run(read()), embed)


def topics_text(topics: list[Topic], *, limit: int = 30) -> str:
    """Plain text for the command line."""
    if not topics:
        return "No unanswered questions recorded."
    lines = []
    for topic in topics[:limit]:
        kinds = ", ".join(f"{n} {KIND_WORDS[k]}" for k, n in sorted(topic.kinds.items()))
        lines.append(f"{topic.count:>4}  {topic.example}")
        lines.append(f"      {kinds}; channels {', '.join(topic.channels)}")
        others = [q for q in topic.questions if q != topic.example]
        if others:
            lines.append("      also asked: " + " | ".join(others))
        if topic.searched:
            lines.append("      searched: " + ", ".join(topic.searched))
    if len(topics) > limit:
        lines.append(f"…and {len(topics) - limit} more topics")
    return "\n".join(lines)


KIND_WORDS = {"not_found": "not found", "not_helpful": "not helpful"}

__all__ = [
    "KIND_WORDS",
    "Gap",
    "GapKind",
    "GapStore",
    "Topic",
    "gaps",
    "group_by_topic",
    "list_topics",
    "metadata",
    "parse_since",
    "record_not_found",
    "record_rating",
    "topics_text",
]
