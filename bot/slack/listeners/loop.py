"""The loop's surfaces: the channel settings modal's submission (``/kb config`` opens it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from bot.slack import channel_settings

if TYPE_CHECKING:
    from bot.slack.app import SlackBot

EVENTS: tuple[str, ...] = ()
ACTIONS: tuple[str, ...] = ()
VIEWS = (channel_settings.CALLBACK_ID,)


def register(app: AsyncApp, bot: SlackBot) -> None:
    @app.view(channel_settings.CALLBACK_ID)
    async def on_settings(ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        await channel_settings.on_submission(bot, ack, body, view)
