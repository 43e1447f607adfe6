"""The threadwise Slack app under test, shared by the test modules that run it end to end: the team's
models scripted, the fixture corpus synced, settings, and the front with its answer workers served to
the local Slack workspace (``localslack``), plus what those tests read back from it.

Bind the fixtures in a test module by assignment (as ``tests/emulators/slack_fixtures.py`` says)::

    from tests import app_fixtures

    kb, model, slack = app_fixtures.kb, app_fixtures.model, app_fixtures.slack
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from bot.server import build_web_app
from bot.settings import Settings
from bot.slack.app import SlackBot
from bot.slack.worker import WorkerThread
from knowledge.base import KnowledgeBase
from knowledge.config import KnowledgeConfig
from knowledge.types import Chunk
from localslack.emulator import SlackEmulator
from localslack.workspace import Message
from tests.corpus import write_corpus
from tests.emulators.openai import ModelRequest, ModelServer, Text, ToolCall
from tests.team_script import ANALYST, API_KEY, LEADER, WRITER

ROOT = Path(__file__).resolve().parents[1]
PRIVATE_FACT = "The Falcon launch code word is BLUE-HERON-42."
VPN_QUESTION = "how do I reset my VPN password?"
BUTTONS = ["feedback_up", "feedback_down", "thread_resolved", "ask_expert"]  # under every answer


def manifest_events() -> set[str]:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))
    return set(manifest["settings"]["event_subscriptions"]["bot_events"])


# --- the team's models, scripted ----------------------------------------------------------------


def _this_turn(request: ModelRequest) -> list[dict]:
    messages = request.messages
    last_user = max(i for i, m in enumerate(messages) if m.get("role") == "user")
    return messages[last_user + 1 :]


def question_of(text: str) -> str:
    """The question in a turn text such as "[Alice (U_ALICE) asks]\\nhow ...?"."""
    return text.strip().splitlines()[-1].strip()


def cite_first(request: ModelRequest) -> str:
    """The writer: names the question and cites the first passage the analyst found."""
    found = re.search(r'<passage n="(\d+)" document="([^"]+)"', request.transcript)
    if not found:
        return "The documents do not cover this."
    return f"About “{question_of(request.last_user)}”: see {found.group(2)} [{found.group(1)}]."


def script_team(
    server: ModelServer,
    *,
    writer: Callable[[ModelRequest], Any] = cite_first,
    leader_delay: float = 0.0,
    echo_chunk: int = 40,
    echo_delay: float = 0.0,
) -> None:
    """Stateless parts, so any number of answers can run at once: the leader delegates to the analyst,
    then the writer, then repeats the writer; the analyst searches for the question once."""

    async def leader(request: ModelRequest):
        done = sum(1 for m in _this_turn(request) if m.get("role") == "tool")
        if done == 0:
            if leader_delay:
                await asyncio.sleep(leader_delay)
            return ToolCall("delegate_task_to_member", {"member_id": "analyst", "task": request.last_user})
        if done == 1:
            return ToolCall("delegate_task_to_member", {"member_id": "writer", "task": request.last_user})
        return Text(request.tool_results[-1], chunk_chars=echo_chunk, chunk_delay=echo_delay)

    def analyst(request: ModelRequest):
        if not request.after_tool:
            return ToolCall("search_documents", {"query": question_of(request.last_user)})
        return "Findings:\n" + request.tool_results[-1]

    server.on(leader, model=LEADER)
    server.on(analyst, model=ANALYST)
    server.on(writer, model=WRITER)


def leader_turns(server: ModelServer) -> list[ModelRequest]:
    """The first leader request of each answer."""
    return [r for r in server.chat_requests if r.model == LEADER and not _this_turn(r)]


def analyst_saw(server: ModelServer) -> str:
    return "\n".join(t for r in server.chat_requests if r.model == ANALYST for t in r.tool_results)


# --- fixtures ---------------------------------------------------------------------------------


def add_private_fact(kb: KnowledgeBase) -> None:
    """A chunk only channel C_PRIVATE may see, holding PRIVATE_FACT."""
    private = Chunk(
        chunk_id="private-falcon-1",
        doc_id="private-falcon",
        doc_path="slack/C_PRIVATE/falcon.md",
        title="Falcon",
        heading="",
        page=None,
        position=0,
        text=PRIVATE_FACT,
        access="channel:C_PRIVATE",
    )
    kb.store.upsert([private], kb.embedder.embed_documents([private.text]))


@contextlib.contextmanager
def synced_kb(root: Path, collection: str) -> Iterator[KnowledgeBase]:
    """The documents under ``root / "docs"`` synced into a Milvus Lite file and a SQLite manifest
    beside them."""
    base = KnowledgeBase(
        KnowledgeConfig(
            docs=(root / "docs",),
            milvus_uri=str(root / "milvus.db"),
            collection=collection,
            database_url=f"sqlite:///{root / 'manifest.db'}",
        )
    )
    try:
        assert base.sync().ok
        yield base
    finally:
        base.close()


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KnowledgeBase]:
    """The fixture corpus, synced once for the module, plus one chunk only channel C_PRIVATE may see."""
    root = tmp_path_factory.mktemp("slack-kb")
    write_corpus(root / "docs")
    with synced_kb(root, "slack_test") as base:
        add_private_fact(base)
        yield base


@pytest.fixture
def model() -> Iterator[ModelServer]:
    with ModelServer() as server:
        yield server


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    """The workspace, subscribed to exactly manifest.yml's events."""
    async with SlackEmulator(subscriptions=manifest_events()) as emulator:
        yield emulator


