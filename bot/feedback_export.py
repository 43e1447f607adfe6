"""``threadwise feedback export``: what people rated in Slack, as JSONL, optionally as a labelled set.

Plain export: one object per rating (question, answer, sources, rating, comment, who, when).
``labelled``: one object per rated question in ``threadwise eval``'s format, for review before it joins
a question set: a helpful answer proposes the documents it cited as ``relevant``; a not-helpful one
proposes none and says so in ``note``, for a person to fill in. Each answer saved from a resolved
thread follows as a question whose relevant document is the saved answer itself (kind
``saved_answer``), so ``threadwise eval`` can check that such questions find it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from bot.feedback import feedback
from bot.resolutions import Resolution, ResolutionStore
from bot.settings import Settings
from knowledge.database import make_async_engine


async def _rows(database_url: str) -> list[Any]:
    engine = make_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(select(feedback).order_by(feedback.c.created_at))).all())
    finally:
        await engine.dispose()


async def _saved(database_url: str) -> list[Resolution]:
    engine = make_async_engine(database_url)
    try:
        return await ResolutionStore(engine).list("saved")
    finally:
        await engine.dispose()


def _saved_labelled(saved: list[Resolution]) -> Iterator[dict[str, Any]]:
    """A Q&A saved from a resolved thread is a labelled question whose relevant document is itself."""
    for entry in saved:
        yield {
            "question": entry.question,
            "relevant": [entry.title],
            "must_contain": [],
            "kind": "saved_answer",
            "answer": entry.answer,
            "thread": entry.permalink,
        }


def _plain(row: Any) -> dict[str, Any]:
    return {
        "question": row.question,
        "answer": row.answer,
        "sources": row.sources,
        "rating": row.rating,
        "comment": None,  # the Slack buttons carry no comment yet
        "user": row.user_id,
        "conversation": row.conversation,
        "rated_at": datetime.fromtimestamp(row.updated_at, UTC).isoformat(),
    }


def _labelled(rows: list[Any]) -> Iterator[dict[str, Any]]:
    by_question: dict[str, list[Any]] = {}
    for row in rows:
        by_question.setdefault(" ".join(row.question.split()), []).append(row)
    for question, rated in by_question.items():
        helpful = [r for r in rated if r.rating == "helpful"]
        docs: list[str] = []
        for row in helpful:
            docs += [s["doc"] for s in row.sources if s.get("doc") and s["doc"] not in docs]
        item: dict[str, Any] = {
            "question": question,
            "relevant": docs,
            "must_contain": [],
            "kind": "feedback",
        }
        if not helpful:
            item["note"] = (
                "rated not helpful: fill in the documents that answer it, or leave empty if none do"
            )
        yield item


def export_feedback(settings: Settings, *, labelled: bool = False) -> list[dict[str, Any]]:
    rows = asyncio.run(_rows(settings.database_url))
    if not labelled:
        return [_plain(row) for row in rows]
    return list(_labelled(rows)) + list(_saved_labelled(asyncio.run(_saved(settings.database_url))))


def to_jsonl(items: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)
