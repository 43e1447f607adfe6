"""The commands as processes: ``threadwise serve`` killed mid-answer and started again, and
``threadwise socket`` from start to SIGTERM.

The restart: ``serve`` runs in a subprocess, is killed (SIGKILL) while the model is slow, and is
started again. The claimed message is answered exactly once, in the same message the first process
had started, and Slack's retries to the new process change nothing."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from bot.ledger import Ledger
from knowledge.base import KnowledgeBase
from knowledge.config import KnowledgeConfig
from knowledge.database import make_async_engine
from knowledge.manifest import Manifest
from knowledge.slack_files import SOURCE
from localslack.emulator import SlackEmulator
from tests.app_fixtures import BUTTONS, VPN_QUESTION, leader_turns, manifest_events, script_team
from tests.corpus import write_corpus
from tests.emulators.openai import Hang, ModelServer
from tests.processes import Serve, bot_process_env, free_port
from tests.team_script import API_KEY, LEADER

pytestmark = pytest.mark.slow


async def test_a_process_killed_mid_answer_finishes_it_once_after_a_restart(tmp_path: Path):
    docs, database = tmp_path / "docs", f"sqlite:///{tmp_path / 'threadwise.db'}"
    write_corpus(docs)
    config = KnowledgeConfig(
        docs=(docs,), milvus_uri=str(tmp_path / "milvus.db"), collection="restart", database_url=database
    )
    kb = KnowledgeBase(config)
    assert kb.sync().ok
    kb.close()  # Milvus Lite is one process's file: the servers below open it in turn

    with ModelServer() as model:
        model.on(Hang(), model=LEADER, times=1)  # the first process's answer never gets past the leader
        script_team(model)
        async with SlackEmulator(subscriptions=manifest_events()) as slack:
            env = bot_process_env(
                slack,
                model,
                docs=docs,
                milvus_uri=config.milvus_uri,
                database_url=database,
                THREADWISE_MODEL_RETRIES="0",
                MILVUS_COLLECTION=config.collection,
                THREADWISE_SYNC_MINUTES="0",
                THREADWISE_CLAIM_LEASE="1",
            )
            port = free_port()
            slack.request_url = f"http://127.0.0.1:{port}/slack/events"
            first, second = Serve(env, tmp_path / "serve-1.log"), Serve(env, tmp_path / "serve-2.log")
            await first.start(port)
            try:
                said = await slack.user_says("C_GENERAL", VPN_QUESTION)
                assert [a.status for a in said.acks] == [200, 200]
                (placeholder,) = await slack.wait_for(lambda: slack.bot_messages("C_GENERAL", said.ts), 15)
                await slack.wait_for(lambda: leader_turns(model), 15)  # the model is now "slow"

                assert first.process is not None
                first.process.send_signal(signal.SIGKILL)
                await first.process.wait()
                assert placeholder.streaming and not placeholder.text  # killed before any text

                await second.start(port)
                # Slack's retries of the same message reach the new process: acknowledged, not re-answered.
                retries = [await slack.redeliver(ack) for ack in said.acks]
                assert [a.status for a in retries] == [200, 200]

                await slack.wait_for(
                    lambda: [m for m in slack.bot_messages("C_GENERAL", said.ts) if m.blocks], 30
                )
                await asyncio.sleep(1.5)  # time enough for any duplicate to show up
            finally:
                for server in (first, second):
                    if server.process is not None and server.process.returncode is None:
                        server.process.send_signal(signal.SIGTERM)
                        assert await asyncio.wait_for(server.process.wait(), 20) == 0

            (reply,) = slack.bot_messages("C_GENERAL", said.ts)
            assert reply.ts == placeholder.ts  # the same message, now the answer
            assert f"About “{VPN_QUESTION}”: see engineering/vpn.md [1]." in reply.display_text
            assert [
                e["action_id"] for b in reply.blocks or [] if b["type"] == "actions" for e in b["elements"]
            ] == BUTTONS
            assert len(leader_turns(model)) == 2  # the lost attempt and the resumed one
            assert slack.reactions("C_GENERAL", said.ts) == {}

    engine = make_async_engine(database)
    try:
        (claim,) = await Ledger(engine).all()
    finally:
        await engine.dispose()
    assert (claim.status, claim.attempts, claim.reply_ts) == ("done", 2, placeholder.ts)
    logged = (tmp_path / "serve-1.log").read_text() + (tmp_path / "serve-2.log").read_text()
    assert "resuming a claim its owner did not finish" in logged
    assert "xoxb-emulator" not in logged and API_KEY not in logged


async def test_threadwise_socket_syncs_indexes_files_answers_and_reconnects(tmp_path: Path):
    """``threadwise socket``: the periodic sync runs in the process (nothing was indexed before it
    started), answers arrive over Socket Mode, a shared file and /kb sync are done by the worker
    processes, a dropped connection comes back, SIGTERM exits 0."""
    docs, database = tmp_path / "docs", f"sqlite:///{tmp_path / 'threadwise.db'}"
    write_corpus(docs)
    with ModelServer() as model:
        script_team(model)
        async with SlackEmulator(subscriptions=manifest_events()) as slack:
            env = bot_process_env(
                slack,
                model,
                docs=docs,
                milvus_uri=str(tmp_path / "milvus.db"),
                database_url=database,
                socket_mode=True,
                THREADWISE_SYNC_MINUTES="60",
            )
            log = tmp_path / "socket.log"
            with log.open("wb") as out:
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bot.cli", "socket", env=env, cwd=tmp_path, stdout=out, stderr=out
                )
            try:
                await slack.socket.wait_connected(timeout=60)
                for _ in range(100):  # the sync started with the process
                    await slack.user_runs_command("/kb", "status")
                    status = await slack.wait_for(lambda: slack.ephemerals("U_ALICE"))
                    if "*Documents:* 5" in status[-1].text:
                        break
                    await asyncio.sleep(0.3)
                assert "*Documents:* 5" in status[-1].text, log.read_text()

                said = await slack.user_says("C_GENERAL", VPN_QUESTION)
                assert [(a.transport, a.ok) for a in said.acks] == [("socket", True), ("socket", True)]
                (reply,) = await slack.wait_for_reply("C_GENERAL", said.ts, timeout=30)
                assert "engineering/vpn.md [1]" in reply.display_text

                await slack.user_shares_file(
                    "C_GENERAL", "menu.md", "# Menu\n\nSoup of the day is LENTIL-77.\n"
                )
                await slack.user_runs_command("/kb", "sync")
                assert "Syncing the document folders" in slack.ephemerals("U_ALICE")[-1].text
                files = await slack.wait_for(
                    lambda: [e for e in slack.ephemerals("U_ALICE") if e.text.startswith("Slack files:")], 60
                )
                assert ", 0 removed, " in files[0].text and "skipped" in files[0].text
                manifest = Manifest(database)
                try:
                    assert [d.path for d in manifest.documents(SOURCE).values()] == ["menu.md"]
                finally:
                    manifest.close()

                await slack.socket.drop()
                await slack.socket.wait_connected(count=2, timeout=30)
                again = await slack.user_says("C_GENERAL", "which VPN clients are supported?")
                await slack.wait_for_reply("C_GENERAL", again.ts, timeout=30)
            finally:
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(process.wait(), 20) == 0, log.read_text()
            logged = log.read_text()
            assert "connected to Slack over Socket Mode" in logged
            assert "xoxb-emulator" not in logged and "xapp-1-emulator" not in logged
