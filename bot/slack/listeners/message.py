"""``message`` (message.channels / .groups / .im / .mpim): DMs, and follow-ups in threads the bot was called in.

A mention arrives here too (besides ``app_mention``); the ledger makes sure it is answered once.
Messages in an assistant thread are taken by the assistant surface before they reach this listener.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from bot.slack.listeners import files, loop

if TYPE_CHECKING:
    from bot.slack.app import SlackBot

EVENTS = ("message",)
# The manifest's names for the message events, one per kind of conversation.
SUBSCRIPTIONS = ("message.channels", "message.groups", "message.im", "message.mpim")


def register(app: AsyncApp, bot: SlackBot) -> None:
    @app.event("message")
    async def on_message(body: dict[str, Any], event: dict[str, Any]) -> None:
        files.on_message(bot, event)  # files shared, channels made private: queued, never awaited
        loop.on_message(bot, body, event)  # a deleted thread start takes its saved answer along
        bot.take(body, event)