def make_settings(slack: SlackEmulator, model: ModelServer, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        slack_bot_token=slack.bot_token,
        slack_signing_secret=slack.signing_secret,
        slack_app_token=slack.app_token,
        slack_api_url=slack.api_url,
        openai_base_url=model.base_url,
        openai_api_key=API_KEY,
        model=LEADER,
        analyst_model=ANALYST,
        writer_model=WRITER,
        database_url=database_url,
        model_retries=0,
        model_timeout=20,
        answer_timeout=30,
        sync_minutes=0,
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)


@contextlib.asynccontextmanager
async def serving(
    slack: SlackEmulator, settings: Settings, kb: KnowledgeBase, *, workers: int = 1
) -> AsyncIterator[SlackBot]:
    """The front started and served over HTTP on loopback, the emulator delivering to it, with
    ``workers`` answer workers (each on its own thread and loop here; processes in production)."""
    bot = await SlackBot(settings, knowledge=kb).start()
    running = [await WorkerThread(settings, kb, audiences=bot.audiences).start() for _ in range(workers)]
    runner = web.AppRunner(build_web_app(bot), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    slack.request_url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    try:
        yield bot
    finally:
        await runner.cleanup()
        await bot.stop()
        for worker in running:
            await worker.stop()


@pytest.fixture
async def bot(slack: SlackEmulator, model: ModelServer, sqlite_url: str, kb: KnowledgeBase):
    script_team(model)
    async with serving(slack, make_settings(slack, model, sqlite_url), kb) as running:
        yield running


# --- what the tests read back ------------------------------------------------------------------


def action_ids(message: Message) -> list[str]:
    return [
        e.get("action_id") for b in message.blocks or [] if b.get("type") == "actions" for e in b["elements"]
    ]


def with_buttons(slack: SlackEmulator, channel: str, thread_ts: str) -> list[Message]:
    """The app's finished replies in a thread, once their buttons are there: what the person reads.
    (A reply whose stream ended is not always final: an answer other than the streamed text replaces
    it with an update just after.)"""
    return [
        m
        for m in slack.bot_messages(channel, thread_ts)
        if not m.streaming and any(b.get("type") == "actions" for b in m.blocks or [])
    ]


def shown_to(slack: SlackEmulator, user: str = "U_ALICE") -> str:
    """The last message only ``user`` saw (a command's reply, a click's acknowledgement)."""
    return slack.ephemerals(user)[-1].text


async def settle(bot: SlackBot) -> None:
    await bot.wait_idle(timeout=30)


# --- answers of a given shape -------------------------------------------------------------------


def long_answer(request: ModelRequest) -> str:
    n = re.search(r'<passage n="(\d+)"', request.transcript).group(1)  # type: ignore[union-attr]
    paragraph = "Reset credentials in the Gatekeeper portal; the link expires after twenty minutes. " * 12
    return "\n\n".join(f"Step {i}: {paragraph.strip()} [{n}]" for i in range(1, 61))


def script_long_answer(model: ModelServer) -> None:
    """The team, its answer too long for one message (see ``posted_in_parts``)."""
    script_team(model, writer=long_answer, echo_chunk=4000)


async def posted_in_parts(slack: SlackEmulator, bot: SlackBot, channel: str, thread_ts: str) -> list[Message]:
    """The reply's messages once a long answer is posted in two or more and the app is idle."""
    await slack.wait_for(lambda: len(slack.bot_messages(channel, thread_ts)) >= 2, timeout=20)
    await settle(bot)
    return slack.bot_messages(channel, thread_ts)


def slow_writer(request: ModelRequest) -> str:
    """A writer whose answer streams in many small appends (see ``script_slow_stream``)."""
    return cite_first(request) + " " + " ".join(f"More detail {i} [1]." for i in range(12))


def script_slow_stream(model: ModelServer) -> None:
    """The team, its answer streamed slowly enough for something to happen to the stream meanwhile."""
    script_team(model, writer=slow_writer, echo_chunk=12, echo_delay=0.06)


async def streaming_reply(slack: SlackEmulator, channel: str, thread_ts: str) -> Message:
    """The reply in ``thread_ts`` once Slack has taken a first append to its stream."""
    await slack.wait_for(lambda: [c for c in slack.calls("chat.appendStream") if c.ok], timeout=15)
    (streaming,) = slack.bot_messages(channel, thread_ts)
    return streaming
