"""``threadwise serve`` and ``threadwise socket`` as subprocesses: the environment they start with, a
free loopback port, and a ``serve`` process that is ready once /healthz answers."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import aiohttp

from localslack.emulator import SlackEmulator
from tests.emulators.openai import ModelServer
from tests.team_script import ANALYST, API_KEY, LEADER, WRITER

ROOT = Path(__file__).resolve().parents[1]


def outside_environ() -> dict[str, str]:
    """This process's environment without the bot's own settings, so none leak into a child."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "THREADWISE_", "OPENAI_"))}


def bot_process_env(
    slack: SlackEmulator,
    model: ModelServer,
    *,
    docs: Path | None = None,
    milvus_uri: str,
    database_url: str,
    socket_mode: bool = False,
    **overrides: str,
) -> dict[str, str]:
    """The environment for a bot process talking to ``slack`` (over HTTP, or Socket Mode with
    ``socket_mode``) and to ``model`` as the team's three models; ``overrides`` are set last."""
    env = {
        **outside_environ(),
        "PYTHONPATH": str(ROOT),
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_API_URL": slack.api_url,
        "OPENAI_BASE_URL": model.base_url,
        "OPENAI_API_KEY": API_KEY,
        "THREADWISE_MODEL": LEADER,
        "THREADWISE_ANALYST_MODEL": ANALYST,
        "THREADWISE_WRITER_MODEL": WRITER,
        "MILVUS_URI": milvus_uri,
        "DATABASE_URL": database_url,
    }
    if socket_mode:
        env["SLACK_APP_TOKEN"] = slack.app_token
    else:
        env["SLACK_SIGNING_SECRET"] = slack.signing_secret
    if docs is not None:
        env["THREADWISE_DOCS"] = str(docs)
    return {**env, **overrides}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Serve:
    """``python -m bot.cli serve`` with the given environment, its output kept in a file."""

    def __init__(self, env: dict[str, str], log: Path):
        self.env, self.log = env, log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, port: int) -> None:
        out = self.log.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
            env=self.env, cwd=self.log.parent, stdout=out, stderr=out,
        )  # fmt: skip
        out.close()
        health = f"http://127.0.0.1:{port}/healthz"
        async with aiohttp.ClientSession() as session:
            for _ in range(1200):  # serve listens once its answer workers are ready
                if self.process.returncode is not None:
                    raise AssertionError(
                        f"serve exited with {self.process.returncode}:\n{self.log.read_text()}"
                    )
                try:
                    async with session.get(health) as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"serve did not come up:\n{self.log.read_text()}")
