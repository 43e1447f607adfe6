"""The path from a recorded message to a posted answer when things go wrong around it: the ledger down
at the front, bookkeeping failing after a good answer, follow-ups reaching two replicas, a long answer
resumed, a stream the person stopped.

The real front (Bolt over HTTP on loopback), answer workers on their own threads and loops, the Slack
emulator, the scripted model server, Milvus Lite, and the ledger on SQLite or PostgreSQL. Database
faults are real ones: a dropped table, a trigger that aborts a write.
"""

from __future__ import annotations

import asyncio
import contextlib
import re

import pytest
from sqlalchemy import text, update

from bot.ledger import claims
from bot.slack.receive import CANNOT_ANSWER
from knowledge.base import KnowledgeBase
from knowledge.database import make_engine
from localslack.emulator import SlackEmulator
from tests import app_fixtures
from tests.app_fixtures import (
    BUTTONS,
    VPN_QUESTION,
    action_ids,
    cite_first,
    leader_turns,
    make_settings,
    posted_in_parts,
    script_long_answer,
    script_slow_stream,
    script_team,
    serving,
    settle,
    streaming_reply,
)
from tests.emulators.openai import ModelRequest, ModelServer

# The synced corpus, the model server, the workspace.
kb, model, slack = app_fixtures.kb, app_fixtures.model, app_fixtures.slack


