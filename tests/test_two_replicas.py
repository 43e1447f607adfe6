"""Two ``threadwise serve`` replicas as an operator runs them: a fresh PostgreSQL database after
``threadwise db upgrade``, one Milvus server process (``milvus-lite server``) indexed by
``threadwise sync``, JSON logs. Each replica starts its own answer worker processes.

Every message is delivered to both replicas and retried once, as Slack does after a slow
acknowledgement; an answer worker is SIGKILLed mid-answer and its answer resumes once elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bot.ledger import Ledger
from knowledge.database import make_async_engine
from localslack.emulator import SlackEmulator
from tests.app_fixtures import leader_turns, manifest_events, script_team
from tests.corpus import write_corpus
from tests.emulators.openai import Hang, ModelServer
from tests.processes import ROOT, Serve, bot_process_env, free_port, outside_environ
from tests.team_script import LEADER

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

MENTIONS = 30
KILL_MARK = "(the worker dies on this one)"


def threadwise(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def wait_port(port: int, timeout: float = 60) -> None:
    for _ in range(int(timeout * 10)):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


async def test_two_replicas_on_postgres_and_a_milvus_server_answer_each_message_once(
    tmp_path: Path, postgres_url: str
):
    docs = tmp_path / "docs"
    write_corpus(docs)
    milvus_port = free_port()
    milvus = subprocess.Popen(
        [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(tmp_path / "milvus"),
         "--host", "127.0.0.1", "--port", str(milvus_port)],
        env=outside_environ(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await wait_port(milvus_port)
        with ModelServer() as model:
            model.on(Hang(), model=LEADER, user=KILL_MARK, times=1)
            script_team(model)
            async with SlackEmulator(subscriptions=manifest_events()) as slack:
                env = bot_process_env(
                    slack,
                    model,
                    docs=docs,
                    milvus_uri=f"http://127.0.0.1:{milvus_port}",
                    database_url=postgres_url,
                    MILVUS_COLLECTION="replicas",
                    THREADWISE_SYNC_MINUTES="0",
                    THREADWISE_CLAIM_LEASE="10",
                    THREADWISE_MODEL_RETRIES="0",
                    THREADWISE_WORKERS="1",
                    THREADWISE_LOG_FORMAT="json",
                )
                threadwise("db", "upgrade", env=env)
                threadwise("sync", env=env)
                assert '"engineering/vpn.md"' in threadwise("search", "reset VPN password", "--json", env=env)
                replicas = [Serve(env, tmp_path / f"replica-{i}.log") for i in range(2)]
                ports = [free_port(), free_port()]
                urls = [f"http://127.0.0.1:{port}/slack/events" for port in ports]
                try:
                    for replica, port in zip(replicas, ports, strict=True):
                        await replica.start(port)
                    await _scenario(slack, model, urls, postgres_url)
                finally:
                    for replica in replicas:
                        if replica.process is not None and replica.process.returncode is None:
                            replica.process.send_signal(signal.SIGTERM)
                    for replica in replicas:
                        if replica.process is not None:
                            assert await asyncio.wait_for(replica.process.wait(), 30) == 0
    finally:
        milvus.terminate()
        milvus.wait(30)

    logged = [line for i in range(2) for line in (tmp_path / f"replica-{i}.log").read_text().splitlines()]
    ours = [json.loads(line) for line in logged if '"logger": "bot.' in line]
    assert ours and all({"level", "logger", "message"} <= set(entry) for entry in ours)
    assert any("resuming a claim" in entry["message"] for entry in ours)
    assert any("exited with -9; starting it again" in entry["message"] for entry in ours)


async def _deliver_everywhere(slack: SlackEmulator, urls: list[str], text: str, channel: str) -> str:
    """A mention delivered to the first replica, then to the second, then retried to the first."""
    slack.request_url = urls[0]
    said = await slack.user_says(channel, text)
    assert [a.status for a in said.acks] == [200, 200]
    for url in (urls[1], urls[0]):
        slack.request_url = url
        for ack in said.acks:
            assert (await slack.redeliver(ack)).status == 200
    return said.ts


async def _scenario(slack: SlackEmulator, model: ModelServer, urls: list[str], database: str) -> None:
    engine = make_async_engine(database)
    ledger = Ledger(engine)
    try:
        # A worker dies mid-answer: SIGKILL, by the pid its lease names.
        doomed = await _deliver_everywhere(
            slack, urls, f"how do I reset my VPN password? {KILL_MARK}", "C_GENERAL"
        )
        await slack.wait_for(lambda: leader_turns(model), 30)
        (claim,) = await ledger.all()
        assert claim.owner is not None and claim.status == "open"
        worker = int(claim.owner.split(":")[1])
        # the worker yields the CPU to the front (THREADWISE_WORKER_NICE, 10 by default)
        assert os.getpriority(os.PRIO_PROCESS, worker) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)
        os.kill(worker, signal.SIGKILL)

        asked = [doomed]
        for i in range(MENTIONS):
            asked.append(
                await _deliver_everywhere(
                    slack, urls, f"question {i}: which VPN clients are supported?", "C_GENERAL"
                )
            )

        def answered() -> bool:
            return all([m for m in slack.bot_messages("C_GENERAL", ts) if m.blocks] for ts in asked)

        await slack.wait_for(answered, timeout=180)
        await asyncio.sleep(3)  # time enough for any second answer to show up
        for ts in asked:
            (reply,) = slack.bot_messages("C_GENERAL", ts)
            assert "engineering/vpn.md" in reply.display_text, reply.display_text
        claims = await ledger.all()
        assert len(claims) == MENTIONS + 1 and {c.status for c in claims} == {"done"}
        (resumed,) = [c for c in claims if c.ts == doomed]
        assert resumed.attempts == 2
        assert [c.attempts for c in claims if c.ts != doomed] == [1] * MENTIONS  # no lease ever lost
        assert len(leader_turns(model)) == MENTIONS + 2  # the lost attempt and the resumed one
    finally:
        await engine.dispose()


assert ROOT.is_dir()
