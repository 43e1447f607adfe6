"""The questions nobody could answer, end to end: "not found" answers and 👎 ratings become gaps, listed
by ``/kb gaps`` grouped by topic, most asked first, private conversations' gaps only where they were
asked, and counted on /metrics (the real Bolt app, the local Slack workspace, the scripted team)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from bot.gaps import Gap, group_by_topic, parse_since
from bot.metrics import REGISTRY
from bot.slack.app import SlackBot
from knowledge.base import KnowledgeBase
from localslack.emulator import SlackEmulator
from tests import app_fixtures
from tests.app_fixtures import (
    cite_first,
    make_settings,
    script_team,
    serving,
    with_buttons,
)
from tests.emulators.openai import ModelRequest, ModelServer

# The fixture corpus (synced once for the module), the model server, the workspace.
kb, model, slack = app_fixtures.kb, app_fixtures.model, app_fixtures.slack

UNCOVERED = ("where do I park my bike at the office?", "is there bike parking at the office?")


def writer(request: ModelRequest) -> str:
    """Says the documents don't cover bike parking (the contract makes that a "not found")."""
    if "park" in request.last_user.lower() or "bike" in request.transcript.lower().split("asks]")[-1]:
        return "The documents do not cover this."
    return cite_first(request)


def counted(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def ask(slack: SlackEmulator, channel: str, text: str, user: str = "U_ALICE"):
    said = await slack.user_says(channel, text, user=user)
    # Not wait_for_reply: a "not found" ends its stream, empty, and replaces it with an update after.
    (reply,) = await slack.wait_for(lambda: with_buttons(slack, channel, said.ts), timeout=20)
    return reply


async def gaps_shown(slack: SlackEmulator, channel: str, user: str = "U_ALICE") -> str:
    before = len(slack.ephemerals(user))
    await slack.user_runs_command("/kb", "gaps", channel=channel, user=user)
    shown = await slack.wait_for(lambda: slack.ephemerals(user)[before:], timeout=20)
    return shown[-1].text


async def test_unanswered_and_unhelpful_questions_are_listed_by_topic_where_people_may_see_them(
    slack: SlackEmulator, model: ModelServer, sqlite_url: str, kb: KnowledgeBase
):
    script_team(model, writer=writer)
    not_found, not_helpful = (
        counted("threadwise_not_found_answers_total"),
        counted("threadwise_not_helpful_ratings_total"),
    )
    async with serving(slack, make_settings(slack, model, sqlite_url), kb) as bot:
        first = await ask(slack, "C_GENERAL", UNCOVERED[0])
        assert "don't cover this" in first.display_text
        await ask(slack, "C_GENERAL", UNCOVERED[1], user="U_BOB")
        secret = await ask(slack, "C_PRIVATE", "what is the Falcon launch code word?")
        await bot.wait_idle(timeout=30)
        await slack.user_clicks("C_PRIVATE", secret.ts, "feedback_down")
        await slack.wait_for(lambda: slack.ephemerals("U_ALICE"))
        await wait_listed(bot, 3)

        public = await gaps_shown(slack, "C_GENERAL")
        private = await gaps_shown(slack, "C_PRIVATE")
        stored = await bot.gaps.list()

    assert {(g.kind, g.channel, g.private) for g in stored} == {
        ("not_found", "C_GENERAL", False),
        ("not_helpful", "C_PRIVATE", True),
    }
    assert len(stored) == 3
    bike = next(g for g in stored if g.user == "U_BOB")
    assert bike.question == UNCOVERED[1] and bike.searched == [UNCOVERED[1]]
    # Both bike questions are one topic, asked twice, shown first; the private question only in private.
    assert "*2×*" in public and "2 not found" in public and "<#C_GENERAL>" in public
    assert "Falcon" not in public
    assert (
        "Falcon" in private and "1 not helpful" in private and private.index("*2×*") < private.index("Falcon")
    )
    assert counted("threadwise_not_found_answers_total") == not_found + 2
    assert counted("threadwise_not_helpful_ratings_total") == not_helpful + 1


async def test_a_thumbs_up_after_a_thumbs_down_withdraws_the_gap(
    slack: SlackEmulator, model: ModelServer, sqlite_url: str, kb: KnowledgeBase
):
    script_team(model, writer=writer)
    async with serving(slack, make_settings(slack, model, sqlite_url), kb) as bot:
        reply = await ask(slack, "C_GENERAL", "how do I reset my VPN password?")
        await bot.wait_idle(timeout=30)
        await slack.user_clicks("C_GENERAL", reply.ts, "feedback_down")
        await slack.wait_for(lambda: len(slack.ephemerals("U_ALICE")) == 1)
        assert [g.kind for g in await wait_listed(bot, 1)] == ["not_helpful"]
        await slack.user_clicks("C_GENERAL", reply.ts, "feedback_up")
        await slack.wait_for(lambda: len(slack.ephemerals("U_ALICE")) == 2)
        assert await wait_listed(bot, 0) == []


async def wait_listed(bot: SlackBot, count: int, timeout: float = 10.0) -> list:
    """The recorded gaps once there are ``count`` of them (recording follows the answer)."""
    deadline = time.monotonic() + timeout
    while len(found := await bot.gaps.list()) != count:
        assert time.monotonic() < deadline, f"expected {count} recorded gaps, found {len(found)}: {found}"
        await asyncio.sleep(0.05)
    return found


def test_questions_close_in_meaning_are_one_topic(kb: KnowledgeBase):
    def gap(question: str, channel: str = "C1", at: float = 0.0) -> Gap:
        return Gap("not_found", "T1", channel, False, "c", "U1", question, [question], at)

    found = [
        gap("how many vacation days do I get?", at=5),
        gap("where do I park my bike at the office?", at=4),
        gap("how many vacation days do I get?", "C2", at=3),
        gap("is there bike parking at the office?", at=2),
        gap("how many days of vacation do we get per year?", at=1),
        gap("what is the wifi password for guests?", at=0),
    ]
    topics = group_by_topic(found, kb.embedder.embed_documents)
    assert [t.count for t in topics] == [3, 2, 1]
    assert topics[0].example == "how many vacation days do I get?" and topics[0].channels == ["C1", "C2"]
    assert topics[1].example in (
        "where do I park my bike at the office?",
        "is there bike parking at the office?",
    )
    assert topics[2].example == "what is the wifi password for guests?"


def test_since_reads_days_hours_and_weeks():
    assert parse_since("30d") == 30 * 86400 and parse_since("12h") == 12 * 3600
    assert parse_since("2w") == 14 * 86400 and parse_since("7") == 7 * 86400
    with pytest.raises(ValueError, match="30d"):
        parse_since("a month")


def test_the_operator_lists_every_gap_by_topic_from_the_command_line(
    sqlite_url: str, tmp_path, monkeypatch, capsys
):
    from bot.cli import main
    from bot.gaps import GapStore
    from knowledge.database import make_async_engine

    async def seed() -> None:
        engine = make_async_engine(sqlite_url)
        store = GapStore(engine)
        now = time.time()
        for i, (question, channel, private) in enumerate(
            [
                ("where do I park my bike at the office?", "C_GENERAL", False),
                ("is there bike parking at the office?", "C_PRIVATE", True),
                ("what is the guest wifi password?", "C_GENERAL", False),
            ]
        ):
            await store.record(
                f"a{i}", Gap("not_found", "T1", channel, private, "c", "U1", question, [], now)
            )
        await store.record(
            "old", Gap("not_found", "T1", "C_GENERAL", False, "c", "U1", "old one", [], now - 90 * 86400)
        )
        await engine.dispose()

    asyncio.run(seed())
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("MILVUS_URI", str(tmp_path / "milvus.db"))
    assert main(["gaps", "--json"]) == 0
    topics = json.loads(capsys.readouterr().out)
    assert [(t["count"], t["channels"]) for t in topics] == [
        (2, ["C_GENERAL", "C_PRIVATE"]),
        (1, ["C_GENERAL"]),
    ]
    assert main(["gaps", "--since", "365d", "--channel", "C_GENERAL"]) == 0
    shown = capsys.readouterr().out
    assert "old one" in shown and "wifi" in shown and "1 not found" in shown
    assert main(["gaps", "--since", "a while"]) == 1
    assert "30d" in capsys.readouterr().err
