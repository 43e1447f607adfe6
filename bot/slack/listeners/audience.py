"""Events that change who reads a conversation: shared with another organisation or unshared
(``channel_shared`` / ``channel_unshared``), someone joining (``member_joined_channel``, e.g. a guest).

Thin: each forgets the cached facts (``bot.slack.audience``) so the next answer asks Slack again, and
a share records a knowledge job (``bot.jobs``) to look at the conversation's files again, whose access
follows the audience.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

if TYPE_CHECKING:
    from bot.slack.app import SlackBot

EVENTS = ("channel_shared", "channel_unshared", "member_joined_channel")
SUBSCRIPTIONS = EVENTS


def register(app: AsyncApp, bot: SlackBot) -> None:
    async def on_sharing(event: dict[str, Any]) -> None:
        channel = event.get("channel")
        if not channel:
            return
        bot.audiences.forget_channel(channel)
        bot.record_job("audience", channel)  # its files' access is worked out again

    @app.event("member_joined_channel")
    async def on_member_joined(event: dict[str, Any]) -> None:
        if event.get("user"):
            bot.audiences.forget_person(event["user"])
        if event.get("channel"):
            bot.audiences.forget_channel(event["channel"])

    app.event("channel_shared")(on_sharing)
    app.event("channel_unshared")(on_sharing)
