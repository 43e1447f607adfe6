"""Files shared in Slack as knowledge, each visible only where it was shared.

The bot downloads; this module takes bytes and metadata, so ``knowledge`` still never speaks to Slack.
It uses the folder sync's write-ahead protocol (``knowledge.writeahead``, manifest rows with
``source="slack"``), so a process killed half way leaves rows that the next reconcile redoes.

Who may see a file is its *access token*, stored on every chunk and filtered inside Milvus:

- shared in any public channel: ``workspace`` (anyone can open that channel and the file);
- shared only in private conversations (private channels, group DMs, DMs): ``channel:<id>`` for each.

A file shared in several private conversations is indexed once per conversation (one document per
access token, ``doc_id = sha1(slack:<file>:<token>)``), because ``access`` is one VARCHAR that Milvus
Lite and a Milvus server both filter with ``access in [...]``; a multi-valued field would need
ARRAY_CONTAINS_ANY, which the store's one filter builder does not use. The copies share one embedding
call. Privacy that cannot be established is private (the caller passes ``private=True``).

When access narrows (a channel made private, the bot leaving a conversation), the documents that
grant too much are removed *before* anything else is written: briefly missing is harmless, briefly
visible is not.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING

from knowledge.chunking import chunk_document
from knowledge.errors import UnreadableDocument
from knowledge.manifest import DocumentRow, Manifest
from knowledge.readers import SUPPORTED_SUFFIXES, read_bytes
from knowledge.types import WORKSPACE, Skipped
from knowledge.writeahead import Version, mark_skipped, may_hold_chunks, remove_documents, write_versions

if TYPE_CHECKING:
    from knowledge.base import KnowledgeBase

log = logging.getLogger(__name__)

SOURCE = "slack"


@dataclass(frozen=True)
class SlackFile:
    """One Slack file as the bot sees it: where it is shared, and whether each place is private."""

    file_id: str
    name: str
    shares: Mapping[str, bool] = field(default_factory=dict)  # conversation id -> private?
    title: str = ""
    author: str = ""
    permalink: str = ""
    updated: int = 0  # Slack's timestamp of the file's current version (seconds)
    size: int = 0

    def access_tokens(self) -> list[str]:
        if any(not private for private in self.shares.values()):
            return [WORKSPACE]
        return [f"channel:{channel}" for channel in sorted(self.shares)]


@dataclass
class FilesReport:
    added: int = 0
    updated: int = 0
    removed: int = 0  # files (not documents) taken out of the index
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def merge(self, other: FilesReport) -> None:
        for name in ("added", "updated", "removed", "unchanged"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.skipped += other.skipped
        self.errors += other.errors


def document_id(file_id: str, token: str) -> str:
    return hashlib.sha1(f"slack:{file_id}:{token}".encode()).hexdigest()


def location(file_id: str) -> str:
    return f"slack:{file_id}"


def is_supported(name: str) -> bool:
    """Whether a reader exists for the file's format (checked before downloading it)."""
    return PurePath(name).suffix.lower() in SUPPORTED_SUFFIXES


def unsupported_reason(name: str) -> str:
    suffix = PurePath(name).suffix.lower()
    return f"unsupported format {suffix or '(no extension)'}"


# --- what is indexed ---------------------------------------------------------------------------


def _rows(manifest: Manifest) -> dict[str, dict[str, DocumentRow]]:
    """Every Slack document row, by file id."""
    by_file: dict[str, dict[str, DocumentRow]] = {}
    for doc_id, row in manifest.documents(SOURCE).items():
        by_file.setdefault(row.location.removeprefix("slack:"), {})[doc_id] = row
    return by_file


def _chunking(kb: KnowledgeBase) -> str:
    return f"{kb.config.chunk_size}/{kb.config.chunk_overlap}"


