"""Slash commands: ``/ask <question>`` (answered visibly in the channel) and ``/kb status|sync|help``.

``/kb sync`` is a knowledge job (``bot.jobs``): an answer worker runs it and posts the report.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from bot.conversations import conversation_key
from bot.ledger import Claim
from bot.slack import channel_settings, gaps, resolved
from bot.slack.render import SlackMessage, render_error, render_help, render_status, text_message
from bot.slack.web import SlackCallError

if TYPE_CHECKING:
    from bot.slack.app import SlackBot

log = logging.getLogger(__name__)

COMMANDS = ("/ask", "/kb")
ASK_USAGE = "Usage: `/ask <question>`, for example `/ask how do I reset my VPN password?`"
SYNC_STARTED = ":arrows_counterclockwise: Syncing the document folders… I'll post the result here."
NO_SYNC = "Sorry, I can't start a sync right now (my database is not answering). Please try again soon."
NO_LEDGER = "Sorry, I can't take questions right now (my database is not answering). Please try again soon."


def ask_claim(command: dict[str, Any]) -> Claim:
    """/ask has no message of its own: the trigger (unique per invocation) stands in for its ts."""
    team, channel, trigger = command["team_id"], command["channel_id"], command["trigger_id"]
    return Claim(
        team=team,
        channel=channel,
        ts=f"cmd:{trigger}",
        kind="command",
        conversation=conversation_key(team, channel, f"cmd-{trigger}"),  # the thread's key once posted
        thread_ts=None,
        user=command["user_id"],
        question=" ".join((command.get("text") or "").split()),
        sent_at=time.time(),
        context={
            "response_url": command.get("response_url"),
            "channel_type": "im" if command.get("channel_name") == "directmessage" else None,
        },
    )


def register(app: AsyncApp, bot: SlackBot) -> None:
    @app.command("/ask")
    async def on_ask(ack, command: dict[str, Any]) -> None:
        claim = ask_claim(command)
        if not claim.question:
            await ack(text=ASK_USAGE)
            return
        try:
            claimed = await bot.claim(claim)
        except Exception as exc:
            log.error("/ask from %s could not be claimed: %s", claim.user, exc)
            await ack(text=NO_LEDGER)
            return
        await ack()  # the question appears in the channel as the thread the answer goes in
        bot.hand_on(claimed)

    @app.command("/kb")
    async def on_kb(ack, command: dict[str, Any]) -> None:
        words = (command.get("text") or "").split()
        action = words[0].lower() if words else "help"
        response_url = command["response_url"]
        if action == "status":
            await ack()
            bot.spawn(_report_status(bot, response_url, command))
        elif action == "sync":
            await ack(text=await _request_sync(bot, command))
        elif action == "config":
            await channel_settings.open_modal(bot, ack, command)
        elif action == "forget":
            await ack()
            bot.spawn(resolved.forget(bot, command, words[1:]))
        elif action == "gaps":
            await ack()
            bot.spawn(gaps.report(bot, command, words[1:]))
        else:
            shown = render_help(bot.identity.user_id)
            if action != "help":
                shown.text = f"I don't know `/kb {action}`.\n{shown.text}"
                shown.blocks.insert(0, render_error(f"Unknown command /kb {action}").blocks[0])
            await ack(text=shown.text, blocks=shown.blocks)


async def _respond(bot: SlackBot, response_url: str, message: SlackMessage) -> None:
    try:
        await bot.web.respond(response_url, message.text, blocks=message.blocks)
    except SlackCallError:
        pass  # logged by SlackWeb


async def _report_status(bot: SlackBot, response_url: str, command: dict[str, Any]) -> None:
    try:
        status = await asyncio.to_thread(bot.knowledge.status)
        config = await bot.channels.get(command["team_id"], command["channel_id"])
    except Exception as exc:
        log.error("/kb status failed: %s", exc)
        await _respond(bot, response_url, render_error(f"Could not read the index status: {exc}"))
        return
    shown = render_status(status.to_dict())
    if not command["channel_id"].startswith("D"):
        shown = text_message(shown.text + "\n" + "\n".join(channel_settings.settings_lines(config)))
    await _respond(bot, response_url, shown)


async def _request_sync(bot: SlackBot, command: dict[str, Any]) -> str:
    """Record the sync for the workers (``bot.slack.jobs`` runs it and posts the report); what to say now."""
    args = {"response_url": command["response_url"], "asked_at": time.time()}
    try:
        await bot.jobs.record("sync", command.get("trigger_id") or uuid.uuid4().hex, args)
    except Exception as exc:
        log.error("/kb sync from %s could not be recorded: %s", command.get("user_id"), exc)
        return NO_SYNC
    return SYNC_STARTED
