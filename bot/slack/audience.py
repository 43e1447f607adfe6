"""Who may read an answer in a conversation, and so what it may be built from.

A person of the organisation in a channel of the organisation sees the workspace's documents (and,
in a private conversation, the files shared there). Two audiences must not read the internal
handbook, whatever the channel's privacy:

- a channel shared with another organisation (Slack Connect: ``is_ext_shared``, or ``is_shared``
  beyond the organisation), where every answer is read by outsiders;
- a guest (``is_restricted`` / ``is_ultra_restricted``) or a person of another organisation asking,
  in any conversation.

For them the scope is the conversation's own files only (``channel:<id>``), unless
``THREADWISE_EXTERNAL=workspace``. The facts come from conversations.info and users.info through a
bounded TTL cache; ``channel_shared`` / ``channel_unshared`` / ``member_joined_channel`` forget a
channel's facts at once (``bot.slack.listeners.audience``). Anything Slack will not say counts as
the narrower answer.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from cachetools import TTLCache

from bot.slack.web import SlackCallError, SlackWeb
from knowledge.slack_files import known_private
from knowledge.types import AccessScope

if TYPE_CHECKING:
    from knowledge.base import KnowledgeBase

ExternalPolicy = Literal["conversation", "workspace"]

CACHE_SECONDS = 600  # a share or a guest joining is also seen at once through its event
CACHE_ENTRIES = 10_000


@dataclass(frozen=True)
class Channel:
    private: bool
    external: bool  # shared with another organisation


@dataclass(frozen=True)
class Access:
    """What one answer may search, and why."""

    scope: AccessScope
    restricted: bool = False  # the workspace's documents are withheld
    reason: str = ""  # for the person, when restricted
    nothing: bool = False  # restricted, and no file was ever shared in the conversation

    @property
    def refusal(self) -> str:
        """What the thread is told instead of an answer when nothing may be searched."""
        return (
            f"I can only answer from files shared in this conversation, because {self.reason}, "
            "and none have been shared here. The organisation's internal documents stay internal."
        )


def is_external_channel(info: dict[str, Any], team_id: str) -> bool:
    """Shared with another organisation (conversations.info's channel object)."""
    if info.get("is_ext_shared") or info.get("is_pending_ext_shared"):
        return True
    if info.get("is_shared") and not info.get("is_org_shared"):
        return True
    teams = set(info.get("shared_team_ids") or []) | set(info.get("connected_team_ids") or [])
    return bool(teams - {team_id}) and not info.get("is_org_shared")


def is_outsider(user: dict[str, Any], team_id: str) -> bool:
    """A guest, or a person of another organisation (users.info's user object)."""
    if user.get("is_restricted") or user.get("is_ultra_restricted") or user.get("is_stranger"):
        return True
    home = user.get("team_id")
    enterprise = (user.get("enterprise_user") or {}).get("enterprise_id")
    return bool(home and team_id and home != team_id and not enterprise)


async def _false() -> bool:
    return False


class _Facts:
    """A bounded TTL cache, safe to use from the front's and the worker's threads."""

    def __init__(self, seconds: float, entries: int):
        self._items: TTLCache[str, Any] = TTLCache(maxsize=entries, ttl=seconds)
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            return self._items.get(key)

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._items[key] = value

    def forget(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)


class Audiences:
    """Works out each answer's access from Slack's facts about the conversation and the asker."""

    def __init__(
        self,
        policy: ExternalPolicy = "conversation",
        *,
        knowledge: KnowledgeBase | None = None,
        team: str = "",
        seconds: float = CACHE_SECONDS,
        entries: int = CACHE_ENTRIES,
    ):
        self.policy = policy
        self.knowledge = knowledge
        self.team = team  # the workspace the bot is installed in (auth.test), when no claim says
        self._channels = _Facts(seconds, entries)
        self._people = _Facts(seconds, entries)

    # -- what events say ---------------------------------------------------------------------------

    def forget_channel(self, channel: str) -> None:
        self._channels.forget(channel)

    def forget_person(self, user: str) -> None:
        self._people.forget(user)

    # -- the decision ------------------------------------------------------------------------------

    async def access(
        self, web: SlackWeb, *, team: str, channel: str, user: str, channel_type: str | None = None
    ) -> Access:
        # A B… id is an integration (SLACK_ALLOW_BOTS): the channel alone decides for it.
        person = self.policy != "workspace" and bool(user) and not user.startswith("B")
        facts, outsider = await asyncio.gather(  # both look-ups at once: one round trip before answering
            self.channel(web, team, channel, channel_type),
            self.outsider(web, team, user) if person else _false(),
        )
        normal = AccessScope.for_channel(channel, facts.private)
        if self.policy == "workspace":
            return Access(normal)
        if facts.external:
            why = "this conversation is shared with people outside the organisation"
        elif outsider:
            why = "you are a guest (or from another organisation) here"
        else:
            return Access(normal)
        own_files = self.knowledge is not None and await asyncio.to_thread(
            known_private, self.knowledge, channel
        )
        return Access(
            AccessScope((f"channel:{channel}",)), restricted=True, reason=why, nothing=not own_files
        )

    async def channel(
        self, web: SlackWeb, team: str | None, channel: str, channel_type: str | None = None
    ) -> Channel:
        team = team or self.team
        cached = self._channels.get(channel)
        if cached is not None:
            return cached
        try:
            info = await web.conversation(channel)
        except SlackCallError:
            return Channel(private=True, external=True)  # unknown: the narrowest, and not cached
        private = channel_type in ("im", "mpim", "group") or bool(
            info.get("is_private", True) or info.get("is_im") or info.get("is_mpim")
        )
        facts = Channel(private=private, external=is_external_channel(info, team))
        self._channels.put(channel, facts)
        return facts

    async def outsider(self, web: SlackWeb, team: str | None, user: str) -> bool:
        team = team or self.team
        cached = self._people.get(user)
        if cached is not None:
            return cached
        try:
            info = await web.user(user)
        except SlackCallError:
            return True  # unknown: treated as a guest, not cached
        outsider = is_outsider(info, team)
        self._people.put(user, outsider)
        return outsider


__all__ = ["Access", "Audiences", "Channel", "ExternalPolicy", "is_external_channel", "is_outsider"]
