"""How old a source is: the date put on each passage the writer reads and on each source shown.

Dates come from the knowledge layer (``knowledge.freshness``: the manifest's last change of each
document); here they become ISO strings on :class:`~bot.answer.Source` and the words Slack shows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from bot.answer import Source


def iso_date(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d")


def dated(sources: Iterable[Source], updated: Mapping[str, str]) -> list[Source]:
    """The sources with their document's last change (``updated``: chunk id -> ISO timestamp)."""
    return [dataclasses.replace(s, updated=updated.get(s.chunk_id, s.updated)) for s in sources]


def updated_ago(updated: str, now: datetime | None = None) -> str:
    """``"updated 3 months ago"`` for an ISO timestamp; "" when there is none (or it cannot be read)."""
    try:
        when = datetime.fromisoformat(updated)
    except (TypeError, ValueError):
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    days = ((now or datetime.now(UTC)) - when).days
    if days < 1:
        return "updated today"
    if days < 2:
        return "updated yesterday"
    for unit, size, up_to in (("day", 1, 14), ("week", 7, 60), ("month", 30, 365)):
        if days < up_to:
            count = days // size
            return f"updated {count} {unit}{'s' if count != 1 else ''} ago"
    years = days // 365
    return f"updated {years} year{'s' if years != 1 else ''} ago"


__all__ = ["dated", "iso_date", "updated_ago"]
