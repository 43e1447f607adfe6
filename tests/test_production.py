"""Two real `threadwise serve` replicas on one PostgreSQL database, with the Slack emulator.

Each replica has its own Milvus Lite copy of the same documents (Lite is one process's file; in
production both point at one Milvus server). Messages go to both replicas and are retried; one
replica is killed mid-answer; /readyz, /metrics, JSON logs and SIGTERM are read as an operator would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from bot.ledger import Ledger
from knowledge.base import KnowledgeBase
from knowledge.config import KnowledgeConfig
from knowledge.database import make_async_engine
from localslack.emulator import SlackEmulator
from tests.app_fixtures import leader_turns, manifest_events, script_team
from tests.corpus import write_corpus
from tests.emulators.openai import Hang, ModelServer
from tests.processes import ROOT, Serve, bot_process_env, free_port, outside_environ
from tests.team_script import API_KEY, LEADER

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
MESSAGES = 30


class Proxy:
    """A TCP relay to PostgreSQL that can be cut, so one replica loses its database."""

    def __init__(self, port: int, target: int = 5432):
        self.port, self.target = port, target
        self.server: asyncio.Server | None = None
        self.pipes: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.pipes):
            writer.transport.abort()
        await self.server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self.pipes |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self.pipes -= {writer, up_writer}


def metric(page: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in page.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, value = line.rsplit(" ", 1)
        metric_name, _, label_text = head.partition("{")
        if metric_name != name:
            continue
        if all(f'{k}="{v}"' in label_text for k, v in labels.items()):
            total += float(value)
    return total


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


def json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def test_two_replicas_on_postgres_answer_once_take_over_report_and_stop(
    tmp_path: Path, postgres_url: str
):
    docs = tmp_path / "docs"
    write_corpus(docs)
    lite = []
    for name in ("a", "b"):  # one Milvus Lite copy per replica, each indexed with its own throwaway manifest
        config = KnowledgeConfig(
            docs=(docs,),
            milvus_uri=str(tmp_path / f"milvus-{name}.db"),
            collection="production",
            database_url=f"sqlite:///{tmp_path / f'index-{name}.db'}",
        )
        kb = KnowledgeBase(config)
        assert kb.sync().ok
        kb.close()
        lite.append(config.milvus_uri)

    proxy = Proxy(free_port())
    await proxy.start()
    behind_proxy = postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    assert behind_proxy != postgres_url
    upgraded = subprocess.run(
        [sys.executable, "-m", "bot.cli", "db", "upgrade"],
        env={**outside_environ(), "PYTHONPATH": str(ROOT), "DATABASE_URL": postgres_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert upgraded.returncode == 0, upgraded.stderr

    with ModelServer() as model:
        script_team(model)
        async with SlackEmulator(subscriptions=manifest_events()) as slack:
            replica = dict(
                THREADWISE_MODEL_RETRIES="0",
                MILVUS_COLLECTION="production",
                THREADWISE_SYNC_MINUTES="0",
                THREADWISE_CLAIM_LEASE="1",
                THREADWISE_LOG_FORMAT="json",
            )
            a_env = bot_process_env(
                slack, model, docs=docs, milvus_uri=lite[0], database_url=postgres_url, **replica
            )
            b_env = bot_process_env(
                slack, model, docs=docs, milvus_uri=lite[1], database_url=behind_proxy, **replica
            )
            a, b = Serve(a_env, tmp_path / "a.log"), Serve(b_env, tmp_path / "b.log")
            ports = free_port(), free_port()
            url_a, url_b = (f"http://127.0.0.1:{port}" for port in ports)
            await asyncio.gather(a.start(ports[0]), b.start(ports[1]))
            try:
                for url in (url_a, url_b):
                    status, body = await get(f"{url}/readyz")
                    assert (status, json.loads(body)) == (
                        200,
                        {"ready": True, "database": "ok", "milvus": "ok", "sync": "ok"},
                    )

                # 30 messages, each delivered to both replicas and retried at the second.
                asked = []
                for n in range(MESSAGES):
                    slack.request_url = f"{url_a}/slack/events"
                    said = await slack.user_says("C_GENERAL", f"how do I reset my VPN password? (#{n})")
                    slack.request_url = f"{url_b}/slack/events"
                    for ack in said.acks:
                        again = await slack.deliver(ack.kind, ack.payload)
                        retried = await slack.redeliver(again)
                        assert (again.status, retried.status) == (200, 200)
                    asked.append(said)

                await slack.wait_for(lambda: all(
                    any(m.blocks for m in slack.bot_messages("C_GENERAL", s.ts)) for s in asked
                ), 120)  # fmt: skip
                await asyncio.sleep(1.5)  # time enough for a duplicate to show
                for said in asked:
                    (reply,) = slack.bot_messages("C_GENERAL", said.ts)
                    assert "engineering/vpn.md [1]" in reply.display_text

                pages = [(await get(f"{url}/metrics"))[1] for url in (url_a, url_b)]
                assert sum(metric(p, "threadwise_answers_total") for p in pages) == MESSAGES
                assert sum(metric(p, "threadwise_answer_seconds_count") for p in pages) == MESSAGES
                assert (
                    sum(metric(p, "threadwise_answer_stage_seconds_count", stage="writer") for p in pages)
                    == MESSAGES
                )
                events = [metric(p, "threadwise_slack_events_received_total") for p in pages]
                assert events == [2 * MESSAGES, 4 * MESSAGES]  # app_mention + message; b also got the retries
                assert (
                    metric(pages[1], "threadwise_slack_events_received_total", retry="true") == 2 * MESSAGES
                )
                claims_tried = 6 * MESSAGES
                dropped = sum(metric(p, "threadwise_slack_duplicates_dropped_total") for p in pages)
                assert dropped == claims_tried - MESSAGES
                assert (
                    metric(pages[0], "threadwise_documents", status="indexed") == 0
                )  # this manifest indexed none
                assert "# TYPE threadwise_sync_runs_total counter" in pages[0]

                # The answer worker (of either replica: the ledger is their queue) killed mid-answer:
                # another takes the claim over once the lease lapses.
                model.on(Hang(), model=LEADER, times=1)
                turns = len(leader_turns(model))
                slack.request_url = f"{url_a}/slack/events"
                lost = await slack.user_says("C_GENERAL", "how do I reset my VPN password? (lost)")
                await slack.wait_for(lambda: len(leader_turns(model)) > turns, 15)
                engine = make_async_engine(postgres_url)
                try:
                    holder = await Ledger(engine).get(slack.workspace.team_id, "C_GENERAL", lost.ts)
                finally:
                    await engine.dispose()
                assert holder is not None and holder.owner is not None
                os.kill(int(holder.owner.split(":")[1]), signal.SIGKILL)  # owner: host:pid:nonce
                await slack.wait_for(
                    lambda: [m for m in slack.bot_messages("C_GENERAL", lost.ts) if m.blocks], 30
                )
                await asyncio.sleep(1.5)
                (reply,) = slack.bot_messages("C_GENERAL", lost.ts)
                assert "engineering/vpn.md [1]" in reply.display_text

                # /readyz when the database does not answer, then again when it does.
                await proxy.cut()
                status, body = await get(f"{url_b}/readyz")
                assert status == 503 and json.loads(body)["milvus"] == "ok"
                assert json.loads(body)["database"] != "ok" and json.loads(body)["ready"] is False
                await proxy.start()
                await asyncio.sleep(0.2)
                assert (await get(f"{url_b}/readyz"))[0] == 200

                # SIGTERM while an answer is running: exit 0 in time, the claim handed back open.
                model.on(Hang(), model=LEADER, times=1)
                turns = len(leader_turns(model))
                slack.request_url = f"{url_b}/slack/events"
                pending = await slack.user_says("C_GENERAL", "how do I reset my VPN password? (stopping)")
                await slack.wait_for(lambda: len(leader_turns(model)) > turns, 15)
                assert b.process is not None
                began = time.monotonic()
                b.process.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(b.process.wait(), 15) == 0
                assert time.monotonic() - began < 15
            finally:
                for server in (a, b):
                    if server.process is not None and server.process.returncode is None:
                        server.process.kill()
                        await server.process.wait()
                with contextlib.suppress(Exception):
                    await proxy.cut()

    engine = make_async_engine(postgres_url)
    try:
        claims = {claim.ts: claim for claim in await Ledger(engine).all()}
    finally:
        await engine.dispose()
    assert len(claims) == MESSAGES + 2
    assert all(claims[s.ts].status == "done" for s in asked)
    assert (claims[lost.ts].status, claims[lost.ts].attempts) == ("done", 2)
    # finished within the grace period, or handed back open for another replica to resume
    assert (claims[pending.ts].status, claims[pending.ts].owner) in {
        ("done", claims[pending.ts].owner),
        ("open", None),
    }

    logs = {name: json_lines(tmp_path / f"{name}.log") for name in ("a", "b")}  # every line one JSON object
    lines = logs["a"] + logs["b"]
    assert any("Milvus Lite file" in line["message"] and line["level"] == "warning" for line in logs["a"])
    answered_ids = {line["claim"] for line in lines if " answered in " in line["message"]}
    claimed = {line["claim"]: line for line in lines if line["message"].endswith("claimed (mention)")}
    assert answered_ids == {claim.id for claim in claims.values() if claim.status == "done"}  # once each
    assert all(line.get("event_id", "").startswith("Ev") for line in claimed.values())
    stages = [line for line in lines if line["message"].startswith("answered in") and "claim" in line]
    assert {line["claim"] for line in stages} >= answered_ids - {None}
    text = (tmp_path / "a.log").read_text() + (tmp_path / "b.log").read_text()
    assert "xoxb-emulator" not in text and API_KEY not in text and slack.signing_secret not in text
