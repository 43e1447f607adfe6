"""File and channel events that change what the knowledge base holds; thin: each records a knowledge
job (``bot.jobs``) that an answer worker runs.

``file_shared`` / ``file_unshared`` / ``file_change`` / ``file_deleted``, the bot leaving a conversation
(``channel_left`` / ``group_left``), and, through the message listener (Bolt runs one listener per
event), messages carrying files and ``channel_convert_to_private`` / ``_public``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

if TYPE_CHECKING:
    from bot.slack.app import SlackBot

EVENTS = ("file_shared", "file_unshared", "file_change", "file_deleted", "channel_left", "group_left")
SUBSCRIPTIONS = EVENTS


def _file_id(event: dict[str, Any]) -> str | None:
    return event.get("file_id") or (event.get("file") or {}).get("id")


def on_message(bot: SlackBot, event: dict[str, Any]) -> None:
    """Called by the message listener for every message event: the parts that concern files."""
    subtype = event.get("subtype")
    if subtype in ("channel_convert_to_private", "channel_convert_to_public") and event.get("channel"):
        private = subtype == "channel_convert_to_private"
        bot.web.note_private(event["channel"], private)  # what this process has cached, right at once
        bot.audiences.forget_channel(event["channel"])
        bot.record_job("privacy", event["channel"], {"private": private})
    elif subtype == "message_deleted":
        for file in (event.get("previous_message") or {}).get("files") or []:
            if file.get("id"):
                bot.record_job("file", file["id"])  # looked up again: gone, or still shared elsewhere
    else:
        for file in event.get("files") or []:
            if file.get("id"):
                bot.record_job("file", file["id"])


def register(app: AsyncApp, bot: SlackBot) -> None:
    @app.event("file_shared")
    async def on_shared(event: dict[str, Any]) -> None:
        if file_id := _file_id(event):
            bot.record_job("file", file_id)

    @app.event("file_unshared")
    async def on_unshared(event: dict[str, Any]) -> None:
        if file_id := _file_id(event):
            bot.record_job("file", file_id)

    @app.event("file_change")
    async def on_change(event: dict[str, Any]) -> None:
        if file_id := _file_id(event):
            bot.record_job("changed", file_id)

    @app.event("file_deleted")
    async def on_deleted(event: dict[str, Any]) -> None:
        if file_id := _file_id(event):
            bot.record_job("deleted", file_id)

    @app.event("channel_left")
    async def on_channel_left(event: dict[str, Any]) -> None:
        bot.record_job("left", event["channel"])

    @app.event("group_left")
    async def on_group_left(event: dict[str, Any]) -> None:
        bot.record_job("left", event["channel"])
