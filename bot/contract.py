"""The citation contract applied to a team's answer, as it streams and before the turn is stored.

``VisibleText`` is the leader's text as it streams, citation-checked, for whoever shows it.
``Contract`` decides the final text, and as an Agno post-hook it does so before Agno stores the
turn, so the session (and the next turn's history) holds what people saw: invalid [n] removed and
counted, the rest renumbered, sources = exactly the cited chunks; an answer that cites nothing (or
repeats the team's instructions) becomes a plain "the documents don't cover this", with what was
searched. The marker rules themselves are ``bot.citations``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from agno.run.team import TeamRunOutput

from bot.answer import Outcome
from bot.citations import Checked, CitationFilter, check_citations
from bot.retrieval import Retrieval
from bot.team import reveals_instructions
from knowledge.types import Chunk

log = logging.getLogger(__name__)

OnText = Callable[[str], Awaitable[None]]


def not_found_text(queries: list[str]) -> str:
    if not queries:
        return "The team's documents don't cover this (no search was run)."
    shown = ", ".join(f"“{q}”" for q in queries[:6])
    return f"The team's documents don't cover this. I searched for: {shown}."


class VisibleText:
    """The leader's text as it streams, citation-checked, for ``on_text``.

    Nothing is shown until the text cites a valid chunk (so an uncited answer that will be replaced
    is never shown), then the whole visible text each time it grows. ``on_text`` runs in its own
    task with the latest text, so a slow consumer (Slack's API) never holds up the model's stream.
    """

    def __init__(self, valid: Mapping[int, Chunk], on_text: OnText | None = None):
        self.filter = CitationFilter(valid)
        self.raw: list[str] = []
        self.first_text_at: float | None = None
        self._on_text = on_text
        self._latest: str | None = None
        self._shown = ""
        self._task: asyncio.Task | None = None

    def feed(self, piece: str) -> None:
        self.raw.append(piece)
        self.filter.feed(piece)
        self._offer()

    def finish(self) -> Checked:
        self.filter.finish()
        self._offer()
        return self.filter.result()

    def _offer(self) -> None:
        if self._on_text is None or not self.filter.cited:
            return
        text = self.filter.text
        if text == self._shown:
            return
        if reveals_instructions(text):
            self._on_text = None  # the final answer replaces it; stream no more of it
            return
        self._shown = self._latest = text
        if self.first_text_at is None:
            self.first_text_at = time.perf_counter()
        if self._task is None:
            self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        while self._latest is not None and self._on_text is not None:
            text, self._latest = self._latest, None
            try:
                await self._on_text(text)
            except Exception:
                log.exception("on_text failed; the rest of this answer is not streamed")
                self._on_text = None
        self._task = None

    async def close(self) -> None:
        """Wait for the last ``on_text`` to be delivered."""
        if self._task is not None:
            await self._task

    def cancel(self) -> None:
        """Stop showing this text: the answer is abandoned."""
        if self._task is not None:
            self._task.cancel()


@dataclass(frozen=True)
class Final:
    text: str
    cited: tuple[int, ...]  # the retrieval's [n] of each cited chunk, in the order shown
    stripped: int
    outcome: Outcome


class Contract:
    """Decides one answer's final text; ``post_hook`` does so before Agno stores the turn."""

    def __init__(self, retrieval: Retrieval, visible: VisibleText):
        self.retrieval = retrieval
        self.visible = visible
        self.final: Final | None = None
        self._writer: dict[str, list[str]] = {}  # the writer's text, per writer run

    def writer_said(self, run_id: str, piece: str) -> None:
        self._writer.setdefault(run_id, []).append(piece)

    def decide(self, content: object) -> Final:
        raw = content if isinstance(content, str) else ""
        if raw == "".join(self.visible.raw):
            checked = self.visible.finish()  # the streamed text is the answer: same decisions
        else:
            checked = check_citations(raw, self.retrieval.chunks)
        if not checked.cited and self._writer:
            # The leader was to repeat the writer's answer but lost its citations (a paraphrase, a
            # "done"): the writer's own answer, checked the same way, is the answer.
            written = check_citations("".join(list(self._writer.values())[-1]), self.retrieval.chunks)
            if written.cited:
                checked = written
        if not checked.cited or reveals_instructions(checked.text):
            return Final(not_found_text(self.retrieval.queries), (), checked.stripped, "not_found")
        return Final(checked.text.strip(), checked.cited, checked.stripped, "answered")

    def post_hook(self, run_output: TeamRunOutput) -> None:
        """Agno post-hook: the stored turn (and so the next turn's history) holds the checked text."""
        self.final = final = self.decide(run_output.content)
        run_output.content = final.text
        spoken = [m for m in run_output.messages or [] if m.role == "assistant" and not m.from_history]
        for message in spoken[:-1]:
            message.content = None  # words around delegations; only the answer stays
        if spoken:
            spoken[-1].content = final.text
