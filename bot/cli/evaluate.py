"""threadwise eval: retrieval (and answer) quality on a labelled question set."""

from __future__ import annotations

import argparse
import json
import logging
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bot.answering import AnswerError
from bot.cli.output import CommandError, err, out
from bot.settings import Settings
from bot.team import route_agno_logging
from knowledge.types import SEARCH_MODES

if TYPE_CHECKING:
    from bot.answer_eval import EvalResult


def _modes(value: str) -> list[str]:
    modes = list(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    unknown = [mode for mode in modes if mode not in SEARCH_MODES]
    if unknown or not modes:
        raise argparse.ArgumentTypeError(f"use one or more of {','.join(SEARCH_MODES)} (got {value!r})")
    return modes


def cmd_eval(settings: Settings, args: argparse.Namespace) -> int:
    from bot.answer_eval import run_eval
    from knowledge.evaluation import compare_reports, load_report

    old = load_report(args.compare) if args.compare else None  # a bad file fails before the work
    if args.out and not args.out.parent.is_dir():
        raise CommandError(f"cannot write {args.out}: no folder {args.out.parent}")
    if args.answers:
        route_agno_logging(None if args.verbose else logging.CRITICAL + 1)
    run = partial(run_eval, settings, docs=args.docs, questions=args.questions, modes=args.modes)
    try:
        if args.json or not err.is_terminal:
            result = run(answers=args.answers)
        else:
            with Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
            ) as bar:
                task = bar.add_task("indexing", total=None)
                phases = {"index": "indexing", "search": "searching", "answer": "answering"}

                def progress(phase: str, done: int, total: int) -> None:
                    bar.update(task, description=phases.get(phase, phase), completed=done, total=total)

                result = run(answers=args.answers, progress=progress)
    except AnswerError as exc:
        err.print(f"threadwise: {exc}", markup=False, soft_wrap=True)
        return 1
    if args.out:
        try:
            args.out.write_text(
                json.dumps(result.report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )
        except OSError as exc:
            raise CommandError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    changes = compare_reports(old, result.report) if old is not None else None
    for warning in result.warnings:
        err.print(f"threadwise: {warning}", markup=False)
    if args.json:
        print(json.dumps(changes if changes is not None else result.report, indent=2, ensure_ascii=False))
        return 0
    _print_eval(result)
    if changes is not None:
        _print_changes(changes, args.compare)
    return 0


def _print_eval(result: EvalResult) -> None:
    modes = [mode for mode in SEARCH_MODES if mode in result.report]
    scored = result.questions - result.unanswerable
    out.print(
        f"[bold]Retrieval[/bold] on {scored} questions from {result.questions_file.name} "
        f"({result.docs}, collection {result.collection}); documents ranked by their best chunk",
    )
    if result.unanswerable:
        out.print(
            f"{result.unanswerable} unanswerable questions (no relevant document) are left out of these metrics"
        )
    table = Table()
    for name in ("mode", "recall@5", "recall@10", "MRR", "nDCG@10", "p50 ms", "p95 ms"):
        table.add_column(name, justify="left" if name == "mode" else "right")
    for mode in modes:
        row = result.report[mode]
        latency = row["latency_ms"]
        metrics = [f"{row[name]:.3f}" for name in ("recall@5", "recall@10", "mrr", "ndcg@10")]
        table.add_row(mode, *metrics, f"{latency['p50']:.0f}", f"{latency['p95']:.0f}")
    out.print(table)
    kinds = sorted({kind for mode in modes for kind in result.report[mode]["by_kind"]})
    by_kind = Table(title="nDCG@10 by kind", title_justify="left")
    for name in ("kind", "questions", *modes):
        by_kind.add_column(name, justify="left" if name == "kind" else "right")
    for kind in kinds:
        cells = [result.report[mode]["by_kind"].get(kind) for mode in modes]
        count = next((str(cell["questions"]) for cell in cells if cell), "")
        by_kind.add_row(kind, count, *(f"{cell['ndcg@10']:.3f}" if cell else "-" for cell in cells))
    out.print(by_kind)
    for mode in modes:
        misses = result.report[mode]["misses"]
        if misses:
            lines = ", ".join(str(miss["line"]) for miss in misses)
            out.print(
                f"{mode}: a relevant document outside the first 10 for {len(misses)} questions (lines {lines})"
            )
    answers = result.report.get("answers")
    if answers:
        _print_answer_metrics(answers)


def _print_answer_metrics(answers: dict) -> None:
    out.print()
    out.print(f"[bold]Answers[/bold] to {answers['questions']} questions ({answers['errors']} failed)")
    table = Table(show_header=False, box=None)
    labels = {
        "answer_correctness": "correct (all must_contain present)",
        "citation_precision": "citation precision",
        "citation_recall": "citation recall",
        "not_found_accuracy": "not found, when unanswerable",
        "answerable_said_not_found": "not found, when answerable",
    }
    for key, label in labels.items():
        value = answers[key]
        table.add_row(label, "-" if value is None else f"{value:.3f}")
    out.print(table)
    latency = Table(title="latency per stage (s)", title_justify="left")
    for name in ("stage", "mean", "p50", "p95"):
        latency.add_column(name, justify="left" if name == "stage" else "right")
    for stage, spread in answers["latency_s"].items():
        latency.add_row(stage, *(f"{spread[key]:.2f}" for key in ("mean", "p50", "p95")))
    out.print(latency)
    for failure in answers["failures"]:
        out.print(f"  line {failure['line']}: {failure['error']}", markup=False)


def _print_changes(changes: dict, old_path: Path) -> None:
    table = Table(title=f"change against {old_path}", title_justify="left")
    for name in ("mode", "recall@5", "recall@10", "MRR", "nDCG@10"):
        table.add_column(name, justify="left" if name == "mode" else "right")
    for mode, entry in changes.items():
        cells = []
        for name in ("recall@5", "recall@10", "mrr", "ndcg@10"):
            delta = entry.get(name)
            if delta is None:
                cells.append("-")
                continue
            style = "green" if delta["change"] > 0 else "red" if delta["change"] < 0 else "dim"
            cells.append(f"{delta['new']:.3f} [{style}]({delta['change']:+.3f})[/{style}]")
        table.add_row(mode, *cells)
    out.print(table)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="measure retrieval (and answer) quality on a labelled question set",
        description="Index a docs folder into its own evaluation collection (never the serving one) and "
        "score recall@5, recall@10, MRR and nDCG@10 per search mode and question kind.",
    )
    p.add_argument(
        "--questions",
        type=Path,
        metavar="FILE",
        help="labelled questions, JSONL (default: questions.jsonl in the docs folder)",
    )
    p.add_argument(
        "--docs", type=Path, metavar="FOLDER", help="documents to evaluate on (default: examples/handbook)"
    )
    p.add_argument(
        "--modes",
        type=_modes,
        default=list(SEARCH_MODES),
        metavar="MODES",
        help="comma-separated (default: hybrid,dense,bm25)",
    )
    p.add_argument(
        "--answers", action="store_true", help="also answer every question with the team (needs a model)"
    )
    p.add_argument(
        "--json", action="store_true", help="print the report (or, with --compare, the changes) as JSON"
    )
    p.add_argument("--out", type=Path, metavar="FILE", help="write the JSON report to FILE")
    p.add_argument(
        "--compare", type=Path, metavar="OLD.json", help="show the change against an earlier --out report"
    )
    p.set_defaults(func=cmd_eval)
