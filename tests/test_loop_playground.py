"""The loop in the playground, through the page's own API (what its buttons call): /kb config opens a
modal the page can submit, ✅ on an answer proposes a Q&A, its Save button (in a message only the
person sees) stores it, /kb gaps lists what was not found. Search-only: no model needed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.playground.server import Playground, playground_settings
from bot.settings import Settings
from knowledge.base import KnowledgeBase
from knowledge.slack_files import SOURCE
from tests.corpus import write_corpus


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "THREADWISE_ANSWER_MODE"):
        monkeypatch.delenv(name, raising=False)
    write_corpus(tmp_path / "docs")
    base = Settings(_env_file=None, sync_minutes=0, openai_api_key=None, openai_base_url=None)
    settings = playground_settings(base, docs=[tmp_path / "docs"], data=tmp_path / "playground")
    kb = KnowledgeBase(settings.knowledge())
    try:
        assert kb.sync().ok
    finally:
        kb.close()
    return settings


async def until(check, timeout: float = 20.0) -> Any:
    for _ in range(int(timeout / 0.1)):
        if found := await check():
            return found
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


async def test_the_loop_works_from_the_playground_page(settings: Settings):
    async with Playground(settings, port=0) as playground, aiohttp.ClientSession(playground.url) as http:

        async def post(path: str, body: dict) -> dict:
            async with http.post(path, json=body) as response:
                assert response.status == 200, await response.text()
                return await response.json()

        async def get(path: str) -> dict:
            async with http.get(path) as response:
                return await response.json()

        # /kb config: the person at the keyboard owns the workspace, so the modal opens.
        await post("/pg/command", {"channel": "C_GENERAL", "command": "/kb", "text": "config"})
        (view,) = await until(lambda: _views(get))
        blocks = {b.get("block_id") for b in view["blocks"]}
        assert {"folders", "files", "follow_ups", "experts", "expert_group"} <= blocks
        result = await post("/pg/submit", {"view_id": view["id"], "values": {"experts": ["U_BOB"]}})
        assert not (result["response"] or {}).get("response_action")

        # A question, its answer, ✅ from the asker: the proposal appears only to them, Save stores it.
        said = await post(
            "/pg/say", {"channel": "C_GENERAL", "text": "<@U_BOT> how do I reset my VPN password?"}
        )

        async def answered() -> list:
            data = await get("/pg/messages/C_GENERAL")
            return [m for m in data["messages"] if m["bot"] and m["thread_ts"] == said["ts"] and m["blocks"]]

        (answer,) = await until(answered)
        assert {"thread_resolved", "ask_expert"} <= {
            e["action_id"] for b in answer["blocks"] if b["type"] == "actions" for e in b["elements"]
        }
        await post("/pg/react", {"channel": "C_GENERAL", "ts": answer["ts"], "name": "white_check_mark"})

        async def proposed() -> list:
            data = await get("/pg/messages/C_GENERAL")
            return [e for e in data["ephemerals"] if "Save this as an answer" in e["text"]]

        (proposal,) = await until(proposed)
        await post(
            "/pg/click", {"channel": "C_GENERAL", "ts": proposal["ts"], "action_id": "resolution_save"}
        )
        assert playground.bot is not None
        (saved,) = await until(lambda: playground.bot.resolutions.list())
        assert saved.asker == "U_ALICE" and saved.channel_name == "general"

        # Ask an expert: Bob is called in the thread.
        await post("/pg/click", {"channel": "C_GENERAL", "ts": answer["ts"], "action_id": "ask_expert"})

        async def called() -> list:
            data = await get("/pg/messages/C_GENERAL")
            return [m for m in data["messages"] if "could use an expert" in m["text"]]

        (call,) = await until(called)
        assert call["text"].startswith("<@U_BOB>")


async def _views(get) -> list:
    return (await get("/pg/views"))["views"]


async def test_a_file_dropped_on_the_page_is_indexed_and_kb_sync_reports_it(settings: Settings):
    async with Playground(settings, port=0) as playground, aiohttp.ClientSession(playground.url) as http:
        form = aiohttp.FormData()
        form.add_field("channel", "C_GENERAL")
        form.add_field("file", b"# Menu\n\nSoup of the day is LENTIL-77.\n", filename="menu.md")
        async with http.post("/pg/share", data=form) as response:
            assert response.status == 200, await response.text()
        command = {"command": "/kb", "text": "sync", "channel": "C_GENERAL"}
        async with http.post("/pg/command", json=command) as response:
            assert response.status == 200, await response.text()

        async def report() -> list[dict]:
            async with http.get("/pg/messages/C_GENERAL") as response:
                shown = (await response.json())["ephemerals"]
            return [e for e in shown if e["text"].startswith("Slack files:")]

        (files,) = await until(report)
        assert ", 0 removed, " in files["text"]
        assert playground.bot is not None
        indexed = playground.bot.knowledge.manifest.documents(SOURCE).values()
        assert [d.path for d in indexed] == ["menu.md"]
