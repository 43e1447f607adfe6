"""Fronts and workers deployed apart, as the compose file runs them: a ``threadwise serve`` with
``THREADWISE_WORKERS=0`` answers nothing itself, a ``threadwise worker`` process started on its own
answers in the thread and shows its counters on its own ``/metrics`` port."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from localslack.emulator import SlackEmulator
from tests.app_fixtures import VPN_QUESTION, manifest_events, script_team
from tests.corpus import write_corpus
from tests.emulators.openai import ModelServer
from tests.milvus_server import MilvusServer
from tests.processes import Serve, bot_process_env, free_port
from tests.test_two_replicas import threadwise

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.milvus_server]


async def metrics(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        return await response.text()


async def test_a_front_without_workers_and_a_worker_deployed_alone_answer_and_count(
    tmp_path: Path, postgres_url: str, milvus_server: MilvusServer
):
    docs = tmp_path / "docs"
    write_corpus(docs)
    with ModelServer() as model:
        script_team(model)
        async with SlackEmulator(subscriptions=manifest_events()) as slack:
            metrics_port = free_port()
            env = bot_process_env(
                slack, model, docs=docs, milvus_uri=milvus_server.uri, database_url=postgres_url,
                MILVUS_COLLECTION="worker_alone", THREADWISE_SYNC_MINUTES="0", THREADWISE_AUTO_MIGRATE="1",
                THREADWISE_WORKERS="0", THREADWISE_WORKER_METRICS_PORT=str(metrics_port),
            )  # fmt: skip
            threadwise("sync", env=env)
            port = free_port()
            front = Serve(env, tmp_path / "front.log")
            await front.start(port)
            slack.request_url = f"http://127.0.0.1:{port}/slack/events"
            worker = None
            try:
                said = await slack.user_says("C_GENERAL", VPN_QUESTION)
                await slack.wait_for(lambda: "eyes" in slack.reactions("C_GENERAL", said.ts), timeout=5)
                await asyncio.sleep(1.0)
                assert slack.bot_messages("C_GENERAL", said.ts) == []  # the front answers nothing itself

                with (tmp_path / "worker.log").open("ab") as out:
                    worker = await asyncio.create_subprocess_exec(
                        sys.executable, "-m", "bot.cli", "worker", env=env, cwd=tmp_path, stdout=out, stderr=out
                    )  # fmt: skip
                (reply,) = await slack.wait_for_reply("C_GENERAL", said.ts, timeout=90)
                assert "engineering/vpn.md" in reply.display_text
                assert os.getpriority(os.PRIO_PROCESS, worker.pid) == min(
                    19, os.getpriority(os.PRIO_PROCESS, 0) + 10
                )
                # counted by the worker's bookkeeping, just after the reply is posted
                answered = 'threadwise_answers_total{outcome="answered"} 1.0'

                async def counted() -> bool:
                    return answered in await metrics(f"http://127.0.0.1:{metrics_port}/metrics")

                await slack.wait_for(counted, timeout=10, message=f"no {answered} on the worker's page")
            finally:
                for process in (worker, front.process):
                    if process is not None and process.returncode is None:
                        process.send_signal(signal.SIGTERM)
                for process in (worker, front.process):
                    if process is not None:
                        assert await asyncio.wait_for(process.wait(), 30) == 0
