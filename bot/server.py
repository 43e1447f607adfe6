"""``threadwise serve`` (HTTP) and ``threadwise socket`` (Socket Mode): the bot as a running process.

HTTP mode serves, on one aiohttp server:

- ``POST /slack/events``: events, slash commands and interactivity (one request URL, as in
  manifest.yml), verified with the signing secret by Bolt (forged or stale requests get 401) and
  dispatched by Bolt's aiohttp adapter;
- ``GET /healthz``: 200 while the process lives.

With ``THREADWISE_AGENTOS=1`` it also serves AgentOS on its own port (``bot.agentos``).

Both modes are the Slack front: they verify, record, acknowledge and show the first sign. The answers,
the files shared in Slack and ``/kb sync`` (recorded by the front as knowledge jobs, ``bot.jobs``), the
periodic sync (THREADWISE_SYNC_MINUTES) and the Slack-file reconcile run in THREADWISE_WORKERS
answer worker processes started beside the front (``bot.supervisor``; ``threadwise worker`` when
deployed on their own). Both stop cleanly on SIGINT/SIGTERM; the workers hand unfinished claims back
to the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

from bot.agentos import check_agentos_settings, start_agentos
from bot.health import add_operations_routes
from bot.logs import register_settings_secrets
from bot.settings import Settings
from bot.slack.app import SlackBot, require_slack
from bot.supervisor import Supervisor

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"


def build_web_app(bot: SlackBot) -> web.Application:
    async def slack_events(request: web.Request) -> web.Response:
        bolt_response = await bot.app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post(EVENTS_PATH, slack_events)
    app.router.add_get("/healthz", healthz)
    add_operations_routes(app, bot)  # GET /readyz, GET /metrics
    return app


@contextlib.asynccontextmanager
async def running_bot(settings: Settings, *, workers: int | None = None) -> AsyncIterator[SlackBot]:
    """A started front with its answer workers (THREADWISE_WORKERS, or ``workers``); stopped on the way out."""
    supervisor = Supervisor(settings, workers)
    try:
        settings = await supervisor.start()
        bot = await SlackBot(settings).start()
        try:
            yield bot
        finally:
            await bot.stop()
    finally:
        await supervisor.stop()


def stop_on_signals() -> asyncio.Event:
    """Set on SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """HTTP mode until SIGINT/SIGTERM."""
    require_slack(settings, "http")
    check_agentos_settings(settings)
    register_settings_secrets(settings)  # their values are masked in every log line
    host, port = host or settings.host, port or settings.port
    stop = stop_on_signals()
    async with running_bot(settings) as bot:
        agentos = await start_agentos(settings, bot.knowledge, host=host)  # None unless THREADWISE_AGENTOS
        runner = web.AppRunner(build_web_app(bot), handle_signals=False, access_log=None)
        try:
            await runner.setup()
            site = web.TCPSite(runner, host, port)
            await site.start()
            log.info("listening on http://%s:%d%s", host, port, EVENTS_PATH)
            await stop.wait()
        finally:
            log.info("stopping")
            await runner.cleanup()  # stops the site too
            if agentos is not None:
                await agentos.stop()


async def connect_socket_mode(
    bot: SlackBot, app_token: str, *, ping_interval: float = 10
) -> AsyncSocketModeHandler:
    """Open the Socket Mode connection (``apps.connections.open`` on SLACK_API_URL with the app token)."""
    handler = AsyncSocketModeHandler(
        bot.app, app_token, web_client=bot.web.client, ping_interval=ping_interval
    )
    await handler.connect_async()
    log.info("connected to Slack over Socket Mode")
    return handler


async def socket_mode(settings: Settings) -> None:
    """Socket Mode until SIGINT/SIGTERM; the client reconnects by itself after a drop."""
    require_slack(settings, "socket")
    assert settings.slack_app_token is not None
    register_settings_secrets(settings)  # their values are masked in every log line
    stop = stop_on_signals()
    async with running_bot(settings) as bot:
        handler = await connect_socket_mode(bot, settings.slack_app_token.get_secret_value())
        try:
            await stop.wait()
        finally:
            log.info("stopping")
            await handler.close_async()


__all__ = [
    "EVENTS_PATH",
    "build_web_app",
    "connect_socket_mode",
    "running_bot",
    "serve",
    "socket_mode",
    "stop_on_signals",
]
