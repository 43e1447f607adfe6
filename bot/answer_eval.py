"""``threadwise eval``: retrieval quality (``knowledge.evaluation``) and, with ``--answers``, the answers.

Answers come from the real team (``bot.answering.Answerer``) on the evaluation's own index, one new
conversation per question, stored in the evaluation's own SQLite file (never the serving sessions).
Each answer is scored against its labelled question:

- correctness: every ``must_contain`` string is in the answer (case and spacing ignored);
- citation precision: of all citations, the share whose source is a relevant document *and* whose
  chunk contains the cited sentence's claim, judged by word overlap (``claim_supported``);
- citation recall: per answerable question, the share of its relevant documents cited;
- not-found accuracy: the share of unanswerable questions answered "the documents don't cover this";
- passage answer recall: the share of answerable questions with ``must_contain`` whose facts are in
  the passages the analyst's searches returned, which is all the writer can quote;
- latency per stage: the answer's own timings (leader, analyst, writer, retrieval, model, total...).
"""

from __future__ import annotations

import asyncio
import math
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bot.answer import Answer
from bot.answering import Answerer, AnswerError, ModelFailed, ModelNotConfigured
from bot.citations import MARKER
from bot.conversations import ConversationStore, new_conversation_key
from bot.settings import Settings
from knowledge.base import KnowledgeBase
from knowledge.evaluation import EvalRun, LabelledQuestion, Progress, fact_found
from knowledge.store import STOP_WORDS
from knowledge.types import SEARCH_MODES, Hit, SearchMode, SyncReport

SUPPORT_OVERLAP = 0.5  # share of a claim's content words its cited chunk must contain
GIVE_UP_AFTER = 3  # consecutive model failures with no answer at all: the server is down, stop
NEEDS_MODEL = (
    "--answers needs a model: set OPENAI_API_KEY, or OPENAI_BASE_URL for an OpenAI-compatible server"
)

