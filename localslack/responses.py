"""``response_url`` endpoints: where an app answers a slash command or an interaction later on.

Slack gives every slash command and block action a ``response_url``. What the app POSTs there (or
returns in a slash command's ack) is shown to people: ``"response_type": "in_channel"`` posts a
message everyone sees; the default (``ephemeral``) shows it only to the person who acted;
``replace_original`` / ``delete_original`` change the message whose button was pressed. Every post
is recorded, and its effect lands in the workspace (``Workspace.ephemerals`` or the channel).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from localslack.limits import MAX_TEXT, block_problems
from localslack.workspace import SlackError, Workspace


@dataclass
class ResponseTarget:
    """What a response_url answers: a command or an action, by whom, where, on which message."""

    url: str
    source: Literal["command", "action"]
    channel: str
    user: str
    message_ts: str | None = None
    thread_ts: str | None = None


@dataclass
class ResponsePost:
    """One answer the app gave through a response_url (or a slash command's ack body)."""

    target: ResponseTarget
    body: dict[str, Any]
    time: float
    effect: Literal["ephemeral", "in_channel", "replaced", "deleted", "rejected"]
    ts: str | None = None
    error: str | None = None


class ResponseUrls:
    def __init__(self, workspace: Workspace, *, base_url: Callable[[], str]) -> None:
        self.workspace = workspace
        self._base_url = base_url
        self.targets: dict[str, ResponseTarget] = {}
        self.posts: list[ResponsePost] = []

    def issue(
        self,
        source: Literal["command", "action"],
        *,
        channel: str,
        user: str,
        message_ts: str | None = None,
        thread_ts: str | None = None,
    ) -> ResponseTarget:
        kind = "commands" if source == "command" else "actions"
        token = uuid.uuid4().hex
        url = f"{self._base_url()}hooks/{kind}/{self.workspace.team_id}/{token}"
        target = ResponseTarget(url, source, channel, user, message_ts, thread_ts)
        self.targets[token] = target
        return target

    async def handle(self, request: web.Request) -> web.Response:
        """aiohttp handler for ``/hooks/{kind}/{team}/{token}``."""
        target = self.targets.get(request.match_info["token"])
        if target is None:
            return web.json_response({"ok": False, "error": "expired_url"}, status=404)
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"ok": False, "error": "invalid_json"}, status=400)
        post = self.apply(target, body)
        if post.error:
            return web.json_response({"ok": False, "error": post.error}, status=400)
        return web.json_response({"ok": True})

    def apply(self, target: ResponseTarget, body: Any) -> ResponsePost:
        """Show a response as Slack would; a plain string is a text-only ephemeral reply."""
        if isinstance(body, str):
            body = {"text": body}
        if not isinstance(body, dict):
            body = {"text": json.dumps(body)}
        post = ResponsePost(target=target, body=body, time=time.time(), effect="rejected")
        self.posts.append(post)
        ws = self.workspace
        text = body.get("text") or ""
        blocks = body.get("blocks")
        try:
            if len(text) > MAX_TEXT:
                raise SlackError("msg_too_long")
            if blocks is not None and (not isinstance(blocks, list) or block_problems(blocks)):
                raise SlackError("invalid_blocks")
            if body.get("delete_original") and target.message_ts:
                ws.delete(target.channel, target.message_ts)
                post.effect, post.ts = "deleted", target.message_ts
            elif body.get("replace_original") and target.message_ts:
                ws.update(target.channel, target.message_ts, text=text, blocks=blocks or [])
                post.effect, post.ts = "replaced", target.message_ts
            elif not text and not blocks:
                raise SlackError("no_text")
            elif body.get("response_type") == "in_channel":
                thread_ts = body.get("thread_ts") or target.thread_ts
                message = ws.post(target.channel, bot=True, text=text, blocks=blocks, thread_ts=thread_ts)
                post.effect, post.ts = "in_channel", message.ts
            else:
                ephemeral = ws.post_ephemeral(
                    target.channel,
                    target.user,
                    text,
                    blocks=blocks,
                    thread_ts=body.get("thread_ts") or target.thread_ts,
                    source=f"response_url ({target.source})",
                )
                post.effect, post.ts = "ephemeral", ephemeral.ts
        except SlackError as exc:
            post.error = exc.code
        return post
