"""Slash commands: ``/ask <question>`` (answered visibly in the channel) and ``/kb status|sync|help``."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from bot.conversations import conversation_key
from bot.ledger import Claim
from bot.slack import channel_settings, gaps, resolved
from bot.slack.mrkdwn import escape
from bot.slack.render import (
    SlackMessage,
    render_error,
    render_help,
    render_status,
    render_sync_report,
    text_message,
)
from bot.slack.web import SlackCallError
from knowledge.errors import KnowledgeError, SyncBusy
from knowledge.slack_files import FilesReport

if TYPE_CHECKING:
    from bot.slack.app import SlackBot

log = logging.getLogger(__name__)

COMMANDS = ("/ask", "/kb")
ASK_USAGE = "Usage: `/ask <question>`, for example `/ask how do I reset my VPN password?`"
SYNC_STARTED = ":arrows_counterclockwise: Syncing the document folders… I'll post the result here."
SYNC_BUSY = "A sync is already running. Check `/kb status` in a minute."
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
            await ack(text=SYNC_STARTED)
            bot.spawn(_run_sync(bot, response_url))
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


def files_summary(report: FilesReport) -> str:
    line = (
        f"Slack files: {report.added} added, {report.updated} updated, {report.removed} removed, "
        f"{report.unchanged} unchanged, {len(report.skipped)} skipped"
    )
    return line + "".join(f"\n• {escape(problem)}" for problem in report.errors[:5])


async def _run_sync(bot: SlackBot, response_url: str) -> None:
    try:
        report = await asyncio.to_thread(bot.knowledge.sync)
    except SyncBusy:
        await _respond(bot, response_url, SlackMessage(text=SYNC_BUSY))
        return
    except (KnowledgeError, Exception) as exc:
        log.error("/kb sync failed: %s", exc)
        await _respond(bot, response_url, render_error(f"The sync failed: {exc}"))
        return
    await _respond(bot, response_url, render_sync_report(report.to_dict()))
    indexer = getattr(bot, "files", None)  # the files shared in Slack, listed again
    if indexer is not None:
        try:
            shared = await indexer.reconcile()
        except Exception as exc:
            log.error("/kb sync of Slack files failed: %s", exc)
            await _respond(bot, response_url, render_error(f"The sync of Slack files failed: {exc}"))
            return
        await _respond(bot, response_url, SlackMessage(text=files_summary(shared)))
