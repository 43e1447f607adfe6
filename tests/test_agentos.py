"""AgentOS on ``threadwise serve``: real processes, the Slack emulator, the scripted model, real HTTP.

With THREADWISE_AGENTOS=1 and a key, the serve process answers Slack as always and AgentOS, on its own
port, lists the team and the session a Slack answer created, runs the same team over workspace-visible
documents only, and turns away requests without the key. Off, nothing listens on that port. Without a
key, ``serve`` refuses to start with one clear line.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from pathlib import Path

import aiohttp
import pytest

from bot.agentos import AgentOSServer
from bot.cli import main
from bot.conversations import conversation_key
from bot.settings import Settings, SettingsError
from knowledge.base import KnowledgeBase
from knowledge.config import KnowledgeConfig
from localslack.emulator import SlackEmulator
from tests.app_fixtures import VPN_QUESTION, add_private_fact, analyst_saw, manifest_events, script_team
from tests.corpus import write_corpus
from tests.emulators.openai import ModelServer
from tests.processes import Serve, bot_process_env, free_port

KEY = "agentos-key-0123456789abcdef"


def serve_env(slack: SlackEmulator, model: ModelServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    return bot_process_env(
        slack,
        model,
        milvus_uri=str(tmp_path / "milvus.db"),
        database_url=f"sqlite:///{tmp_path / 'threadwise.db'}",
        THREADWISE_MODEL_RETRIES="0",
        MILVUS_COLLECTION="agentos",
        THREADWISE_SYNC_MINUTES="0",
        **extra,
    )


def synced_docs(tmp_path: Path) -> Path:
    """The fixture corpus, synced, plus one passage only channel C_PRIVATE may see."""
    docs = tmp_path / "docs"
    write_corpus(docs)
    kb = KnowledgeBase(
        KnowledgeConfig(
            docs=(docs,),
            milvus_uri=str(tmp_path / "milvus.db"),
            collection="agentos",
            database_url=f"sqlite:///{tmp_path / 'threadwise.db'}",
        )
    )
    try:
        assert kb.sync().ok
        add_private_fact(kb)
    finally:
        kb.close()  # Milvus Lite is one process's file: serve opens it next
    return docs


async def refused(port: int) -> bool:
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    writer.close()
    return False


async def stop(server: Serve) -> None:
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(server.process.wait(), 20) == 0


async def test_agentos_lists_the_team_and_slack_sessions_runs_the_team_and_needs_the_key(tmp_path: Path):
    docs = synced_docs(tmp_path)
    port, agentos_port = free_port(), free_port()
    agentos = f"http://127.0.0.1:{agentos_port}"
    with ModelServer() as model:
        script_team(model)
        async with SlackEmulator(subscriptions=manifest_events()) as slack:
            env = serve_env(
                slack,
                model,
                tmp_path,
                THREADWISE_DOCS=str(docs),
                THREADWISE_AGENTOS="1",
                THREADWISE_AGENTOS_KEY=KEY,
                THREADWISE_AGENTOS_PORT=str(agentos_port),
            )
            slack.request_url = f"http://127.0.0.1:{port}/slack/events"
            server = Serve(env, tmp_path / "serve.log")
            await server.start(port)
            try:
                said = await slack.user_says("C_GENERAL", VPN_QUESTION)
                (reply,) = await slack.wait_for_reply("C_GENERAL", said.ts, timeout=15)
                conversation = conversation_key(slack.workspace.team_id, "C_GENERAL", said.ts)

                auth = {"Authorization": f"Bearer {KEY}"}
                async with aiohttp.ClientSession() as http:
                    # Without the key, or with another, nothing but 401 and no data.
                    for headers in ({}, {"Authorization": "Bearer not-the-key-0123456789"}):
                        for path in ("/teams", "/sessions?type=team", f"/sessions/{conversation}/runs"):
                            async with http.get(agentos + path, headers=headers) as response:
                                assert response.status == 401, (path, headers)
                                assert conversation not in await response.text()

                    async with http.get(f"{agentos}/teams", headers=auth) as response:
                        assert response.status == 200
                        assert [team["id"] for team in await response.json()] == ["threadwise"]

                    # The session the Slack answer created, with that answer, in the same database.
                    async with http.get(f"{agentos}/sessions?type=team", headers=auth) as response:
                        assert response.status == 200
                        sessions = (await response.json())["data"]
                    assert [s["session_id"] for s in sessions] == [conversation]
                    runs_path = f"{agentos}/sessions/{conversation}/runs?type=team"
                    async with http.get(runs_path, headers=auth) as response:
                        assert response.status == 200
                        contents = [run.get("content") for run in await response.json()]
                    assert f"About “{VPN_QUESTION}”: see engineering/vpn.md [1]." in contents
                    assert f"About “{VPN_QUESTION}”" in reply.display_text

                    # A run from AgentOS: the same team, searching only what the whole workspace sees.
                    form = {"message": "What is the Falcon launch code word?", "stream": "false"}
                    async with http.post(
                        f"{agentos}/teams/threadwise/runs", data=form, headers=auth
                    ) as response:
                        assert response.status == 200, await response.text()
                        run = await response.json()
                    assert run["status"] == "COMPLETED"
                    assert "BLUE-HERON" not in analyst_saw(model) and "BLUE-HERON" not in run["content"]
                    assert "[1]" in run["content"] or "don't cover" in run["content"]
                    async with http.get(f"{agentos}/sessions?type=team", headers=auth) as response:
                        assert len((await response.json())["data"]) == 2  # stored beside Slack's
            finally:
                await stop(server)
            assert await refused(agentos_port)  # stopped with serve


async def test_with_agentos_off_nothing_listens_on_its_port(tmp_path: Path):
    port, agentos_port = free_port(), free_port()
    with ModelServer() as model:
        async with SlackEmulator(subscriptions=manifest_events()) as slack:
            env = serve_env(slack, model, tmp_path, THREADWISE_AGENTOS_PORT=str(agentos_port))
            server = Serve(env, tmp_path / "serve.log")
            await server.start(port)
            try:
                assert await refused(agentos_port)
            finally:
                await stop(server)
    assert "AgentOS" not in (tmp_path / "serve.log").read_text()


def test_agentos_without_a_key_is_a_clear_error_at_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
):
    monkeypatch.chdir(tmp_path)  # no .env here
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))  # whatever the command configures is undone
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-123")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "secret")
    monkeypatch.setenv("THREADWISE_AGENTOS", "1")
    monkeypatch.delenv("THREADWISE_AGENTOS_KEY", raising=False)
    assert main(["serve"]) == 2
    assert "THREADWISE_AGENTOS is on but THREADWISE_AGENTOS_KEY is not set" in capsys.readouterr().err

    monkeypatch.setenv("THREADWISE_AGENTOS_KEY", "short")
    assert main(["serve"]) == 2
    said = capsys.readouterr().err
    assert "THREADWISE_AGENTOS_KEY is too short" in said and "short" not in said.replace("too short", "")


async def test_a_taken_port_is_a_clear_error_at_start(tmp_path: Path):
    settings = Settings(
        _env_file=None, agentos=True, agentos_key=KEY, database_url=f"sqlite:///{tmp_path / 'tw.db'}"
    )
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        server = AgentOSServer(settings, knowledge=None, host="127.0.0.1", port=port)  # type: ignore[arg-type]
        with pytest.raises(
            SettingsError, match=rf"THREADWISE_AGENTOS_PORT: cannot listen on 127.0.0.1:{port}"
        ):
            await server.start()