def run_sql(database_url: str, *statements: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


async def test_a_message_the_ledger_cannot_record_gets_a_visible_reply_once(
    slack: SlackEmulator, model: ModelServer, sqlite_url: str, kb: KnowledgeBase
):
    script_team(model)
    async with serving(slack, make_settings(slack, model, sqlite_url), kb):
        run_sql(sqlite_url, "DROP TABLE slack_claims")  # the database is gone after Bolt acknowledged
        said = await slack.user_says("C_GENERAL", VPN_QUESTION)
        assert [a.status for a in said.acks] == [200, 200]
        (told,) = await slack.wait_for(lambda: slack.bot_messages("C_GENERAL", said.ts), timeout=5)
        await asyncio.sleep(0.5)  # the other delivery (app_mention and message) says nothing more
        assert told.text == CANNOT_ANSWER
        assert len(slack.bot_messages("C_GENERAL", said.ts)) == 1
        dm = await slack.user_says("D_ALICE", VPN_QUESTION)
        (told_dm,) = await slack.wait_for(lambda: slack.bot_messages("D_ALICE"), timeout=5)
        assert told_dm.text == CANNOT_ANSWER and dm.acks[0].status == 200


async def test_bookkeeping_that_fails_after_a_good_answer_is_retried_and_never_shown(
    slack: SlackEmulator, model: ModelServer, sqlite_url: str, kb: KnowledgeBase
):
    script_team(model)
    async with serving(slack, make_settings(slack, model, sqlite_url), kb) as bot:
        run_sql(
            sqlite_url,
            "CREATE TRIGGER no_done BEFORE UPDATE OF status ON slack_claims WHEN NEW.status = 'done' "
            "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END",
            "CREATE TRIGGER no_answers BEFORE INSERT ON answers BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END",
        )
        said = await slack.user_says("C_GENERAL", VPN_QUESTION)
        await slack.wait_for(
            lambda: [m for m in slack.bot_messages("C_GENERAL", said.ts) if action_ids(m)], timeout=30
        )
        await asyncio.sleep(1.5)  # retries running: the answer stays as it is
        (reply,) = slack.bot_messages("C_GENERAL", said.ts)
        assert f"About “{VPN_QUESTION}”: see engineering/vpn.md [1]." in reply.display_text
        assert "went wrong" not in reply.display_text and ":warning:" not in reply.display_text
        (claim,) = await bot.ledger.all()
        assert claim.status == "open"

        run_sql(sqlite_url, "DROP TRIGGER no_done", "DROP TRIGGER no_answers")  # the database is back
        await settle(bot)
        (claim,) = await bot.ledger.all()
        assert claim.status == "done"
        click = await slack.user_clicks("C_GENERAL", reply.ts, "feedback_up")
        assert click.ok
        thanks = await slack.wait_for(lambda: slack.ephemerals("U_ALICE"))
        assert "feedback is recorded" in thanks[-1].text  # the answer was stored after all
    (reply,) = slack.bot_messages("C_GENERAL", said.ts)
    assert "went wrong" not in reply.display_text
    assert len(leader_turns(model)) == 1  # answered once


@contextlib.asynccontextmanager
async def two_replicas(slack: SlackEmulator, settings, kb: KnowledgeBase):
    """Two fronts on one database, each with its own answer worker; their request URLs."""
    async with contextlib.AsyncExitStack() as stack:
        urls = []
        for _ in range(2):
            await stack.enter_async_context(serving(slack, settings, kb))
            urls.append(slack.request_url)
        yield urls


@pytest.mark.postgres
async def test_follow_ups_delivered_to_two_replicas_are_answered_in_turn(
    slack: SlackEmulator, model: ModelServer, postgres_url: str, kb: KnowledgeBase
):
    def writer(request: ModelRequest) -> str:
        return cite_first(request)

    script_team(model, writer=writer, leader_delay=1.0)  # each answer takes a while
    settings = make_settings(slack, model, postgres_url)
    async with two_replicas(slack, settings, kb) as (first, second):
        slack.request_url = first
        asked = await slack.user_says("C_GENERAL", VPN_QUESTION)
        await slack.wait_for_reply("C_GENERAL", asked.ts, timeout=30)
        await slack.wait_for(lambda: len(leader_turns(model)) == 1 and model.chat_requests, timeout=5)
        # Two follow-ups at once, each delivered to one replica and retried to the other.
        slack.request_url = first
        one = await slack.user_says(
            "C_GENERAL", "which clients are supported?", thread_ts=asked.ts, mention=False
        )
        slack.request_url = second
        two = await slack.user_says("C_GENERAL", "and on Linux?", thread_ts=asked.ts, mention=False)
        for said, other in ((one, second), (two, first)):
            slack.request_url = other
            for ack in said.acks:
                assert (await slack.redeliver(ack)).status == 200
        await slack.wait_for(lambda: len(slack.bot_messages("C_GENERAL", asked.ts)) >= 3, timeout=40)
        await asyncio.sleep(1.0)
    turns = leader_turns(model)
    assert len(turns) == 3  # one answer each, whichever replica took it
    last = turns[-1]
    assert "and on Linux?" in last.last_user
    said_before = "\n".join(str(m.get("content")) for m in last.messages[:-1])
    assert "which clients are supported?" in said_before  # the first follow-up's turn, question
    assert "engineering/vpn.md" in said_before  # and answer
    replies = slack.bot_messages("C_GENERAL", asked.ts)
    assert len(replies) == 3


async def test_a_resumed_long_answer_edits_its_messages_instead_of_posting_them_again(
    slack: SlackEmulator, model: ModelServer, sqlite_url: str, kb: KnowledgeBase
):
    script_long_answer(model)
    async with serving(slack, make_settings(slack, model, sqlite_url), kb) as bot:
        said = await slack.user_says("C_GENERAL", VPN_QUESTION)
        posted = [m.ts for m in await posted_in_parts(slack, bot, "C_GENERAL", said.ts)]
        assert len(posted) >= 2
        # The state a worker killed after posting every part leaves: open, its lease run out.
        engine = make_engine(sqlite_url)
        with engine.begin() as conn:
            conn.execute(update(claims).values(status="open", owner="killed-worker", lease_until=0.0))
        engine.dispose()
        await slack.wait_for(lambda: len(leader_turns(model)) == 2, timeout=20)
        await settle(bot)
        (claim,) = await bot.ledger.all()
        assert (claim.status, claim.attempts) == ("done", 2)
    replies = slack.bot_messages("C_GENERAL", said.ts)
    assert [m.ts for m in replies] == posted  # the same messages, edited
    assert claim.reply_parts == posted[1:]
    shown = "\n".join(b["text"]["text"] for r in replies for b in r.blocks or [] if b["type"] == "section")
    assert len(re.findall(r"Step 60:", shown)) == 1
    assert action_ids(replies[-1]) == BUTTONS


async def test_a_stream_the_person_stopped_keeps_what_they_saw_and_gets_sources_and_buttons(
    slack: SlackEmulator, model: ModelServer, sqlite_url: str, kb: KnowledgeBase
):
    script_slow_stream(model)
    async with serving(slack, make_settings(slack, model, sqlite_url), kb) as bot:
        said = await slack.user_says("C_GENERAL", VPN_QUESTION)
        streaming = await streaming_reply(slack, "C_GENERAL", said.ts)
        slack.user_stops_stream("C_GENERAL", streaming.ts)
        seen = streaming.text
        await settle(bot)
    (reply,) = slack.bot_messages("C_GENERAL", said.ts)
    assert reply.ts == streaming.ts and reply.stream == "stopped_by_user"
    assert "More detail 11" not in reply.display_text  # nothing beyond where they stopped
    assert seen.split("[1]")[0].strip() in reply.display_text
    assert "engineering/vpn.md" in reply.display_text  # the sources
    assert action_ids(reply) == BUTTONS
