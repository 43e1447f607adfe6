"""The sign that the bot is on it: shown the moment a message is claimed, gone when it is answered.

A :eyes: reaction on the question; in an assistant thread its status line instead (and, for the
first question, the thread's title). For ``/ask``, which has no message of its own, the sign is the
bot's copy of the question posted in the channel: the thread the answer (and follow-ups) go in.
A sign that cannot be shown never stops an answer.
"""

from __future__ import annotations

import logging

from bot.conversations import conversation_key
from bot.ledger import Claim, Ledger
from bot.slack.user_text import quote
from bot.slack.web import SlackCallError, SlackWeb

log = logging.getLogger(__name__)

WORKING_REACTION = "eyes"
WORKING_STATUS = "is looking through the documents…"
TITLE_LIMIT = 80


def _title(question: str) -> str:
    text = " ".join(question.split())
    return text if len(text) <= TITLE_LIMIT else text[: TITLE_LIMIT - 1] + "…"


def _question_ts(claim: Claim) -> str | None:
    """The message the reaction goes on: the person's, or for /ask the bot's copy of the question."""
    return claim.thread_ts if claim.kind == "command" else claim.ts


async def _quietly(call) -> bool:
    try:
        await call
        return True
    except SlackCallError:
        return False  # already logged by SlackWeb


class WorkingSign:
    def __init__(self, web: SlackWeb, ledger: Ledger):
        self.web = web
        self.ledger = ledger

    async def show(self, claim: Claim) -> None:
        """Put the sign up. Never raises."""
        try:
            if claim.kind == "command" and claim.thread_ts is None:
                await self.open_command_thread(claim)
            if claim.kind == "assistant" and claim.thread_ts:
                if claim.context.get("first"):
                    await _quietly(self.web.set_title(claim.channel, claim.thread_ts, _title(claim.question)))
                if await _quietly(self.web.set_status(claim.channel, claim.thread_ts, WORKING_STATUS)):
                    return
            question_ts = _question_ts(claim)
            if question_ts:
                await _quietly(self.web.add_reaction(claim.channel, question_ts, WORKING_REACTION))
        except Exception:
            log.exception("%s: could not show that the bot is working", claim.id)

    async def clear(self, claim: Claim) -> None:
        """Take the sign down. Never raises."""
        try:
            if claim.kind == "assistant" and claim.thread_ts:
                await _quietly(self.web.set_status(claim.channel, claim.thread_ts, ""))
            question_ts = _question_ts(claim)
            if question_ts:
                await _quietly(self.web.remove_reaction(claim.channel, question_ts, WORKING_REACTION))
        except Exception:
            log.exception("%s: could not clear the working sign", claim.id)

    async def open_command_thread(self, claim: Claim) -> None:
        """/ask: post the question in the channel as the thread the answer (and follow-ups) go in."""
        thread_ts = await self.web.post(claim.channel, f"<@{claim.user}> asked: {quote(claim.question)}")
        await self.ledger.record_thread(
            claim, thread_ts, conversation_key(claim.team, claim.channel, thread_ts)
        )


__all__ = ["WORKING_REACTION", "WORKING_STATUS", "WorkingSign"]
