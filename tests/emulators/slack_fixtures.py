"""pytest fixtures and helpers around :class:`~localslack.emulator.SlackEmulator`.

Make the fixtures visible to a test module by binding them there (a plain assignment keeps ruff's
F811 quiet where an import would not), or list this module in a root conftest's ``pytest_plugins``::

    from tests.emulators import slack_fixtures

    slack = slack_fixtures.slack
    slack_client = slack_fixtures.slack_client
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from localslack.emulator import SlackEmulator


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    """A fresh emulated workspace for one test."""
    async with SlackEmulator() as emulator:
        yield emulator


@pytest.fixture
async def slack_client(slack: SlackEmulator) -> AsyncWebClient:
    """slack_sdk's AsyncWebClient pointed at the emulator, with the bot token."""
    return AsyncWebClient(base_url=slack.api_url, token=slack.bot_token)


@contextlib.asynccontextmanager
async def serve_bolt_app(app: AsyncApp, *, path: str = "/slack/events") -> AsyncIterator[str]:
    """Serve a Bolt AsyncApp over HTTP on a free loopback port; yields its request URL."""
    runner = web.AppRunner(app.web_app(path=path), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}{path}"
    finally:
        await runner.cleanup()
