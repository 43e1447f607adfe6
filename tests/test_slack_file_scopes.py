"""The scope of a Slack file stays true as its conversations change: unshared from one, a channel made
public, the bot leaving a private conversation (``group_left``) or a public channel (``channel_left``).

End to end through the local Slack workspace and the real app; asserted is what a search from each
conversation's scope returns, in real Milvus Lite.
"""

from __future__ import annotations

from bot.slack.app import SlackBot
from knowledge.base import KnowledgeBase
from knowledge.slack_files import SOURCE
from knowledge.types import AccessScope
from localslack.emulator import SlackEmulator
from tests import test_slack_files
from tests.test_slack_files import found, indexed

kb = test_slack_files.kb
model = test_slack_files.model
slack = test_slack_files.slack
bot = test_slack_files.bot

PLAN = "# Heron plan\n\nThe Heron kickoff room is KESTREL-ROOM-9.\n"
QUERY = "Heron kickoff room"
FACT = "KESTREL-ROOM-9"


def seen_from(kb: KnowledgeBase, channel: str, private: bool) -> bool:
    return FACT in found(kb, QUERY, AccessScope.for_channel(channel, private))


async def test_a_file_unshared_from_one_conversation_is_no_longer_seen_there(
    slack: SlackEmulator, bot: SlackBot, kb: KnowledgeBase
):
    file, _ = await slack.user_shares_file("C_PRIVATE", "heron.md", PLAN)
    await slack.user_shares_existing_file(file.id, "G_TEAM")
    await indexed(bot)
    assert seen_from(kb, "C_PRIVATE", True) and seen_from(kb, "G_TEAM", True)
    assert not seen_from(kb, "C_GENERAL", False)

    await slack.user_unshares_file(file.id, "C_PRIVATE")
    await indexed(bot)
    assert not seen_from(kb, "C_PRIVATE", True)
    assert seen_from(kb, "G_TEAM", True)

    await slack.user_unshares_file(file.id, "G_TEAM")  # shared nowhere now
    await indexed(bot)
    assert not seen_from(kb, "G_TEAM", True)
    assert not kb.manifest.documents(SOURCE)


async def test_a_public_file_unshared_from_its_public_channel_narrows_to_where_it_stays(
    slack: SlackEmulator, bot: SlackBot, kb: KnowledgeBase
):
    file, _ = await slack.user_shares_file("C_GENERAL", "heron.md", PLAN)
    await slack.user_shares_existing_file(file.id, "C_PRIVATE")
    await indexed(bot)
    assert seen_from(kb, "C_RANDOM", False)  # public: the whole workspace

    await slack.user_unshares_file(file.id, "C_GENERAL")
    await indexed(bot)
    assert not seen_from(kb, "C_RANDOM", False) and not seen_from(kb, "C_GENERAL", False)
    assert seen_from(kb, "C_PRIVATE", True)


async def test_a_channel_made_public_opens_its_files_to_the_workspace(
    slack: SlackEmulator, bot: SlackBot, kb: KnowledgeBase
):
    await slack.user_shares_file("C_PRIVATE", "heron.md", PLAN)
    await indexed(bot)
    assert not seen_from(kb, "C_GENERAL", False)

    await slack.channel_made_public("C_PRIVATE")
    await indexed(bot)
    assert seen_from(kb, "C_GENERAL", False)
    assert {r.access for r in kb.manifest.documents(SOURCE).values()} == {"workspace"}


async def test_the_bot_leaving_a_private_conversation_drops_what_only_it_saw(
    slack: SlackEmulator, bot: SlackBot, kb: KnowledgeBase
):
    await slack.user_shares_file("G_TEAM", "heron.md", PLAN)
    await slack.user_shares_file("C_PRIVATE", "other.md", "# Other\n\nThe other room is OTTER-7.\n")
    await indexed(bot)
    assert seen_from(kb, "G_TEAM", True)

    acks = await slack.app_leaves("G_TEAM")
    assert [a.payload["event"]["type"] for a in acks] == ["group_left"]
    await indexed(bot)
    assert not seen_from(kb, "G_TEAM", True)
    assert "OTTER-7" in found(kb, "other room", AccessScope.for_channel("C_PRIVATE", True))


async def test_the_bot_leaving_a_public_channel_drops_files_shared_only_there(
    slack: SlackEmulator, bot: SlackBot, kb: KnowledgeBase
):
    only_there, _ = await slack.user_shares_file("C_GENERAL", "heron.md", PLAN)
    also_private, _ = await slack.user_shares_file(
        "C_GENERAL", "other.md", "# Other\n\nThe other room is OTTER-7.\n"
    )
    await slack.user_shares_existing_file(also_private.id, "C_PRIVATE")
    await indexed(bot)
    assert seen_from(kb, "C_RANDOM", False)

    acks = await slack.app_leaves("C_GENERAL")
    assert [a.payload["event"]["type"] for a in acks] == ["channel_left"]
    await indexed(bot)
    assert not seen_from(kb, "C_RANDOM", False)  # the bot no longer follows that channel's files
    # Still public in the workspace (its channel did not change), and the bot still sees it elsewhere.
    assert "OTTER-7" in found(kb, "other room", AccessScope.for_channel("C_PRIVATE", True))
    assert only_there.id not in {
        r.location.removeprefix("slack:") for r in kb.manifest.documents(SOURCE).values()
    }
