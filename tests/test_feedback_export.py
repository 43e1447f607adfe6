"""`threadwise feedback export`: ratings stored by the Slack app come out as JSONL, and as a labelled set."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.answer import Answer, Source
from bot.cli import main
from bot.feedback import FeedbackStore
from knowledge.database import make_async_engine


def _answer(text: str, docs: list[str]) -> Answer:
    sources = [
        Source(n=i + 1, doc=doc, title=doc, heading="", page=None, snippet="…", chunk_id=f"c{i}")
        for i, doc in enumerate(docs)
    ]
    return Answer(text=text, sources=sources, conversation="slack:T1:C1:1.0")


async def _rate(database_url: str) -> None:
    engine = make_async_engine(database_url)
    store = FeedbackStore(engine)
    await store.create()
    await store.record_answer("a1", "How many vacation days?", _answer("27 days [1]", ["people/vacation.md"]))
    await store.record_answer("a2", "Who owns billing?", _answer("Nobody knows", []))
    await store.record_click("a1", "U_ALICE", "helpful")
    await store.record_click("a2", "U_BOB", "not_helpful")
    await engine.dispose()


@pytest.fixture
def rated(database_url: str) -> str:
    """Two answers rated in Slack, stored the way the app stores them (the command runs its own loop)."""
    asyncio.run(_rate(database_url))
    return database_url


def _run(monkeypatch, url: str, *args: str) -> int:
    monkeypatch.setenv("DATABASE_URL", url)
    return main(["feedback", "export", *args])


def test_export_writes_every_rating(rated: str, monkeypatch, tmp_path: Path) -> None:
    out = tmp_path / "feedback.jsonl"
    assert _run(monkeypatch, rated, "--out", str(out)) == 0
    items = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(i["question"], i["rating"], i["user"]) for i in items] == [
        ("How many vacation days?", "helpful", "U_ALICE"),
        ("Who owns billing?", "not_helpful", "U_BOB"),
    ]
    assert items[0]["answer"] == "27 days [1]" and items[0]["sources"][0]["doc"] == "people/vacation.md"
    assert set(items[0]) >= {"question", "answer", "sources", "rating", "comment"}


def test_labelled_export_is_a_reviewable_question_set(rated: str, monkeypatch, capsys) -> None:
    assert _run(monkeypatch, rated, "--labelled") == 0
    items = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert items[0] == {
        "question": "How many vacation days?",
        "relevant": ["people/vacation.md"],
        "must_contain": [],
        "kind": "feedback",
    }
    assert items[1]["relevant"] == [] and "not helpful" in items[1]["note"]
