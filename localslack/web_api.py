"""Slack's Web API (``/api/<method>``) over a :class:`~localslack.workspace.Workspace`.

Accepts what slack_sdk sends: JSON or form-encoded bodies, query parameters, ``Authorization: Bearer``
or a ``token`` argument; structured arguments (``blocks``, ``chunks``, ``view`` ...) as JSON values or
as JSON strings. Answers as Slack does: ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}`` with
HTTP 200, and HTTP 429 + ``Retry-After`` when rate limited.

It enforces the limits an app meets in production (text length, Block Kit limits, membership, who
may edit what, stream states) so that the app is tested against them, records every call, and takes
injected faults: the next N calls of a method fail with a given error, are rate limited, or are slow.

Also here: file downloads at ``url_private`` (bot token required; without it Slack answers 200 with an
HTML sign-in page, which is what an app that forgets the header receives).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from localslack.limits import (
    MAX_ATTACHMENTS,
    MAX_MARKDOWN_TEXT,
    MAX_TEXT,
    MAX_VIEW_BLOCKS,
    block_problems,
    check_blocks,
    check_chunks,
)
from localslack.workspace import AssistantThread, Channel, Message, SlackError, Workspace

TRIGGER_LIFETIME = 3.0  # seconds a trigger_id stays usable

_REACTION_NAME = re.compile(r"^[a-z0-9_+'\-]+(::skin-tone-[2-6])?$")


@dataclass
class Call:
    """One Web API call as the emulator received and answered it."""

    method: str
    params: dict[str, Any]
    time: float
    token: str | None
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        return self.response.get("error")


@dataclass
class Download:
    file_id: str
    authorized: bool
    time: float


@dataclass
class Fault:
    kind: Literal["error", "ratelimit", "delay"]
    remaining: int | None  # None: every call until cleared
    error: str | None = None
    retry_after: int = 1
    seconds: float = 0.0


class Faults:
    """Failures a test (or the playground) asks for, consumed by the next calls of a method."""

    def __init__(self) -> None:
        self._by_method: dict[str, list[Fault]] = {}

    def fail(self, method: str, error: str, *, times: int | None = 1) -> None:
        """The next ``times`` calls of ``method`` answer ``{"ok": false, "error": error}``."""
        self._add(method, Fault("error", times, error=error))

    def rate_limit(self, method: str, *, times: int | None = 1, retry_after: int = 1) -> None:
        """The next ``times`` calls answer HTTP 429 with ``Retry-After: retry_after``."""
        self._add(method, Fault("ratelimit", times, error="ratelimited", retry_after=retry_after))

    def delay(self, method: str, seconds: float, *, times: int | None = None) -> None:
        """Calls of ``method`` take ``seconds`` longer (before they are answered)."""
        self._add(method, Fault("delay", times, seconds=seconds))

    def clear(self, method: str | None = None) -> None:
        if method is None:
            self._by_method.clear()
        else:
            self._by_method.pop(method, None)

    def _add(self, method: str, fault: Fault) -> None:
        if fault.remaining is not None and fault.remaining < 1:
            raise ValueError("times must be at least 1, or None for every call")
        self._by_method.setdefault(method, []).append(fault)

    def take(self, method: str) -> tuple[float, Fault | None]:
        """Consume what applies to one call: the added delay and the first failure, if any."""
        delay, failure = 0.0, None
        faults = self._by_method.get(method, [])
        for fault in list(faults):
            if fault.kind == "delay":
                delay += fault.seconds
            elif failure is None:
                failure = fault
            else:
                continue
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining == 0:
                    faults.remove(fault)
        return delay, failure


class Args:
    """A call's arguments with Slack's coercions: "" counts as absent, JSON strings become values."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.warnings: list[str] = []

    def text(self, name: str, *, required: bool = False, error: str = "invalid_arguments") -> str | None:
        value = self.params.get(name)
        if value is None or value == "":
            if required:
                raise SlackError(error, f"[ERROR] missing required field: {name}")
            return None
        return value if isinstance(value, str) else str(value)

    def required(self, name: str, *, error: str = "invalid_arguments") -> str:
        value = self.text(name, required=True, error=error)
        assert value is not None
        return value

    def flag(self, name: str) -> bool:
        value = self.params.get(name)
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes")
        return bool(value)

    def number(self, name: str, default: int, *, low: int = 1, high: int = 1000) -> int:
        value = self.params.get(name)
        if value is None or value == "":
            return default
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise SlackError("invalid_arguments", f"[ERROR] {name} must be an integer") from None
        return max(low, min(high, number))

    def structured(self, name: str, *, error: str = "invalid_arguments") -> Any:
        value = self.params.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise SlackError(error, f"[ERROR] {name} is not valid JSON") from None
            self.params[name] = value  # the call log shows what was meant, not the encoding
        return value


