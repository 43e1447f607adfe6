"""One sync: crawl the folders, index what changed, remove what is gone.

Guarantees (tested in tests/test_sync.py):
- unchanged bytes are never parsed or embedded (size + mtime, then the byte hash);
- a changed document's new chunks are written before its old ones are removed;
- documents are removed only after a complete crawl, and never more than half of a folder's in one
  sync unless the operator allows it (``knowledge.mass_delete``);
- killed at any moment and run again, the index ends exactly as a clean sync leaves it, because
  every document's manifest row changes before Milvus is touched (``knowledge.writeahead``);
- asked to stop (the process shutting down), it ends at the next safe point: between documents, a
  write round under way finished first;
- the sync lock's heartbeat ends with the sync, whatever fails.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from knowledge.chunking import chunk_document
from knowledge.config import KnowledgeConfig
from knowledge.embedders import Embedder
from knowledge.errors import SyncBusy, UnreadableDocument
from knowledge.manifest import DocumentRow, Manifest, owner_id, owner_is_dead
from knowledge.mass_delete import ALLOW_HINT, split_deletions
from knowledge.readers import SUPPORTED_SUFFIXES, check_size, read_bytes
from knowledge.store import ChunkStore
from knowledge.types import WORKSPACE, Chunk, Skipped, SyncReport
from knowledge.writeahead import Version, mark_skipped, may_hold_chunks, remove_documents, write_versions

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (phase, done, total)

SYNC_LOCK = "knowledge-sync"
LOCK_LEASE = timedelta(seconds=60)  # renewed every LOCK_RENEW while the sync runs
LOCK_RENEW = 15.0
BATCH_CHUNKS = 2048  # chunks per write round: Milvus Lite pays per call (bench/bench_sync.py)
STOPPED = "stopped before the end (the process is shutting down); the next sync does the rest"


@dataclass(frozen=True)
class FoundFile:
    doc_id: str
    path: str  # relative, as cited
    location: Path
    size: int
    mtime_ns: int


@dataclass
class Crawl:
    files: list[FoundFile] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.errors


def document_id(location: Path) -> str:
    return hashlib.sha1(f"folder:{location}".encode()).hexdigest()


def crawl(roots: tuple[Path, ...]) -> Crawl:
    """Every regular file under the roots, hidden files and folders left out."""
    result = Crawl()
    if not roots:
        result.errors.append("no document folders configured (set THREADWISE_DOCS)")
    prefix_with_root = len(roots) > 1
    for root in roots:
        root = root.expanduser().resolve()
        if not root.is_dir():
            result.errors.append(f"document folder {root} does not exist or is not a folder")
            continue

        def _on_error(err: OSError) -> None:
            result.errors.append(f"cannot read {err.filename}: {err.strerror}")

        for dirpath, dirnames, filenames in os.walk(root, onerror=_on_error):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                location = Path(dirpath) / name
                try:
                    st = location.stat()
                except OSError as exc:
                    result.errors.append(f"cannot stat {location}: {exc.strerror}")
                    continue
                if not location.is_file():
                    continue
                rel = location.relative_to(root).as_posix()
                shown = f"{root.name}/{rel}" if prefix_with_root else rel
                result.files.append(
                    FoundFile(document_id(location), shown, location, st.st_size, st.st_mtime_ns)
                )
    return result


@dataclass
class _Pending:
    found: FoundFile
    byte_hash: str
    title: str
    chunks: list[Chunk]
    existed: bool  # counted as updated rather than added
    had_row: bool  # the manifest knows it, so Milvus may hold chunks of an older version


class Syncer:
    def __init__(
        self,
        config: KnowledgeConfig,
        manifest: Manifest,
        store: ChunkStore,
        embedder: Embedder,
        *,
        owner: str | None = None,
        stop: threading.Event | None = None,
    ):
        self.config = config
        self.manifest = manifest
        self.store = store
        self.embedder = embedder
        self.owner = owner or owner_id()
        self.stop = stop or threading.Event()  # set: end at the next safe point
        self.chunking = f"{config.chunk_size}/{config.chunk_overlap}"

    def _acquire(self) -> None:
        if self.manifest.acquire_lock(SYNC_LOCK, self.owner, LOCK_LEASE):
            return
        holder = self.manifest.lock_holder(SYNC_LOCK)
        if holder and owner_is_dead(holder[0]):
            log.warning("taking over the sync lock of %s, which no longer runs", holder[0])
            if self.manifest.take_over_lock(SYNC_LOCK, holder[0], self.owner, LOCK_LEASE):
                return
        raise SyncBusy("another sync is running (one sync at a time); try again when it ends")

    def _heartbeat(self, done: threading.Event) -> None:
        while not done.wait(LOCK_RENEW):
            try:
                self.manifest.renew_lock(SYNC_LOCK, self.owner, LOCK_LEASE)
            except Exception:  # a missed renewal is retried; the lease outlives several
                log.warning("could not renew the sync lock", exc_info=True)

    def run(
        self, *, rebuild: bool = False, allow_mass_delete: bool = False, progress: Progress | None = None
    ) -> SyncReport:
        self._acquire()
        done = threading.Event()
        heartbeat = threading.Thread(target=self._heartbeat, args=(done,), name="sync-lock", daemon=True)
        heartbeat.start()
        try:
            return self._recorded(rebuild, allow_mass_delete, progress or (lambda *_: None))
        finally:
            # Whatever failed above (a database blip in start_run or finish_run included), the lock
            # is renewed no longer: at worst its lease runs out instead of being released.
            done.set()
            heartbeat.join()
            try:
                self.manifest.release_lock(SYNC_LOCK, self.owner)
            except Exception:
                log.warning(
                    "could not release the sync lock; its lease ends in %s", LOCK_LEASE, exc_info=True
                )

    def _recorded(self, rebuild: bool, allow_mass_delete: bool, progress: Progress) -> SyncReport:
        """One sync, recorded in the manifest's runs."""
        started = time.monotonic()
        report = SyncReport(started_at=datetime.now(UTC).isoformat())
        run_id = self.manifest.start_run()
        try:
            self._run(report, rebuild, allow_mass_delete, progress)
        except Exception as exc:
            report.ok = False
            report.error = str(exc) or type(exc).__name__
            raise
        finally:
            report.seconds = round(time.monotonic() - started, 3)
            report.finished_at = datetime.now(UTC).isoformat()
            try:
                self.manifest.finish_run(run_id, report)
            except Exception:  # the sync's own outcome matters more than its record
                log.error("could not record the end of sync run %s", run_id, exc_info=True)
        return report

    # ------------------------------------------------------------------------------------------

    def _run(self, report: SyncReport, rebuild: bool, allow_mass_delete: bool, progress: Progress) -> None:
        if rebuild:
            self.store.drop()
            self.manifest.clear()  # the whole collection went: Slack files are re-fetched by their reconcile
        self.store.open()
        found = crawl(self.config.docs)
        rows = self.manifest.documents("folder")
        max_bytes = int(self.config.max_file_mb * 1024 * 1024)
        batch: list[_Pending] = []
        total = len(found.files)
        progress("index", 0, total)
        for done, item in enumerate(found.files, 1):
            if self.stop.is_set():
                # A safe point: every row is indexed, skipped or untouched (the batch not yet written
                # has not touched the manifest or Milvus), so dropping the batch loses nothing.
                report.ok, report.error = False, STOPPED
                log.warning("sync %s", STOPPED)
                return
            self._consider(item, rows.get(item.doc_id), max_bytes, batch, report)
            if sum(len(p.chunks) for p in batch) >= BATCH_CHUNKS:
                self._write(batch, report)
                batch.clear()
            progress("index", done, total)
        self._write(batch, report)

        if not found.complete:
            report.ok = False
            report.error = "crawl incomplete, nothing deleted: " + "; ".join(found.errors[:5])
            log.warning(report.error)
            return
        seen = {f.doc_id for f in found.files}
        gone, refusals = split_deletions(
            rows, (doc_id for doc_id in rows if doc_id not in seen), self.config.docs, allow=allow_mass_delete
        )
        if refusals:
            report.ok = False
            report.refused_deletions = [refusal.message() for refusal in refusals]
            report.error = "; ".join(report.refused_deletions) + "; " + ALLOW_HINT
            log.error("sync %s", report.error)
        remove_documents(self.manifest, self.store, gone)
        report.deleted = sum(1 for d in gone if rows[d].status != "skipped")

    def _consider(
        self,
        item: FoundFile,
        row: DocumentRow | None,
        max_bytes: int,
        batch: list[_Pending],
        report: SyncReport,
    ) -> None:
        settled = row is not None and row.status in ("indexed", "skipped")
        # A file skipped for its size is judged again: the limit may have been raised since.
        if settled and row.status == "skipped" and (row.reason or "").startswith("too large"):
            settled = False
        if settled and row.status == "indexed" and row.chunking != self.chunking:
            settled = False  # chunk size or overlap changed since: cut it again
        if settled and row.size == item.size and row.mtime_ns == item.mtime_ns:
            self._count_unchanged(row, report)
            return
        if item.location.suffix.lower() not in SUPPORTED_SUFFIXES:
            self._skip(
                item, row, "", f"unsupported format {item.location.suffix or '(no extension)'}", report
            )
            return
        try:
            check_size(item.size, max_bytes)  # before reading a byte of it
        except UnreadableDocument as exc:
            self._skip(item, row, "", exc.reason, report)
            return
        try:
            data = item.location.read_bytes()
        except OSError as exc:
            self._skip(item, row, "", f"cannot read: {exc.strerror}", report)
            return
        byte_hash = hashlib.sha256(data).hexdigest()
        if settled and row.byte_hash == byte_hash:
            self.manifest.touch(item.doc_id, item.mtime_ns)
            self._count_unchanged(row, report)
            return
        try:
            parsed = read_bytes(data, item.location.name)
            chunks = chunk_document(
                parsed,
                doc_id=item.doc_id,
                doc_path=item.path,
                version=byte_hash[:16],
                size=self.config.chunk_size,
                overlap=self.config.chunk_overlap,
                access=WORKSPACE,
            )
        except UnreadableDocument as exc:
            self._skip(item, row, byte_hash, exc.reason, report)
            return
        except Exception as exc:  # a parser bug must not stop the other documents
            log.exception("reading %s failed", item.path)
            self._skip(item, row, byte_hash, f"cannot parse: {type(exc).__name__}: {exc}", report)
            return
        if not chunks:
            self._skip(item, row, byte_hash, "no text found", report)
            return
        existed = row is not None and row.status in ("indexed", "pending") and row.chunk_count > 0
        batch.append(_Pending(item, byte_hash, parsed.title, chunks, existed, row is not None))

    @staticmethod
    def _count_unchanged(row: DocumentRow, report: SyncReport) -> None:
        if row.status == "skipped":
            report.skipped.append(Skipped(row.path, row.reason or ""))
        else:
            report.unchanged += 1

    def _skip(
        self, item: FoundFile, row: DocumentRow | None, byte_hash: str, reason: str, report: SyncReport
    ) -> None:
        """Record a skipped document; an earlier readable version's chunks leave the index."""
        skipped = self._row(item, byte_hash, "", 0, "skipped", reason)
        had_chunks = [item.doc_id] if may_hold_chunks(row) else []
        mark_skipped(self.manifest, self.store, [skipped], indexed=had_chunks)
        report.skipped.append(Skipped(item.path, reason))

    def _write(self, batch: list[_Pending], report: SyncReport) -> None:
        if not batch:
            return
        chunks = [c for p in batch for c in p.chunks]
        vectors = self.embedder.embed_documents([c.text for c in chunks])
        versions = [
            Version(
                self._row(p.found, p.byte_hash, p.title, len(p.chunks), "indexed", None), p.chunks, p.had_row
            )
            for p in batch
        ]
        write_versions(self.manifest, self.store, versions, vectors)
        for pending in batch:
            if pending.existed:
                report.updated += 1
            else:
                report.added += 1
        report.chunks += len(chunks)

    def _row(
        self, item: FoundFile, byte_hash: str, title: str, chunk_count: int, status: str, reason: str | None
    ) -> DocumentRow:
        return DocumentRow(
            doc_id=item.doc_id,
            source="folder",
            path=item.path,
            location=str(item.location),
            title=title,
            access=WORKSPACE,
            size=item.size,
            mtime_ns=item.mtime_ns,
            byte_hash=byte_hash,
            chunk_count=chunk_count,
            status=status,
            chunking=self.chunking,
            reason=reason,
            last_sync=None,
        )
