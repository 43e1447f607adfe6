"""THREADWISE_LOG_FORMAT=json: every line on stderr is one JSON object, whoever wrote it.

A real ``threadwise serve`` process (with AgentOS, so uvicorn logs too) against the local Slack
workspace, the scripted model server and a real Milvus gRPC server process (``milvus-lite server``).
It answers, then meets a pymilvus RPC error (its collection dropped underneath it), a Python warning,
an uncaught exception in a thread, a library printing to stderr and a raw write on file descriptor 2;
then it stops on SIGTERM. Every stderr line must parse as a JSON object with level, logger and message.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from knowledge.store.connection import milvus_client
from localslack.emulator import SlackEmulator
from tests.app_fixtures import VPN_QUESTION, manifest_events, script_team
from tests.corpus import write_corpus
from tests.emulators.openai import ModelServer
from tests.processes import bot_process_env, free_port

pytestmark = pytest.mark.slow

# `threadwise serve`, plus a SIGUSR1 handler that makes the process write to stderr the ways libraries do.
DRIVER = """
import os, signal, sys, threading, warnings

def provoke(signum, frame):
    def later():
        warnings.warn("THE-WARNING: a library's deprecated call", UserWarning)
        print("THE-PRINT: a library printing to stderr", file=sys.stderr)
        os.write(2, b"E0000 00:00:00.000000 1 THE-RAW-LINE: a C library writing to fd 2\\n")
        threading.Thread(target=lambda: 1 / 0, name="THE-DOOMED-THREAD").start()
    threading.Thread(target=later).start()

signal.signal(signal.SIGUSR1, provoke)
from bot.cli import main
sys.exit(main(sys.argv[1:]))
"""


async def wait_until_up(process: asyncio.subprocess.Process, url: str, log: Path) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            if process.returncode is not None:
                raise AssertionError(f"exited with {process.returncode}:\n{log.read_text()}")
            try:
                async with session.get(url) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} did not come up:\n{log.read_text()}")


async def start_milvus_server(tmp_path: Path) -> tuple[asyncio.subprocess.Process, int]:
    """``milvus-lite server`` on a free port, once it listens (another port if that one was taken)."""
    for attempt in range(3):
        port, log = free_port(), tmp_path / f"milvus-{attempt}.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(tmp_path / "milvus"),
                "--host", "127.0.0.1", "--port", str(port), stdout=out, stderr=out,
            )  # fmt: skip
        for _ in range(300):
            if "listening" in log.read_text() or process.returncode is not None:
                break
            await asyncio.sleep(0.1)
        if process.returncode is None and "listening" in log.read_text():
            return process, port
        if process.returncode is None:
            process.kill()
        await process.wait()
    raise AssertionError(f"milvus-lite server did not start:\n{log.read_text()}")


async def test_every_stderr_line_of_serve_is_a_json_object(tmp_path: Path):
    docs = tmp_path / "docs"
    write_corpus(docs)
    milvus, milvus_port = await start_milvus_server(tmp_path)
    port, agentos_port = free_port(), free_port()
    milvus_uri = f"http://127.0.0.1:{milvus_port}"
    try:
        with ModelServer() as model:
            script_team(model)
            async with SlackEmulator(subscriptions=manifest_events()) as slack:
                env = bot_process_env(
                    slack,
                    model,
                    docs=docs,
                    milvus_uri=milvus_uri,
                    database_url=f"sqlite:///{tmp_path / 'threadwise.db'}",
                    MILVUS_COLLECTION="json_logs",
                    THREADWISE_LOG_FORMAT="json",
                    THREADWISE_MODEL_RETRIES="0",
                    THREADWISE_SYNC_MINUTES="0",
                    # One answer worker: the one that opened the collection meets its drop (a second
                    # worker opening it afterwards would create it anew and meet no error).
                    THREADWISE_WORKERS="1",
                    THREADWISE_AGENTOS="1",
                    THREADWISE_AGENTOS_KEY="agentos-key-0123456789",
                    THREADWISE_AGENTOS_PORT=str(agentos_port),
                )
                sync = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bot.cli", "sync", env=env, cwd=tmp_path,
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                )  # fmt: skip
                synced, _ = await asyncio.wait_for(sync.communicate(), 180)
                assert sync.returncode == 0, synced.decode()

                stderr, stdout = tmp_path / "serve.stderr", tmp_path / "serve.stdout"
                with stderr.open("wb") as err, stdout.open("wb") as out:
                    serve = await asyncio.create_subprocess_exec(
                        sys.executable, "-c", DRIVER, "serve", "--host", "127.0.0.1", "--port", str(port),
                        env=env, cwd=tmp_path, stdout=out, stderr=err,
                    )  # fmt: skip
                try:
                    await wait_until_up(serve, f"http://127.0.0.1:{port}/healthz", stderr)
                    await wait_until_up(serve, f"http://127.0.0.1:{agentos_port}/health", stderr)
                    slack.request_url = f"http://127.0.0.1:{port}/slack/events"

                    said = await slack.user_says("C_GENERAL", VPN_QUESTION)
                    await slack.wait_for_reply("C_GENERAL", said.ts, timeout=60)
                    milvus_client(milvus_uri).drop_collection("json_logs")  # underneath the bot
                    said = await slack.user_says("C_GENERAL", "how many vacation days do I get?")
                    await slack.wait_for_reply("C_GENERAL", said.ts, timeout=60)

                    serve.send_signal(signal.SIGUSR1)
                    await slack.wait_for(lambda: "THE-DOOMED-THREAD" in stderr.read_text(), 15)
                finally:
                    if serve.returncode is None:
                        serve.send_signal(signal.SIGTERM)
                        assert await asyncio.wait_for(serve.wait(), 30) == 0
    finally:
        milvus.send_signal(signal.SIGTERM)
        await asyncio.wait_for(milvus.wait(), 30)

    lines = stderr.read_text(encoding="utf-8").splitlines()
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            pytest.fail(f"not JSON: {line!r}\n--- stderr ---\n" + "\n".join(lines))
        assert isinstance(entry, dict) and {"time", "level", "logger", "message"} <= entry.keys(), line
        entries.append(entry)
    assert stdout.read_text() == ""  # agno's own lines went to stdout: now they are JSON on stderr

    def logged(text: str, **fields: str) -> list[dict]:
        return [
            e
            for e in entries
            if text in e["message"] + e.get("exception", "") and all(e.get(k) == v for k, v in fields.items())
        ]

    assert logged("RPC error", level="error")
    assert [e for e in logged("RPC error") if e["logger"].startswith("pymilvus")]
    assert logged("THE-WARNING", logger="py.warnings", level="warning")
    assert logged("THE-PRINT", logger="stderr")
    assert logged("THE-RAW-LINE", logger="stderr", level="error")
    (doomed,) = logged("uncaught exception in thread THE-DOOMED-THREAD", level="error")
    assert "ZeroDivisionError" in doomed["exception"]
    assert [e for e in entries if e["logger"].startswith("uvicorn")]  # AgentOS's server
    answered = [e for e in entries if "answered in" in e["message"] or "answer failed" in e["message"]]
    assert answered and all(e["claim"].startswith("T_TEAM:C_GENERAL:") for e in answered)
    assert all(e["conversation"].startswith("slack:T_TEAM:C_GENERAL:") for e in answered)
    assert "xoxb-emulator" not in stderr.read_text()
    assert os.environ.get("THREADWISE_LOG_FORMAT") is None  # nothing leaked into the test process
