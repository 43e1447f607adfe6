"""Guests and Slack Connect: people outside the organisation never read the internal documents.

End to end: the local Slack workspace (guests, a channel shared with another organisation and its
events) delivers to the real Bolt app over HTTP; the scripted model server plays the team over the
real corpus in Milvus Lite. What is asserted is what lands in the thread and what the model server
was sent: no handbook passage reaches either for a guest or in an externally shared channel.
"""

from __future__ import annotations

import json

import pytest

from bot.slack.app import SlackBot
from bot.slack.audience import is_external_channel, is_outsider
from localslack.emulator import SlackEmulator
from tests import app_fixtures
from tests.app_fixtures import VPN_QUESTION, make_settings, manifest_events, script_team, serving
from tests.emulators.openai import ModelServer

kb = app_fixtures.kb  # the fixture corpus (engineering/vpn.md, ...) synced into Milvus Lite
model = app_fixtures.model

HANDBOOK = "Gatekeeper"  # in engineering/vpn.md, the passage that answers VPN_QUESTION
REFUSAL = "I can only answer from files shared in this conversation"


@pytest.fixture
async def slack():
    async with SlackEmulator(subscriptions=manifest_events()) as emulator:
        ws = emulator.workspace
        ws.add_user("U_GUEST", "gus", "Gus Guest", is_restricted=True)
        ws.add_user("U_SOLO", "sol", "Sol Single", is_ultra_restricted=True)
        ws.add_channel("C_PARTNERS", "acme-partners", "public", {"U_ALICE", "U_BOB", ws.bot_user_id})
        ws.channel("C_GENERAL").members |= {"U_GUEST", "U_SOLO"}
        yield emulator


def sent_to_model(model: ModelServer, since: int = 0) -> str:
    return "\n".join(json.dumps(r.messages) for r in model.chat_requests[since:])


async def ask(slack: SlackEmulator, channel: str, question: str = VPN_QUESTION, user: str = "U_ALICE") -> str:
    said = await slack.user_says(channel, question, user=user)
    if channel.startswith("D"):
        before = len(slack.bot_messages(channel))
        replies = await slack.wait_for(
            lambda: [m for m in slack.bot_messages(channel)[before:] if not m.streaming], 30
        )
        return replies[-1].display_text
    (reply,) = await slack.wait_for_reply(said.channel, said.ts, timeout=30)
    return reply.display_text


@pytest.fixture
async def bot(slack: SlackEmulator, model: ModelServer, sqlite_url: str, kb):
    script_team(model)
    async with serving(slack, make_settings(slack, model, sqlite_url), kb) as running:
        yield running


async def test_a_guest_asking_in_a_public_channel_or_a_dm_gets_no_handbook_fact(
    slack: SlackEmulator, model: ModelServer, bot: SlackBot
):
    for user in ("U_GUEST", "U_SOLO"):
        reply = await ask(slack, "C_GENERAL", user=user)
        assert REFUSAL in reply and "you are a guest" in reply
        assert HANDBOOK not in reply and "vpn.md" not in reply
    reply = await ask(slack, slack.workspace.dm("U_GUEST").id, user="U_GUEST")
    assert REFUSAL in reply
    assert HANDBOOK not in sent_to_model(model)

    reply = await ask(slack, "C_GENERAL", user="U_BOB")  # a member of the organisation, same channel
    assert "engineering/vpn.md" in reply and HANDBOOK in sent_to_model(model)


