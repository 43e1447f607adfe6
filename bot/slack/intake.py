"""From a Slack message to a claim: is it for the bot, which conversation, where does the reply go.

The rules, in the product's words:

- The bot never answers itself, nor other bots and integrations unless SLACK_ALLOW_BOTS is on, nor
  edits, deletions, joins and other housekeeping subtypes.
- In a DM (and in the assistant view) every message is for the bot.
- In a channel or group DM a message is for the bot when it mentions the bot, or when it is a reply
  in a thread where the bot has been called before (the ledger knows); any other message is not.
- A channel message is answered in its thread (a top-level one starts the thread); a top-level DM is
  answered at the top level, as a chat.

``Intake.message`` decides and claims (on the worker's loop); the dispatcher then shows the working sign and answers.
The same message arriving twice (``app_mention`` and ``message``, or a retry) claims once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.conversations import conversation_key, dm_conversation
from bot.ledger import Claim, Kind, Ledger

log = logging.getLogger(__name__)

# Message subtypes that are a person saying something; everything else is housekeeping.
SPOKEN_SUBTYPES = {None, "thread_broadcast", "file_share"}
BOT_SUBTYPES = {"bot_message"}
_MENTION = re.compile(r"<@([A-Z0-9_]+)(?:\|[^>]*)?>")


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


class Intake:
    def __init__(
        self,
        ledger: Ledger,
        me: BotUser,
        *,
        allow_bots: bool = False,
        dm_gap_seconds: float = 0.0,
        follow_ups: Callable[[str, str], Awaitable[bool]] | None = None,
    ):
        self.ledger = ledger
        self.me = me
        self.allow_bots = allow_bots
        self.dm_gap_seconds = dm_gap_seconds
        self.follow_ups = follow_ups  # (team, channel) -> whether un-mentioned thread replies are answered

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

    async def message(
        self, body: dict[str, Any], event: dict[str, Any], *, assistant: bool = False
    ) -> Claim | None:
        """Claim a message if it is for the bot and no delivery of it was claimed before."""
        reason = self.ignored(event)
        if reason:
            log.debug("ignored %s/%s: %s", event.get("channel"), event.get("ts"), reason)
            return None
        team = body.get("team_id") or event.get("team") or ""
        channel, ts = event["channel"], event["ts"]
        text = event.get("text") or ""
        in_thread = event.get("thread_ts") if event.get("thread_ts") != ts else None
        dm = _is_dm(event)
        mentioned = f"<@{self.me.user_id}" in text
        if dm and not in_thread and not assistant:  # a chat: a new conversation after a quiet gap
            conversation = await dm_conversation(self.ledger.engine, team, channel, ts, self.dm_gap_seconds)
        else:
            conversation = conversation_key(team, channel, in_thread if dm else (in_thread or ts))
        kind: Kind
        if assistant:
            kind = "assistant"
        elif dm:
            kind = "dm"
        elif mentioned:
            kind = "mention"
        elif (
            in_thread
            and await self.ledger.answered(conversation)
            and (self.follow_ups is None or await self.follow_ups(team, channel))
        ):
            kind = "message"  # a follow-up in a thread the bot was called in
        else:
            return None
        question = strip_mentions_of(text, self.me.user_id)
        if not question and event.get("subtype") == "file_share":
            return None  # a file shared without a question (files become documents in issue 7)
        first = assistant and not await self.ledger.answered(conversation)
        claim = Claim(
            team=team,
            channel=channel,
            ts=ts,
            kind=kind,
            conversation=conversation,
            thread_ts=in_thread if dm else (in_thread or ts),
            user=event.get("user") or event.get("bot_id") or "",
            question=question,
            sent_at=float(ts),
            context={"channel_type": event.get("channel_type"), "first": first},
        )
        return await self.claim(claim)

    async def claim(self, claim: Claim) -> Claim | None:
        if not await self.ledger.claim(claim):
            log.debug("%s already claimed (a duplicate delivery)", claim.id)
            return None
        return claim


__all__ = ["BotUser", "Intake", "strip_mentions_of"]
