"""The one module that speaks to Slack's Web API (``SLACK_API_URL``).

``make_client`` builds the ``AsyncWebClient`` that Bolt and everything else share: one HTTP session,
retries that honour ``Retry-After`` on 429, retries on dropped connections and 5xx. ``SlackWeb`` wraps
the calls the bot makes, translates failures into ``SlackCallError`` (the Slack error code, e.g.
``not_in_channel``) with one log line each, and caches the two look-ups made per message (a person's
display name, whether a conversation is private).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from cachetools import TTLCache
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.metrics import slack_api_error

log = logging.getLogger(__name__)

RATE_LIMIT_RETRIES = 4
CALL_TIMEOUT = 20  # seconds for one Web API call
CACHE_SECONDS = 600
CACHE_ENTRIES = 10_000  # people and conversations remembered; a big workspace must not grow memory forever


class SlackCallError(Exception):
    """A Web API call failed; ``code`` is Slack's error (``ratelimited``, ``msg_too_long``, ...)."""

    def __init__(self, method: str, code: str):
        super().__init__(f"{method} failed: {code}")
        self.method = method
        self.code = code


@dataclass(frozen=True)
class BotIdentity:
    team_id: str
    user_id: str
    bot_id: str
    name: str


def make_client(token: str, base_url: str, *, session: aiohttp.ClientSession | None = None) -> AsyncWebClient:
    """The shared client; pass ``session`` (made inside the running loop) to reuse connections."""
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        session=session,
        timeout=CALL_TIMEOUT,
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


class _Cache:
    """Look-ups kept ``seconds``, at most ``entries`` of them (the oldest go first)."""

    def __init__(self, seconds: float, entries: int = CACHE_ENTRIES):
        self._items: TTLCache[str, Any] = TTLCache(maxsize=entries, ttl=seconds)

    def get(self, key: str) -> Any:
        return self._items.get(key)

    def put(self, key: str, value: Any) -> None:
        self._items[key] = value


