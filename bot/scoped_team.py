"""The team for one run, searching only what an access scope allows, under the citation contract.

Shared by the Slack answers (``bot.answering``, the conversation's scope) and AgentOS
(``bot.agentos``, the workspace scope), so both store turns that read alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from agno.db.base import AsyncBaseDb
from agno.team import Team
from openai import AsyncOpenAI

from bot.contract import Contract, OnText, VisibleText
from bot.retrieval import SEARCH_K, Retrieval
from bot.settings import Settings
from bot.team import build_team
from knowledge.base import KnowledgeBase
from knowledge.types import AccessScope


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
