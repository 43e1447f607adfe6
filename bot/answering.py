"""One answer to a question in a conversation: what the Slack app and ``threadwise ask`` call.

``Answerer.answer`` builds a team for the conversation's access scope and runs it in the
conversation's Agno session (``bot.team_run``, with the search tool of ``bot.retrieval`` and the
citation contract of ``bot.contract``), and returns an ``Answer``. Without a model it replies with
the best passages instead (``Answerer.passages``).

On a model failure nothing of the turn is kept: Agno stores errored and cancelled runs, so they
are deleted.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable

from agno.run.background import await_background_runs
from openai import AsyncOpenAI

from bot.answer import Answer, Outcome
from bot.citations import build_sources
from bot.contract import OnText, VisibleText, not_found_text
from bot.conversations import ConversationStore, SlackUser, check_conversation_key
from bot.freshness import dated
from bot.retrieval import PASSAGES_SHOWN, SEARCH_K, Retrieval, format_passages, passages_text
from bot.settings import Settings
from bot.team import model_client, model_server, route_agno_logging
from bot.team_run import run_team, team_for_scope
from knowledge.base import KnowledgeBase
from knowledge.types import AccessScope

log = logging.getLogger(__name__)

OnAnswer = Callable[[str, Answer], None]
CONFIGURE_MODEL = (
    "For written answers, set `OPENAI_API_KEY` (or `OPENAI_BASE_URL` for an OpenAI-compatible server) "
    "and `THREADWISE_ANSWER_MODE=team`."
)
CLEANUP_TIMEOUT = 10.0  # seconds to wait for Agno to store a cancelled run before removing it

__all__ = [
    "CONFIGURE_MODEL",
    "PASSAGES_SHOWN",
    "SEARCH_K",
    "AnswerError",
    "Answerer",
    "ModelFailed",
    "ModelNotConfigured",
    "OnAnswer",
    "OnText",
    "Retrieval",
    "SearchFailed",
    "ask",
    "format_passages",
    "not_found_text",
    "passages_text",
    "require_model",
]


class AnswerError(Exception):
    """No answer could be given; the message is one line to show as is. Nothing was stored."""


class ModelNotConfigured(AnswerError):
    pass


class ModelFailed(AnswerError):
    """The model server was unreachable, kept failing or timed out."""


class SearchFailed(AnswerError):
    """The documents could not be searched, so "not found" would be a guess."""


def require_model(settings: Settings) -> None:
    if not settings.model_configured:
        raise ModelNotConfigured(
            "no model configured: set OPENAI_API_KEY, or OPENAI_BASE_URL for an OpenAI-compatible server"
        )


class Answerer:
    """Answers questions in conversations. One per process; safe for concurrent answers."""

    def __init__(
        self, settings: Settings, knowledge: KnowledgeBase, *, store: ConversationStore | None = None
    ):
        route_agno_logging()
        self.settings = settings
        self.knowledge = knowledge
        self.store = store or ConversationStore(settings.database_url)
        self._client: AsyncOpenAI | None = None
        self._cleanups: set[asyncio.Task] = set()
        self._listeners: list[OnAnswer] = []

    @property
    def client(self) -> AsyncOpenAI:
        if self._client is None:
            self._client = model_client(self.settings)
        return self._client

    async def answer(
        self,
        question: str,
        *,
        conversation: str,
        user: SlackUser | None = None,
        scope: AccessScope | None = None,
        on_text: OnText | None = None,
    ) -> Answer:
        """Answer ``question`` in ``conversation`` from the documents ``scope`` allows.

        ``on_text`` receives the visible text (citation-checked) each time it grows. Raises
        ``AnswerError`` (one line to show) when no answer can be given; nothing is stored then.
        """
        question = (question or "").strip()
        if not question:
            raise ValueError("empty question")
        check_conversation_key(conversation)
        if self.settings.search_only:
            why = (
                "search-only mode is on (`THREADWISE_ANSWER_MODE=search`)"
                if self.settings.model_configured
                else "no language model is configured"
            )
            intro = f"_These are the most relevant passages from the documents, not a written answer: {why}. {CONFIGURE_MODEL}_"
            return await self.passages(
                question, conversation=conversation, scope=scope, intro=intro, outcome="search_only"
            )
        started = time.perf_counter()
        scoped = team_for_scope(
            self.settings,
            self.knowledge,
            scope or AccessScope.workspace(),
            client=self.client,
            db=self.store.db,
            on_text=on_text,
        )
        retrieval, visible, contract = scoped.retrieval, scoped.visible, scoped.contract
        run_id = str(uuid.uuid4())
        try:
            run = await run_team(scoped, question, conversation=conversation, user=user, run_id=run_id)
        except asyncio.CancelledError:
            visible.cancel()
            self._discard_after_cancel(conversation, run_id)
            raise

        if run.failure is None and retrieval.failures and not (contract.final and contract.final.cited):
            await self._abandon(visible, conversation, run_id, failure="search failed")
            raise SearchFailed(f"searching the documents failed: {retrieval.failures[-1]}")
        if run.failure is not None:
            await self._abandon(visible, conversation, run_id, failure=run.failure)
            raise ModelFailed(
                f"the model failed ({run.failure.strip()}; server {model_server(self.settings)})"
            )

        assert run.output is not None
        final = contract.final or contract.decide(run.output.content)  # decide() if the hook did not run
        total = time.perf_counter() - started
        await visible.close()  # the last on_text, outside the answer's own time
        answer = Answer(
            text=final.text,
            sources=dated(build_sources(final.cited, retrieval.chunks), retrieval.updated),
            conversation=conversation,
            outcome=final.outcome,
            stripped_citations=final.stripped,
            searched=list(retrieval.queries),
            timings=run.clock.timings(
                total=total,
                retrieval=retrieval.seconds,
                first_text=visible.first_text_at - started if visible.first_text_at else None,
            ),
            usage=dict(run.clock.usage),
            retrieved=retrieval.retrieved(final.cited),
        )
        self._seen(question, answer)
        log.info(
            "answered in %s: %s, %d sources, %d citations stripped, %d searches; timings %s; tokens %s",
            conversation,
            answer.outcome,
            len(answer.sources),
            answer.stripped_citations,
            len(answer.searched),
            answer.timings,
            answer.usage,
        )
        return answer

    async def passages(
        self,
        question: str,
        *,
        conversation: str,
        scope: AccessScope | None = None,
        intro: str,
        outcome: Outcome = "search_only",
    ) -> Answer:
        """The most relevant passages for ``question`` and their sources, with no model: search-only
        mode, and what a failed model's reply carries. Raises SearchFailed; nothing is stored."""
        started = time.perf_counter()
        retrieval = Retrieval(self.knowledge, scope or AccessScope.workspace(), k=PASSAGES_SHOWN)
        await retrieval.search(question)
        if retrieval.failures:
            raise SearchFailed(f"searching the documents failed: {retrieval.failures[-1]}")
        numbered = sorted(retrieval.chunks.items())
        text = passages_text(intro, numbered) if numbered else not_found_text(retrieval.queries)
        total = round(time.perf_counter() - started, 4)
        answer = Answer(
            text=text,
            sources=dated(build_sources([n for n, _ in numbered], retrieval.chunks), retrieval.updated),
            conversation=conversation,
            outcome=outcome if numbered else "not_found",
            searched=list(retrieval.queries),
            timings={"retrieval": round(retrieval.seconds, 4), "total": total},
            retrieved=retrieval.retrieved(tuple(n for n, _ in numbered)),
        )
        self._seen(question, answer)
        return answer

    def add_listener(self, listener: OnAnswer) -> None:
        """``listener(question, answer)`` sees every answer given from now on (the playground's panel)."""
        self._listeners.append(listener)

    def _seen(self, question: str, answer: Answer) -> None:
        for listener in self._listeners:
            try:
                listener(question, answer)
            except Exception:
                log.exception("an answer listener failed")

    async def _abandon(self, visible: VisibleText, conversation: str, run_id: str, *, failure: str) -> None:
        """A turn without an answer: stop streaming it and remove what Agno stored of it."""
        visible.cancel()
        log.info(
            "no answer in %s (run %s): %s", conversation, run_id, failure
        )  # the caller gets an AnswerError
        try:
            await self.store.discard_run(conversation, run_id)
        except Exception:
            log.exception("could not discard the failed turn %s of %s", run_id, conversation)

    def _discard_after_cancel(self, conversation: str, run_id: str) -> None:
        """Agno stores a cancelled run from a detached task; remove the run once Agno is done."""

        async def discard() -> None:
            try:
                await await_background_runs(timeout=CLEANUP_TIMEOUT)
                await self.store.discard_run(conversation, run_id)
            except Exception:
                log.warning("could not discard cancelled turn %s of %s", run_id, conversation, exc_info=True)

        task = asyncio.get_running_loop().create_task(discard())
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def aclose(self) -> None:
        if self._cleanups:
            await asyncio.wait(list(self._cleanups), timeout=CLEANUP_TIMEOUT)
        if self._client is not None:
            await self._client.close()
        await self.store.close()


async def ask(settings: Settings, question: str, *, conversation: str) -> Answer:
    """One answer, start to finish: what ``threadwise ask`` runs."""
    require_model(settings)
    check_conversation_key(conversation)
    knowledge = KnowledgeBase(settings.knowledge())
    answerer = Answerer(settings, knowledge)
    try:
        return await answerer.answer(question, conversation=conversation)
    finally:
        await answerer.aclose()
        knowledge.close()
