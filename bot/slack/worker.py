"""Where messages are taken on and answered: a thread with its own event loop, away from the acks.

An answer is mostly waiting on the model, but the team's own work between model calls (Agno building
and parsing messages, session reads and writes) holds an event loop for tens of milliseconds at a
time, and even claiming a message (a database round trip) costs a millisecond of the loop's time.
Slack wants every delivery acknowledged within 3 s and the bot promises far less (p99 under 50 ms
with 50 deliveries at once), so the loop that serves Slack's requests only verifies, acknowledges
and passes each event here; this loop decides whether it is for the bot, claims it in the ledger,
puts up the working sign and runs the answer.

Things bound to an event loop (HTTP sessions, database connections) are not shared across the two
loops: the worker builds its own Web API client, database engine, ledger (same owner: the same
process), feedback store and answerer, and the dispatcher that runs them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Coroutine
from typing import Any

import aiohttp

from bot.answering import Answerer
from bot.channel_config import ChannelConfigStore, ChannelScopes
from bot.feedback import FeedbackStore
from bot.gaps import GapStore
from bot.ledger import Claim, Ledger
from bot.logs import bind
from bot.settings import Settings
from bot.slack.audience import Audiences
from bot.slack.channel_settings import files_here
from bot.slack.dispatch import Dispatcher
from bot.slack.intake import BotUser, Intake
from bot.slack.responder import Responder
from bot.slack.web import SlackWeb, make_client
from knowledge.base import KnowledgeBase
from knowledge.database import make_async_engine

log = logging.getLogger(__name__)


class AnswerWorker:
    def __init__(
        self,
        settings: Settings,
        knowledge: KnowledgeBase,
        me: BotUser,
        *,
        owner: str,
        audiences: Audiences | None = None,
    ):
        self.settings = settings
        self.audiences = audiences or Audiences(settings.external, knowledge=knowledge)
        self.knowledge = knowledge
        self.me = me
        self.owner = owner
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="threadwise-answers", daemon=True)
        self.dispatcher: Dispatcher
        self.ledger: Ledger
        self.intake: Intake
        self._session: aiohttp.ClientSession | None = None
        self._answerer: Answerer | None = None
        self._engine = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def call(self, coroutine: Coroutine[Any, Any, Any]) -> concurrent.futures.Future:
        """Run ``coroutine`` on the worker's loop (from any thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    async def start(self) -> None:
        self._thread.start()
        try:
            await asyncio.wrap_future(self.call(self._open()))
        except BaseException:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            raise

    async def _open(self) -> None:
        settings = self.settings
        token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
        self._session = aiohttp.ClientSession()
        web = SlackWeb(make_client(token, settings.slack_api_url, session=self._session))
        self._engine = make_async_engine(settings.database_url)
        self.ledger = Ledger(self._engine, lease=settings.claim_lease, owner=self.owner)
        self._answerer = Answerer(settings, self.knowledge)
        channels = ChannelScopes(ChannelConfigStore(self._engine), self.knowledge, files_here(web))
        responder = Responder(
            web,
            self.ledger,
            self._answerer,
            FeedbackStore(self._engine),
            stream=settings.slack_streaming,
            timeout=settings.answer_timeout,
            audiences=self.audiences,
            gaps=GapStore(self._engine),
            channels=channels,
        )
        self.dispatcher = Dispatcher(
            self.ledger,
            responder,
            concurrency=settings.max_concurrent_answers,
            max_resume_age=settings.max_resume_age,
        )
        self.intake = Intake(
            self.ledger,
            self.me,
            allow_bots=settings.slack_allow_bots,
            dm_gap_seconds=settings.dm_gap_minutes * 60,
            follow_ups=channels.follow_ups,
        )
        await self.dispatcher.start()  # the first sweep resumes what a previous process left

    def take(self, body: dict[str, Any], event: dict[str, Any], *, assistant: bool = False) -> None:
        """A message event, acknowledged: claim it here if it is for the bot, then answer it (thread-safe)."""
        self.call(self._take(body, event, assistant)).add_done_callback(_log_failure)

    async def _take(self, body: dict[str, Any], event: dict[str, Any], assistant: bool) -> None:
        bind(event_id=body.get("event_id"))  # this task's log lines (and its answer's) carry it
        claim = await self.intake.message(body, event, assistant=assistant)
        if claim is not None:
            bind(claim=claim.id, conversation=claim.conversation)
            log.info("%s claimed (%s)", claim.id, claim.kind)
            self.dispatcher.submit(claim)

    @property
    def answerer(self) -> Answerer:
        """The answerer this worker runs (built when the worker starts)."""
        if self._answerer is None:
            raise RuntimeError("the answer worker has not started")
        return self._answerer

    def submit(self, claim: Claim) -> None:
        """Queue a message claimed elsewhere, e.g. /ask (thread-safe)."""
        self.loop.call_soon_threadsafe(self.dispatcher.submit, claim)

    async def wait_idle(self, timeout: float | None = None) -> None:
        await asyncio.wrap_future(self.call(self.dispatcher.wait_idle(timeout)))

    async def stop(self, grace: float = 5.0) -> None:
        if not self._thread.is_alive():
            return
        try:
            await asyncio.wrap_future(self.call(self._close(grace)))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            await asyncio.to_thread(self._thread.join, 30)

    async def _close(self, grace: float) -> None:
        await self.dispatcher.stop(grace)
        if self._answerer is not None:
            await self._answerer.aclose()
        if self._engine is not None:
            await self._engine.dispose()
        if self._session is not None:
            await self._session.close()


def _log_failure(future: concurrent.futures.Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        exc = future.exception()
        log.error("taking on a message failed: %s: %s", type(exc).__name__, exc, exc_info=exc)


__all__ = ["AnswerWorker"]
