"""The team run: a team built for one access scope, run in a conversation's Agno session.

``team_for_scope`` builds a fresh team for one run, its search tool bound to the scope and the
citation contract as its post-hook; the Slack answers (``bot.answering``, the conversation's scope)
and AgentOS (``bot.agentos``, the workspace scope) both use it, so their stored turns read alike.

``run_team`` streams the run: the leader's text goes to the contract's ``VisibleText``, the
writer's to the contract (its fallback), the model request events to a clock of model time per
member and token usage. A run that fails says so in ``TeamRun.failure``; cancelling the caller
cancels the run.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from agno.db.base import AsyncBaseDb
from agno.run.agent import RunEvent
from agno.run.base import RunStatus
from agno.run.team import TeamRunEvent, TeamRunOutput
from agno.team import Team
from openai import AsyncOpenAI

from bot.contract import Contract, OnText, VisibleText
from bot.conversations import SlackUser, turn_metadata, turn_text
from bot.retrieval import SEARCH_K, Retrieval
from bot.settings import Settings
from bot.team import WRITER_ID, build_team
from knowledge.base import KnowledgeBase
from knowledge.types import AccessScope

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScopedTeam:
    """A team built for one run, with the search state and the contract that belong to that run."""

    team: Team
    retrieval: Retrieval
    visible: VisibleText
    contract: Contract


def team_for_scope(
    settings: Settings,
    knowledge: KnowledgeBase,
    scope: AccessScope,
    *,
    client: AsyncOpenAI,
    db: AsyncBaseDb | None,
    on_text: OnText | None = None,
    k: int = SEARCH_K,
) -> ScopedTeam:
    """A fresh team for one run. Its search tool is bound to ``scope`` (the model cannot widen it);
    ``on_text`` receives the citation-checked text as it streams."""
    retrieval = Retrieval(knowledge, scope, k=k)
    visible = VisibleText(retrieval.chunks, on_text)
    contract = Contract(retrieval, visible)
    team = build_team(
        settings,
        client=client,
        search_tools=[retrieval.tool()],
        db=db,
        post_hooks=[contract.post_hook],
    )
    return ScopedTeam(team=team, retrieval=retrieval, visible=visible, contract=contract)


_STARTED = {RunEvent.model_request_started.value, TeamRunEvent.model_request_started.value}
_COMPLETED = {RunEvent.model_request_completed.value, TeamRunEvent.model_request_completed.value}
_FAILED = {
    RunEvent.run_error.value,
    TeamRunEvent.run_error.value,
    RunEvent.run_cancelled.value,
    TeamRunEvent.run_cancelled.value,
}
_USAGE = ("input_tokens", "output_tokens", "total_tokens")


def _stage(event: object) -> str:
    return getattr(event, "agent_id", None) or "leader"


class ModelClock:
    """Model time per stage (leader, analyst, writer) and token usage, from Agno's request events."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, str | None], float] = {}
        self.model: defaultdict[str, float] = defaultdict(float)
        self.usage: Counter[str] = Counter()

    def started(self, event: object) -> None:
        self._open[(_stage(event), getattr(event, "run_id", None))] = time.perf_counter()

    def completed(self, event: object) -> None:
        began = self._open.pop((_stage(event), getattr(event, "run_id", None)), None)
        if began is not None:
            self.model[_stage(event)] += time.perf_counter() - began
        for key in _USAGE:
            self.usage[key] += getattr(event, key, None) or 0
        self.usage["model_requests"] += 1

    def timings(self, *, total: float, retrieval: float, first_text: float | None) -> dict[str, float]:
        model = sum(self.model.values())
        timings = {stage: self.model.get(stage, 0.0) for stage in ("leader", "analyst", "writer")}
        timings |= {
            "retrieval": retrieval,
            "model": model,
            "overhead": max(0.0, total - model - retrieval),  # everything but the model and the search
            "total": total,
        }
        if first_text is not None:
            timings["first_text"] = first_text
        return {key: round(value, 4) for key, value in timings.items()}


@dataclass
class TeamRun:
    """How a run ended: Agno's output, and what went wrong if it did not complete."""

    output: TeamRunOutput | None = None
    failure: str | None = None  # one line: which stage failed and why
    clock: ModelClock = field(default_factory=ModelClock)


async def run_team(
    scoped: ScopedTeam, question: str, *, conversation: str, user: SlackUser | None, run_id: str
) -> TeamRun:
    """Run ``scoped.team`` on ``question`` in the session ``conversation`` (which its history joins)."""
    run = TeamRun()
    try:
        async for event in scoped.team.arun(
            turn_text(question, user),
            session_id=conversation,
            user_id=conversation,  # one owner per conversation: everyone in it shares the history
            run_id=run_id,
            metadata=turn_metadata(conversation, user),
            stream=True,
            stream_events=True,
            yield_run_output=True,
        ):
            if isinstance(event, TeamRunOutput):
                run.output = event
                continue
            kind = getattr(event, "event", None)
            if kind == TeamRunEvent.run_content.value:
                if isinstance(event.content, str) and event.content:
                    scoped.visible.feed(event.content)
            elif kind == RunEvent.run_content.value:
                if getattr(event, "agent_id", None) == WRITER_ID and isinstance(event.content, str):
                    scoped.contract.writer_said(event.run_id or "", event.content)
            elif kind in _STARTED:
                run.clock.started(event)
            elif kind in _COMPLETED:
                run.clock.completed(event)
            elif kind in _FAILED and run.failure is None:
                run.failure = f"{_stage(event)}: {getattr(event, 'content', None) or kind}"
    except Exception as exc:  # Agno itself broke; same as a failed model: no answer
        log.exception("team run %s failed", run_id)
        run.failure = f"{type(exc).__name__}: {exc}"
    if run.failure is None and (run.output is None or run.output.status != RunStatus.completed):
        status = run.output.status if run.output else "no output"
        run.failure = f"the team stopped without an answer ({status})"
    return run
