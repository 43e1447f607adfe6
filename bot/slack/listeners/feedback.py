"""The feedback buttons under an answer: a click is stored with the answer, then acknowledged."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from bot.feedback import Rating
from bot.slack import gaps
from bot.slack.render import FEEDBACK_DOWN, FEEDBACK_UP
from bot.slack.web import SlackCallError

if TYPE_CHECKING:
    from bot.slack.app import SlackBot

log = logging.getLogger(__name__)

ACTIONS: dict[str, Rating] = {FEEDBACK_UP: "helpful", FEEDBACK_DOWN: "not_helpful"}
THANKS: dict[Rating, str] = {
    "helpful": ":white_check_mark: Thanks! Glad it helped; your feedback is recorded.",
    "not_helpful": ":memo: Thanks, noted: your feedback is recorded and helps improve the answers.",
}
UNKNOWN = "Sorry, I can't find that answer any more, so the feedback was not recorded."
FAILED = "Sorry, I couldn't record your feedback just now. Please try again."


def register(app: AsyncApp, bot: SlackBot) -> None:
    async def on_feedback(ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        rating = ACTIONS[action["action_id"]]
        user = body["user"]["id"]
        stored = None
        try:
            stored = await bot.feedback.record_click(str(action.get("value") or ""), user, rating)
            text = THANKS[rating] if stored else UNKNOWN
        except Exception as exc:
            log.error("feedback from %s could not be stored: %s", user, exc)
            text = FAILED
        await ack()
        try:
            await bot.web.respond(body["response_url"], text)
        except SlackCallError:
            pass  # logged by SlackWeb
        if stored:
            await gaps.rated(bot, body, stored)

    for action_id in ACTIONS:
        app.action(action_id)(on_feedback)
