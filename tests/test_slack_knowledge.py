"""The Slack app over its knowledge base: answered from a Milvus Lite file and from a real Milvus server
process (``MILVUS_URI=http://...``), access filter included; and what the app tells people and operators
when a sync refused to remove most of a folder (an empty or unmounted docs volume)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from knowledge.base import KnowledgeBase
from knowledge.config import KnowledgeConfig
from knowledge.scheduler import run_sync_job
from localslack.emulator import SlackEmulator
from tests import app_fixtures
from tests.app_fixtures import (
    VPN_QUESTION,
    add_private_fact,
    analyst_saw,
    make_settings,
    script_team,
    serving,
)
from tests.corpus import DOCS, write_corpus
from tests.emulators.openai import ModelServer
from tests.milvus_server import lite_and_server_uri  # noqa: F401  (every test here on both)

model, slack = app_fixtures.model, app_fixtures.slack


@pytest.fixture
def kb(kb_config: KnowledgeConfig, docs_dir: Path) -> Iterator[KnowledgeBase]:
    write_corpus(docs_dir)
    base = KnowledgeBase(kb_config)
    assert base.sync().ok
    add_private_fact(base)
    yield base
    base.close()


async def readyz(events_url: str) -> tuple[int, dict]:
    url = events_url.replace("/slack/events", "/readyz")
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


async def test_mentions_are_answered_from_the_index_within_each_conversations_access(
    slack: SlackEmulator, model: ModelServer, sqlite_url: str, kb: KnowledgeBase
) -> None:
    script_team(model)
    async with serving(slack, make_settings(slack, model, sqlite_url), kb) as bot:
        said = await slack.user_says("C_GENERAL", VPN_QUESTION)
        (reply,) = await slack.wait_for_reply("C_GENERAL", said.ts, timeout=15)
        assert "see engineering/vpn.md [1]" in reply.display_text
        assert "Resetting your VPN password" in reply.display_text

        public = await slack.user_says("C_GENERAL", "what is the Falcon launch code word?")
        await slack.wait_for_reply("C_GENERAL", public.ts, timeout=15)
        assert "BLUE-HERON-42" not in analyst_saw(model)
        private = await slack.user_says("C_PRIVATE", "what is the Falcon launch code word?")
        (answer,) = await slack.wait_for_reply("C_PRIVATE", private.ts, timeout=15)
        assert "BLUE-HERON-42" in analyst_saw(model) and "slack/C_PRIVATE/falcon.md" in answer.display_text
        assert (await readyz(slack.request_url))[0] == 200
        await bot.wait_idle(timeout=30)


async def test_a_refused_mass_deletion_shows_in_kb_status_and_readyz(
    slack: SlackEmulator, model: ModelServer, sqlite_url: str, kb: KnowledgeBase, docs_dir: Path
) -> None:
    script_team(model)
    async with serving(slack, make_settings(slack, model, sqlite_url), kb):
        status, body = await readyz(slack.request_url)
        assert status == 200 and body == {"ready": True, "database": "ok", "milvus": "ok", "sync": "ok"}

        shutil.rmtree(docs_dir)  # the volume is gone; its mount point stays
        docs_dir.mkdir()
        report = run_sync_job(kb)  # the scheduled sync
        assert report is not None and report.refused_deletions

        status, body = await readyz(slack.request_url)
        assert status == 503 and not body["ready"] and body["milvus"] == "ok"
        assert body["sync"].startswith(f"refused to remove {len(DOCS)} of {len(DOCS)} indexed documents")
        assert "threadwise sync --allow-mass-delete" in body["sync"]

        await slack.user_runs_command("/kb", "status")
        (shown,) = await slack.wait_for(
            lambda: [e for e in slack.ephemerals("U_ALICE") if "Documents:" in e.text], timeout=15
        )
        assert f"*Documents:* {len(DOCS)}" in shown.text
        assert "refused to remove" in shown.text and "unmounted" in shown.text

        said = await slack.user_says("C_GENERAL", VPN_QUESTION)  # still answered from the kept index
        (reply,) = await slack.wait_for_reply("C_GENERAL", said.ts, timeout=15)
        assert "see engineering/vpn.md [1]" in reply.display_text

        write_corpus(docs_dir)  # mounted again
        assert run_sync_job(kb).ok
        assert (await readyz(slack.request_url))[0] == 200