Handler = Callable[["WebApi", Args], Awaitable[dict[str, Any]]]
_METHODS: dict[str, tuple[Handler, Literal["bot", "app"]]] = {}


def api_method(name: str, *, token: Literal["bot", "app"] = "bot") -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _METHODS[name] = (handler, token)
        return handler

    return register


def supported_methods() -> list[str]:
    return sorted(_METHODS)


class WebApi:
    """The Web API of one workspace, for one app identified by its bot token and app-level token."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        bot_token: str,
        app_token: str,
        socket_url: Callable[[], str] | None = None,
    ) -> None:
        self.workspace = workspace
        self.bot_token = bot_token
        self.app_token = app_token
        self.socket_url = socket_url
        self.faults = Faults()
        self.calls: list[Call] = []
        self.downloads: list[Download] = []
        self._triggers: dict[str, float] = {}

    # -- transport ---------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.Response:
        """aiohttp handler for ``/api/{method}``."""
        method = request.match_info["method"]
        token = _bearer(request)
        try:
            params = await _read_params(request)
        except SlackError as exc:
            return web.json_response(_error_body(exc))
        if token is None:
            token = params.pop("token", None) or None
        else:
            params.pop("token", None)
        status, body, headers = await self.call(method, params, token)
        return web.json_response(body, status=status, headers=headers)

    async def call(
        self, method: str, params: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Answer one call; returns (HTTP status, JSON body, extra headers). Usable without HTTP."""
        record = Call(method=method, params=params, time=time.time(), token=token)
        self.calls.append(record)
        status, headers = 200, {}
        args = Args(params)
        try:
            if method not in _METHODS:
                raise SlackError("unknown_method")
            handler, token_kind = _METHODS[method]
            self._authenticate(token, token_kind)
            delay, fault = self.faults.take(method)
            if delay:
                await asyncio.sleep(delay)
            if fault is not None:
                if fault.kind == "ratelimit":
                    status, headers = 429, {"Retry-After": str(fault.retry_after)}
                raise SlackError(fault.error or "fatal_error")
            body = {"ok": True} | await handler(self, args)
        except SlackError as exc:
            body = _error_body(exc)
        record.status, record.response, record.warnings = status, body, args.warnings
        return status, body, headers

    def _authenticate(self, token: str | None, kind: Literal["bot", "app"]) -> None:
        if not token:
            raise SlackError("not_authed")
        if token not in (self.bot_token, self.app_token):
            raise SlackError("invalid_auth")
        if (token == self.app_token) != (kind == "app"):
            raise SlackError("not_allowed_token_type")

    async def download(self, request: web.Request) -> web.Response:
        """aiohttp handler for ``url_private`` / ``url_private_download``."""
        file_id = request.match_info["file_id"]
        authorized = _bearer(request) == self.bot_token
        self.downloads.append(Download(file_id=file_id, authorized=authorized, time=time.time()))
        if not authorized:
            return web.Response(text=_SIGN_IN_PAGE, content_type="text/html")
        file = self.workspace.files.get(file_id)
        if file is None or not self._file_visible(file.channels):
            return web.Response(status=404, text="File not found")
        headers = {}
        if request.path.rsplit("/", 2)[-2] == "download":
            headers["Content-Disposition"] = f'attachment; filename="{file.name}"'
        return web.Response(body=file.content, content_type=file.mimetype, headers=headers)

    # -- what the app may touch --------------------------------------------------------------------

    def _visible(self, ref: str | None) -> Channel:
        """A conversation the app can see: any public channel, and private ones it is a member of."""
        if not ref:
            raise SlackError("channel_not_found")
        channel = self.workspace.resolve_channel(ref)
        if channel.kind != "public" and self.workspace.bot_user_id not in channel.members:
            raise SlackError("channel_not_found")
        return channel

    def _member(self, ref: str | None) -> Channel:
        """A conversation the app can post in or read: it must be a member (and it must be open)."""
        channel = self._visible(ref)
        if channel.is_archived:
            raise SlackError("is_archived")
        if self.workspace.bot_user_id not in channel.members:
            raise SlackError("not_in_channel")
        return channel

    def _own_message(self, channel: Channel, ts: str, error: str) -> Message:
        message = self.workspace.message(channel.id, ts)
        if message.bot_id != self.workspace.bot_id:
            raise SlackError(error)
        return message

    def _file_visible(self, channels: list[str]) -> bool:
        for channel_id in channels:
            channel = self.workspace.channels.get(channel_id)
            if channel and (channel.kind == "public" or self.workspace.bot_user_id in channel.members):
                return True
        return False

    def _thread(self, args: Args, channel: Channel) -> str | None:
        thread_ts = args.text("thread_ts")
        if thread_ts is not None and self.workspace.find(channel.id, thread_ts) is None:
            # Slack does not refuse an unknown thread_ts; the reply simply does not land in a thread.
            args.warnings.append(
                f"thread_ts {thread_ts} matches no message in {channel.id}: posted top-level"
            )
            return None
        return thread_ts

    def _replied(self, channel: Channel, thread_ts: str | None) -> None:
        """The app answered in a thread: Slack clears the assistant status shown there."""
        thread = self.workspace.assistant_threads.get((channel.id, thread_ts or ""))
        if thread is not None and thread.status:
            thread.statuses.append("")

    # -- triggers (issued by interactions, consumed by views.open) ---------------------------------

    def issue_trigger(self) -> str:
        trigger_id = f"{int(time.time())}.{len(self._triggers) + 1}.{time.monotonic_ns() % 10**12:x}"
        self._triggers[trigger_id] = time.monotonic()
        return trigger_id

    def _use_trigger(self, trigger_id: str) -> None:
        issued = self._triggers.pop(trigger_id, None)
        if issued is None:
            raise SlackError("invalid_trigger_id")
        if time.monotonic() - issued > TRIGGER_LIFETIME:
            raise SlackError("expired_trigger_id")

    # -- methods -----------------------------------------------------------------------------------

    @api_method("auth.test")
    async def auth_test(self, args: Args) -> dict[str, Any]:
        ws = self.workspace
        return {
            "url": f"https://{ws.domain}.slack.com/",
            "team": ws.team_name,
            "user": ws.bot_name,
            "team_id": ws.team_id,
            "user_id": ws.bot_user_id,
            "bot_id": ws.bot_id,
            "is_enterprise_install": False,
        }

    @api_method("apps.connections.open", token="app")
    async def apps_connections_open(self, args: Args) -> dict[str, Any]:
        if self.socket_url is None:
            raise SlackError("internal_error", "[ERROR] this emulator serves no Socket Mode endpoint")
        return {"url": self.socket_url()}

    @api_method("team.info")
    async def team_info(self, args: Args) -> dict[str, Any]:
        ws = self.workspace
        team = args.text("team")
        if team is not None and team != ws.team_id:
            raise SlackError("team_not_found")
        return {
            "team": {
                "id": ws.team_id,
                "name": ws.team_name,
                "domain": ws.domain,
                "email_domain": "example.com",
                "icon": {"image_default": True},
            }
        }

    @api_method("users.info")
    async def users_info(self, args: Args) -> dict[str, Any]:
        return {"user": self.workspace.user(args.required("user", error="user_not_found")).to_api()}

    @api_method("conversations.info")
    async def conversations_info(self, args: Args) -> dict[str, Any]:
        channel = self._visible(args.text("channel"))
        info = channel.to_api(self.workspace.team_id)
        if channel.kind != "im":
            info["is_member"] = self.workspace.bot_user_id in channel.members
        return {"channel": info}

    @api_method("users.conversations")
    async def users_conversations(self, args: Args) -> dict[str, Any]:
        """The conversations the app is a member of, of the requested ``types`` (cursor-paged)."""
        kinds = {"public_channel": "public", "private_channel": "private", "mpim": "mpim", "im": "im"}
        wanted = {kinds[t] for t in (args.text("types") or "public_channel").split(",") if t in kinds}
        archived = args.flag("exclude_archived")
        channels = [
            c
            for c in self.workspace.channels.values()
            if c.kind in wanted
            and self.workspace.bot_user_id in c.members
            and not (archived and c.is_archived)
        ]
        limit = args.number("limit", 100)
        start = _decode_cursor(args.text("cursor"))
        more = start + limit < len(channels)
        return {
            "channels": [c.to_api(self.workspace.team_id) for c in channels[start : start + limit]],
            "response_metadata": {"next_cursor": _encode_cursor(start + limit) if more else ""},
        }

    @api_method("conversations.history")
    async def conversations_history(self, args: Args) -> dict[str, Any]:
        channel = self._member(args.text("channel"))
        messages = _between(self.workspace.history(channel.id), args)
        messages.reverse()  # newest first
        return self._page(messages, args, default_limit=100, max_limit=999)

    @api_method("conversations.replies")
    async def conversations_replies(self, args: Args) -> dict[str, Any]:
        channel = self._member(args.text("channel"))
        ts = args.required("ts", error="thread_not_found")
        message = self.workspace.find(channel.id, ts)
        if message is None:
            raise SlackError("thread_not_found")
        parent_ts = message.thread_ts if message.is_reply else message.ts
        parent = self.workspace.find(channel.id, parent_ts or ts)
        thread = ([parent] if parent else []) + self.workspace.thread(channel.id, parent_ts or ts)
        return self._page(_between(thread, args), args, default_limit=1000, max_limit=1000)

    def _page(
        self, messages: list[Message], args: Args, *, default_limit: int, max_limit: int
    ) -> dict[str, Any]:
        limit = args.number("limit", default_limit, high=max_limit)
        start = _decode_cursor(args.text("cursor"))
        page = messages[start : start + limit]
        more = start + limit < len(messages)
        return {
            "messages": [self.workspace.render(m) for m in page],
            "has_more": more,
            "response_metadata": {"next_cursor": _encode_cursor(start + limit) if more else ""},
        }

    @api_method("chat.postMessage")
    async def chat_post_message(self, args: Args) -> dict[str, Any]:
        channel = self._member(args.text("channel"))
        content = _content(args)
        thread_ts = self._thread(args, channel)
        message = self.workspace.post(
            channel.id,
            bot=True,
            thread_ts=thread_ts,
            reply_broadcast=args.flag("reply_broadcast") and thread_ts is not None,
            metadata=args.structured("metadata", error="invalid_metadata_format"),
            username=args.text("username"),
            icon_emoji=args.text("icon_emoji"),
            **content,
        )
        self._replied(channel, message.thread_ts)
        return {"channel": channel.id, "ts": message.ts, "message": self.workspace.render(message)}

    @api_method("chat.update")
    async def chat_update(self, args: Args) -> dict[str, Any]:
        channel = self._visible(args.text("channel"))
        message = self._own_message(
            channel, args.required("ts", error="message_not_found"), "cant_update_message"
        )
        if message.streaming:
            raise SlackError("streaming_state_conflict")
        content = _content(args)
        message = self.workspace.update(
            channel.id,
            message.ts,
            text=content["text"] if args.text("text") is not None or args.text("markdown_text") else None,
            blocks=content["blocks"],
            attachments=content["attachments"],
            metadata=args.structured("metadata", error="invalid_metadata_format"),
        )
        rendered = self.workspace.render(message)
        return {"channel": channel.id, "ts": message.ts, "text": message.text, "message": rendered}

    @api_method("chat.delete")
    async def chat_delete(self, args: Args) -> dict[str, Any]:
        channel = self._visible(args.text("channel"))
        message = self._own_message(
            channel, args.required("ts", error="message_not_found"), "cant_delete_message"
        )
        self.workspace.delete(channel.id, message.ts)
        return {"channel": channel.id, "ts": message.ts}

    @api_method("chat.postEphemeral")
    async def chat_post_ephemeral(self, args: Args) -> dict[str, Any]:
        channel = self._member(args.text("channel"))
        user = args.required("user", error="user_not_in_channel")
        self.workspace.user(user)
        if user not in channel.members:
            raise SlackError("user_not_in_channel")
        content = _content(args)
        ephemeral = self.workspace.post_ephemeral(
            channel.id, user, content["text"], blocks=content["blocks"], thread_ts=args.text("thread_ts")
        )
        return {"message_ts": ephemeral.ts}

    @api_method("chat.getPermalink")
    async def chat_get_permalink(self, args: Args) -> dict[str, Any]:
        channel = self._visible(args.text("channel"))
        ts = args.required("message_ts", error="message_not_found")
        return {"channel": channel.id, "permalink": self.workspace.permalink(channel.id, ts)}

    @api_method("chat.startStream")
    async def chat_start_stream(self, args: Args) -> dict[str, Any]:
        channel = self._member(args.text("channel"))
        if not channel.is_dm:
            # Outside a DM Slack needs to know whose request the stream answers.
            team = args.text("recipient_team_id")
            user = args.text("recipient_user_id")
            if team is None:
                raise SlackError("missing_recipient_team_id")
            if user is None:
                raise SlackError("missing_recipient_user_id")
            if team != self.workspace.team_id:
                raise SlackError("team_not_found")
            self.workspace.user(user)
        chunks = _chunks(args, required=False)
        thread_ts = self._thread(args, channel)
        message = self.workspace.start_stream(
            channel.id,
            thread_ts=thread_ts,
            username=args.text("username"),
            icon_emoji=args.text("icon_emoji"),
        )
        if chunks:
            self.workspace.append_stream(channel.id, message.ts, chunks)
        self._replied(channel, message.thread_ts)
        return {"channel": channel.id, "ts": message.ts}

    @api_method("chat.appendStream")
    async def chat_append_stream(self, args: Args) -> dict[str, Any]:
        channel = self._member(args.text("channel"))
        message = self._own_message(
            channel, args.required("ts", error="message_not_found"), "message_not_owned_by_app"
        )
        chunks = _chunks(args, required=True)
        self.workspace.append_stream(channel.id, message.ts, chunks)
        return {"channel": channel.id, "ts": message.ts}

    @api_method("chat.stopStream")
    async def chat_stop_stream(self, args: Args) -> dict[str, Any]:
        channel = self._member(args.text("channel"))
        message = self._own_message(
            channel, args.required("ts", error="message_not_found"), "message_not_owned_by_app"
        )
        chunks = _chunks(args, required=False)
        blocks = args.structured("blocks", error="invalid_blocks_format")
        if blocks is not None:
            check_blocks(blocks, max_blocks_error="msg_blocks_too_many")
        message = self.workspace.stop_stream(
            channel.id,
            message.ts,
            chunks,
            blocks=blocks,
            metadata=args.structured("metadata", error="invalid_metadata_format"),
        )
        return {"channel": channel.id, "ts": message.ts, "message": self.workspace.render(message)}

    @api_method("reactions.add")
    async def reactions_add(self, args: Args) -> dict[str, Any]:
        channel, message, name = self._reaction_target(args)
        self.workspace.react(channel.id, message.ts, name, self.workspace.bot_user_id)
        return {}

    @api_method("reactions.remove")
    async def reactions_remove(self, args: Args) -> dict[str, Any]:
        channel, message, name = self._reaction_target(args)
        self.workspace.unreact(channel.id, message.ts, name, self.workspace.bot_user_id)
        return {}

    def _reaction_target(self, args: Args) -> tuple[Channel, Message, str]:
        name = args.required("name", error="invalid_name")
        if not _REACTION_NAME.match(name):
            raise SlackError("invalid_name")
        channel_ref, ts = args.text("channel"), args.text("timestamp")
        if channel_ref is None or ts is None:
            raise SlackError("no_item_specified")
        channel = self._visible(channel_ref)
        return channel, self.workspace.message(channel.id, ts), name

    @api_method("assistant.threads.setStatus")
    async def assistant_threads_set_status(self, args: Args) -> dict[str, Any]:
        thread = self._assistant_thread(args)
        status = args.params.get("status")
        if status is None:
            raise SlackError("invalid_arguments", "[ERROR] missing required field: status")
        loading = args.structured("loading_messages")
        if loading is not None and (not isinstance(loading, list) or len(loading) > 10):
            raise SlackError("invalid_arguments", "[ERROR] loading_messages takes at most 10 strings")
        thread.statuses.append(str(status))
        return {}

    @api_method("assistant.threads.setTitle")
    async def assistant_threads_set_title(self, args: Args) -> dict[str, Any]:
        thread = self._assistant_thread(args)
        thread.title = args.required("title")
        return {}

    @api_method("assistant.threads.setSuggestedPrompts")
    async def assistant_threads_set_suggested_prompts(self, args: Args) -> dict[str, Any]:
        channel = self._visible(args.required("channel_id", error="channel_not_found"))
        prompts = args.structured("prompts")
        if not isinstance(prompts, list) or not prompts:
            raise SlackError("invalid_arguments", "[ERROR] prompts must be a non-empty array")
        for prompt in prompts:
            if not isinstance(prompt, dict) or not prompt.get("title") or not prompt.get("message"):
                raise SlackError("invalid_arguments", "[ERROR] each prompt needs a title and a message")
        thread_ts = args.text("thread_ts")
        if thread_ts is not None and self.workspace.find(channel.id, thread_ts) is None:
            raise SlackError("invalid_thread_ts")
        thread = self.workspace.assistant_thread(channel.id, thread_ts or "")
        thread.prompts, thread.prompts_title = prompts, args.text("title")
        return {}

    def _assistant_thread(self, args: Args) -> AssistantThread:
        channel = self._visible(args.required("channel_id", error="channel_not_found"))
        thread_ts = args.required("thread_ts", error="invalid_thread_ts")
        if self.workspace.find(channel.id, thread_ts) is None:
            raise SlackError("invalid_thread_ts")
        return self.workspace.assistant_thread(channel.id, thread_ts)

    @api_method("views.open")
    async def views_open(self, args: Args) -> dict[str, Any]:
        self._use_trigger(args.required("trigger_id", error="invalid_trigger_id"))
        view = _view(args, "modal")
        self.workspace.views[view["id"]] = view
        return {"view": view}

    @api_method("views.publish")
    async def views_publish(self, args: Args) -> dict[str, Any]:
        user = args.required("user_id", error="user_not_found")
        self.workspace.user(user)
        view = _view(args, "home")
        self.workspace.home_views[user] = view
        return {"view": view}

    @api_method("files.info")
    async def files_info(self, args: Args) -> dict[str, Any]:
        file = self.workspace.file(args.required("file", error="file_not_found"))
        if not self._file_visible(file.channels):
            raise SlackError("file_not_found")
        return {
            "file": file.to_api(self.workspace.base_url, self.workspace.team_id),
            "comments": [],
            "response_metadata": {"next_cursor": ""},
        }

    @api_method("files.list")
    async def files_list(self, args: Args) -> dict[str, Any]:
        channel, user, types = args.text("channel"), args.text("user"), args.text("types")
        if user is not None:
            self.workspace.user(user)
        wanted = set(types.split(",")) if types and types != "all" else None
        files = [
            f
            for f in sorted(self.workspace.files.values(), key=lambda f: f.created, reverse=True)
            if self._file_visible(f.channels)
            and (channel is None or channel in f.channels)
            and (user is None or f.user == user)
            and (wanted is None or f.filetype in wanted or _file_kind(f.mimetype) in wanted)
        ]
        count, page = args.number("count", 100), args.number("page", 1, high=10**6)
        shown = files[(page - 1) * count : page * count]
        pages = max(1, -(-len(files) // count))
        return {
            "files": [f.to_api(self.workspace.base_url, self.workspace.team_id) for f in shown],
            "paging": {"count": count, "total": len(files), "page": page, "pages": pages},
        }


def _content(args: Args) -> dict[str, Any]:
    """A message's text/blocks/attachments, checked against Slack's limits."""
    text = args.text("text")
    markdown = args.text("markdown_text")
    blocks = args.structured("blocks", error="invalid_blocks_format")
    attachments = args.structured("attachments", error="invalid_attachments")
    if markdown is not None:
        if text is not None or blocks is not None:
            raise SlackError("markdown_text_conflict")
        if len(markdown) > MAX_MARKDOWN_TEXT:
            raise SlackError(
                "msg_too_long", f"[ERROR] markdown_text is limited to {MAX_MARKDOWN_TEXT} characters"
            )
        text = markdown
    if not text and not blocks and not attachments:
        raise SlackError("no_text")
    if text is not None and len(text) > MAX_TEXT:
        raise SlackError("msg_too_long", f"[ERROR] text is limited to {MAX_TEXT} characters")
    if blocks is not None:
        check_blocks(blocks)
    if attachments is not None:
        if not isinstance(attachments, list):
            raise SlackError("invalid_attachments")
        if len(attachments) > MAX_ATTACHMENTS:
            raise SlackError("too_many_attachments")
    return {"text": text or "", "blocks": blocks, "attachments": attachments}


def _chunks(args: Args, *, required: bool) -> list[dict[str, Any]]:
    """Streaming content: ``markdown_text`` (as one chunk) then ``chunks``, checked."""
    out: list[dict[str, Any]] = []
    markdown = args.text("markdown_text")
    if markdown is not None:
        out.append({"type": "markdown_text", "text": markdown})
    chunks = args.structured("chunks", error="invalid_chunks")
    if chunks is not None:
        if not isinstance(chunks, list):
            raise SlackError("invalid_chunks", "[ERROR] chunks must be an array")
        out.extend(chunks)
    check_chunks(out)
    if required and not any(c["type"] != "markdown_text" or c["text"] for c in out):
        raise SlackError("no_text")
    return out


def _view(args: Args, kind: str) -> dict[str, Any]:
    view = args.structured("view", error="invalid_arguments")
    if not isinstance(view, dict) or view.get("type") != kind:
        raise SlackError("invalid_arguments", f"[ERROR] view must be an object of type {kind}")
    blocks = view.get("blocks", [])
    if not isinstance(blocks, list) or len(blocks) > MAX_VIEW_BLOCKS:
        raise SlackError("invalid_arguments", f"[ERROR] a view takes at most {MAX_VIEW_BLOCKS} blocks")
    problems = block_problems(blocks, where="/view/blocks")
    if problems:
        raise SlackError("invalid_arguments", *problems)
    view_id = f"V{time.monotonic_ns() % 10**10:010d}"
    return view | {"id": view_id, "state": {"values": {}}, "hash": f"{int(time.time())}.{view_id}"}


def _between(messages: list[Message], args: Args) -> list[Message]:
    """conversations.* ``oldest`` / ``latest`` / ``inclusive`` filtering."""
    oldest, latest = args.text("oldest"), args.text("latest")
    inclusive = args.flag("inclusive")
    try:
        low = float(oldest) if oldest else None
        high = float(latest) if latest else None
    except ValueError:
        raise SlackError("invalid_ts_oldest" if oldest else "invalid_ts_latest") from None

    def keep(m: Message) -> bool:
        ts = float(m.ts)
        if low is not None and (ts < low or (ts == low and not inclusive)):
            return False
        return not (high is not None and (ts > high or (ts == high and not inclusive)))

    return [m for m in messages if keep(m)]


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        kind, _, offset = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if kind != "offset":
            raise ValueError(cursor)
        return int(offset)
    except ValueError:
        raise SlackError("invalid_cursor") from None


def _file_kind(mimetype: str) -> str:
    if mimetype.startswith("image/"):
        return "images"
    if mimetype.startswith("text/"):
        return "snippets"
    return "pdfs" if mimetype == "application/pdf" else "docs"


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Query parameters, then the body (JSON, form or multipart) on top."""
    params: dict[str, Any] = dict(request.query)
    if not request.can_read_body:
        return params
    if request.content_type == "application/json":
        raw = await request.read()
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                raise SlackError("invalid_json") from None
            if not isinstance(body, dict):
                raise SlackError("invalid_json")
            params.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            params[key] = value if isinstance(value, str) else value.file.read()
    else:
        raise SlackError("invalid_form_data", f"[ERROR] unsupported content type {request.content_type}")
    return params


def _error_body(exc: SlackError) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "error": exc.code}
    if exc.messages:
        body["errors"] = exc.messages
        body["response_metadata"] = {"messages": exc.messages}
    return body


_SIGN_IN_PAGE = """<!DOCTYPE html>
<html lang="en"><head><title>Sign in | Slack</title></head>
<body><h1>Sign in to your workspace</h1>
<p>This file needs a token: send it as <code>Authorization: Bearer xoxb-...</code>.</p></body></html>
"""
