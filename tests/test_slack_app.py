"""The Slack app end to end: the real Bolt AsyncApp served over HTTP on loopback (and once over Socket
Mode), the Slack emulator as the workspace, the scripted model server playing the team's models, real
Milvus Lite with the local embedder over the fixture corpus, and the ledger on SQLite.

What is asserted is what a person sees in Slack (replies, reactions, statuses, ephemerals) and what
lands in the database (claims, feedback). The emulator subscribes to exactly manifest.yml's events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import aiohttp
import pytest

from bot.cli import main
from bot.server import connect_socket_mode
from bot.slack.app import SlackBot
from bot.slack.reply import PLACEHOLDER
from bot.slack.worker import WorkerThread
from knowledge.base import KnowledgeBase
from knowledge.config import KnowledgeConfig
from localslack.emulator import SlackEmulator
from localslack.events import app_mention_event
from localslack.limits import MAX_BLOCKS, MAX_SECTION_TEXT, MAX_TEXT
from localslack.workspace import Message
from tests import app_fixtures
from tests.app_fixtures import (
    BUTTONS,
    VPN_QUESTION,
    action_ids,
    analyst_saw,
    leader_turns,
    make_settings,
    manifest_events,
    posted_in_parts,
    script_long_answer,
    script_slow_stream,
    script_team,
    serving,
    settle,
    shown_to,
    streaming_reply,
)
from tests.emulators.openai import Error, Hang, ModelServer
from tests.team_script import LEADER

# The app under test and its fixtures (tests/app_fixtures.py).
kb, model, slack, bot = app_fixtures.kb, app_fixtures.model, app_fixtures.slack, app_fixtures.bot


# --- helpers ------------------------------------------------------------------------------------


def texts(messages: list[Message]) -> list[str]:
    return [m.display_text for m in messages]


def assert_within_limits(message: Message) -> None:
    assert len(message.text) <= MAX_TEXT
    assert len(message.blocks or []) <= MAX_BLOCKS
    for block in message.blocks or []:
        if block.get("type") == "section":
            assert len(block["text"]["text"]) <= MAX_SECTION_TEXT


def errors(slack: SlackEmulator) -> list[str]:
    return [f"{c.method}:{c.error}" for c in slack.calls() if not c.ok]


# --- mentions, threads, DMs ---------------------------------------------------------------------


async def test_a_mention_is_answered_in_its_thread_with_sources_and_buttons(
    slack: SlackEmulator, model: ModelServer, sqlite_url: str, kb: KnowledgeBase
):
    script_team(model, leader_delay=1.5)  # a slow model: the sign must not wait for it
    async with serving(slack, make_settings(slack, model, sqlite_url), kb) as bot:
        said = await slack.user_says("C_GENERAL", VPN_QUESTION)
        # app_mention and message, both acknowledged at once
        assert [a.status for a in said.acks] == [200, 200]
        assert all(a.elapsed < 0.5 for a in said.acks), [a.elapsed for a in said.acks]
        await slack.wait_for(lambda: "eyes" in slack.reactions("C_GENERAL", said.ts), timeout=1.0)
        # The reply already exists (an empty stream), and the ledger knows it, before the model answers.
        (started,) = await slack.wait_for(lambda: slack.bot_messages("C_GENERAL", said.ts), timeout=1.0)
        assert started.streaming and started.text == ""
        # the worker records the message right after Slack returns its ts, well before the model's 1.5 s

        async def recorded():
            (claim,) = await bot.ledger.all()
            return claim if claim.reply_ts else None

        claim = await slack.wait_for(recorded, timeout=1.0)
        assert (claim.reply_ts, claim.reply_mode, claim.status) == (started.ts, "stream", "open")

        (reply,) = await slack.wait_for_reply("C_GENERAL", said.ts, timeout=15)
        await settle(bot)
    assert reply.thread_ts == said.ts
    assert f"About “{VPN_QUESTION}”: see engineering/vpn.md [1]." in reply.display_text
    assert "*Sources*" in reply.display_text and "Resetting your VPN password" in reply.display_text
    assert action_ids(reply) == BUTTONS
    assert slack.calls("chat.startStream") and slack.calls("chat.stopStream")  # it streamed
    assert slack.reactions("C_GENERAL", said.ts) == {}  # the working sign is gone
    assert len(leader_turns(model)) == 1  # one answer for two deliveries
    assert errors(slack) == []


async def test_a_follow_up_in_the_thread_needs_no_mention_and_an_uncalled_thread_stays_quiet(
    slack: SlackEmulator, model: ModelServer, bot: SlackBot
):
    said = await slack.user_says("C_GENERAL", VPN_QUESTION)
    await slack.wait_for_reply("C_GENERAL", said.ts)
    follow = await slack.user_says(
        "C_GENERAL", "and which clients are supported?", thread_ts=said.ts, user="U_BOB", mention=False
    )
    assert [a.status for a in follow.acks] == [200]  # only `message`: no mention
    replies = await slack.wait_for_reply("C_GENERAL", said.ts, count=2)
    assert "About “and which clients are supported?”" in replies[1].display_text
    # The follow-up was asked in the same conversation: the leader saw the first exchange.
    assert VPN_QUESTION in leader_turns(model)[-1].transcript
    assert "bob (U_BOB) asks" in leader_turns(model)[-1].last_user  # who asks travels with the turn

    quiet = await slack.user_says("C_GENERAL", "lunch anyone?", mention=False)
    await slack.user_says("C_GENERAL", "yes, 12:30", thread_ts=quiet.ts, user="U_BOB", mention=False)
    await asyncio.sleep(0.5)
    await settle(bot)
    assert slack.bot_messages("C_GENERAL", quiet.ts) == []
    assert slack.reactions("C_GENERAL", quiet.ts) == {}
    assert len(leader_turns(model)) == 2


async def test_a_dm_is_answered(slack: SlackEmulator, model: ModelServer, bot: SlackBot):
    said = await slack.user_says("D_ALICE", "how many vacation days do I get?")
    assert [a.status for a in said.acks] == [200]
    reply = await slack.wait_for(
        lambda: [m for m in slack.bot_messages("D_ALICE") if not m.streaming and m.blocks]
    )
    await settle(bot)
    (reply,) = slack.bot_messages("D_ALICE")
    assert reply.thread_ts is None  # a top-level DM is answered as a chat
    assert "people/vacation.md" in reply.display_text and action_ids(reply) == BUTTONS
    assert PLACEHOLDER not in reply.display_text
    # A second DM continues the same conversation.
    await slack.user_says("D_ALICE", "and can I carry days over?")
    await slack.wait_for(lambda: len([m for m in slack.bot_messages("D_ALICE") if m.blocks]) == 2)
    assert "how many vacation days do I get?" in leader_turns(model)[-1].transcript


async def test_search_is_scoped_to_what_the_conversation_may_see(
    slack: SlackEmulator, model: ModelServer, bot: SlackBot
):
    public = await slack.user_says("C_GENERAL", "what is the Falcon launch code word?")
    await slack.wait_for_reply("C_GENERAL", public.ts)
    assert "BLUE-HERON-42" not in analyst_saw(model)

    private = await slack.user_says("C_PRIVATE", "what is the Falcon launch code word?")
    (reply,) = await slack.wait_for_reply("C_PRIVATE", private.ts)
    assert "BLUE-HERON-42" in analyst_saw(model)
    assert "slack/C_PRIVATE/falcon.md" in reply.display_text


async def test_the_assistant_view_greets_shows_status_and_titles_the_thread(
    slack: SlackEmulator, model: ModelServer, bot: SlackBot
):
    opened = await slack.user_opens_assistant("U_ALICE", context_channel="C_GENERAL")
    assert opened.ack is not None and opened.ack.status == 200
    thread = slack.assistant_thread(opened.channel, opened.thread_ts)
    await slack.wait_for(lambda: thread.prompts)
    assert [p["title"] for p in thread.prompts][:1] == ["What can you answer?"]
    (greeting,) = slack.bot_messages(opened.channel, opened.thread_ts)
    assert "Ask me anything" in greeting.display_text

    said = await slack.user_says(opened.channel, VPN_QUESTION, thread_ts=opened.thread_ts)
    replies = await slack.wait_for_reply(opened.channel, opened.thread_ts, count=2)
    await settle(bot)
    assert "engineering/vpn.md [1]" in replies[1].display_text
    assert "is looking through the documents…" in thread.statuses
    assert thread.status == ""  # cleared once answered
    assert thread.title == VPN_QUESTION
    assert said.ts not in [m.ts for m in replies]


# --- slash commands -----------------------------------------------------------------------------


async def test_ask_answers_visibly_in_the_channel(slack: SlackEmulator, model: ModelServer, bot: SlackBot):
    ack = await slack.user_runs_command("/ask", VPN_QUESTION)
    assert ack.ok and ack.status == 200
    question = await slack.wait_for(
        lambda: [m for m in slack.history("C_GENERAL") if m.is_bot and "asked" in m.text]
    )
    assert question[0].text == f"<@U_ALICE> asked: {VPN_QUESTION}"
    (reply,) = await slack.wait_for_reply("C_GENERAL", question[0].ts)
    assert "engineering/vpn.md [1]" in reply.display_text
    # The thread is a conversation like any other: a follow-up needs no mention.
    await slack.user_says("C_GENERAL", "which clients?", thread_ts=question[0].ts, mention=False)
    await slack.wait_for_reply("C_GENERAL", question[0].ts, count=2)

    await slack.user_runs_command("/ask", "   ")
    assert "Usage: `/ask <question>`" in shown_to(slack)

    await slack.user_runs_command("/ask", "anything?", channel="C_RANDOM")  # the bot is not a member
    note = await slack.wait_for(lambda: slack.ephemerals("U_ALICE", "C_RANDOM"))
    assert "Invite me" in note[-1].text
    assert slack.history("C_RANDOM") == []


async def test_kb_status_sync_and_help(slack: SlackEmulator, bot: SlackBot):
    await slack.user_runs_command("/kb", "help")
    assert "/ask" in shown_to(slack) and "/kb sync" in shown_to(slack)

    await slack.user_runs_command("/kb", "status")
    status = await slack.wait_for(lambda: [e for e in slack.ephemerals("U_ALICE") if "Documents:" in e.text])
    assert "*Documents:* 5" in status[0].text and "Last sync:" in status[0].text

    await slack.user_runs_command("/kb", "sync")
    assert "Syncing the document folders" in shown_to(slack)
    report = await slack.wait_for(
        lambda: [
            e for e in slack.ephemerals("U_ALICE") if e.text.startswith(":white_check_mark: Sync finished")
        ],
        timeout=30,
    )
    assert "5 unchanged" in report[0].text

    await slack.user_runs_command("/kb", "reindex")
    assert "I don't know `/kb reindex`" in shown_to(slack)


# --- feedback -----------------------------------------------------------------------------------


async def test_a_feedback_click_is_stored_with_the_answer_and_acknowledged(
    slack: SlackEmulator, bot: SlackBot, sqlite_url: str
):
    said = await slack.user_says("C_GENERAL", VPN_QUESTION)
    (reply,) = await slack.wait_for_reply("C_GENERAL", said.ts)
    await settle(bot)

    click = await slack.user_clicks("C_GENERAL", reply.ts, "feedback_down")
    assert click.ok and click.status == 200
    thanks = await slack.wait_for(lambda: slack.ephemerals("U_ALICE"))
    assert "feedback is recorded" in thanks[-1].text
    await slack.user_clicks("C_GENERAL", reply.ts, "feedback_up")  # Alice changes her mind
    await slack.user_clicks("C_GENERAL", reply.ts, "feedback_up", user="U_BOB")
    await slack.wait_for(lambda: len(slack.ephemerals()) == 3)

    clicks = {f.user: f for f in await bot.feedback.clicks()}
    assert {u: f.rating for u, f in clicks.items()} == {"U_ALICE": "helpful", "U_BOB": "helpful"}
    stored = clicks["U_ALICE"]
    assert stored.question == VPN_QUESTION
    assert stored.answer == f"About “{VPN_QUESTION}”: see engineering/vpn.md [1]."
    assert [(s["n"], s["doc"]) for s in stored.sources] == [(1, "engineering/vpn.md")]


# --- limits, streaming and its fallbacks --------------------------------------------------------


async def test_along_answer_is_split_over_messages_within_slacks_limits(
    slack: SlackEmulator, model: ModelServer, sqlite_url: str, kb: KnowledgeBase
):
    script_long_answer(model)
    async with serving(slack, make_settings(slack, model, sqlite_url), kb) as bot:
        said = await slack.user_says("C_GENERAL", VPN_QUESTION)
        replies = await posted_in_parts(slack, bot, "C_GENERAL", said.ts)
    assert len(replies) >= 2 and not any(r.streaming for r in replies)
    for reply in replies:
        assert_within_limits(reply)
    assert errors(slack) == []
    shown = "\n".join(
        block["text"]["text"] for r in replies for block in r.blocks or [] if block["type"] == "section"
    )
    assert all(f"Step {i}:" in shown for i in range(1, 61))  # nothing cut
    assert action_ids(replies[-1]) == BUTTONS


async def test_when_streaming_is_refused_the_answer_is_posted_and_updated(
    slack: SlackEmulator, bot: SlackBot
):
    slack.fail("chat.startStream", "feature_not_enabled", times=None)
    said = await slack.user_says("C_GENERAL", VPN_QUESTION)
    (reply,) = await slack.wait_for_reply("C_GENERAL", said.ts)
    await settle(bot)
    (reply,) = slack.bot_messages("C_GENERAL", said.ts)
    assert reply.chunks == [] and reply.edits  # a posted placeholder, then updated
    assert reply.edits[0].text == PLACEHOLDER
    assert "engineering/vpn.md [1]" in reply.display_text
    assert action_ids(reply) == BUTTONS


async def test_a_stream_that_expires_mid_answer_is_finished_by_updating_it(
    slack: SlackEmulator, model: ModelServer, sqlite_url: str, kb: KnowledgeBase
):
    script_slow_stream(model)
    async with serving(slack, make_settings(slack, model, sqlite_url), kb) as bot:
        said = await slack.user_says("C_GENERAL", VPN_QUESTION)
        streaming = await streaming_reply(slack, "C_GENERAL", said.ts)
        slack.expire_stream("C_GENERAL", streaming.ts)
        await slack.wait_for(lambda: slack.bot_messages("C_GENERAL", said.ts)[0].blocks, timeout=15)
        await settle(bot)
    (reply,) = slack.bot_messages("C_GENERAL", said.ts)
    assert reply.ts == streaming.ts and reply.stream == "expired"
    assert "message_not_in_streaming_state" in [c.error for c in slack.calls("chat.appendStream")]
    assert "More detail 11 [1]." in reply.display_text and action_ids(reply) == BUTTONS
    assert slack.calls("chat.update")[-1].ok


async def test_an_append_slack_refuses_ends_the_stream_and_the_answer_is_finished_by_updating(
    slack: SlackEmulator, bot: SlackBot
):
    slack.fail("chat.appendStream", "internal_error")
    said = await slack.user_says("C_GENERAL", VPN_QUESTION)
    await slack.wait_for(lambda: [m for m in slack.bot_messages("C_GENERAL", said.ts) if m.blocks])
    await settle(bot)
    (reply,) = slack.bot_messages("C_GENERAL", said.ts)
    assert reply.stream == "stopped" and not reply.streaming
    assert f"About “{VPN_QUESTION}”" in reply.display_text and ":warning:" not in reply.display_text
    assert action_ids(reply) == BUTTONS


# --- never silent -------------------------------------------------------------------------------


async def _failed_answer(
    slack: SlackEmulator, bot: SlackBot, caplog: pytest.LogCaptureFixture
) -> tuple[str, str]:
    said = await slack.user_says("C_GENERAL", VPN_QUESTION)
    (reply,) = await slack.wait_for_reply("C_GENERAL", said.ts, timeout=20)
    await settle(bot)
    (claim,) = [c for c in await bot.ledger.all() if c.ts == said.ts]
    assert claim.status == "failed"
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "bot.slack.responder" and r.levelno >= logging.ERROR
    ]
    assert len(lines) == 1 and said.ts in lines[0]
    return reply.display_text, lines[0]


async def test_a_model_failure_is_a_visible_message_and_a_log_line(
    slack: SlackEmulator,
    model: ModelServer,
    sqlite_url: str,
    kb: KnowledgeBase,
    caplog: pytest.LogCaptureFixture,
):
    model.on(Error(status=500, headers={"x-should-retry": "false"}), model=LEADER)
    async with serving(slack, make_settings(slack, model, sqlite_url), kb) as bot:
        shown, logged = await _failed_answer(slack, bot, caplog)
    assert ":warning: Sorry, the language model is not answering right now" in shown
    assert "answer failed: the model failed" in logged


async def test_a_timeout_is_a_visible_message_and_a_log_line(
    slack: SlackEmulator,
    model: ModelServer,
    sqlite_url: str,
    kb: KnowledgeBase,
    caplog: pytest.LogCaptureFixture,
):
    model.on(Hang(), model=LEADER)
    async with serving(slack, make_settings(slack, model, sqlite_url, answer_timeout=1.0), kb) as bot:
        shown, logged = await _failed_answer(slack, bot, caplog)
    assert "this took longer than 1 seconds, so I stopped" in shown
    assert "timed out after 1 s" in logged


async def test_a_search_failure_is_a_visible_message_and_a_log_line(
    slack: SlackEmulator,
    model: ModelServer,
    sqlite_url: str,
    kb: KnowledgeBase,
    caplog: pytest.LogCaptureFixture,
):
    script_team(model)
    unreachable = KnowledgeBase(
        KnowledgeConfig(milvus_uri="http://127.0.0.1:9", database_url=sqlite_url), embedder=kb.embedder
    )
    async with serving(slack, make_settings(slack, model, sqlite_url), unreachable) as bot:
        shown, logged = await _failed_answer(slack, bot, caplog)
    assert "I couldn't search the documents just now" in shown
    assert "searching the documents failed" in logged and "127.0.0.1:9" in logged


async def test_a_slack_error_is_a_visible_message_and_a_log_line(
    slack: SlackEmulator,
    model: ModelServer,
    sqlite_url: str,
    kb: KnowledgeBase,
    caplog: pytest.LogCaptureFixture,
):
    script_team(model)
    slack.fail("chat.stopStream", "internal_error")
    async with serving(slack, make_settings(slack, model, sqlite_url), kb) as bot:
        shown, logged = await _failed_answer(slack, bot, caplog)
    assert "Slack refused my answer (internal_error)" in shown
    assert "chat.stopStream failed: internal_error" in logged


# --- delivery, exactly once ---------------------------------------------------------------------


async def test_forty_messages_each_delivered_twice_and_retried_get_forty_answers(
    slack: SlackEmulator, model: ModelServer, bot: SlackBot
):
    questions = [f"question number {i}: how do I reset my VPN password?" for i in range(40)]
    said = await asyncio.gather(*(slack.user_says("C_GENERAL", q) for q in questions))
    retries = await asyncio.gather(*(slack.redeliver(ack) for s in said for ack in s.acks))
    acks = [a for s in said for a in s.acks] + list(retries)
    assert len(acks) == 160 and all(a.ok and a.status == 200 for a in acks)
    assert max(a.elapsed for a in acks) < 3.0

    for s, question in zip(said, questions, strict=True):
        (reply,) = await slack.wait_for_reply("C_GENERAL", s.ts, timeout=60)
        assert f"About “{question}”" in reply.display_text
    await settle(bot)
    assert all(len(slack.bot_messages("C_GENERAL", s.ts)) == 1 for s in said)
    assert len(leader_turns(model)) == 40
    claims = await bot.ledger.all()
    assert len(claims) == 40 and {c.status for c in claims} == {"done"}


async def test_messages_in_one_conversation_are_answered_one_at_a_time_in_the_order_sent(
    slack: SlackEmulator, model: ModelServer, bot: SlackBot
):
    ws = slack.workspace
    first = ws.post("C_GENERAL", text="<@U_BOT> first: how do I reset my VPN password?", user="U_ALICE")
    second = ws.post(
        "C_GENERAL", text="<@U_BOT> second: which VPN clients?", user="U_ALICE", thread_ts=first.ts
    )
    # Slack delivers the later message first.
    await slack.send_event(app_mention_event(ws, second))
    await slack.send_event(app_mention_event(ws, first))
    replies = await slack.wait_for_reply("C_GENERAL", first.ts, count=2, timeout=20)
    assert "first:" in replies[0].display_text and "second:" in replies[1].display_text
    turns = leader_turns(model)
    assert "first:" in turns[0].last_user and "first:" in turns[1].transcript  # the second saw the first


async def test_different_conversations_are_answered_at_once_up_to_the_bound(
    slack: SlackEmulator, model: ModelServer, sqlite_url: str, kb: KnowledgeBase
):
    script_team(model, leader_delay=0.6)
    settings = make_settings(slack, model, sqlite_url, max_concurrent_answers=2)
    async with serving(slack, settings, kb) as bot:
        said = await asyncio.gather(*(slack.user_says("C_GENERAL", f"q{i}: VPN?") for i in range(6)))
        # Every question shows the sign at once, whatever is queued ahead of it.
        await slack.wait_for(lambda: all("eyes" in slack.reactions("C_GENERAL", s.ts) for s in said), 1.0)
        for s in said:
            await slack.wait_for_reply("C_GENERAL", s.ts, timeout=20)
        await settle(bot)
    starts = sorted(r.received_at for r in leader_turns(model))
    assert len(starts) == 6
    assert starts[1] - starts[0] < 0.3  # two at once...
    assert starts[2] - starts[0] >= 0.6 and starts[4] - starts[2] >= 0.6  # ...and never a third


async def test_forged_and_stale_signatures_get_401_and_no_work(slack: SlackEmulator, bot: SlackBot):
    ws = slack.workspace
    message = ws.post("C_GENERAL", text="<@U_BOT> how do I reset my VPN password?", user="U_ALICE")
    forged = await slack.send_event(app_mention_event(ws, message), bad_signature=True)
    stale = await slack.send_event(app_mention_event(ws, message), timestamp=int(time.time()) - 600)
    assert (forged.status, stale.status) == (401, 401)
    await asyncio.sleep(0.3)
    assert await bot.ledger.all() == []
    assert [c.method for c in slack.calls()] == ["auth.test"]  # only the start-up check


async def test_rate_limits_are_honoured_with_retries(slack: SlackEmulator, bot: SlackBot):
    slack.rate_limit("chat.startStream", times=1, retry_after=1)
    said = await slack.user_says("C_GENERAL", VPN_QUESTION)
    (reply,) = await slack.wait_for_reply("C_GENERAL", said.ts, timeout=20)
    limited, retried = slack.calls("chat.startStream")[:2]
    assert (limited.status, retried.status) == (429, 200)
    assert retried.time - limited.time >= 1.0  # Retry-After: 1
    assert reply.chunks  # still streamed, in the one message


async def test_own_messages_and_other_bots_are_ignored(
    model: ModelServer, sqlite_url: str, kb: KnowledgeBase
):
    script_team(model)
    async with SlackEmulator(subscriptions=manifest_events(), echo_bot_messages=True) as slack:
        async with serving(slack, make_settings(slack, model, sqlite_url), kb) as bot:
            said = await slack.user_says("C_GENERAL", VPN_QUESTION)
            await slack.wait_for_reply("C_GENERAL", said.ts)
            await slack.other_bot_says("C_GENERAL", "<@U_BOT> deploy finished, how do I roll back?")
            await asyncio.sleep(0.5)
            await settle(bot)
            assert len(leader_turns(model)) == 1  # neither its own echoes nor the other bot
            assert [m.bot_id for m in slack.bot_messages("C_GENERAL")] == ["B_BOT", "B_OTHER"]

        allowing = make_settings(slack, model, f"{sqlite_url[:-3]}-allow.db", slack_allow_bots=True)
        async with serving(slack, allowing, kb) as bot:
            await slack.other_bot_says("C_GENERAL", "<@U_BOT> how do I roll back a deploy?")
            await slack.wait_for(lambda: len(leader_turns(model)) == 2, timeout=15)
            await settle(bot)


# --- running it ---------------------------------------------------------------------------------


async def test_socket_mode_answers_and_reconnects_after_a_drop(
    slack: SlackEmulator, model: ModelServer, sqlite_url: str, kb: KnowledgeBase
):
    script_team(model)
    settings = make_settings(slack, model, sqlite_url)
    bot = await SlackBot(settings, knowledge=kb).start()
    worker = await WorkerThread(settings, kb).start()
    handler = await connect_socket_mode(bot, slack.app_token, ping_interval=0.2)
    try:
        await slack.socket.wait_connected()
        said = await slack.user_says("C_GENERAL", VPN_QUESTION)
        assert [(a.transport, a.ok) for a in said.acks] == [("socket", True), ("socket", True)]
        await slack.wait_for_reply("C_GENERAL", said.ts)

        await slack.socket.drop(graceful=False)
        await slack.socket.wait_connected(count=2, timeout=10)
        again = await slack.user_says("C_GENERAL", "which VPN clients are supported?")
        assert all(a.ok for a in again.acks)
        await slack.wait_for_reply("C_GENERAL", again.ts)
        ack = await slack.user_runs_command("/kb", "help")
        assert ack.ok and "/ask" in shown_to(slack)
    finally:
        await handler.close_async()
        await bot.stop()
        await worker.stop()


async def test_every_subscribed_event_is_handled(
    slack: SlackEmulator, model: ModelServer, bot: SlackBot, caplog: pytest.LogCaptureFixture
):
    """One delivery of each kind the manifest subscribes to reaches a listener (Bolt warns otherwise)."""
    acks = []
    for channel in ("C_GENERAL", "C_PRIVATE", "G_TEAM", "D_ALICE"):  # app_mention, message.*
        said = await slack.user_says(channel, VPN_QUESTION)
        acks += said.acks
        await slack.wait_for(lambda channel=channel: [m for m in slack.bot_messages(channel) if m.blocks])
    opened = await slack.user_opens_assistant("U_BOB")  # assistant_thread_started
    assert opened.ack is not None
    changed = {
        "type": "assistant_thread_context_changed",
        "assistant_thread": {
            "user_id": "U_BOB",
            "channel_id": opened.channel,
            "thread_ts": opened.thread_ts,
            "context": {"channel_id": "C_GENERAL", "team_id": "T_TEAM", "enterprise_id": None},
        },
        "event_ts": slack.workspace.next_ts(),
    }
    acks += [opened.ack, await slack.send_event(changed)]
    await settle(bot)
    kinds = {(a.payload["event"]["type"], a.payload["event"].get("channel_type")) for a in acks}
    assert {("app_mention", None), ("message", "channel"), ("message", "group"), ("message", "mpim")} <= kinds
    assert {("message", "im"), ("assistant_thread_started", None)} <= kinds
    assert all(a.status == 200 for a in acks)
    assert not [r for r in caplog.records if "Unhandled request" in r.getMessage()]


async def test_healthz_and_url_verification(slack: SlackEmulator, bot: SlackBot):
    health_url = slack.request_url.replace("/slack/events", "/healthz")  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as session, session.get(health_url) as response:
        assert response.status == 200 and (await response.json()) == {"ok": True}
    check = await slack.verify_url("challenge-123")
    assert check.status == 200 and check.body == {"challenge": "challenge-123"}


def test_a_missing_token_is_a_clear_error_at_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys):
    monkeypatch.chdir(tmp_path)  # no .env here
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))  # whatever the command configures is undone
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert main(["serve"]) == 2
    said = capsys.readouterr().err
    assert "SLACK_BOT_TOKEN is not set" in said and "SLACK_SIGNING_SECRET is not set" in said

    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-123")
    assert main(["socket"]) == 2
    said = capsys.readouterr().err
    assert "SLACK_APP_TOKEN is not set" in said and "SLACK_BOT_TOKEN" not in said.split("SLACK_APP_TOKEN")[0]


def test_secrets_never_reach_a_log_line():
    from bot.logs import redact

    line = redact(
        "calling https://slack.com/api with xoxb-1234-5678-abcdef and xapp-1-A1-99-ff, "
        "key sk-proj-0123456789abcdef, db postgresql+psycopg://bot:hunter2@db:5432/tw"
    )
    assert "abcdef" not in line and "99-ff" not in line and "hunter2" not in line
    assert "xoxb-…" in line and "bot:•••@db" in line


async def test_a_refused_token_is_a_clear_error_at_start(
    slack: SlackEmulator, model: ModelServer, sqlite_url: str
):
    from bot.settings import SettingsError

    settings = make_settings(slack, model, sqlite_url, slack_bot_token="xoxb-wrong")
    with pytest.raises(SettingsError, match=r"Slack refused SLACK_BOT_TOKEN \(invalid_auth\)"):
        await SlackBot(settings).start()
