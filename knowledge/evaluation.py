"""Retrieval quality on a labelled question set: recall@5, recall@10, MRR and nDCG@10, per mode and kind.

The labelled set is JSON Lines, one question per line::

    {"question": "...", "relevant": ["engineering/deploys.md"], "must_contain": ["20 minutes"], "kind": "keyword"}

``relevant`` lists document paths relative to the docs folder (empty: the documents do not answer it);
``must_contain`` and ``kind`` are optional. Document metrics (recall@5, recall@10, MRR, nDCG@10): a
question's chunks are ranked by the search, and each document takes the rank of its best chunk.
Passage metrics (answer recall@1, 3, 6, 10): the share of answerable questions with ``must_contain``
whose every string appears in the first k chunks themselves (case and spacing ignored), which is what
the model can quote. Questions with no relevant document cannot score a retrieval metric and are left
out of them (they count for ``--answers``).

An evaluation indexes the docs folder into its own collection and its own manifest, never the serving
ones (``eval_config``), and later runs re-sync it incrementally.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import statistics
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy.engine import make_url

from knowledge.base import KnowledgeBase
from knowledge.config import KnowledgeConfig
from knowledge.embedders import Embedder
from knowledge.errors import KnowledgeError
from knowledge.types import SEARCH_MODES, Hit, SearchMode, SyncReport

Progress = Callable[[str, int, int], None]  # (phase, done, total), as sync reports it

METRICS = ("recall@5", "recall@10", "mrr", "ndcg@10")
ANSWER_KS = (1, 3, 6, 10)  # chunks; an analyst search returns bot.answering.SEARCH_K (8)
ANSWER_METRICS = tuple(f"answer_recall@{k}" for k in ANSWER_KS)
DOCUMENTS_RANKED = 10  # every metric looks at the first 10 documents (MRR too: a later hit scores 0)
SEARCH_K = 6  # fact_misses look this deep: the answer recall@6 the targets are set on
CHUNKS_FETCHED = 50  # chunks searched per question, enough to rank 10 distinct documents
QUESTIONS_FILE = "questions.jsonl"
EVAL_PREFIX = "threadwise_eval_"
NO_KIND = "unlabelled"
_MAX_LISTED = 20  # bad lines listed in one error


class EvalError(KnowledgeError):
    """The evaluation cannot run as asked; the message says what to change."""


class LabelledSetError(EvalError):
    """A labelled question file with bad lines; the message names each line and what is wrong."""


# --- the labelled set ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelledQuestion:
    line: int  # 1-based line in the file, for messages
    question: str
    relevant: tuple[str, ...]
    must_contain: tuple[str, ...] = ()
    kind: str = NO_KIND

    @property
    def answerable(self) -> bool:
        return bool(self.relevant)


def load_questions(path: Path, docs: Path | None = None) -> list[LabelledQuestion]:
    """Read a labelled set; with ``docs``, every relevant path must be a file in that folder.

    Every bad line is reported (up to 20), each with its line number, in one ``LabelledSetError``.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LabelledSetError(f"cannot read the questions file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise LabelledSetError(f"{path} is not UTF-8 text") from None
    questions: list[LabelledQuestion] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            questions.append(_parse_line(raw, number, docs))
        except ValueError as exc:
            problems.append(f"line {number}: {exc}")
    if len(problems) == 1:
        raise LabelledSetError(f"{path} {problems[0]}")
    if problems:
        shown = problems[:_MAX_LISTED]
        if len(problems) > _MAX_LISTED:
            shown.append(f"... and {len(problems) - _MAX_LISTED} more")
        raise LabelledSetError(f"{path} has {len(problems)} bad lines:\n  " + "\n  ".join(shown))
    if not questions:
        raise LabelledSetError(f"{path} has no questions (one JSON object per line)")
    return questions


def _parse_line(raw: str, number: int, docs: Path | None) -> LabelledQuestion:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    missing = [name for name in ("question", "relevant") if name not in data]
    if missing:
        raise ValueError("missing field " + " and ".join(repr(name) for name in missing))
    question = data["question"]
    if not isinstance(question, str) or not question.strip():
        raise ValueError("'question' must be a non-empty string")
    relevant = _strings(data, "relevant")
    must_contain = _strings(data, "must_contain") if "must_contain" in data else []
    kind = data.get("kind", NO_KIND)
    if not isinstance(kind, str) or not kind.strip():
        raise ValueError("'kind' must be a non-empty string when given")
    paths = tuple(dict.fromkeys(_document_path(item, docs) for item in relevant))
    return LabelledQuestion(number, question.strip(), paths, tuple(must_contain), kind.strip())


def _strings(data: dict[str, Any], name: str) -> list[str]:
    value = data[name]
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise ValueError(f"{name!r} must be a list of non-empty strings")
    return value


def _document_path(value: str, docs: Path | None) -> str:
    """A relevant document as the search cites it: a POSIX path relative to the docs folder."""
    path = PurePosixPath(value.strip().replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts:
        raise ValueError(f"relevant document {value!r} must be a path inside the docs folder")
    shown = path.as_posix()
    if docs is not None and not (docs / shown).is_file():
        raise ValueError(f"relevant document {shown!r} does not exist in {docs}")
    return shown


# --- metrics ------------------------------------------------------------------------------------


def ranked_documents(hits: Iterable[Hit]) -> list[str]:
    """Document paths, best first, each at the rank of its best chunk."""
    return list(dict.fromkeys(hit.chunk.doc_path for hit in hits))


def recall_at(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """The share of the relevant documents found in the first k."""
    _check(relevant)
    return len(set(ranked[:k]) & set(relevant)) / len(set(relevant))


def reciprocal_rank(ranked: Sequence[str], relevant: Collection[str], k: int = DOCUMENTS_RANKED) -> float:
    """1 / the rank of the first relevant document within the first k; 0 when there is none."""
    _check(relevant)
    for rank, doc in enumerate(ranked[:k], start=1):
        if doc in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Normalised discounted cumulative gain with binary relevance: 1.0 = every relevant document first."""
    _check(relevant)
    gain = sum(1.0 / math.log2(rank + 1) for rank, doc in enumerate(ranked[:k], start=1) if doc in relevant)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(set(relevant)), k) + 1))
    return gain / ideal


_FORMATTING = re.compile(r"[*_`~]")


def normalised_text(text: str) -> str:
    """Lower case, spacing collapsed, Markdown emphasis marks dropped: how a fact is looked for."""
    return " ".join(_FORMATTING.sub("", text).lower().split())


def fact_found(texts: Iterable[str], must_contain: Sequence[str]) -> bool:
    """Whether every expected string appears in one of the texts (each may be in a different one)."""
    found = [normalised_text(text) for text in texts]
    return all(any(normalised_text(expected) in text for text in found) for expected in must_contain)


def answer_recall(texts: Sequence[str], must_contain: Sequence[str]) -> dict[str, float]:
    """``answer_recall@k`` for k in ANSWER_KS: 1.0 when the first k chunk texts hold the fact."""
    if not must_contain:
        raise ValueError("a question without must_contain has no answer recall")
    return {f"answer_recall@{k}": float(fact_found(texts[:k], must_contain)) for k in ANSWER_KS}


def question_metrics(ranked: Sequence[str], relevant: Collection[str]) -> dict[str, float]:
    return {
        "recall@5": recall_at(ranked, relevant, 5),
        "recall@10": recall_at(ranked, relevant, 10),
        "mrr": reciprocal_rank(ranked, relevant, DOCUMENTS_RANKED),
        "ndcg@10": ndcg_at(ranked, relevant, 10),
    }


def _check(relevant: Collection[str]) -> None:
    if not relevant:
        raise ValueError("a question with no relevant document has no retrieval score")


def mean_metrics(rows: Sequence[dict[str, float]]) -> dict[str, Any]:
    """Means of the document metrics over every row, and of the passage metrics over the rows that
    have them (questions with ``must_contain``), with ``answer_questions`` counting those."""
    means: dict[str, Any] = {name: round(statistics.fmean(row[name] for row in rows), 4) for name in METRICS}
    with_facts = [row for row in rows if ANSWER_METRICS[0] in row]
    for name in ANSWER_METRICS:
        means[name] = round(statistics.fmean(row[name] for row in with_facts), 4) if with_facts else None
    means["answer_questions"] = len(with_facts)
    return means


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    if not ordered:
        return {}

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)] * 1000, 1)

    return {"p50": at(0.5), "p95": at(0.95)}


# --- where an evaluation keeps its index -----------------------------------------------------------


def shipped_handbook() -> Path:
    """The sample handbook in a source checkout (examples/handbook), found from the package or the cwd."""
    candidates = [
        Path(__file__).resolve().parents[1] / "examples" / "handbook",
        Path.cwd() / "examples/handbook",
    ]
    for folder in candidates:
        if (folder / QUESTIONS_FILE).is_file():
            return folder
    raise EvalError(
        "the sample handbook (examples/handbook) is not here: it ships with the source repository, not "
        "with an installed package. Run from a checkout, or pass --docs FOLDER --questions FILE"
    )


def resolve_inputs(docs: Path | None, questions: Path | None) -> tuple[Path, Path]:
    """The docs folder (default: the sample handbook) and questions file (default: its questions.jsonl)."""
    folder = (docs.expanduser() if docs is not None else shipped_handbook()).resolve()
    if not folder.is_dir():
        raise EvalError(f"docs folder {folder} does not exist or is not a folder")
    if questions is None:
        questions = folder / QUESTIONS_FILE
        if not questions.is_file():
            raise EvalError(f"no {QUESTIONS_FILE} in {folder}: pass --questions FILE")
    return folder, questions.expanduser().resolve()


def eval_config(config: KnowledgeConfig, docs: Path) -> KnowledgeConfig:
    """The serving config pointed at an evaluation's own collection and manifest.

    The collection is named for the folder, the embedder and the chunking (the sync keeps chunks
    whose bytes did not change, so other chunk settings need another collection). It lives in a Milvus
    Lite file of its own beside the serving one (a running ``serve`` holds that file), or in the same
    Milvus server; the manifest is always a SQLite file of its own, because the serving manifest is
    keyed by document id and the same folder would otherwise share its rows.
    """
    folder = docs.expanduser().resolve()
    fingerprint = "|".join(
        [str(folder), config.embedder, config.model_name, str(config.chunk_size), str(config.chunk_overlap)]
    )
    collection = EVAL_PREFIX + hashlib.sha1(fingerprint.encode()).hexdigest()[:12]
    if config.is_lite:
        where = Path(config.milvus_uri).expanduser().resolve().parent / "eval"
        milvus_uri = str(where / "milvus.db")
    else:
        where = _sqlite_folder(config.database_url) / "eval"
        milvus_uri = config.milvus_uri
        if collection == config.collection:
            raise EvalError(f"MILVUS_COLLECTION {config.collection!r} is reserved for evaluations")
    return replace(
        config,
        docs=(folder,),
        milvus_uri=milvus_uri,
        collection=collection,
        database_url=f"sqlite:///{where / (collection + '.sqlite')}",
    )


def _sqlite_folder(database_url: str) -> Path:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).expanduser().resolve().parent
    return Path("data").resolve()


# --- running it ---------------------------------------------------------------------------------


@dataclass
class EvalRun:
    """An evaluation's index and questions: ``index()``, then ``retrieval()``; ``close()`` at the end."""

    config: KnowledgeConfig  # the serving config; the evaluation's own is derived from it
    docs: Path | None = None
    questions_file: Path | None = None
    embedder: Embedder | None = None
    questions: list[LabelledQuestion] = field(init=False)
    knowledge: KnowledgeBase = field(init=False)

    def __post_init__(self) -> None:
        self.docs, self.questions_file = resolve_inputs(self.docs, self.questions_file)
        self.questions = load_questions(self.questions_file, self.docs)
        self.knowledge = KnowledgeBase(eval_config(self.config, self.docs), embedder=self.embedder)

    @property
    def collection(self) -> str:
        return self.knowledge.config.collection

    @property
    def unanswerable(self) -> int:
        return sum(not q.answerable for q in self.questions)

    def index(self, progress: Progress | None = None) -> tuple[SyncReport, list[str]]:
        """Sync the docs into the evaluation's collection; returns the report and warnings to show."""
        report = self.knowledge.sync(progress=progress)
        warnings = []
        relevant = {doc for q in self.questions for doc in q.relevant}
        for item in report.skipped:
            if self.docs / item.path == self.questions_file:
                continue  # the questions file beside the documents is not one of them
            concern = " (a relevant document: its questions cannot score)" if item.path in relevant else ""
            warnings.append(f"skipped {item.path}: {item.reason}{concern}")
        if report.error:
            warnings.append(report.error)
        return report, warnings

    def retrieval(
        self, modes: Sequence[SearchMode] = SEARCH_MODES, progress: Progress | None = None
    ) -> dict[str, dict[str, Any]]:
        """The report: one entry per mode (see ``retrieval_report``)."""
        return retrieval_report(self.knowledge, self.questions, modes, progress)

    def close(self) -> None:
        self.knowledge.close()

    def __enter__(self) -> EvalRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def retrieval_report(
    knowledge: KnowledgeBase,
    questions: Sequence[LabelledQuestion],
    modes: Sequence[SearchMode] = SEARCH_MODES,
    progress: Progress | None = None,
) -> dict[str, dict[str, Any]]:
    """Search every answerable question in every mode and score the documents found.

    Per mode: the four document metrics (means over the scored questions), the passage metrics
    ``answer_recall@k`` (over the ``answer_questions`` that have ``must_contain``; ``None`` if none
    has), ``questions`` scored, ``unanswerable_excluded``, ``latency_ms`` (p50/p95 of one search of
    50 chunks, query embedding included), ``by_kind`` (the metrics and counts per kind), ``misses``
    (questions with a relevant document outside the first 10) and ``fact_misses`` (questions whose
    fact is not in the first 6 chunks), for a person to look at.
    """
    unknown = [mode for mode in modes if mode not in SEARCH_MODES]
    if unknown or not modes:
        raise EvalError(f"unknown mode {', '.join(unknown) or '(none)'}: use {', '.join(SEARCH_MODES)}")
    scored = [q for q in questions if q.answerable]
    if not scored:
        raise EvalError("no question has a relevant document: nothing to score retrieval on")
    report: dict[str, dict[str, Any]] = {}
    total, done = len(scored) * len(modes), 0
    notify = progress or (lambda *_: None)
    notify("search", 0, total)
    for mode in modes:
        rows: list[dict[str, float]] = []
        seconds: list[float] = []
        by_kind: dict[str, list[dict[str, float]]] = {}
        misses = []
        fact_misses = []
        for q in scored:
            started = time.perf_counter()
            hits = knowledge.search(q.question, k=CHUNKS_FETCHED, mode=mode)
            seconds.append(time.perf_counter() - started)
            ranked = ranked_documents(hits)
            row: dict[str, float] = question_metrics(ranked, q.relevant)
            if q.must_contain:
                row |= answer_recall([hit.chunk.text for hit in hits], q.must_contain)
                if not row[f"answer_recall@{SEARCH_K}"]:
                    fact_misses.append({"line": q.line, "question": q.question, "kind": q.kind})
            rows.append(row)
            by_kind.setdefault(q.kind, []).append(row)
            if row["recall@10"] < 1:
                missing = [doc for doc in q.relevant if doc not in ranked[:DOCUMENTS_RANKED]]
                misses.append({"line": q.line, "question": q.question, "kind": q.kind, "missing": missing})
            done += 1
            notify("search", done, total)
        report[mode] = {
            **mean_metrics(rows),
            "questions": len(rows),
            "unanswerable_excluded": len(questions) - len(scored),
            "latency_ms": percentiles_ms(seconds),
            "by_kind": {
                kind: {**mean_metrics(kind_rows), "questions": len(kind_rows)}
                for kind, kind_rows in sorted(by_kind.items())
            },
            "misses": misses,
            "fact_misses": fact_misses,
        }
    return report


# --- reports ------------------------------------------------------------------------------------


def load_report(path: Path) -> dict[str, Any]:
    """An earlier ``--out`` report, checked enough to compare against."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EvalError(f"cannot read the report {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EvalError(f"{path} is not a JSON report ({exc})") from None
    if not isinstance(data, dict) or not report_modes(data):
        raise EvalError(
            f"{path} is not a threadwise eval report (expected an object keyed by mode, "
            f"each with {', '.join(METRICS)}: write one with --out)"
        )
    return data


def report_modes(report: dict[str, Any]) -> list[str]:
    """The search modes a report scores, in the order modes are listed."""
    return [
        mode
        for mode in SEARCH_MODES
        if isinstance(report.get(mode), dict)
        and all(isinstance(report[mode].get(name), (int, float)) for name in METRICS)
    ]


def compare_reports(old: dict[str, Any], new: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per mode both reports score: each metric's ``old``, ``new`` and ``change`` (new - old), and the
    same per kind under ``by_kind`` for the kinds both have."""
    common = [mode for mode in report_modes(new) if mode in report_modes(old)]
    if not common:
        raise EvalError("the two reports have no search mode in common")
    result: dict[str, dict[str, Any]] = {}
    for mode in common:
        entry: dict[str, Any] = _deltas(old[mode], new[mode])
        old_kinds, new_kinds = old[mode].get("by_kind") or {}, new[mode].get("by_kind") or {}
        entry["by_kind"] = {
            kind: _deltas(old_kinds[kind], new_kinds[kind])
            for kind in new_kinds
            if isinstance(old_kinds.get(kind), dict)
        }
        entry["questions"] = {"old": old[mode].get("questions"), "new": new[mode].get("questions")}
        result[mode] = entry
    return result


def _deltas(old: dict[str, Any], new: dict[str, Any]) -> dict[str, dict[str, float]]:
    out = {}
    for name in METRICS + ANSWER_METRICS:  # a report from before answer recall compares on the rest
        if isinstance(old.get(name), (int, float)) and isinstance(new.get(name), (int, float)):
            out[name] = {"old": old[name], "new": new[name], "change": round(new[name] - old[name], 4)}
    return out
