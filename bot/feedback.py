"""Feedback on answers: every answer shown in Slack is kept, and a click on its buttons is stored with it.

An answer is recorded under its ``answer_id`` (the ledger claim's id) when it is posted; the buttons
carry only that id. A click stores the rating with a copy of the question, the answer and its sources,
so feedback reads on its own even after the conversation is gone. One rating per person per answer:
clicking again replaces it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

from sqlalchemy import JSON, Column, Float, MetaData, String, Table, Text, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.answer import Answer

Rating = Literal["helpful", "not_helpful"]
RATINGS: tuple[Rating, ...] = ("helpful", "not_helpful")

metadata = MetaData()

answers = Table(
    "answers",
    metadata,
    Column("answer_id", String(200), primary_key=True),
    Column("conversation", String(200), nullable=False),
    Column("question", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("sources", JSON, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("searched", JSON, nullable=True),  # the queries run for it: a 👎 becomes a gap with them
)

feedback = Table(
    "feedback",
    metadata,
    Column("answer_id", String(200), primary_key=True),
    Column("user_id", String(32), primary_key=True),
    Column("rating", String(16), nullable=False),
    Column("conversation", String(200), nullable=False),
    Column("question", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("sources", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)


@dataclass(frozen=True)
class Feedback:
    answer_id: str
    user: str
    rating: Rating
    conversation: str
    question: str
    answer: str
    sources: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FeedbackStore:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    async def create(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

    def _dialect(self):
        return postgresql if self.engine.dialect.name == "postgresql" else sqlite

    async def record_answer(self, answer_id: str, question: str, answer: Answer) -> None:
        """Keep what was shown, so that a later click can be stored with it. Idempotent."""
        values = {
            "answer_id": answer_id,
            "conversation": answer.conversation,
            "question": question,
            "answer": answer.text,
            "sources": [asdict(source) for source in answer.sources],
            "outcome": answer.outcome,
            "created_at": time.time(),
            "searched": list(answer.searched),
        }
        statement = self._dialect().insert(answers).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=["answer_id"],
            set_={k: statement.excluded[k] for k in ("question", "answer", "sources", "outcome", "searched")},
        )
        async with self.engine.begin() as conn:
            await conn.execute(statement)

    async def record_click(self, answer_id: str, user: str, rating: Rating) -> Feedback | None:
        """Store one person's rating of an answer; None if the answer is unknown (nothing is stored)."""
        if rating not in RATINGS:
            raise ValueError(f"unknown rating {rating!r}; expected one of {RATINGS}")
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(answers).where(answers.c.answer_id == answer_id))).first()
            if row is None:
                return None
            now = time.time()
            values = {
                "answer_id": answer_id,
                "user_id": user,
                "rating": rating,
                "conversation": row.conversation,
                "question": row.question,
                "answer": row.answer,
                "sources": row.sources,
                "created_at": now,
                "updated_at": now,
            }
            statement = self._dialect().insert(feedback).values(**values)
            statement = statement.on_conflict_do_update(
                index_elements=["answer_id", "user_id"],
                set_={"rating": statement.excluded.rating, "updated_at": statement.excluded.updated_at},
            )
            await conn.execute(statement)
        return Feedback(
            answer_id, user, rating, row.conversation, row.question, row.answer, list(row.sources)
        )

    async def searched(self, answer_id: str) -> list[str]:
        """What was searched for an answer ([] when unknown)."""
        async with self.engine.connect() as conn:
            found = await conn.scalar(select(answers.c.searched).where(answers.c.answer_id == answer_id))
        return list(found or [])

    async def clicks(self, answer_id: str | None = None) -> list[Feedback]:
        statement = select(feedback).order_by(feedback.c.created_at)
        if answer_id is not None:
            statement = statement.where(feedback.c.answer_id == answer_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return [
            Feedback(r.answer_id, r.user_id, r.rating, r.conversation, r.question, r.answer, list(r.sources))
            for r in rows
        ]


__all__ = ["RATINGS", "Feedback", "FeedbackStore", "Rating", "answers", "feedback", "metadata"]