def _is_current(file: SlackFile, rows: Mapping[str, DocumentRow], chunking: str) -> bool:
    """Indexed (or skipped) for this version, with exactly the access it should have."""
    wanted = {document_id(file.file_id, t) for t in file.access_tokens()}
    return set(rows) == wanted and all(
        r.status in ("indexed", "skipped")
        and r.mtime_ns == file.updated
        and r.size == file.size
        and (r.status == "skipped" or r.chunking == chunking)
        for r in rows.values()
    )


def _shown_path(file: SlackFile, token: str, status: str) -> str:
    # A skipped row is listed by /kb status in any channel: a private file's name stays private.
    if status == "skipped" and token != WORKSPACE:
        return f"Slack file {file.file_id} (shared privately)"
    return file.name


def _row(
    kb: KnowledgeBase,
    file: SlackFile,
    token: str,
    *,
    byte_hash: str,
    title: str,
    chunk_count: int,
    status: str,
    reason: str | None = None,
) -> DocumentRow:
    return DocumentRow(
        doc_id=document_id(file.file_id, token),
        source=SOURCE,
        path=_shown_path(file, token, status),
        location=location(file.file_id),
        title=title,
        access=token,
        size=file.size,
        mtime_ns=file.updated,
        byte_hash=byte_hash,
        chunk_count=chunk_count,
        status=status,
        chunking=_chunking(kb),
        reason=reason,
        last_sync=None,
    )


def _drop(kb: KnowledgeBase, doc_ids: list[str]) -> None:
    if doc_ids:
        remove_documents(kb.manifest, kb.open_store(), doc_ids)


# --- one file ----------------------------------------------------------------------------------


def index_file(kb: KnowledgeBase, file: SlackFile, data: bytes) -> FilesReport:
    """Index (or re-index) one downloaded file under the access its shares give it."""
    report = FilesReport()
    tokens = file.access_tokens()
    if not tokens:  # shared nowhere the bot can see
        report.removed += remove_file(kb, file.file_id)
        return report
    rows = _rows(kb.manifest).get(file.file_id, {})
    byte_hash = hashlib.sha256(data).hexdigest()
    wanted = {document_id(file.file_id, t): t for t in tokens}
    if _is_current(file, rows, _chunking(kb)) and all(r.byte_hash == byte_hash for r in rows.values()):
        report.unchanged += 1
        return report
    _drop(kb, [d for d in rows if d not in wanted])  # narrowed access goes first

    try:
        parsed = read_bytes(data, file.name, int(kb.config.max_file_mb * 1024 * 1024))
        per_token = {
            token: chunk_document(
                parsed,
                doc_id=document_id(file.file_id, token),
                doc_path=file.name,
                version=byte_hash[:16],
                size=kb.config.chunk_size,
                overlap=kb.config.chunk_overlap,
                access=token,
                url=file.permalink,
            )
            for token in tokens
        }
    except UnreadableDocument as exc:
        return skip_file(kb, file, exc.reason, byte_hash=byte_hash)
    except Exception as exc:  # a parser bug must not stop the other files
        log.exception("reading Slack file %s failed", file.file_id)
        return skip_file(kb, file, f"cannot parse: {type(exc).__name__}: {exc}", byte_hash=byte_hash)
    first = per_token[tokens[0]]
    if not first:
        return skip_file(kb, file, "no text found", byte_hash=byte_hash)

    title = parsed.title or file.title or file.name
    versions = [
        Version(
            _row(kb, file, t, byte_hash=byte_hash, title=title, chunk_count=len(first), status="indexed"),
            per_token[t],
            replaces=document_id(file.file_id, t) in rows,
        )
        for t in tokens
    ]
    vectors = kb.embedder.embed_documents([c.text for c in first])  # same text for every copy
    write_versions(kb.manifest, kb.open_store(), versions, vectors * len(tokens))
    if any(r.status == "indexed" for r in rows.values()):
        report.updated += 1
    else:
        report.added += 1
    log.info("indexed Slack file %s (%s) as %s: %d chunks", file.file_id, file.name, tokens, len(first))
    return report


