"""The guard against an empty or unmounted folder wiping the index.

A docs folder that exists but is empty (a volume not mounted yet when the container started) crawls
"complete" and would take every document out. One sync may remove at most half of a folder's indexed
documents, and never all of them, unless the operator allows it (``threadwise sync --allow-mass-delete``
or ``THREADWISE_ALLOW_MASS_DELETE``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from knowledge.manifest import DocumentRow

ALLOW_HINT = "if they are really gone, run `threadwise sync --allow-mass-delete` (or set THREADWISE_ALLOW_MASS_DELETE=true)"


@dataclass(frozen=True)
class Refusal:
    folder: str  # the configured folder, or a note that the documents lie outside every one
    gone: int
    indexed: int

    def message(self) -> str:
        return (
            f"refused to remove {self.gone} of {self.indexed} indexed documents of {self.folder} "
            "in one sync (an empty or unmounted folder?); nothing was removed there"
        )


def _folder_of(location: str, roots: Iterable[Path]) -> str | None:
    path = Path(location)
    for root in roots:
        if path.is_relative_to(root):
            return str(root)
    return None


def split_deletions(
    rows: Mapping[str, DocumentRow], gone: Iterable[str], roots: Iterable[Path], *, allow: bool
) -> tuple[list[str], list[Refusal]]:
    """The gone documents that may be removed now, and one refusal per folder that would lose too many."""
    roots = [root.expanduser().resolve() for root in roots]
    outside = "documents outside the configured folders (THREADWISE_DOCS changed?)"

    def folder(doc_id: str) -> str:
        return _folder_of(rows[doc_id].location, roots) or outside

    indexed: dict[str, int] = {}
    for doc_id, row in rows.items():
        if row.status != "skipped":  # skipped documents have nothing in the index to lose
            indexed[folder(doc_id)] = indexed.get(folder(doc_id), 0) + 1
    by_folder: dict[str, list[str]] = {}
    for doc_id in gone:
        by_folder.setdefault(folder(doc_id), []).append(doc_id)

    allowed: list[str] = []
    refusals: list[Refusal] = []
    for name, doc_ids in by_folder.items():
        lost = sum(1 for doc_id in doc_ids if rows[doc_id].status != "skipped")
        total = indexed.get(name, 0)
        if not allow and 2 * lost > total:  # all of them is more than half too
            refusals.append(Refusal(name, lost, total))
        else:
            allowed.extend(doc_ids)
    return allowed, refusals


__all__ = ["ALLOW_HINT", "Refusal", "split_deletions"]
