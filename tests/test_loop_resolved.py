"""Answers learned from resolved threads, and a human when needed, end to end: the asker marks a thread
resolved (✅ or the button), gets a Q&A proposed only to them, saves or edits it; it is then found
like any document where its thread could be read, cited as "#channel thread, date", exported as a
labelled question, and forgotten by /kb forget or by deleting the thread's first message. "Ask an
expert" calls the channel's experts once (the real Bolt app, the local Slack workspace, the scripted
team, Milvus Lite)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.channel_config import ChannelConfig
from bot.cli import main
from bot.feedback_export import export_feedback
from bot.resolutions import Resolution, ResolutionStore
from bot.settings import load_settings
from bot.slack.app import SlackBot
from knowledge.base import KnowledgeBase
from knowledge.database import make_async_engine
from knowledge.saved_answers import SOURCE, index_saved, remove_saved
from knowledge.types import AccessScope
from localslack.emulator import SlackEmulator
from tests import app_fixtures
from tests.app_fixtures import (
    analyst_saw,
    make_settings,
    script_team,
    serving,
    with_buttons,
)
from tests.corpus import write_corpus
from tests.emulators.openai import ModelServer

# The fixture corpus (synced once for the module), the model server, the workspace.
kb, model, slack = app_fixtures.kb, app_fixtures.model, app_fixtures.slack

QUESTION = "how do I get a parking permit for the office garage?"
BOB_SAYS = "Ask facilities in #facilities: permits are issued on Mondays."
DRAFT = "Q: How do I get a parking permit?\nA: Ask facilities in #facilities; permits are issued on Mondays.\nBY: <@U_BOB>"


def proposals(slack: SlackEmulator, user: str = "U_ALICE") -> list:
    return [e for e in slack.ephemerals(user) if e.blocks and "Save this as an answer" in e.text]


async def settle(bot: SlackBot) -> None:
    await asyncio.sleep(0.2)
    await bot.wait_idle(timeout=30)


def saved_docs(kb: KnowledgeBase) -> dict[str, Any]:
    return kb.manifest.documents(SOURCE)


async def test_a_resolved_thread_becomes_an_answer_found_and_cited_where_it_may_be_read(
    slack: SlackEmulator, model: ModelServer, sqlite_url: str, kb: KnowledgeBase, tmp_path
):
    drafts = model.on(DRAFT, system="You turn a resolved Slack thread")
    script_team(model)
    settings = make_settings(slack, model, sqlite_url)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    async with serving(slack, settings, kb) as bot:
        said = await slack.user_says("C_GENERAL", QUESTION)
        (answer,) = await slack.wait_for_reply("C_GENERAL", said.ts, timeout=20)
        await slack.user_says("C_GENERAL", BOB_SAYS, user="U_BOB", thread_ts=said.ts, mention=False)
        await slack.wait_for_reply("C_GENERAL", said.ts, count=2, timeout=20)
        await settle(bot)

        # Someone else's ✅ is just an emoji; the asker's ✅ on the answer proposes a Q&A to them only.
        await slack.user_reacts("C_GENERAL", answer.ts, "white_check_mark", user="U_BOB")
        lunch = await slack.user_says("C_GENERAL", "lunch anyone?", mention=False)
        await slack.user_reacts("C_GENERAL", lunch.message.ts, "white_check_mark")
        await slack.user_reacts("C_GENERAL", answer.ts, "white_check_mark", user="U_ALICE")
        (proposal,) = await slack.wait_for(lambda: proposals(slack), timeout=20)
        assert proposals(slack, "U_BOB") == []
        assert proposal.thread_ts == said.ts
        assert "How do I get a parking permit?" in proposal.text and "<@U_BOB>" in proposal.text
        assert f"#general thread, {today}" in proposal.text
        (drafted,) = drafts.requests
        # Only the asker's ✅ on the bot's thread read the thread from Slack; the other ✅ cost nothing.
        assert len(slack.calls("conversations.replies")) == 1
        assert BOB_SAYS in drafted.transcript and QUESTION in drafted.transcript  # the model saw the thread

        await slack.user_clicks_ephemeral(proposal, "resolution_save")
        await slack.wait_for(lambda: any("Saved." in e.text for e in slack.ephemerals("U_ALICE")), timeout=20)
        (doc,) = saved_docs(kb).values()
        assert (doc.title, doc.access, doc.status) == (f"#general thread, {today}", "workspace", "indexed")
        (entry,) = await bot.resolutions.list()
        assert entry.permalink and entry.answered_by == "<@U_BOB>"

        # Found from another conversation (a public thread is the workspace's), cited with its date.
        await slack.user_says("D_BOB", "where do I get a parking permit?", user="U_BOB")
        await slack.wait_for(
            lambda: [m for m in slack.bot_messages("D_BOB") if m.blocks and not m.streaming], 20
        )
        assert f'document="#general thread, {today}"' in analyst_saw(model)
        assert "permits are issued on Mondays" in analyst_saw(model)

        # Exported as a labelled question whose relevant document is the saved answer.
        labelled = await asyncio.to_thread(export_feedback, settings, labelled=True)
        assert {"question": "How do I get a parking permit?", "relevant": [doc.title]}.items() <= labelled[
            -1
        ].items()

        # /kb forget: Bob (neither who saved it nor an admin) may not; Alice may.
        await slack.user_runs_command("/kb", f"forget {entry.permalink}", user="U_BOB")
        await slack.wait_for(
            lambda: any("who saved it" in e.text for e in slack.ephemerals("U_BOB")), timeout=20
        )
        assert len(saved_docs(kb)) == 1
        await slack.user_runs_command("/kb", "forget not-a-link")
        await slack.wait_for(
            lambda: any("not a Slack message link" in e.text for e in slack.ephemerals("U_ALICE"))
        )
        await slack.user_runs_command("/kb", f"forget {entry.permalink}")
        await slack.wait_for(
            lambda: any("Forgotten" in e.text for e in slack.ephemerals("U_ALICE")), timeout=20
        )
        assert saved_docs(kb) == {}
        assert (
            kb.search("parking permit issued on Mondays", k=10, scope=AccessScope.workspace())[0].chunk.url
            == ""
        )

        # Resolved again with the button, edited in the modal, then the thread's first message is deleted.
        await slack.user_clicks("C_GENERAL", answer.ts, "thread_resolved")
        await slack.wait_for(lambda: len(proposals(slack)) == 2, timeout=20)
        await slack.user_clicks_ephemeral(proposals(slack)[-1], "resolution_edit")
        (view,) = await slack.wait_for(slack.opened_views, timeout=20)
        ack = await slack.user_submits_view(view["id"], {"question": "How do I park?", "answer": ""})
        assert ack.body["response_action"] == "errors" and "answer" in ack.body["errors"]
        ack = await slack.user_submits_view(
            view["id"],
            {"question": "How do I park at the office?", "answer": "Facilities issue permits on Mondays."},
        )
        assert ack.ok and not (ack.body or {}).get("response_action")
        (entry,) = await slack.wait_for(bot.resolutions.list, timeout=20)
        assert len(saved_docs(kb)) == 1
        assert (entry.question, entry.answer) == (
            "How do I park at the office?",
            "Facilities issue permits on Mondays.",
        )
        await slack.user_deletes("C_GENERAL", said.ts)
        await slack.wait_for(lambda: saved_docs(kb) == {}, timeout=20)


async def test_without_a_model_the_resolvers_last_reply_is_proposed_and_a_private_answer_stays_private(
    slack: SlackEmulator, model: ModelServer, sqlite_url: str, kb: KnowledgeBase
):
    script_team(model)
    settings = make_settings(slack, model, sqlite_url, openai_api_key=None, openai_base_url=None)
    async with serving(slack, settings, kb) as bot:
        said = await slack.user_says("C_PRIVATE", "what is the Falcon garage door code?")
        (answer,) = await slack.wait_for_reply("C_PRIVATE", said.ts, timeout=20)
        await slack.user_says("C_PRIVATE", "Found it: the code is 4711.", thread_ts=said.ts, mention=False)
        await settle(bot)
        await slack.user_reacts("C_PRIVATE", said.ts, "white_check_mark")  # ✅ on the question this time
        (proposal,) = await slack.wait_for(lambda: proposals(slack), timeout=20)
        assert "Found it: the code is 4711." in proposal.text and "<@U_ALICE>" in proposal.text
        assert "#secret-project thread" in proposal.text

        await slack.user_clicks_ephemeral(proposal, "resolution_discard")
        await slack.wait_for(lambda: any("Discarded" in e.text for e in slack.ephemerals("U_ALICE")))
        await slack.user_clicks_ephemeral(proposal, "resolution_save")  # too late: it was discarded
        await slack.wait_for(lambda: any("no longer there" in e.text for e in slack.ephemerals("U_ALICE")))
        assert saved_docs(kb) == {}

        await slack.user_clicks("C_PRIVATE", answer.ts, "thread_resolved")  # resolved again: proposed again
        await slack.wait_for(lambda: len(proposals(slack)) == 2, timeout=20)
        await slack.user_clicks_ephemeral(proposals(slack)[-1], "resolution_save")
        (entry,) = await slack.wait_for(bot.resolutions.list, timeout=20)
        (doc,) = saved_docs(kb).values()
        assert doc.access == "channel:C_PRIVATE"
        hits = kb.search("Falcon garage door code", k=10, scope=AccessScope.for_channel("C_PRIVATE", True))
        assert any("4711" in h.chunk.text for h in hits)
        assert not any("4711" in h.chunk.text for h in kb.search("Falcon garage door code", k=10))
        await asyncio.to_thread(remove_saved, kb, entry.key)  # the module's corpus stays as it was


async def test_ask_an_expert_calls_the_channels_experts_once_and_their_reply_feeds_the_loop(
    slack: SlackEmulator, model: ModelServer, sqlite_url: str, kb: KnowledgeBase
):
    slack.workspace.add_user_group("S_ONCALL", "oncall", ["U_BOB"])
    script_team(model)
    settings = make_settings(slack, model, sqlite_url, openai_api_key=None, openai_base_url=None)
    async with serving(slack, settings, kb) as bot:
        await bot.channels.put(
            ChannelConfig("T_TEAM", "C_GENERAL", experts=("U_BOB",), expert_group="S_ONCALL")
        )
        said = await slack.user_says("C_GENERAL", "who approves hotfixes on Fridays?")
        (answer,) = await slack.wait_for_reply("C_GENERAL", said.ts, timeout=20)
        await settle(bot)

        await slack.user_clicks("C_GENERAL", answer.ts, "ask_expert")
        called = await slack.wait_for(
            lambda: [m for m in slack.bot_messages("C_GENERAL", said.ts) if "could use an expert" in m.text]
        )
        assert called[0].text.startswith("<@U_BOB> <!subteam^S_ONCALL>: <@U_ALICE> could use an expert")
        await slack.user_clicks("C_GENERAL", answer.ts, "ask_expert", user="U_BOB")
        await slack.wait_for(
            lambda: any("Already called by <@U_ALICE>" in e.text for e in slack.ephemerals("U_BOB"))
        )
        assert (
            len([m for m in slack.bot_messages("C_GENERAL", said.ts) if "could use an expert" in m.text]) == 1
        )

        # The expert answers; the asker's ✅ proposes the expert's reply.
        await slack.user_says(
            "C_GENERAL",
            "The incident commander approves them.",
            user="U_BOB",
            thread_ts=said.ts,
            mention=False,
        )
        await slack.user_says("C_GENERAL", "thanks!", thread_ts=said.ts, mention=False)
        await settle(bot)
        await slack.user_reacts("C_GENERAL", said.ts, "white_check_mark")
        (proposal,) = await slack.wait_for(lambda: proposals(slack), timeout=20)
        assert "The incident commander approves them." in proposal.text and "<@U_BOB>" in proposal.text

        # No experts set: the button says how to get some.
        private = await slack.user_says("C_PRIVATE", "who approves hotfixes?")
        (reply,) = await slack.wait_for(lambda: with_buttons(slack, "C_PRIVATE", private.ts), timeout=20)
        await slack.user_clicks("C_PRIVATE", reply.ts, "ask_expert")
        await slack.wait_for(lambda: any("No experts are set" in e.text for e in slack.ephemerals("U_ALICE")))


def test_saved_answers_are_listed_by_status_and_join_an_evaluation(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    write_corpus(tmp_path / "docs")
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        json.dumps({"question": "how many vacation days do I get", "relevant": ["people/vacation.md"]}) + "\n"
    )
    entry = Resolution(
        team="T_TEAM",
        channel="C_GENERAL",
        channel_name="general",
        thread_ts="1764892800.000100",
        private=False,
        asker="U_ALICE",
        question="How do I get a parking permit for the garage?",
        answer="Facilities issue garage parking permits on Mondays.",
        answered_by="<@U_BOB>",
        permalink="https://threadwise-test.slack.com/archives/C_GENERAL/p1764892800000100",
        state="saved",
    )

    async def seed() -> None:
        engine = make_async_engine(sqlite_url)
        await ResolutionStore(engine).put(entry)
        await engine.dispose()

    asyncio.run(seed())
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("MILVUS_URI", str(tmp_path / "milvus.db"))
    monkeypatch.setenv("THREADWISE_DOCS", str(tmp_path / "docs"))
    serving_kb = KnowledgeBase(load_settings().knowledge())
    index_saved(serving_kb, entry.as_document())
    serving_kb.close()

    assert main(["status"]) == 0
    shown = capsys.readouterr().out
    assert "saved answers (1):" in shown and "#general thread, 2025-12-05 (workspace)" in shown

    args = ["eval", "--docs", str(tmp_path / "docs"), "--questions", str(questions), "--modes", "bm25"]
    assert main([*args, "--saved", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["bm25"]
    assert report["questions"] == 2 and report["by_kind"]["saved_answer"]["questions"] == 1
    assert report["by_kind"]["saved_answer"]["recall@5"] == 1.0
    assert main([*args, "--json"]) == 0  # without --saved, the labelled set alone
    assert json.loads(capsys.readouterr().out)["bm25"]["questions"] == 1
