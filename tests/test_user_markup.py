"""A person's markup shown back by the bot never pings anyone (Slack's <!channel>, <!here>, user groups,
people): through the real app, the local Slack workspace records who each posted message notifies."""

from __future__ import annotations

import pytest

from bot.slack.app import SlackBot
from bot.slack.user_text import quote
from localslack.emulator import SlackEmulator
from tests import app_fixtures
from tests.app_fixtures import make_settings, manifest_events, script_team, serving
from tests.emulators.openai import ModelServer

kb = app_fixtures.kb  # the module's fixtures: the synced corpus, the scripted model server
model = app_fixtures.model

PINGS = "<!channel> <!here> <!everyone> <!subteam^S_DEVS|@devs> <@U_BOB>"


@pytest.fixture
async def slack():
    async with SlackEmulator(subscriptions=manifest_events()) as emulator:
        emulator.workspace.add_user("U_CAROL", "carol", "Carol Cole")
        yield emulator


@pytest.fixture
async def bot(slack: SlackEmulator, model: ModelServer, sqlite_url: str, kb):
    script_team(model)  # the writer repeats the question in its answer
    async with serving(slack, make_settings(slack, model, sqlite_url), kb) as running:
        yield running


def test_quote_shows_what_was_typed_and_leaves_no_markup():
    assert quote("<!channel> a &lt; b &amp;&amp; <@U1|alice> <#C1|general> <https://x.io|docs>") == (
        "@channel a &lt; b &amp;&amp; @alice #general docs (https://x.io)"
    )
    assert quote("<!subteam^S1> <!here|here> <@U2>") == "@S1 here @U2"
    assert "<" not in quote("<<!channel>>") and ">" not in quote("x > y <!here")


async def test_ask_echoes_the_question_without_pinging_anyone(slack: SlackEmulator, bot: SlackBot):
    await slack.user_runs_command("/ask", f"{PINGS} how do I reset my VPN password?")
    question = await slack.wait_for(lambda: [m for m in slack.history("C_GENERAL") if m.is_bot])
    assert question[0].pings == {"@U_ALICE"}  # the asker, named by the bot on purpose; no one else
    assert "@channel @here @everyone @devs @U_BOB how do I reset my VPN password?" in question[0].text
    (reply,) = await slack.wait_for_reply("C_GENERAL", question[0].ts, timeout=30)
    await bot.wait_idle(30)
    assert "engineering/vpn.md" in reply.display_text
    assert all(not m.pings for m in slack.bot_messages("C_GENERAL", question[0].ts))


@pytest.mark.parametrize("streaming", [True, False])
async def test_an_answer_repeating_a_mentions_markup_pings_no_one(
    slack: SlackEmulator,
    model: ModelServer,
    sqlite_url: str,
    kb,
    streaming: bool,
):
    script_team(model)
    settings = make_settings(slack, model, sqlite_url, slack_streaming=streaming)
    async with serving(slack, settings, kb) as bot:
        said = await slack.user_says("C_GENERAL", f"how do I reset my VPN password? {PINGS}")
        (reply,) = await slack.wait_for_reply("C_GENERAL", said.ts, timeout=30)
        await bot.wait_idle(30)
    assert "VPN password" in reply.display_text
    assert [m.pings for m in slack.bot_messages("C_GENERAL")] == [set()]
