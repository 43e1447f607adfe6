"""The ``threadwise`` command. Thin: each subcommand parses its arguments and calls one library function."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from bot.answer import Answer
from bot.answering import AnswerError, ask
from bot.conversations import new_conversation_key
from bot.logs import register_settings_secrets
from bot.settings import Settings, SettingsError, load_settings
from bot.team import route_agno_logging
from knowledge.base import KnowledgeBase
from knowledge.errors import KnowledgeError
from knowledge.types import SEARCH_MODES, Status, SyncReport

if TYPE_CHECKING:
    from bot.answer_eval import EvalResult

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class CommandError(Exception):
    """A failure to report as one line and a non-zero exit."""


def _knowledge(settings: Settings) -> KnowledgeBase:
    return KnowledgeBase(settings.knowledge())


# sync -----------------------------------------------------------------------------------------


def cmd_sync(settings: Settings, args: argparse.Namespace) -> int:
    kb = _knowledge(settings)
    try:
        if args.json or not err.is_terminal:
            report = kb.sync(rebuild=args.rebuild)
        else:
            with Progress(
                TextColumn("[bold]syncing"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
            ) as bar:
                task = bar.add_task("sync", total=None)
                report = kb.sync(
                    rebuild=args.rebuild,
                    progress=lambda _phase, done, total: bar.update(task, completed=done, total=total),
                )
    finally:
        kb.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print_sync(report)
    return 0 if report.ok else 1


def _print_sync(report: SyncReport) -> None:
    out.print(
        f"added {report.added}, updated {report.updated}, deleted {report.deleted}, "
        f"unchanged {report.unchanged}, skipped {len(report.skipped)}; "
        f"{report.chunks} chunks written in {report.seconds:.1f} s"
    )
    for item in report.skipped:
        out.print(f"  skipped {item.path}: {item.reason}", markup=False)
    if report.error:
        err.print(f"threadwise: {report.error}", markup=False)


# search ---------------------------------------------------------------------------------------


def cmd_search(settings: Settings, args: argparse.Namespace) -> int:
    scope = None
    if args.channel:
        from bot.slack.files import channel_scope

        scope, how = asyncio.run(channel_scope(settings, args.channel))
        err.print(f"searching as {args.channel}: {how}", markup=False)
    kb = _knowledge(settings)
    try:
        hits = kb.search(args.query, k=args.k, mode=args.mode, scope=scope)
    finally:
        kb.close()
    if args.json:
        print(json.dumps([hit.to_dict() for hit in hits], indent=2))
        return 0
    if not hits:
        out.print("no results (is anything indexed? run `threadwise sync`)")
        return 0
    for hit in hits:
        chunk = hit.chunk
        where = chunk.doc_path + (f" › {chunk.heading}" if chunk.heading else "")
        if chunk.page:
            where += f" (p. {chunk.page})"
        out.print(f"[bold]{hit.rank}. {where}[/bold]  [dim]score {hit.score:.4f}[/dim]")
        text = " ".join(chunk.text.split())
        out.print(f"   {text[:400]}{'…' if len(text) > 400 else ''}", markup=False)
    return 0


# status ---------------------------------------------------------------------------------------


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    kb = _knowledge(settings)
    try:
        status = kb.status()
    finally:
        kb.close()
    if args.json:
        print(json.dumps(status.to_dict(), indent=2, default=str))
    else:
        _print_status(status)
    return 0


def _print_status(status: Status) -> None:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("collection", Text(status.collection))
    table.add_row("milvus", Text(status.milvus_uri))
    table.add_row("embedder", Text(f"{status.embedder} ({status.dimension}-d)"))
    table.add_row("documents", f"{status.documents} indexed, {status.chunks} chunks")
    others = {k: v for k, v in status.by_status.items() if k != "indexed"}
    if others:
        table.add_row("", ", ".join(f"{v} {k}" for k, v in sorted(others.items())))
    last = status.last_sync
    if last:
        result = "ok" if last["ok"] else f"failed: {last['error']}"
        table.add_row(
            "last sync",
            Text(
                f"{last['finished_at']} ({result}; +{last['added']} ~{last['updated']} -{last['deleted']}, "
                f"{last['seconds']:.1f} s)"
            ),
        )
    else:
        table.add_row("last sync", "never (run `threadwise sync`)")
    out.print(table)
    if status.skipped:
        out.print(f"skipped documents ({len(status.skipped)}):")
        for item in status.skipped:
            out.print(f"  {item.path}: {item.reason}", markup=False)


# ask ------------------------------------------------------------------------------------------


def cmd_ask(settings: Settings, args: argparse.Namespace) -> int:
    conversation = args.conversation or new_conversation_key("cli")
    # Agno logs its own copy of every failure; the command says it once, in one line (unless -v).
    route_agno_logging(None if args.verbose else logging.CRITICAL + 1)
    try:
        answer = asyncio.run(ask(settings, args.question, conversation=conversation))
    except (AnswerError, ValueError) as exc:
        err.print(f"threadwise: {exc}", markup=False, soft_wrap=True)  # one line, however long
        return 1
    if args.json:
        print(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
    else:
        _print_answer(answer)
    return 0


def _print_answer(answer: Answer) -> None:
    out.print(answer.text, markup=False)
    if answer.sources:
        out.print()
        out.print("[bold]Sources[/bold]")
        for source in answer.sources:
            where = source.doc + (f" › {source.heading}" if source.heading else "")
            if source.page:
                where += f" (p. {source.page})"
            out.print(f"  [{source.n}] {where}", markup=False)
            out.print(f"      {source.snippet}", markup=False, style="dim")
    if answer.stripped_citations:
        err.print(f"{answer.stripped_citations} citation(s) to passages that were not retrieved were removed")
    err.print(f"conversation {answer.conversation} (continue it with --conversation {answer.conversation})")


# eval -----------------------------------------------------------------------------------------


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


# serve / socket -------------------------------------------------------------------------------


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from bot.logs import configure_logging
    from bot.server import serve
    from bot.slack.app import require_slack

    require_slack(settings, "http")  # before anything starts, one clear line
    configure_logging("DEBUG" if args.verbose else settings.log_level, settings.log_format)
    _prepare_to_serve(settings)
    asyncio.run(serve(settings, args.host, args.port))
    return 0


def cmd_socket(settings: Settings, args: argparse.Namespace) -> int:
    from bot.logs import configure_logging
    from bot.server import socket_mode
    from bot.slack.app import require_slack

    require_slack(settings, "socket")
    configure_logging("DEBUG" if args.verbose else settings.log_level, settings.log_format)
    _prepare_to_serve(settings)
    asyncio.run(socket_mode(settings))
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from bot.logs import configure_logging, register_settings_secrets
    from bot.server import stop_on_signals
    from bot.slack.app import require_slack
    from bot.slack.worker import run_worker

    require_slack(settings, "worker")
    configure_logging("DEBUG" if args.verbose else settings.log_level, settings.log_format)
    register_settings_secrets(settings)
    _prepare_to_serve(settings, single_process=True)

    async def work() -> None:
        await run_worker(settings, stop_on_signals())

    asyncio.run(work())
    return 0


def cmd_playground(settings: Settings, args: argparse.Namespace) -> int:
    from bot.logs import configure_logging
    from bot.playground.server import HANDBOOK, playground_settings, serve_playground

    docs = args.docs or HANDBOOK
    if not docs.is_dir():
        raise CommandError(f"--docs {docs}: not a folder")
    settings = playground_settings(settings, docs=[docs], data=args.data)
    configure_logging("DEBUG" if args.verbose else "WARNING", settings.log_format)
    _prepare_to_serve(settings, single_process=True)
    kb = _knowledge(settings)
    try:
        with Progress(
            TextColumn(f"[bold]indexing {docs}"), BarColumn(), MofNCompleteColumn(), console=err
        ) as bar:
            task = bar.add_task("sync", total=None)
            report = kb.sync(
                progress=lambda _phase, done, total: bar.update(task, completed=done, total=total)
            )
    finally:
        kb.close()
    _print_sync(report)
    if settings.search_only:
        out.print(
            "no model configured: the bot answers with passages (set OPENAI_API_KEY for written answers)"
        )
    asyncio.run(serve_playground(settings, host=args.host, port=args.port, open_browser=args.open))
    return 0


def _prepare_to_serve(settings: Settings, *, single_process: bool = False) -> None:
    from bot.health import warn_if_lite
    from bot.migrations import SchemaBehind, prepare

    try:
        logging.getLogger("threadwise.db").info(
            "%s", prepare(settings.database_url, auto=settings.auto_migrate)
        )
    except SchemaBehind as exc:
        raise CommandError(str(exc)) from None
    if not single_process:  # the playground is one process by design: no replica warning
        warn_if_lite(settings)


# db -------------------------------------------------------------------------------------------


def cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from bot.migrations import upgrade
    from knowledge.database import redacted

    where = redacted(settings.database_url)
    try:
        before, after = upgrade(settings.database_url, args.revision)
    except SQLAlchemyError as exc:
        raise CommandError(f"cannot upgrade {where}: {getattr(exc, 'orig', None) or exc}") from None
    if before == after:
        out.print(f"{where}: schema already at {after}", markup=False)
    else:
        out.print(f"{where}: schema upgraded from {before or 'nothing'} to {after}", markup=False)
    return 0


def cmd_db_current(settings: Settings, args: argparse.Namespace) -> int:
    from bot.migrations import current, head
    from knowledge.database import redacted

    at, want = current(settings.database_url), head()
    state = "current" if at == want else "behind: run `threadwise db upgrade`"
    out.print(f"{redacted(settings.database_url)}: schema at {at or 'nothing'}, code needs {want} ({state})")
    return 0 if at == want else 1


# feedback -------------------------------------------------------------------------------------


def cmd_feedback_export(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from bot.feedback_export import export_feedback, to_jsonl

    try:
        items = export_feedback(settings, labelled=args.labelled)
    except SQLAlchemyError as exc:
        raise CommandError(f"cannot read feedback: {getattr(exc, 'orig', None) or exc}") from None
    text = to_jsonl(items)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        err.print(
            f"wrote {len(items)} {'questions' if args.labelled else 'ratings'} to {args.out}", markup=False
        )
    else:
        sys.stdout.write(text)
    return 0


# entry point ----------------------------------------------------------------------------------

Command = Callable[[Settings, argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="threadwise",
        description="Answers a team's questions in Slack from its own documents, with sources.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    p = sub.add_parser("sync", help="index the document folders (THREADWISE_DOCS) into Milvus")
    p.add_argument("--rebuild", action="store_true", help="drop the collection and index everything anew")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("search", help="search the indexed documents")
    p.add_argument("query")
    p.add_argument("-k", type=int, default=5, help="how many chunks (default 5)")
    p.add_argument("--mode", choices=SEARCH_MODES, default="hybrid")
    p.add_argument(
        "--channel",
        metavar="C",
        help="see only what conversation C may see (its privacy from Slack with SLACK_BOT_TOKEN; "
        "unknown counts as private)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("ask", help="answer a question from the documents, with sources")
    p.add_argument("question")
    p.add_argument("--conversation", metavar="KEY", help="continue a conversation (default: a new one)")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("status", help="what is indexed, the last sync, skipped documents")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

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

    p = sub.add_parser(
        "serve", help="run the Slack app over HTTP (POST /slack/events), with the periodic sync"
    )
    p.add_argument("--host", help="address to listen on (default THREADWISE_HOST, 0.0.0.0)")
    p.add_argument("--port", type=int, help="port to listen on (default THREADWISE_PORT, 3000)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("socket", help="run the Slack app over Socket Mode (no public URL needed)")
    p.set_defaults(func=cmd_socket)

    p = sub.add_parser(
        "worker", help="answer the messages the Slack front recorded (serve/socket start THREADWISE_WORKERS)"
    )
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser(
        "playground", help="the bot in your browser, on a local Slack workspace (no Slack, no key)"
    )
    p.add_argument("--port", type=int, default=3000, help="port of the page (default 3000)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--docs", type=Path, metavar="FOLDER", help="documents to answer from (default: the sample handbook)"
    )
    p.add_argument(
        "--data",
        type=Path,
        default=Path("data/playground"),
        metavar="FOLDER",
        help="where its index and database live",
    )
    p.add_argument("--open", action="store_true", help="open the page in a browser")
    p.set_defaults(func=cmd_playground)

    p = sub.add_parser("feedback", help="the feedback people gave in Slack")
    fb = p.add_subparsers(dest="feedback_command", required=True, metavar="action")
    q = fb.add_parser(
        "export", help="write the ratings as JSONL (question, answer, sources, rating, comment)"
    )
    q.add_argument("--out", type=Path, help="write to this file instead of standard output")
    q.add_argument("--labelled", action="store_true", help="write rated questions in the labelled-set format")
    q.set_defaults(func=cmd_feedback_export)

    p = sub.add_parser("db", help="the database schema (migrations)")
    db = p.add_subparsers(dest="db_command", required=True, metavar="action")
    q = db.add_parser("upgrade", help="apply the schema migrations to DATABASE_URL")
    q.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    q.set_defaults(func=cmd_db_upgrade)
    q = db.add_parser("current", help="the schema revision of DATABASE_URL; exit 1 when behind")
    q.set_defaults(func=cmd_db_current)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load_settings()
        register_settings_secrets(settings)  # masked in every log line, whatever their shape
        return args.func(settings, args)
    except (SettingsError, KnowledgeError, CommandError, ValueError) as exc:
        err.print(f"threadwise: {exc}", markup=False)
        return 2 if isinstance(exc, SettingsError) else 1
    except KeyboardInterrupt:
        err.print("threadwise: interrupted", markup=False)
        return 130


if __name__ == "__main__":
    sys.exit(main())
