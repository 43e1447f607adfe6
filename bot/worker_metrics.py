"""The answer workers' counters on their front's ``/metrics``.

Answers are counted where they run, in the worker processes a front starts; Prometheus scrapes the
front. So each worker writes its registry's exposition to ``THREADWISE_METRICS_DIR`` (a directory
the front's supervisor makes, one file per worker process, kept after the worker exits so that its
counts are not lost), and the front's page is its own registry's samples summed with every file's,
sample by sample, as Prometheus's multi-process mode would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import defaultdict
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

log = logging.getLogger(__name__)

DIR_VARIABLE = "THREADWISE_METRICS_DIR"
WRITE_INTERVAL = 2.0  # seconds between a worker's snapshots


def write_snapshot(registry: CollectorRegistry) -> None:
    """This worker's counters, written atomically where the front reads them (when it has a front)."""
    folder = os.environ.get(DIR_VARIABLE)
    if not folder:
        return
    target = Path(folder) / f"worker-{os.getpid()}.prom"
    partial = target.with_suffix(".tmp")
    partial.write_bytes(generate_latest(registry))
    partial.replace(target)


async def keep_writing(registry: CollectorRegistry) -> None:
    """Until cancelled, and once more on the way out."""
    try:
        while True:
            await asyncio.sleep(WRITE_INTERVAL)
            with contextlib.suppress(OSError):
                await asyncio.to_thread(write_snapshot, registry)
    finally:
        with contextlib.suppress(OSError):
            write_snapshot(registry)


def merged(registry: CollectorRegistry, folder: str | None = None) -> bytes:
    """``registry``'s exposition with the workers' snapshots in ``folder`` added to it."""
    folder = folder or os.environ.get(DIR_VARIABLE)
    pages = [generate_latest(registry).decode()]
    if folder and Path(folder).is_dir():
        for path in sorted(Path(folder).glob("worker-*.prom")):
            with contextlib.suppress(OSError):
                pages.append(path.read_text())
    if len(pages) == 1:
        return pages[0].encode()
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple, float]] = defaultdict(dict)
    for page in pages:
        for family in text_string_to_metric_families(page):
            known = families.setdefault(family.name, family)
            sums = values[family.name]
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue  # a creation time, not a count: left out of the sum
                key = (sample.name, tuple(sorted(sample.labels.items())))
                sums[key] = sums.get(key, 0.0) + sample.value
            if known.type != family.type:
                log.warning("metric %s has two types across processes", family.name)
    combined = CollectorRegistry()
    combined.register(_Fixed(families, values))
    return generate_latest(combined)


class _Fixed:
    def __init__(self, families: dict[str, Metric], values: dict[str, dict[tuple, float]]):
        self.families, self.values = families, values

    def collect(self):
        for name, family in self.families.items():
            metric = Metric(name, family.documentation, family.type, family.unit)
            metric.samples = [
                Sample(sample_name, dict(labels), value)
                for (sample_name, labels), value in self.values[name].items()
            ]
            yield metric


__all__ = ["DIR_VARIABLE", "keep_writing", "merged", "write_snapshot"]