_STOP = frozenset(STOP_WORDS)
_WORD = re.compile(r"\w+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_FORMATTING = re.compile(r"[*_`~]")


@dataclass
class EvalResult:
    """What ``threadwise eval`` shows: the report and how it was made."""

    report: dict[str, Any]  # keyed by mode, plus "answers" with --answers
    docs: Path
    questions_file: Path
    collection: str
    questions: int
    unanswerable: int
    sync: SyncReport
    warnings: list[str] = field(default_factory=list)


def run_eval(
    settings: Settings,
    *,
    docs: Path | None = None,
    questions: Path | None = None,
    modes: Sequence[SearchMode] = SEARCH_MODES,
    answers: bool = False,
    saved: bool = False,
    progress: Progress | None = None,
) -> EvalResult:
    """Index the docs into the evaluation's own collection, score retrieval, and answers if asked."""
    if answers and not settings.model_configured:
        raise ModelNotConfigured(NEEDS_MODEL)  # before any indexing: fail in a second, not a minute
    with EvalRun(settings.knowledge(), docs=docs, questions_file=questions) as run:
        sync, warnings = run.index(progress)
        if saved:  # answers saved from resolved Slack threads join the labelled set
            from bot.saved_eval import add_saved_answers

            add_saved_answers(settings, run)
        report: dict[str, Any] = run.retrieval(modes, progress)
        if answers:
            report["answers"] = asyncio.run(evaluate_answers(settings, run, progress))
        assert run.docs is not None and run.questions_file is not None
        return EvalResult(
            report=report,
            docs=run.docs,
            questions_file=run.questions_file,
            collection=run.collection,
            questions=len(run.questions),
            unanswerable=run.unanswerable,
            sync=sync,
            warnings=warnings,
        )


# --- answering every question -------------------------------------------------------------------


class _Recording:
    """The evaluation's knowledge base, remembering the full text of every chunk a search returned."""

    def __init__(self, knowledge: KnowledgeBase):
        self._knowledge = knowledge
        self.texts: dict[str, str] = {}

    def search(self, query: str, **kwargs: Any) -> list[Hit]:
        hits = self._knowledge.search(query, **kwargs)
        self.texts.update((hit.chunk.chunk_id, hit.chunk.text) for hit in hits)
        return hits


async def evaluate_answers(
    settings: Settings, run: EvalRun, progress: Progress | None = None
) -> dict[str, Any]:
    """Answer every question of ``run`` with the team and score the answers (see the module doc)."""
    notify = progress or (lambda *_: None)
    recording = _Recording(run.knowledge)
    store = ConversationStore(_conversations_url(run.knowledge.config.database_url))
    answerer = Answerer(settings, recording, store=store)  # type: ignore[arg-type]  # duck-typed search
    scored: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    notify("answer", 0, len(run.questions))
    try:
        for done, q in enumerate(run.questions, start=1):
            try:
                answer = await asyncio.wait_for(
                    answerer.answer(q.question, conversation=new_conversation_key("eval")),
                    timeout=settings.answer_timeout,
                )
            except (AnswerError, TimeoutError) as exc:
                reason = str(exc) or f"no answer within {settings.answer_timeout:g} s"
                failures.append({"line": q.line, "question": q.question, "error": reason})
                if not scored and len(failures) >= GIVE_UP_AFTER and isinstance(exc, ModelFailed):
                    raise ModelFailed(f"stopped after {len(failures)} failed answers: {reason}") from None
            else:
                scored.append(score_answer(q, answer, recording.texts))
            notify("answer", done, len(run.questions))
    finally:
        await answerer.aclose()
    return summarise_answers(scored, failures)


def _conversations_url(manifest_url: str) -> str:
    folder = Path(make_url(manifest_url).database or "data/eval").parent
    return f"sqlite:///{folder / 'conversations.sqlite'}"


# --- scoring one answer -------------------------------------------------------------------------


def _normalised(text: str) -> str:
    return " ".join(_FORMATTING.sub("", MARKER.sub(" ", text)).lower().split())


def _content_words(text: str) -> set[str]:
    return {word for word in _WORD.findall(text.lower()) if word not in _STOP}


def claim_supported(claim: str, chunk_text: str) -> bool:
    """Whether a chunk states a claim, judged by overlap: most of the claim's content words are in it."""
    words = _content_words(MARKER.sub(" ", claim))
    if not words:
        return False
    return len(words & _content_words(chunk_text)) / len(words) >= SUPPORT_OVERLAP


def cited_claims(text: str) -> list[tuple[str, int]]:
    """(claim, n) for every citation [n] in the text; the claim is the sentence the marker ends.

    A marker standing alone (after the full stop, or on a line of its own) cites the sentence before it.
    """
    claims: list[tuple[str, int]] = []
    previous = ""
    for sentence in (part.strip() for part in _SENTENCE_END.split(text)):
        if not sentence:
            continue
        claim = sentence if _content_words(MARKER.sub(" ", sentence)) else previous
        for marker in MARKER.finditer(sentence):
            claims.extend((claim, int(n)) for n in re.findall(r"\d+", marker.group()))
        if _content_words(MARKER.sub(" ", sentence)):
            previous = sentence
    return claims


def score_answer(q: LabelledQuestion, answer: Answer, chunk_texts: Mapping[str, str]) -> dict[str, Any]:
    """One answer against its labelled question."""
    sources = {source.n: source for source in answer.sources}
    relevant = set(q.relevant)
    citations = precise = 0
    for claim, n in cited_claims(answer.text):
        source = sources.get(n)
        if source is None:
            continue  # cannot happen after the citation contract; never counted as precise
        citations += 1
        text = chunk_texts.get(source.chunk_id, source.snippet)
        precise += source.doc in relevant and claim_supported(claim, text)
    text = _normalised(answer.text)
    cited_docs = {source.doc for source in answer.sources}
    result: dict[str, Any] = {
        "line": q.line,
        "question": q.question,
        "kind": q.kind,
        "outcome": answer.outcome,
        "answer": answer.text,
        "cited": sorted(cited_docs),
        "citations": citations,
        "precise_citations": precise,
        "timings": answer.timings,
    }
    result["passages"] = len({hit["chunk_id"] for hit in answer.retrieved})
    if q.answerable:
        result["citation_recall"] = len(cited_docs & relevant) / len(relevant)
        if q.must_contain:
            result["correct"] = all(_normalised(expected) in text for expected in q.must_contain)
            seen = [chunk_texts.get(hit["chunk_id"], hit["snippet"]) for hit in answer.retrieved]
            result["fact_in_passages"] = fact_found(seen, q.must_contain)
    else:
        result["not_found"] = answer.outcome == "not_found"
    return result


def summarise_answers(scored: Sequence[dict[str, Any]], failures: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The answer metrics over all scored answers; a metric with nothing to score is ``None``."""

    def mean(values: list[float]) -> float | None:
        return round(statistics.fmean(values), 4) if values else None

    citations = sum(row["citations"] for row in scored)
    answerable = [row for row in scored if "citation_recall" in row]
    stages = sorted({stage for row in scored for stage in row["timings"]})
    return {
        "answer_correctness": mean([float(row["correct"]) for row in scored if "correct" in row]),
        "citation_precision": round(sum(row["precise_citations"] for row in scored) / citations, 4)
        if citations
        else None,
        "citation_recall": mean([row["citation_recall"] for row in answerable]),
        "not_found_accuracy": mean([float(row["not_found"]) for row in scored if "not_found" in row]),
        "answerable_said_not_found": mean([float(row["outcome"] == "not_found") for row in answerable]),
        "passage_answer_recall": mean(
            [float(row["fact_in_passages"]) for row in scored if "fact_in_passages" in row]
        ),
        "passages_per_answer": mean([float(row["passages"]) for row in scored]),
        "questions": len(scored),
        "errors": len(failures),
        "latency_s": {
            stage: _spread([row["timings"][stage] for row in scored if stage in row["timings"]])
            for stage in stages
        },
        "failures": list(failures),
        "per_question": list(scored),
    }


def _spread(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)], 3)

    return {"mean": round(statistics.fmean(ordered), 3), "p50": at(0.5), "p95": at(0.95)}
