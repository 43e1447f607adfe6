"""When each document last changed, read from the manifest (never from Milvus: no field to keep in step).

The manifest's ``mtime_ns`` holds a folder file's modification time in nanoseconds, and a Slack file's
or a saved thread's own date in seconds (Slack's timestamps). Both fit one rule: a value too large to
be seconds in this millennium is nanoseconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import select

from knowledge.manifest import Manifest, documents

_SECONDS_LIMIT = 10**11  # year 5138 in seconds; every nanosecond time since 1973 is larger
_LOOKUP = 500  # ids per query: well under every database's bound on parameters


def as_datetime(stamp: int | str | float) -> datetime | None:
    """A manifest stamp (seconds or nanoseconds since the epoch) as an aware UTC datetime."""
    try:
        value = int(stamp)
    except (TypeError, ValueError):
        return None
    if value <= 0:
        return None
    seconds = value / 1e9 if value > _SECONDS_LIMIT else float(value)
    return datetime.fromtimestamp(seconds, UTC)


def document_dates(manifest: Manifest, doc_ids: Iterable[str]) -> dict[str, datetime]:
    """The last change of each known document; unknown ones (and undated ones) are left out."""
    wanted = sorted(set(doc_ids))
    found: dict[str, datetime] = {}
    with manifest.engine.connect() as conn:
        for start in range(0, len(wanted), _LOOKUP):
            batch = wanted[start : start + _LOOKUP]
            statement = select(documents.c.doc_id, documents.c.mtime_ns).where(documents.c.doc_id.in_(batch))
            for doc_id, stamp in conn.execute(statement):
                when = as_datetime(stamp)
                if when is not None:
                    found[doc_id] = when
    return found


__all__ = ["as_datetime", "document_dates"]
