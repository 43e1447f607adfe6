"""Receive and record: from a Slack message to a claim in the ledger, with the first sign shown.

This runs on the Slack front, after Bolt acknowledged the event; the answer is a worker's
(``bot.slack.worker``), which takes the claim from the ledger.

The rules, in the product's words:

- The bot never answers itself, nor other bots and integrations unless SLACK_ALLOW_BOTS is on, nor
  edits, deletions, joins and other housekeeping subtypes.
- In a DM (and in the assistant view) every message is for the bot.
- In a channel or group DM a message is for the bot when it mentions the bot, or when it is a reply
  in a thread where the bot has been called before (the ledger knows); any other message is not.
- A channel message is answered in its thread (a top-level one starts the thread); a top-level DM is
  answered at the top level, as a chat.

``Receiver.message`` decides, records and puts up the working sign. The same message arriving twice
(``app_mention`` and ``message``, or a retry, to one front or several) is recorded once. When the
ledger cannot record a message addressed to the bot (its database is down), the person is told so in
the thread at once: Slack has its acknowledgement and will not deliver it again.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.conversations import conversation_key, dm_conversation
from bot.ledger import Claim, Kind, Ledger
from bot.logs import bind
from bot.slack.signs import WorkingSign
from bot.slack.web import SlackCallError, SlackWeb

log = logging.getLogger(__name__)

# Message subtypes that are a person saying something; everything else is housekeeping.
SPOKEN_SUBTYPES = {None, "thread_broadcast", "file_share"}
BOT_SUBTYPES = {"bot_message"}
_MENTION = re.compile(r"<@([A-Z0-9_]+)(?:\|[^>]*)?>")
TOLD_LIMIT = 1000
CANNOT_ANSWER = (
    ":warning: Sorry, I can't take questions right now (my database is not answering). "
    "Please try again in a minute."
)


@dataclass(frozen=True)
class BotUser:
    user_id: str
    bot_id: str


def strip_mentions_of(text: str, user_id: str) -> str:
    """The question without the bot's own mention (other people's mentions stay)."""
    cleaned = _MENTION.sub(lambda m: "" if m.group(1) == user_id else m.group(0), text or "")
    return " ".join(cleaned.split())


def _is_dm(event: dict[str, Any]) -> bool:
    return event.get("channel_type") == "im" or str(event.get("channel", "")).startswith("D")


class Receiver:
    def __init__(
        self,
        web: SlackWeb,
        ledger: Ledger,
        me: BotUser,
        *,
        allow_bots: bool = False,
        dm_gap_seconds: float = 0.0,
        follow_ups: Callable[[str, str], Awaitable[bool]] | None = None,
    ):
        self.web = web
        self.ledger = ledger
        self.me = me
        self.allow_bots = allow_bots
        self.dm_gap_seconds = dm_gap_seconds  # a DM chat quiet this long starts a new conversation
        self.follow_ups = follow_ups  # (team, channel) -> whether un-mentioned thread replies are answered
        self.sign = WorkingSign(web, ledger)
        self._told: OrderedDict[tuple[str, str, str], None] = OrderedDict()  # bounded

    def ignored(self, event: dict[str, Any]) -> str | None:
        """Why a message event is not a person speaking to anyone (None: it is)."""
        subtype = event.get("subtype")
        if event.get("user") == self.me.user_id or (
            event.get("bot_id") and event.get("bot_id") == self.me.bot_id
        ):
            return "own message"
        if subtype in BOT_SUBTYPES or event.get("bot_id"):
            if not self.allow_bots:
                return "a bot's message"
        elif subtype not in SPOKEN_SUBTYPES:
            return f"subtype {subtype}"
        if not event.get("ts") or not event.get("channel"):
            return "no ts or channel"
        return None

    async def message(self, body: dict[str, Any], event: dict[str, Any], *, assistant: bool = False) -> None:
        """Record a message if it is for the bot and show the sign; never raises, never silent."""
        bind(event_id=body.get("event_id"))
        reason = self.ignored(event)
        if reason:
            log.debug("ignored %s/%s: %s", event.get("channel"), event.get("ts"), reason)
            return
        claim = self._claim_for(body, event, assistant)
        if claim is None:
            return
        try:
            if claim.kind == "dm" and claim.thread_ts is None:  # a chat: new after a quiet gap
                claim.conversation = await dm_conversation(
                    self.ledger.engine, claim.team, claim.channel, claim.ts, self.dm_gap_seconds
                )
            if claim.kind == "message" and not await self._follow_up(claim):
                return  # a thread reply counts only where the bot was called before
            if claim.kind == "assistant":
                claim.context["first"] = not await self.ledger.answered(claim.conversation)
            if not await self.ledger.record(claim):
                return  # a duplicate delivery
        except Exception as exc:
            log.error("%s could not be recorded: %s: %s", claim.id, type(exc).__name__, exc)
            if claim.kind != "message":  # addressed to the bot: say so rather than go quiet
                await self._cannot_answer(claim)
            return
        bind(claim=claim.id)
        log.info("%s recorded (%s)", claim.id, claim.kind)
        await self.sign.show(claim)

    def _claim_for(self, body: dict[str, Any], event: dict[str, Any], assistant: bool) -> Claim | None:
        """The claim a message would be, if it may be for the bot (thread replies are checked after)."""
        team = body.get("team_id") or event.get("team") or ""
        channel, ts = event["channel"], event["ts"]
        text = event.get("text") or ""
        in_thread = event.get("thread_ts") if event.get("thread_ts") != ts else None
        dm = _is_dm(event)
        mentioned = f"<@{self.me.user_id}" in text
        conversation = conversation_key(team, channel, in_thread if dm else (in_thread or ts))
        question = strip_mentions_of(text, self.me.user_id)
        if not question and event.get("subtype") == "file_share":
            return None  # a file shared without a question: it becomes a document, not a question
        kind: Kind
        if assistant:
            kind = "assistant"
        elif dm:
            kind = "dm"
        elif mentioned:
            kind = "mention"
        elif in_thread:
            kind = "message"  # a follow-up, if the bot was called in this thread
        else:
            return None
        return Claim(
            team=team,
            channel=channel,
            ts=ts,
            kind=kind,
            conversation=conversation,
            thread_ts=in_thread if dm else (in_thread or ts),
            user=event.get("user") or event.get("bot_id") or "",
            question=question,
            sent_at=float(ts),
            context={"channel_type": event.get("channel_type"), "first": False},
        )

    async def _follow_up(self, claim: Claim) -> bool:
        """An un-mentioned thread reply is for the bot where it was called before and the channel's
        settings (``/kb config``) answer follow-ups."""
        if not await self.ledger.answered(claim.conversation):
            return False
        return self.follow_ups is None or await self.follow_ups(claim.team, claim.channel)

    async def command(self, claim: Claim) -> None:
        """/ask, recorded and held by this front: post the thread the answer goes in, then hand it on."""
        try:
            await self.sign.show(claim)
        finally:
            try:
                await self.ledger.release(claim)
            except Exception:
                log.exception("%s: could not hand the question to the workers", claim.id)

    async def _cannot_answer(self, claim: Claim) -> None:
        if claim.key in self._told:
            return  # the other delivery of this message (app_mention and message) said it already
        self._told[claim.key] = None
        if len(self._told) > TOLD_LIMIT:
            self._told.popitem(last=False)
        try:
            await self.web.post(claim.channel, CANNOT_ANSWER, thread_ts=claim.thread_ts)
        except SlackCallError:
            pass  # logged by SlackWeb


__all__ = ["CANNOT_ANSWER", "BotUser", "Receiver", "strip_mentions_of"]
