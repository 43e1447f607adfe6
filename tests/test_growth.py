"""Growth: what the bot keeps is pruned after THREADWISE_RETENTION_DAYS, and a DM is not one session
forever (a new conversation after THREADWISE_DM_GAP_MINUTES of quiet).

End to end: the real app answers through the local Slack workspace and the scripted model server, on
SQLite and on PostgreSQL (where TEST_DATABASE_URL is set). Asserted is what lands in (and leaves) the
ledger, the answers and feedback tables and Agno's sessions, and what the model server receives.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import func, select

from bot.cli import main
from bot.conversations import ConversationStore
from bot.feedback import answers, feedback
from bot.ledger import claims
from bot.retention import DAY, prune, prune_database
from bot.slack.app import SlackBot
from knowledge.database import make_async_engine
from localslack.emulator import SlackEmulator
from tests import app_fixtures
from tests.app_fixtures import VPN_QUESTION, leader_turns, make_settings, script_team, serving
from tests.emulators.openai import ModelServer

kb = app_fixtures.kb
model = app_fixtures.model
slack = app_fixtures.slack

RETENTION = 90


async def ask_in_channel(slack: SlackEmulator, bot: SlackBot, question: str) -> str:
    said = await slack.user_says("C_GENERAL", question)
    (reply,) = await slack.wait_for_reply("C_GENERAL", said.ts, timeout=30)
    await bot.wait_idle(30)
    return reply.ts


async def counts(database_url: str) -> dict[str, int]:
    engine = make_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return {
                table.name: (await conn.execute(select(func.count()).select_from(table))).scalar_one()
                for table in (claims, answers, feedback)
            }
    finally:
        await engine.dispose()


async def sessions(database_url: str) -> set[str]:
    store = ConversationStore(database_url)
    try:
        found = await store.db.get_sessions(deserialize=False, include_runs=False)
        rows = found[0] if isinstance(found, tuple) else found
        return {row["session_id"] for row in rows}
    finally:
        await store.close()


async def test_rows_older_than_the_retention_are_pruned_and_newer_ones_and_feedback_stay(
    slack: SlackEmulator, model: ModelServer, database_url: str, kb
):
    script_team(model)
    settings = make_settings(slack, model, database_url, retention_days=RETENTION)
    async with serving(slack, settings, kb) as bot:
        old_reply = await ask_in_channel(slack, bot, VPN_QUESTION)
        await slack.user_clicks("C_GENERAL", old_reply, "feedback_up")
        await slack.wait_for(lambda: slack.ephemerals("U_ALICE"))
        await asyncio.sleep(2.1)  # Agno keeps whole seconds
        between = time.time()
        await asyncio.sleep(1.1)
        await ask_in_channel(slack, bot, "how many vacation days do I get?")
    before = await counts(database_url)
    assert before == {"slack_claims": 2, "answers": 2, "feedback": 1}
    assert len(await sessions(database_url)) == 2

    engine = make_async_engine(database_url)
    conversations = ConversationStore(database_url)
    try:
        # Seen from RETENTION days after `between`: the first exchange is older, the second is not.
        report = await prune(engine, conversations, days=RETENTION, now=between + RETENTION * DAY)
    finally:
        await conversations.close()
        await engine.dispose()
    assert (report.claims, report.answers, report.sessions) == (1, 1, 1)
    assert await counts(database_url) == {"slack_claims": 1, "answers": 1, "feedback": 1}
    (left,) = await sessions(database_url)
    assert left.endswith(slack.history("C_GENERAL")[-1].ts)  # the newer conversation

    # Today nothing is old; an unfinished claim is never pruned, however old.
    assert (await prune_database(settings)).claims == 0
    assert await counts(database_url) == {"slack_claims": 1, "answers": 1, "feedback": 1}


async def test_threadwise_db_prune_reports_what_it_deleted(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    assert await asyncio.to_thread(main, ["db", "upgrade"]) == 0
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["db", "prune", "--days", "30"]) == 0
    assert (
        "deleted 0 claims, 0 answers and 0 conversation sessions older than 30 days"
        in capsys.readouterr().out
    )


async def dm(slack: SlackEmulator, text: str) -> None:
    before = len([m for m in slack.bot_messages("D_ALICE") if m.blocks])
    await slack.user_says("D_ALICE", text)
    await slack.wait_for(lambda: len([m for m in slack.bot_messages("D_ALICE") if m.blocks]) > before, 30)


async def test_a_dm_after_a_quiet_gap_is_a_new_conversation_and_within_it_keeps_context(
    slack: SlackEmulator, model: ModelServer, sqlite_url: str, kb
):
    script_team(model)
    gap_minutes = 2.5 / 60
    settings = make_settings(slack, model, sqlite_url, dm_gap_minutes=gap_minutes)
    async with serving(slack, settings, kb) as bot:
        await dm(slack, "how many vacation days do I get?")
        await dm(slack, "and can I carry days over?")  # within the gap: the same conversation
        assert "how many vacation days do I get?" in leader_turns(model)[-1].transcript
        await bot.wait_idle(30)
        await asyncio.sleep(gap_minutes * 60 + 0.5)
        await dm(slack, "how do I reset my VPN password?")  # after the gap: a fresh one
        fresh = leader_turns(model)[-1].transcript
        assert "vacation" not in fresh and "carry days over" not in fresh
        await dm(slack, "which clients does it cover?")
        assert "how do I reset my VPN password?" in leader_turns(model)[-1].transcript
        await bot.wait_idle(30)
    engine = make_async_engine(sqlite_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(claims.c.conversation).order_by(claims.c.sent_at))).all()
    finally:
        await engine.dispose()
    first, second, third, fourth = (r.conversation for r in rows)
    assert first == second and third == fourth and first != third
    assert len(await sessions(sqlite_url)) == 2