class SlackWeb:
    """The Web API calls the bot makes. Every failure is a ``SlackCallError`` and one log line."""

    def __init__(self, client: AsyncWebClient):
        self.client = client
        self._names = _Cache(CACHE_SECONDS)
        self._private = _Cache(CACHE_SECONDS)

    async def call(
        self, method: str, *, read: bool = False, expected: frozenset[str] = frozenset(), **params: Any
    ) -> dict[str, Any]:
        """One call. Read methods take query parameters (Slack refuses JSON bodies there), writes JSON.

        Errors in ``expected`` are raised without a log line (the caller treats them as normal).
        """
        params = {k: v for k, v in params.items() if v is not None}
        try:
            if read:
                response = await self.client.api_call(method, http_verb="GET", params=params)
            else:
                response = await self.client.api_call(method, json=params)
        except SlackApiError as exc:
            code = str(exc.response.get("error") or f"http_{exc.response.status_code}")
            if code not in expected:
                log.warning("slack %s failed: %s", method, code)
                slack_api_error(method, code)
            raise SlackCallError(method, code) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            code = f"connection_error ({type(exc).__name__})"
            log.warning("slack %s failed: %s", method, code)
            slack_api_error(method, code)
            raise SlackCallError(method, code) from None
        return dict(response.data) if isinstance(response.data, dict) else {}

    # -- who we are ----------------------------------------------------------------------------

    async def identity(self) -> BotIdentity:
        data = await self.call("auth.test", read=True)
        return BotIdentity(
            team_id=data.get("team_id", ""),
            user_id=data.get("user_id", ""),
            bot_id=data.get("bot_id", ""),
            name=data.get("user", ""),
        )

    # -- messages ------------------------------------------------------------------------------

    async def post(
        self,
        channel: str,
        text: str,
        *,
        blocks: Sequence[dict] | None = None,
        thread_ts: str | None = None,
    ) -> str:
        data = await self.call(
            "chat.postMessage",
            channel=channel,
            text=text,
            blocks=list(blocks) if blocks else None,
            thread_ts=thread_ts,
            unfurl_links=False,
            unfurl_media=False,
        )
        return str(data["ts"])

    async def update(self, channel: str, ts: str, text: str, *, blocks: Sequence[dict] | None = None) -> None:
        # An empty list clears blocks a placeholder or stream left behind.
        await self.call("chat.update", channel=channel, ts=ts, text=text, blocks=list(blocks or []))

    async def delete(self, channel: str, ts: str) -> None:
        await self.call("chat.delete", channel=channel, ts=ts)

    async def respond(self, response_url: str, text: str, *, blocks: Sequence[dict] | None = None) -> None:
        """Answer a slash command or a click through its ``response_url``: only the person sees it."""
        webhook = AsyncWebhookClient(response_url, session=self.client.session, timeout=CALL_TIMEOUT)
        try:
            response = await webhook.send(
                text=text, blocks=list(blocks) if blocks else None, response_type="ephemeral"
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("slack response_url failed: connection_error (%s)", type(exc).__name__)
            raise SlackCallError("response_url", "connection_error") from None
        if response.status_code != 200:
            log.warning("slack response_url failed: HTTP %s %s", response.status_code, response.body[:200])
            raise SlackCallError("response_url", f"http_{response.status_code}")

    # -- the loop: settings, experts, resolved threads ----------------------------------------

    async def post_ephemeral(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        blocks: Sequence[dict] | None = None,
        thread_ts: str | None = None,
    ) -> None:
        """A message only ``user`` sees, in ``channel`` (in the thread ``thread_ts``)."""
        await self.call(
            "chat.postEphemeral",
            channel=channel,
            user=user,
            text=text,
            blocks=list(blocks) if blocks else None,
            thread_ts=thread_ts,
        )

    async def user_info(self, user: str) -> dict[str, Any]:
        """The ``user`` object of users.info (admins and owners are marked there)."""
        return (await self.call("users.info", read=True, user=user)).get("user") or {}

    async def open_view(self, trigger_id: str, view: dict[str, Any]) -> str:
        """Open a modal on a command's or a click's trigger; the view's id."""
        data = await self.call("views.open", trigger_id=trigger_id, view=view)
        return str((data.get("view") or {}).get("id") or "")

    async def user_groups(self) -> list[dict[str, Any]]:
        """The workspace's user groups (usergroups.list)."""
        return list((await self.call("usergroups.list", read=True)).get("usergroups") or [])

    async def group_members(self, group: str) -> list[str]:
        """The user ids in a user group (usergroups.users.list)."""
        return list((await self.call("usergroups.users.list", read=True, usergroup=group)).get("users") or [])

    async def replies(self, channel: str, ts: str, *, limit: int = 200) -> list[dict[str, Any]]:
        """A thread's messages, root first (conversations.replies; one page is enough for a Q&A)."""
        data = await self.call("conversations.replies", read=True, channel=channel, ts=ts, limit=limit)
        return list(data.get("messages") or [])

    async def channel_name(self, channel: str) -> str:
        """A channel's name ("" for a DM, or when Slack will not say)."""
        try:
            data = await self.call("conversations.info", read=True, channel=channel)
        except SlackCallError:
            return ""
        info = data.get("channel") or {}
        return "" if info.get("is_im") else str(info.get("name") or "")

    async def permalink(self, channel: str, ts: str) -> str:
        data = await self.call("chat.getPermalink", read=True, channel=channel, message_ts=ts)
        return str(data.get("permalink") or "")

    # -- streaming -----------------------------------------------------------------------------

    async def start_stream(
        self, channel: str, thread_ts: str, *, recipient_team: str | None, recipient_user: str | None
    ) -> str:
        data = await self.call(
            "chat.startStream",
            channel=channel,
            thread_ts=thread_ts,
            recipient_team_id=recipient_team,
            recipient_user_id=recipient_user,
        )
        return str(data["ts"])

    async def append_stream(self, channel: str, ts: str, markdown_text: str) -> None:
        await self.call("chat.appendStream", channel=channel, ts=ts, markdown_text=markdown_text)

    async def stop_stream(self, channel: str, ts: str, *, blocks: Sequence[dict] | None = None) -> None:
        await self.call("chat.stopStream", channel=channel, ts=ts, blocks=list(blocks) if blocks else None)

    # -- signs ---------------------------------------------------------------------------------

    async def add_reaction(self, channel: str, ts: str, name: str) -> None:
        try:
            await self.call(
                "reactions.add",
                channel=channel,
                timestamp=ts,
                name=name,
                expected=frozenset({"already_reacted"}),
            )
        except SlackCallError as exc:
            if exc.code != "already_reacted":
                raise

    async def remove_reaction(self, channel: str, ts: str, name: str) -> None:
        try:
            await self.call(
                "reactions.remove",
                channel=channel,
                timestamp=ts,
                name=name,
                expected=frozenset({"no_reaction"}),
            )
        except SlackCallError as exc:
            if exc.code != "no_reaction":
                raise

    async def set_status(self, channel: str, thread_ts: str, status: str) -> None:
        await self.call("assistant.threads.setStatus", channel_id=channel, thread_ts=thread_ts, status=status)

    async def set_title(self, channel: str, thread_ts: str, title: str) -> None:
        await self.call("assistant.threads.setTitle", channel_id=channel, thread_ts=thread_ts, title=title)

    async def set_suggested_prompts(
        self, channel: str, thread_ts: str, prompts: Sequence[dict[str, str]], *, title: str | None = None
    ) -> None:
        await self.call(
            "assistant.threads.setSuggestedPrompts",
            channel_id=channel,
            thread_ts=thread_ts,
            prompts=list(prompts),
            title=title,
        )

    # -- look-ups (cached) ---------------------------------------------------------------------

    async def user_name(self, user: str) -> str:
        """A person's display name, or "" when Slack will not say (the answer goes on without it)."""
        cached = self._names.get(user)
        if cached is not None:
            return cached
        try:
            data = await self.call("users.info", read=True, user=user)
        except SlackCallError:
            return ""
        info = data.get("user") or {}
        profile = info.get("profile") or {}
        name = (
            profile.get("display_name")
            or profile.get("real_name")
            or info.get("real_name")
            or info.get("name")
        )
        self._names.put(user, name or "")
        return name or ""

    async def conversation(self, channel: str) -> dict[str, Any]:
        """conversations.info's channel object (uncached; raises ``SlackCallError``)."""
        data = await self.call("conversations.info", read=True, channel=channel)
        return data.get("channel") or {}

    async def user(self, user: str) -> dict[str, Any]:
        """users.info's user object (uncached; raises ``SlackCallError``)."""
        data = await self.call("users.info", read=True, user=user)
        return data.get("user") or {}

    async def is_private(self, channel: str, channel_type: str | None = None) -> bool:
        """Whether a conversation is private (private channel, DM, group DM). Unknown counts as private."""
        if channel_type in ("im", "mpim", "group"):
            return True
        cached = self._private.get(channel)
        if cached is not None:
            return cached
        try:
            data = await self.call("conversations.info", read=True, channel=channel)
        except SlackCallError:
            return True  # fail closed: search only what this conversation may see
        info = data.get("channel") or {}
        private = bool(info.get("is_private", True) or info.get("is_im") or info.get("is_mpim"))
        self._private.put(channel, private)
        return private

    def note_private(self, channel: str, private: bool) -> None:
        """What a channel event just said (made private / public): no stale cached answer after it."""
        self._private.put(channel, private)

    # -- files ---------------------------------------------------------------------------------

    async def file_info(self, file_id: str) -> dict[str, Any] | None:
        """A file's object, or None when it is gone or the bot may no longer see it."""
        try:
            data = await self.call(
                "files.info", read=True, file=file_id, expected=frozenset({"file_not_found", "file_deleted"})
            )
        except SlackCallError as exc:
            if exc.code in ("file_not_found", "file_deleted"):
                return None
            raise
        return data.get("file") or None

    async def files_in(self, channel: str, *, page_size: int = 200) -> list[dict[str, Any]]:
        """Every file shared in a conversation (files.list pages); raises on any failure."""
        files: list[dict[str, Any]] = []
        page, pages = 1, 1
        while page <= pages:
            data = await self.call("files.list", read=True, channel=channel, count=page_size, page=page)
            files += data.get("files") or []
            pages = int((data.get("paging") or {}).get("pages") or 1)
            page += 1
        return files

    async def member_conversations(self) -> dict[str, bool]:
        """Every conversation the bot is a member of -> whether it is private (users.conversations)."""
        found: dict[str, bool] = {}
        cursor: str | None = None
        while True:
            data = await self.call(
                "users.conversations",
                read=True,
                types="public_channel,private_channel,mpim,im",
                exclude_archived=True,
                limit=200,
                cursor=cursor,
            )
            for info in data.get("channels") or []:
                private = bool(info.get("is_private", True) or info.get("is_im") or info.get("is_mpim"))
                found[info["id"]] = private
                self._private.put(info["id"], private)
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return found

    async def download(self, url: str, *, max_bytes: int) -> bytes:
        """A file's bytes from its ``url_private(_download)``, with the bot token.

        Slack answers a request without a valid token with 200 and an HTML sign-in page, so an HTML
        answer for a file that is not HTML is refused rather than indexed.
        """
        session = self.client.session
        headers = {"Authorization": f"Bearer {self.client.token}"}
        timeout = aiohttp.ClientTimeout(total=max(CALL_TIMEOUT, 120))
        try:
            if session is None:
                async with aiohttp.ClientSession() as own:
                    return await _read(own, url, headers, timeout, max_bytes)
            return await _read(session, url, headers, timeout, max_bytes)
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("slack file download failed: connection_error (%s)", type(exc).__name__)
            raise SlackCallError("file download", "connection_error") from None


class FileTooLarge(SlackCallError):
    def __init__(self, size: int, limit: int):
        super().__init__("file download", f"too large: more than {limit} bytes")
        self.size, self.limit = size, limit


async def _read(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    timeout: aiohttp.ClientTimeout,
    limit: int,
) -> bytes:
    async with session.get(url, headers=headers, timeout=timeout) as response:
        if response.status != 200:
            raise SlackCallError("file download", f"http_{response.status}")
        if response.content_length and response.content_length > limit:
            raise FileTooLarge(response.content_length, limit)
        if response.content_type == "text/html" and not url.lower().endswith((".html", ".htm")):
            raise SlackCallError("file download", "not_authed (Slack sent its sign-in page)")
        data = bytearray()
        async for piece in response.content.iter_chunked(1 << 16):
            data += piece
            if len(data) > limit:
                raise FileTooLarge(len(data), limit)
        return bytes(data)


__all__ = ["BotIdentity", "FileTooLarge", "SlackCallError", "SlackWeb", "make_client"]
