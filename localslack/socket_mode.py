"""Slack's Socket Mode server side: the WebSocket an app opens after ``apps.connections.open``.

Protocol, as slack_sdk's Socket Mode clients expect it:

* ``apps.connections.open`` (app-level ``xapp-`` token) returns a single-use URL, here
  ``ws://127.0.0.1:PORT/link/?ticket=...&app_id=...``;
* on connect the server sends ``{"type": "hello", "num_connections": N, ...}``;
* each request is an envelope ``{"envelope_id", "type": "events_api" | "slash_commands" |
  "interactive", "payload", "accepts_response_payload", "retry_attempt", "retry_reason"}``;
* the app acknowledges with ``{"envelope_id": ..., "payload": {...}?}`` (the payload only where
  ``accepts_response_payload`` is true, e.g. a slash command's reply);
* the server may send ``{"type": "disconnect", "reason": "refresh_requested" | "warning" | ...}``,
  after which the client opens a new connection; or it may simply close the socket.

The server records every envelope's ack and how long it took.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from localslack.events import ACK_TIMEOUT, Ack


@dataclass
class Connection:
    id: int
    socket: web.WebSocketResponse
    request: web.Request
    opened: float
    closed: float | None = None
    received: list[dict[str, Any]] = field(default_factory=list)  # every frame the app sent

    @property
    def open(self) -> bool:
        return self.closed is None and not self.socket.closed


class SocketModeServer:
    """Hands out connection URLs, serves the WebSocket and sends envelopes over it."""

    def __init__(self, *, app_id: str, base_url: Callable[[], str], ack_timeout: float = ACK_TIMEOUT) -> None:
        self.app_id = app_id
        self._base_url = base_url
        self.ack_timeout = ack_timeout
        self.connections: list[Connection] = []  # every connection ever made, oldest first
        self.acks: list[Ack] = []
        self.stray_frames: list[dict[str, Any]] = []  # acks for unknown envelopes, other frames
        self._tickets: set[str] = set()
        self._pending: dict[str, asyncio.Future[tuple[dict[str, Any], float]]] = {}
        self._changed = asyncio.Event()

    @property
    def enabled(self) -> bool:
        """Whether the app uses Socket Mode (it has connected at least once)."""
        return bool(self.connections)

    @property
    def open_connections(self) -> list[Connection]:
        return [c for c in self.connections if c.open]

    def issue_url(self) -> str:
        """A fresh single-use URL for apps.connections.open."""
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        ws_base = self._base_url().replace("http://", "ws://", 1)
        return f"{ws_base}link/?ticket={ticket}&app_id={self.app_id}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """aiohttp handler for ``/link/``."""
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            raise web.HTTPUnauthorized(text="invalid or used ticket: call apps.connections.open again")
        self._tickets.discard(ticket)
        socket = web.WebSocketResponse(autoping=True, timeout=2.0)
        await socket.prepare(request)
        connection = Connection(
            id=len(self.connections) + 1, socket=socket, request=request, opened=time.time()
        )
        self.connections.append(connection)
        self._signal()
        await socket.send_json(
            {
                "type": "hello",
                "num_connections": len(self.open_connections),
                "debug_info": {
                    "host": "applink-emulator",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self.app_id},
            }
        )
        try:
            async for frame in socket:
                if frame.type == WSMsgType.TEXT:
                    self._received(connection, frame.data)
        finally:
            connection.closed = time.time()
            self._signal()
        return socket

    def _received(self, connection: Connection, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            self.stray_frames.append({"raw": data})
            return
        connection.received.append(message)
        waiter = self._pending.get(message.get("envelope_id", "")) if isinstance(message, dict) else None
        if waiter is None or waiter.done():
            self.stray_frames.append(message)
        else:
            waiter.set_result((message, time.perf_counter()))

    def _signal(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_connected(self, *, count: int = 1, timeout: float = 10.0) -> Connection:
        """Wait until at least ``count`` connections have ever been made and one is open; return the newest."""
        deadline = time.monotonic() + timeout
        while len(self.connections) < count or not self.open_connections:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"no Socket Mode connection: {len(self.connections)} made, "
                    f"{len(self.open_connections)} open (wanted {count} made and one open)"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return self.open_connections[-1]

    async def send(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool = False,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> Ack:
        """Send one envelope on the newest open connection and wait for its ack (``ack_timeout``)."""
        ack = Ack(
            transport="socket",
            kind=kind,
            payload=payload,
            ok=False,
            elapsed=0.0,
            retry_num=retry_attempt,
            retry_reason=retry_reason or None,
            envelope_id=str(uuid.uuid4()),
        )
        started = time.perf_counter()
        try:
            # While the app reconnects Slack holds the envelope; give it the ack window to come back.
            connection = await self.wait_connected(timeout=self.ack_timeout)
        except TimeoutError as exc:
            ack.timed_out, ack.body = True, str(exc)
            ack.elapsed = time.perf_counter() - started
            self.acks.append(ack)
            return ack
        envelope = {
            "envelope_id": ack.envelope_id,
            "payload": payload,
            "type": kind,
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": retry_attempt,
            "retry_reason": retry_reason,
        }
        waiter: asyncio.Future[tuple[dict[str, Any], float]] = asyncio.get_running_loop().create_future()
        self._pending[ack.envelope_id or ""] = waiter
        started = time.perf_counter()
        try:
            await connection.socket.send_str(json.dumps(envelope))
            message, acked_at = await asyncio.wait_for(waiter, self.ack_timeout)
        except (TimeoutError, ConnectionError) as exc:
            ack.timed_out = isinstance(exc, TimeoutError)
            ack.elapsed = time.perf_counter() - started
        else:
            ack.ok, ack.body, ack.elapsed = True, message.get("payload"), acked_at - started
        finally:
            self._pending.pop(ack.envelope_id or "", None)
        self.acks.append(ack)
        return ack

    async def request_reconnect(self, reason: str = "refresh_requested") -> None:
        """Send ``disconnect`` on every open connection; clients answer by opening a new one."""
        for connection in self.open_connections:
            await connection.socket.send_json(
                {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-emulator"}}
            )

    async def drop(self, *, graceful: bool = True) -> None:
        """Close every open connection: with a close frame, or by cutting the TCP connection."""
        for connection in self.open_connections:
            if graceful:
                await connection.socket.close(code=1001, message=b"server going away")
            elif connection.request.transport is not None:
                connection.request.transport.abort()
            connection.closed = connection.closed or time.time()
        self._signal()

    async def close(self) -> None:
        for waiter in self._pending.values():
            waiter.cancel()
        await self.drop()
