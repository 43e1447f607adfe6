"""What Slack sends to an app: Events API envelopes, slash commands, interactivity payloads, signed.

Builders here are pure functions of the workspace (so the Socket Mode server and HTTP delivery send
identical payloads). :class:`HttpDelivery` POSTs them to the app's request URL signed with the
signing secret exactly as Slack does (``v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")`` in
``X-Slack-Signature``, the timestamp in ``X-Slack-Request-Timestamp``), with redelivery headers
(``X-Slack-Retry-Num`` / ``X-Slack-Retry-Reason``) and deliberately bad signatures or stale
timestamps on request, and measures how long the app took to acknowledge.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

import aiohttp

from localslack.workspace import Channel, Ephemeral, File, Message, Workspace

ACK_TIMEOUT = 3.0  # Slack waits this long for an acknowledgement before it counts a delivery as failed
_event_ids = itertools.count(1)


@dataclass
class Ack:
    """How the app answered one delivery (an HTTP request or a Socket Mode envelope)."""

    transport: Literal["http", "socket"]
    kind: str  # events_api, slash_commands, interactive, url_verification
    payload: dict[str, Any]  # what was sent (the event envelope, the command form, the action payload)
    ok: bool  # acknowledged in time with a 2xx (HTTP) or an ack frame (Socket Mode)
    elapsed: float  # seconds from sending until the ack (or until giving up)
    status: int | None = None  # HTTP status; None when there was no answer
    body: Any = None  # the ack's body (HTTP) or its ``payload`` (Socket Mode), parsed as JSON when possible
    timed_out: bool = False
    retry_num: int = 0
    retry_reason: str | None = None
    envelope_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # the request headers sent (HTTP)

    @property
    def event_id(self) -> str | None:
        return self.payload.get("event_id")


# -- Events API -------------------------------------------------------------------------------------


def new_event_id() -> str:
    return f"Ev{int(time.time()) % 10**6:06d}{next(_event_ids):05d}"


def envelope(ws: Workspace, event: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    """The ``event_callback`` body Slack wraps every event in."""
    event_time = int(float(event.get("event_ts") or time.time()))
    return {
        "token": "verification-token-unused",  # the deprecated verification token; apps should ignore it
        "team_id": ws.team_id,
        "context_team_id": ws.team_id,
        "context_enterprise_id": None,
        "api_app_id": ws.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or new_event_id(),
        "event_time": event_time,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": ws.team_id,
                "user_id": ws.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{uuid.uuid4().hex}",
    }


def message_event(ws: Workspace, message: Message) -> dict[str, Any]:
    """The ``message`` event for a new message (any subtype), as subscribed by message.channels/.im/..."""
    channel = ws.channel(message.channel)
    return ws.render(message) | {
        "channel": channel.id,
        "event_ts": message.ts,
        "channel_type": channel.event_channel_type,
    }


def app_mention_event(ws: Workspace, message: Message) -> dict[str, Any]:
    """The ``app_mention`` event for a message that mentions the app (no channel_type, as in Slack)."""
    event = {k: v for k, v in message_event(ws, message).items() if k not in ("channel_type", "subtype")}
    event["type"] = "app_mention"
    return event


def message_changed_event(ws: Workspace, message: Message, previous: dict[str, Any]) -> dict[str, Any]:
    channel = ws.channel(message.channel)
    event_ts = message.edits[-1].ts if message.edits else ws.next_ts()
    return {
        "type": "message",
        "subtype": "message_changed",
        "message": ws.render(message),
        "previous_message": previous,
        "channel": channel.id,
        "hidden": True,
        "ts": event_ts,
        "event_ts": event_ts,
        "channel_type": channel.event_channel_type,
    }


def message_deleted_event(ws: Workspace, channel: Channel, previous: dict[str, Any]) -> dict[str, Any]:
    event_ts = ws.next_ts()
    return {
        "type": "message",
        "subtype": "message_deleted",
        "previous_message": previous,
        "channel": channel.id,
        "hidden": True,
        "deleted_ts": previous["ts"],
        "ts": event_ts,
        "event_ts": event_ts,
        "channel_type": channel.event_channel_type,
    }


def assistant_thread_started_event(
    ws: Workspace, *, user: str, channel: Channel, thread_ts: str, context_channel: str | None
) -> dict[str, Any]:
    context: dict[str, Any] = {}
    if context_channel:
        context = {"channel_id": context_channel, "team_id": ws.team_id, "enterprise_id": None}
    return {
        "type": "assistant_thread_started",
        "assistant_thread": {
            "user_id": user,
            "context": context,
            "channel_id": channel.id,
            "thread_ts": thread_ts,
        },
        "event_ts": ws.next_ts(),
    }


def file_shared_event(ws: Workspace, file: File, *, channel: Channel, user: str) -> dict[str, Any]:
    return {
        "type": "file_shared",
        "channel_id": channel.id,
        "file_id": file.id,
        "user_id": user,
        "file": {"id": file.id},
        "event_ts": ws.next_ts(),
    }


def file_change_event(ws: Workspace, file: File) -> dict[str, Any]:
    return {"type": "file_change", "file_id": file.id, "file": {"id": file.id}, "event_ts": ws.next_ts()}


def file_deleted_event(ws: Workspace, file: File) -> dict[str, Any]:
    return {"type": "file_deleted", "file_id": file.id, "event_ts": ws.next_ts()}


def left_event(ws: Workspace, channel: Channel) -> dict[str, Any]:
    """What the app gets when it leaves (or is removed from) a channel: channel_left / group_left."""
    kind = "channel_left" if channel.kind == "public" else "group_left"
    return {"type": kind, "channel": channel.id, "actor_id": "U_ALICE", "event_ts": ws.next_ts()}


def channel_shared_event(ws: Workspace, channel: Channel, *, connected_team: str) -> dict[str, Any]:
    """Another organisation joined the channel (Slack Connect): ``channel_shared``."""
    return {
        "type": "channel_shared",
        "connected_team_id": connected_team,
        "channel": channel.id,
        "event_ts": ws.next_ts(),
    }


def channel_unshared_event(ws: Workspace, channel: Channel, *, removed_team: str) -> dict[str, Any]:
    """An organisation left (or was removed from) a shared channel: ``channel_unshared``."""
    return {
        "type": "channel_unshared",
        "previously_connected_team_id": removed_team,
        "channel": channel.id,
        "is_ext_shared": bool(channel.external_teams),
        "event_ts": ws.next_ts(),
    }


def file_unshared_event(ws: Workspace, file: File, *, channel: Channel, user: str) -> dict[str, Any]:
    return {
        "type": "file_unshared",
        "channel_id": channel.id,
        "file_id": file.id,
        "user_id": user,
        "file": {"id": file.id},
        "event_ts": ws.next_ts(),
    }


def member_joined_channel_event(
    ws: Workspace, *, channel: Channel, user: str, inviter: str | None, event_ts: str
) -> dict[str, Any]:
    event = {
        "type": "member_joined_channel",
        "user": user,
        "channel": channel.id,
        "channel_type": "C" if channel.kind == "public" else "G",
        "team": ws.team_id,
        "event_ts": event_ts,
    }
    if inviter:
        event["inviter"] = inviter
    return event


def reaction_event(
    ws: Workspace, message: Message, *, name: str, user: str, added: bool = True
) -> dict[str, Any]:
    return {
        "type": "reaction_added" if added else "reaction_removed",
        "user": user,
        "reaction": name,
        "item_user": message.user,
        "item": {"type": "message", "channel": message.channel, "ts": message.ts},
        "event_ts": ws.next_ts(),
    }


def url_verification(challenge: str) -> dict[str, Any]:
    return {"token": "verification-token-unused", "challenge": challenge, "type": "url_verification"}


# -- slash commands and interactivity ---------------------------------------------------------------


def slash_command_form(
    ws: Workspace,
    *,
    command: str,
    text: str,
    user: str,
    channel: Channel,
    response_url: str,
    trigger_id: str,
) -> dict[str, str]:
    """The form fields of a slash command request."""
    return {
        "token": "verification-token-unused",
        "team_id": ws.team_id,
        "team_domain": ws.domain,
        "channel_id": channel.id,
        "channel_name": "directmessage" if channel.is_dm else channel.name,
        "user_id": user,
        "user_name": ws.user(user).name,
        "command": command,
        "text": text,
        "api_app_id": ws.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def block_actions_payload(
    ws: Workspace,
    *,
    user: str,
    message: Message | Ephemeral,
    action: dict[str, Any],
    block_id: str,
    response_url: str,
    trigger_id: str,
    value: Any = None,
) -> dict[str, Any]:
    """A ``block_actions`` payload for a person using an interactive element in a message.

    For a posted message Slack sends a copy of it (``message``); for an ephemeral one the container
    says ``is_ephemeral`` and there is no copy (the app never stored one).
    """
    person = ws.user(user)
    channel = ws.channel(message.channel)
    ephemeral = isinstance(message, Ephemeral)
    act: dict[str, Any] = {
        "action_id": action.get("action_id"),
        "block_id": block_id,
        "type": action.get("type"),
        "action_ts": f"{time.time():.6f}",
    }
    if action.get("text") is not None:
        act["text"] = action["text"]
    if action.get("type") == "button":
        act["value"] = action.get("value") if value is None else value
        if action.get("style"):
            act["style"] = action["style"]
    elif action.get("type") in ("static_select", "external_select"):
        act["selected_option"] = value
    elif value is not None:
        act["value"] = value
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": message.ts,
        "channel_id": channel.id,
        "is_ephemeral": ephemeral,
    }
    if message.thread_ts:
        container["thread_ts"] = message.thread_ts
    return {
        "type": "block_actions",
        "user": {"id": person.id, "username": person.name, "name": person.name, "team_id": ws.team_id},
        "api_app_id": ws.app_id,
        "token": "verification-token-unused",
        "container": container,
        "trigger_id": trigger_id,
        "team": {"id": ws.team_id, "domain": ws.domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel.id, "name": "directmessage" if channel.is_dm else channel.name},
        **({} if ephemeral else {"message": ws.render(message)}),
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [act],
    }


def view_submission_payload(
    ws: Workspace, *, user: str, view: dict[str, Any], values: dict[str, Any], trigger_id: str
) -> dict[str, Any]:
    """A ``view_submission`` payload: a person presses a modal's submit button.

    ``values`` maps each input block's ``block_id`` to what the person chose, as plain values: a
    string for a radio button, select or text input (an option's ``value``), a list for a multi
    select (option values, or user ids for ``multi_users_select``). Slack's ``state.values`` is built
    from them, shaped by each block's element type; a block the view does not have is refused.
    """
    person = ws.user(user)
    inputs = {b.get("block_id"): b for b in view.get("blocks", []) if b.get("type") == "input"}
    state: dict[str, dict[str, Any]] = {}
    for block_id, block in inputs.items():
        element = block["element"]
        chosen = values.get(block_id)
        state[block_id] = {element["action_id"]: _element_state(element, chosen)}
    unknown = set(values) - set(inputs)
    if unknown:
        raise ValueError(f"the view has no input blocks {sorted(unknown)}")
    submitted = view | {"state": {"values": state}, "team_id": ws.team_id, "app_id": ws.app_id}
    submitted.setdefault("root_view_id", view.get("id"))
    submitted.setdefault("previous_view_id", None)
    submitted.setdefault("external_id", "")
    submitted.setdefault("bot_id", ws.bot_id)
    return {
        "type": "view_submission",
        "team": {"id": ws.team_id, "domain": ws.domain},
        "user": {"id": person.id, "username": person.name, "name": person.name, "team_id": ws.team_id},
        "api_app_id": ws.app_id,
        "token": "verification-token-unused",
        "trigger_id": trigger_id,
        "view": submitted,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def _option_for(element: dict[str, Any], value: Any) -> dict[str, Any]:
    for option in element.get("options") or []:
        if option.get("value") == value:
            return option
    raise ValueError(f"{element.get('action_id')} has no option {value!r}")


def _element_state(element: dict[str, Any], chosen: Any) -> dict[str, Any]:
    kind = element.get("type")
    state: dict[str, Any] = {"type": kind}
    if kind in ("radio_buttons", "static_select"):
        if chosen is None:
            chosen = (element.get("initial_option") or {}).get("value")
        state["selected_option"] = _option_for(element, chosen) if chosen is not None else None
    elif kind in ("multi_static_select", "checkboxes"):
        if chosen is None:
            chosen = [o["value"] for o in element.get("initial_options") or []]
        state["selected_options"] = [_option_for(element, v) for v in chosen]
    elif kind == "multi_users_select":
        state["selected_users"] = list(chosen if chosen is not None else element.get("initial_users") or [])
    elif kind == "users_select":
        state["selected_user"] = chosen if chosen is not None else element.get("initial_user")
    elif kind == "plain_text_input":
        state["value"] = chosen if chosen is not None else element.get("initial_value")
    else:
        raise ValueError(f"the local workspace does not submit {kind} elements yet")
    return state


def find_action(message: Message | Ephemeral, action_id: str) -> tuple[dict[str, Any], str]:
    """The interactive element ``action_id`` in a message's blocks, and its block_id."""
    for i, block in enumerate(message.blocks or []):
        elements = list(block.get("elements") or []) if block.get("type") == "actions" else []
        if isinstance(block.get("accessory"), dict):
            elements.append(block["accessory"])
        for element in elements:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return element, block.get("block_id") or f"block-{i}"
    shown = [
        e.get("action_id")
        for b in message.blocks or []
        for e in [*(b.get("elements") or []), b.get("accessory") or {}]
        if isinstance(e, dict) and e.get("action_id")
    ]
    raise LookupError(f"message {message.ts} has no element with action_id {action_id!r} (it has {shown})")


# -- signing and HTTP delivery ----------------------------------------------------------------------


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 request signature."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def encode(kind: str, payload: dict[str, Any]) -> tuple[bytes, str]:
    """The HTTP body and content type Slack uses for each kind of request."""
    if kind == "slash_commands":
        return urlencode(payload).encode(), "application/x-www-form-urlencoded"
    if kind == "interactive":
        return urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded"
    return json.dumps(payload).encode(), "application/json"


class HttpDelivery:
    """POSTs signed requests to the app, as Slack's Events API / commands / interactivity do."""

    def __init__(self, signing_secret: str, *, timeout: float = ACK_TIMEOUT) -> None:
        self.signing_secret = signing_secret
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(
        self,
        url: str,
        kind: str,
        payload: dict[str, Any],
        *,
        retry_num: int = 0,
        retry_reason: str | None = None,
        bad_signature: bool = False,
        timestamp: int | None = None,
    ) -> Ack:
        """Deliver one request; ``timestamp`` overrides the signing time (an old one is "stale")."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        body, content_type = encode(kind, payload)
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        secret = self.signing_secret + ("-wrong" if bad_signature else "")
        headers = {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature(secret, stamp, body),
        }
        if retry_num:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        ack = Ack(
            transport="http",
            kind=kind,
            payload=payload,
            ok=False,
            elapsed=0.0,
            retry_num=retry_num,
            retry_reason=headers.get("X-Slack-Retry-Reason"),
            headers=headers,
        )
        started = time.perf_counter()
        try:
            async with self._session.post(
                url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=self.timeout)
            ) as response:
                text = await response.text()
                ack.status = response.status
        except TimeoutError:
            ack.timed_out = True
        except aiohttp.ClientError as exc:
            ack.body = f"{type(exc).__name__}: {exc}"
        else:
            ack.ok = 200 <= response.status < 300
            ack.body = _parse(text)
        ack.elapsed = time.perf_counter() - started
        return ack


def _parse(text: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