async def test_an_externally_shared_channel_sees_only_its_own_files_and_unsharing_restores_it(
    slack: SlackEmulator, model: ModelServer, bot: SlackBot
):
    reply = await ask(slack, "C_PARTNERS")  # not shared yet: the facts are cached as internal
    assert "engineering/vpn.md" in reply
    since = len(model.chat_requests)

    await slack.channel_shared_with("C_PARTNERS", "T_ACME", people=[("U_ACME_PAT", "pat")])
    reply = await ask(slack, "C_PARTNERS")  # an internal person asks, but outsiders read the answer
    assert REFUSAL in reply and "outside the organisation" in reply
    reply = await ask(slack, "C_PARTNERS", user="U_ACME_PAT")
    assert REFUSAL in reply and HANDBOOK not in reply
    assert HANDBOOK not in sent_to_model(model, since)

    await slack.user_shares_file(
        "C_PARTNERS",
        "acme-sla.md",
        "# Acme SLA\n\nVPN incidents for Acme are answered within ORCA-4 hours.\n",
    )
    await bot.wait_idle(30)
    reply = await ask(slack, "C_PARTNERS", "how fast are VPN incidents answered for Acme?")
    assert "acme-sla.md" in reply
    assert HANDBOOK not in sent_to_model(model, since) and "ORCA-4" in sent_to_model(model, since)
    reply = await ask(slack, "C_GENERAL", "how fast are VPN incidents answered for Acme?")
    assert "acme-sla.md" not in reply  # a Slack Connect channel's file stays in it

    await slack.channel_unshared_from("C_PARTNERS", "T_ACME")
    reply = await ask(slack, "C_PARTNERS")
    assert "engineering/vpn.md" in reply


async def test_threadwise_external_workspace_gives_guests_and_shared_channels_the_handbook(
    slack: SlackEmulator, model: ModelServer, sqlite_url: str, kb
):
    script_team(model)
    settings = make_settings(slack, model, sqlite_url, external="workspace")
    async with serving(slack, settings, kb):
        await slack.channel_shared_with("C_PARTNERS", "T_ACME", people=[("U_ACME_PAT", "pat")])
        assert "engineering/vpn.md" in await ask(slack, "C_GENERAL", user="U_GUEST")
        assert "engineering/vpn.md" in await ask(slack, "C_PARTNERS", user="U_ACME_PAT")
    assert HANDBOOK in sent_to_model(model)


async def test_a_guest_joining_is_seen_at_once(slack: SlackEmulator, model: ModelServer, bot: SlackBot):
    ws = slack.workspace
    ws.add_user("U_NEW", "nia", "Nia New")
    ws.channel("C_GENERAL").members.add("U_NEW")
    assert "engineering/vpn.md" in await ask(slack, "C_GENERAL", user="U_NEW")  # cached: a member
    ws.users["U_NEW"].is_restricted = True  # an admin turns the account into a guest one...
    ws.channel("C_GENERAL").members.discard("U_NEW")
    await slack.user_joins("C_GENERAL", "U_NEW")  # ...who is then added to the channel
    assert REFUSAL in await ask(slack, "C_GENERAL", user="U_NEW")


@pytest.mark.parametrize(
    ("info", "external"),
    [
        ({"is_shared": False, "is_ext_shared": False}, False),
        ({"is_ext_shared": True}, True),
        ({"is_pending_ext_shared": True}, True),  # outsiders invited: treated as in already
        ({"is_shared": True, "is_org_shared": True, "shared_team_ids": ["T_TEAM", "T_SISTER"]}, False),
        ({"is_shared": True, "shared_team_ids": ["T_TEAM", "T_ACME"]}, True),
        ({"is_shared": False, "connected_team_ids": ["T_TEAM", "E_ACME"]}, True),
    ],
)
def test_what_counts_as_shared_outside_the_organisation(info: dict, external: bool):
    assert is_external_channel(info, "T_TEAM") is external


@pytest.mark.parametrize(
    ("user", "outsider"),
    [
        ({"team_id": "T_TEAM"}, False),
        ({"team_id": "T_TEAM", "is_restricted": True}, True),
        ({"team_id": "T_TEAM", "is_restricted": True, "is_ultra_restricted": True}, True),
        ({"team_id": "T_ACME"}, True),  # a Slack Connect person
        ({"team_id": "T_SISTER", "enterprise_user": {"enterprise_id": "E_ORG"}}, False),  # same Grid org
        ({"team_id": "T_TEAM", "is_stranger": True}, True),
    ],
)
def test_who_counts_as_an_outsider(user: dict, outsider: bool):
    assert is_outsider(user, "T_TEAM") is outsider
