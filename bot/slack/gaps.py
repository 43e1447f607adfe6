"""The Slack side of the gaps (``bot.gaps``): a 👎 recorded as one, and ``/kb gaps`` listing them.

``/kb gaps [30d]`` answers only the person who asked (an ephemeral reply), with the public channels'
gaps and, in a private conversation, that conversation's own.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bot.feedback import Feedback
from bot.gaps import KIND_WORDS, Topic, group_by_topic, parse_since, record_rating
from bot.slack.mrkdwn import escape
from bot.slack.render import SlackMessage, render_error, text_message

if TYPE_CHECKING:
    from bot.slack.app import SlackBot

log = logging.getLogger(__name__)

DEFAULT_SINCE = "30d"
SHOWN = 15


def _channel_of(body: dict[str, Any]) -> str:
    return (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or ""


async def rated(bot: SlackBot, body: dict[str, Any], feedback: Feedback) -> None:
    """After a stored click: a 👎 becomes a gap, a 👍 withdraws the same person's."""
    channel = _channel_of(body)
    if not channel:
        return
    try:
        private = await bot.web.is_private(channel)
        searched = await bot.feedback.searched(feedback.answer_id)
    except Exception as exc:
        log.error("could not look up the rated answer %s: %s", feedback.answer_id, exc)
        return
    await record_rating(
        bot.gaps,
        feedback.answer_id,
        feedback.rating,
        team=(body.get("team") or {}).get("id") or "",
        channel=channel,
        private=private,
        conversation=feedback.conversation,
        user=feedback.user,
        question=feedback.question,
        searched=searched,
    )


async def report(bot: SlackBot, command: dict[str, Any], words: list[str]) -> None:
    """``/kb gaps [since]``, answered on the command's response_url (only the person sees it)."""
    response_url = command["response_url"]
    try:
        since_text = words[0] if words else DEFAULT_SINCE
        since = parse_since(since_text)
    except ValueError as exc:
        await _respond(bot, response_url, render_error(f"{exc}. Usage: `/kb gaps [30d]`"))
        return
    try:
        found = await bot.gaps.list(since=since, visible_in=command["channel_id"])
        topics = await asyncio.to_thread(group_by_topic, found, bot.knowledge.embedder.embed_documents)
    except Exception as exc:
        log.error("/kb gaps failed: %s", exc)
        await _respond(bot, response_url, render_error(f"Could not list the unanswered questions: {exc}"))
        return
    await _respond(bot, response_url, render_topics(topics, since_text))


def render_topics(topics: list[Topic], since: str, now: datetime | None = None) -> SlackMessage:
    if not topics:
        return text_message(f"No unanswered questions in the last {escape(since)}. :tada:")
    asked = sum(t.count for t in topics)
    lines = [
        f"*Questions the documents did not answer* (last {escape(since)}: {asked} questions, "
        f"{len(topics)} topics, most asked first)"
    ]
    for topic in topics[:SHOWN]:
        kinds = ", ".join(f"{n} {KIND_WORDS.get(k, k)}" for k, n in sorted(topic.kinds.items()))
        where = " ".join(f"<#{c}>" for c in topic.channels[:5])
        line = f"• *{topic.count}×* {escape(_clip(topic.example, 200))} — {kinds} · {where}"
        if topic.searched:
            line += " · searched " + ", ".join(f"“{escape(_clip(s, 60))}”" for s in topic.searched[:3])
        last = datetime.fromtimestamp(topic.last_asked, UTC).strftime("%Y-%m-%d")
        lines.append(f"{line} · last {last}")
    if len(topics) > SHOWN:
        lines.append(f"…and {len(topics) - SHOWN} more topics (`threadwise gaps` lists them all)")
    return text_message("\n".join(lines))


def _clip(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


async def _respond(bot: SlackBot, response_url: str, message: SlackMessage) -> None:
    try:
        await bot.web.respond(response_url, message.text, blocks=message.blocks)
    except Exception:
        pass  # logged by SlackWeb


__all__ = ["rated", "render_topics", "report"]
