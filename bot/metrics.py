"""Prometheus metrics (``GET /metrics``): what the bot received, dropped, answered and how fast.

Counters and histograms live in one registry of this process; every replica is scraped on its own
and Prometheus sums them. Documents by status and sync runs come from the manifest at scrape time,
so every replica reports the same shared figures (use ``max`` across replicas, not ``sum``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from knowledge.base import KnowledgeBase

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REGISTRY = CollectorRegistry()

EVENTS_RECEIVED = Counter(
    "threadwise_slack_events_received",
    "Requests from Slack (events, commands, interactions), retries included",
    ["type", "retry"],
    registry=REGISTRY,
)
DUPLICATES_DROPPED = Counter(
    "threadwise_slack_duplicates_dropped",
    "Deliveries of a message already claimed (retries, app_mention + message, other replicas)",
    registry=REGISTRY,
)
ANSWERS = Counter(
    "threadwise_answers",
    "Answers delivered by outcome (answered, not_found, ...; failed when the thread got an error)",
    ["outcome"],
    registry=REGISTRY,
)
ANSWER_SECONDS = Histogram(
    "threadwise_answer_seconds",
    "From taking a claimed message on to its final answer in Slack",
    buckets=(0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120, 180),
    registry=REGISTRY,
)
STAGE_SECONDS = Histogram(
    "threadwise_answer_stage_seconds",
    "Time per stage of an answer (retrieval, leader, analyst, writer, first_text)",
    ["stage"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60),
    registry=REGISTRY,
)
SLACK_API_ERRORS = Counter(
    "threadwise_slack_api_errors",
    "Slack Web API calls that failed, by method and error code",
    ["method", "code"],
    registry=REGISTRY,
)
NOT_FOUND = Counter(
    "threadwise_not_found_answers",
    "Answers that said the documents don't cover the question (recorded as gaps)",
    registry=REGISTRY,
)
NOT_HELPFUL = Counter(
    "threadwise_not_helpful_ratings",
    "👎 ratings of answers (recorded as gaps; a later 👍 by the same person does not uncount it)",
    registry=REGISTRY,
)


def observe_gap(kind: str) -> None:
    (NOT_FOUND if kind == "not_found" else NOT_HELPFUL).inc()


def slack_request_type(body: Mapping[str, Any]) -> str:
    """``event:app_mention``, ``command:/ask``, ``block_actions``... for a Slack request body."""
    if body.get("command"):
        return f"command:{body['command']}"
    if body.get("type") == "event_callback":
        return f"event:{(body.get('event') or {}).get('type', '?')}"
    return str(body.get("type") or "unknown")


async def count_slack_request(body: dict[str, Any], request: Any, next: Callable[[], Awaitable[Any]]) -> Any:
    """Bolt middleware: count each request from Slack, then let it through."""
    headers = getattr(request, "headers", None) or {}
    retry = bool(headers.get("x-slack-retry-num")) or bool(body.get("retry_attempt"))
    EVENTS_RECEIVED.labels(slack_request_type(body), "true" if retry else "false").inc()
    return await next()


def observe_answer(
    outcome: str, seconds: float | None = None, timings: Mapping[str, float] | None = None
) -> None:
    ANSWERS.labels(outcome).inc()
    if seconds is not None:
        ANSWER_SECONDS.observe(seconds)
    for stage, spent in (timings or {}).items():
        if stage != "total":
            STAGE_SECONDS.labels(stage).observe(spent)


def slack_api_error(method: str, code: str) -> None:
    SLACK_API_ERRORS.labels(method, code.split(" ", 1)[0]).inc()


class KnowledgeCollector(Collector):
    """Documents by status and sync runs by result, read from the shared manifest when scraped."""

    def __init__(self, knowledge: KnowledgeBase):
        self.knowledge = knowledge

    def collect(self) -> Iterator[Metric]:
        from knowledge.manifest import sync_runs

        manifest = self.knowledge.manifest
        _documents, _chunks, by_status = manifest.counts()
        documents = GaugeMetricFamily(
            "threadwise_documents", "Documents in the manifest by status", labels=["status"]
        )
        for status in ("indexed", "pending", "skipped", "deleting", *sorted(by_status)):
            documents.add_metric([status], by_status.get(status, 0))
        yield _dedupe(documents)
        with manifest.engine.connect() as conn:
            rows = conn.execute(select(sync_runs.c.ok, func.count()).group_by(sync_runs.c.ok)).all()
        runs = CounterMetricFamily("threadwise_sync_runs", "Sync runs recorded, by result", labels=["result"])
        counted = {"ok": 0, "failed": 0, "running": 0}
        for ok, count in rows:
            counted["running" if ok is None else "ok" if ok else "failed"] += count
        for result, count in counted.items():
            runs.add_metric([result], count)
        yield runs


def _dedupe(metric: Metric) -> Metric:
    seen, samples = set(), []
    for sample in metric.samples:
        key = tuple(sorted(sample.labels.items()))
        if key not in seen:
            seen.add(key)
            samples.append(sample)
    metric.samples = samples
    return metric


def exposition(knowledge: KnowledgeBase | None = None) -> bytes:
    """The metrics page: this process's counters with its answer workers', then the manifest's figures
    (blocking: call in a thread)."""
    from bot.worker_metrics import merged

    page = merged(REGISTRY)
    if knowledge is not None:
        shared = CollectorRegistry()
        shared.register(KnowledgeCollector(knowledge))
        page += generate_latest(shared)
    return page


__all__ = [
    "ANSWERS",
    "ANSWER_SECONDS",
    "CONTENT_TYPE",
    "DUPLICATES_DROPPED",
    "EVENTS_RECEIVED",
    "NOT_FOUND",
    "NOT_HELPFUL",
    "REGISTRY",
    "SLACK_API_ERRORS",
    "STAGE_SECONDS",
    "KnowledgeCollector",
    "count_slack_request",
    "exposition",
    "observe_answer",
    "observe_gap",
    "slack_api_error",
    "slack_request_type",
]