def skip_file(kb: KnowledgeBase, file: SlackFile, reason: str, *, byte_hash: str = "") -> FilesReport:
    """Record why a file is not indexed (shown in status); an earlier readable version leaves the index."""
    rows = _rows(kb.manifest).get(file.file_id, {})
    tokens = file.access_tokens()
    if tokens:
        skipped = [
            _row(
                kb,
                file,
                t,
                byte_hash=byte_hash,
                title=file.title,
                chunk_count=0,
                status="skipped",
                reason=reason,
            )
            for t in tokens
        ]
        wanted = {r.doc_id for r in skipped}
        _drop(kb, [d for d in rows if d not in wanted])  # narrowed access goes first
        indexed = [d for d, r in rows.items() if d in wanted and may_hold_chunks(r)]
        mark_skipped(kb.manifest, kb.open_store(), skipped, indexed=indexed)
    else:
        _drop(kb, list(rows))
    report = FilesReport(skipped=[Skipped(_shown_path(file, (tokens or [""])[0], "skipped"), reason)])
    log.info("skipped Slack file %s: %s", file.file_id, reason)
    return report


def remove_file(kb: KnowledgeBase, file_id: str) -> int:
    """The file leaves the index at once (deleted or unshared everywhere); 1 if it was known."""
    rows = _rows(kb.manifest).get(file_id, {})
    _drop(kb, list(rows))
    return 1 if rows else 0


def remove_access(kb: KnowledgeBase, token: str) -> int:
    """Drop every Slack document visible through ``token`` (e.g. ``channel:G1`` when the bot leaves G1)."""
    doomed = [d for d, r in kb.manifest.documents(SOURCE).items() if r.access == token]
    _drop(kb, doomed)
    return len(doomed)


def known_private(kb: KnowledgeBase, channel_id: str) -> bool:
    """Whether any indexed Slack file is scoped to this conversation alone (it was private then)."""
    token = f"channel:{channel_id}"
    return any(r.access == token for r in kb.manifest.documents(SOURCE).values())


# --- a listing -----------------------------------------------------------------------------------


Fetch = Callable[[SlackFile], bytes]


def reconcile_files(
    kb: KnowledgeBase, listed: Iterable[SlackFile], *, complete: bool, fetch: Fetch, force: bool = False
) -> FilesReport:
    """Bring the Slack documents in line with a listing of the files the bot can see.

    New, changed, re-shared or half-written files are fetched (``fetch`` returns the bytes, raises
    ``UnreadableDocument`` for a file that cannot be had, anything else for a transient failure that
    the next reconcile retries) and indexed; files absent from a *complete* listing are removed.
    ``force`` fetches every listed file (a file_change event): unchanged bytes are still not re-embedded.
    """
    report = FilesReport()
    listed = list(listed)
    by_file = _rows(kb.manifest)
    chunking = _chunking(kb)
    for file in listed:
        rows = by_file.get(file.file_id, {})
        if not force and _is_current(file, rows, chunking):
            report.unchanged += 1
            continue
        if not is_supported(file.name):
            report.merge(skip_file(kb, file, unsupported_reason(file.name)))
            continue
        try:
            data = fetch(file)
        except UnreadableDocument as exc:
            report.merge(skip_file(kb, file, exc.reason))
            continue
        except Exception as exc:
            report.errors.append(f"{file.file_id}: {exc}")
            log.warning("could not fetch Slack file %s: %s", file.file_id, exc)
            continue
        try:
            report.merge(index_file(kb, file, data))
        except Exception as exc:  # e.g. Milvus down: the pending rows are redone next time
            report.errors.append(f"{file.file_id}: {exc}")
            log.warning("could not index Slack file %s: %s", file.file_id, exc)
    if complete:
        seen = {f.file_id for f in listed}
        for file_id in by_file:
            if file_id not in seen:
                report.removed += remove_file(kb, file_id)
    return report


__all__ = [
    "SOURCE",
    "FilesReport",
    "SlackFile",
    "document_id",
    "index_file",
    "is_supported",
    "known_private",
    "reconcile_files",
    "remove_access",
    "remove_file",
    "skip_file",
]
