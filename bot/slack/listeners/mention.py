"""``app_mention``: someone @-mentioned the bot in a channel it is in."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

if TYPE_CHECKING:
    from bot.slack.app import SlackBot

EVENTS = ("app_mention",)


def register(app: AsyncApp, bot: SlackBot) -> None:
    @app.event("app_mention")
    async def on_mention(body: dict[str, Any], event: dict[str, Any]) -> None:
        # Slack also sends this mention as a `message` event: whichever arrives first claims it.
        bot.take(body, event)
