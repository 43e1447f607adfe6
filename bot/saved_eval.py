"""``threadwise eval --saved``: the answers saved from resolved threads join the evaluation.

Each saved Q&A is indexed into the evaluation's own collection (never the serving one) and becomes a
labelled question whose relevant document is the saved answer itself (kind ``saved_answer``): does a
person asking the same question find what the team settled on?
"""

from __future__ import annotations

import asyncio

from bot.resolutions import Resolution, ResolutionStore
from bot.settings import Settings
from knowledge.database import make_async_engine
from knowledge.evaluation import EvalRun, LabelledQuestion
from knowledge.saved_answers import index_saved, keep_only

KIND = "saved_answer"


def saved_entries(database_url: str) -> list[Resolution]:
    async def read() -> list[Resolution]:
        engine = make_async_engine(database_url)
        try:
            return await ResolutionStore(engine).list("saved")
        finally:
            await engine.dispose()

    return asyncio.run(read())


def add_saved_answers(settings: Settings, run: EvalRun) -> int:
    """Index the saved answers into ``run``'s collection and add their questions; how many."""
    entries = saved_entries(settings.database_url)
    keep_only(run.knowledge, [entry.key for entry in entries])  # forgotten ones leave this index too
    for entry in entries:
        index_saved(run.knowledge, entry.as_document())
    run.questions += [
        LabelledQuestion(line=0, question=entry.question, relevant=(entry.title,), kind=KIND)
        for entry in entries
    ]
    return len(entries)


__all__ = ["KIND", "add_saved_answers", "saved_entries"]
