"""The loop's surfaces: channel settings (the modal ``/kb config`` opens), threads marked resolved
(✅ reactions, the "Resolved" button, Save / Edit / Discard on the proposal), and "Ask an expert"."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from bot.slack import channel_settings, experts, resolved
from bot.slack.render import ASK_EXPERT, RESOLVED

if TYPE_CHECKING:
    from bot.slack.app import SlackBot

EVENTS = ("reaction_added",)
ACTIONS = (RESOLVED, ASK_EXPERT, *resolved.ACTIONS)
VIEWS = (channel_settings.CALLBACK_ID, resolved.EDIT_VIEW)


def register(app: AsyncApp, bot: SlackBot) -> None:
    bot.spawn(resolved.reconcile(bot))  # saved answers back in the index after a rebuild

    @app.view(channel_settings.CALLBACK_ID)
    async def on_settings(ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        await channel_settings.on_submission(bot, ack, body, view)

    @app.view(resolved.EDIT_VIEW)
    async def on_edited(ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        await resolved.on_edit_submission(bot, ack, body, view)

    @app.event("reaction_added")
    async def on_reaction(body: dict[str, Any], event: dict[str, Any]) -> None:
        if event.get("reaction") == resolved.RESOLVED_EMOJI:  # every other emoji is acknowledged and left
            bot.spawn(resolved.on_reaction(bot, body, event))

    @app.action(RESOLVED)
    async def on_resolved(ack, body: dict[str, Any]) -> None:
        await ack()
        bot.spawn(resolved.on_resolved_click(bot, body))

    @app.action(ASK_EXPERT)
    async def on_ask_expert(ack, body: dict[str, Any]) -> None:
        await ack()
        bot.spawn(experts.on_ask_expert(bot, body))

    async def on_choice(ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        await resolved.on_choice(bot, body, action)  # Edit opens a modal: its trigger lives 3 s

    for action_id in resolved.ACTIONS:
        app.action(action_id)(on_choice)


def on_message(bot: SlackBot, body: dict[str, Any], event: dict[str, Any]) -> None:
    """Called by the message listener: a deleted first message takes its thread's saved answer along."""
    if event.get("subtype") == "message_deleted":
        bot.spawn(resolved.on_deleted(bot, body, event))
