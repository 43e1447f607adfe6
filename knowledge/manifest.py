"""The manifest: what is indexed, per document, in SQL (``DATABASE_URL``).

A row is written *before* Milvus is touched (status ``pending``) and marked ``indexed`` after, so a
sync killed at any moment leaves a row that tells the next sync to redo that document. Every
document that has chunks in Milvus therefore has a row here; nothing has to scan Milvus to find
orphans.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from knowledge.database import make_engine
from knowledge.types import Skipped, SyncReport

metadata = MetaData()

documents = Table(
    "kb_documents",
    metadata,
    Column("doc_id", String(64), primary_key=True),
    Column("source", String(32), nullable=False),  # "folder", "slack" or "saved"
    Column("path", String(1024), nullable=False),  # shown and cited: relative to its folder
    Column("location", String(2048), nullable=False),  # where to read it: absolute path or URL
    Column("title", String(512), nullable=False, default=""),
    Column("access", String(256), nullable=False, default="workspace"),
    Column("size", BigInteger, nullable=False, default=0),  # bytes: files over 2 GiB exist
    Column("mtime_ns", String(32), nullable=False, default="0"),  # str: exceeds 32-bit INTEGER on some DBs
    Column("byte_hash", String(64), nullable=False, default=""),
    Column("chunk_count", Integer, nullable=False, default=0),
    # How the chunks were cut (size, overlap): a change re-chunks the document on the next sync.
    Column("chunking", String(64), nullable=False, default=""),
    Column("status", String(16), nullable=False),  # pending | indexed | skipped | deleting
    Column("reason", Text, nullable=True),
    Column("last_sync", DateTime(timezone=True), nullable=True),
)

sync_runs = Table(
    "kb_sync_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("ok", Boolean, nullable=True),
    Column("seconds", Float, nullable=True),
    Column("summary", JSON, nullable=True),
    Column("error", Text, nullable=True),
)

locks = Table(
    "locks",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("owner", String(256), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)


@dataclass
class DocumentRow:
    doc_id: str
    source: str
    path: str
    location: str
    title: str
    access: str
    size: int
    mtime_ns: int
    byte_hash: str
    chunk_count: int
    status: str
    chunking: str
    reason: str | None
    last_sync: datetime | None


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    # SQLite hands datetimes back naive; everything stored here is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str) -> bool:
    """True when ``owner`` was a process on this host that no longer runs (e.g. a killed sync)."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another host: only its lease expiry can tell
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Manifest:
    def __init__(self, database_url: str):
        self.engine = make_engine(database_url)
        metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # Documents -------------------------------------------------------------------------------

    def documents(self, source: str | None = None) -> dict[str, DocumentRow]:
        query = select(documents)
        if source:
            query = query.where(documents.c.source == source)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return {row["doc_id"]: _row(row) for row in rows}

    def get(self, doc_id: str) -> DocumentRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(documents).where(documents.c.doc_id == doc_id)).mappings().first()
        return _row(row) if row else None

    def versions(self, doc_ids: Iterable[str]) -> dict[str, str]:
        """The content hash each of these documents was indexed from, in one query (unknown ones left out)."""
        wanted = list(dict.fromkeys(doc_ids))
        if not wanted:
            return {}
        query = select(documents.c.doc_id, documents.c.byte_hash).where(documents.c.doc_id.in_(wanted))
        with self.engine.connect() as conn:
            return {doc_id: byte_hash for doc_id, byte_hash in conn.execute(query) if byte_hash}

    def put(self, row: DocumentRow) -> None:
        self.put_many([row])

    def put_many(self, rows: Iterable[DocumentRow]) -> None:
        """Insert or update rows, all in one transaction."""
        with self.engine.begin() as conn:
            for row in rows:
                values = {**row.__dict__, "mtime_ns": str(row.mtime_ns), "last_sync": row.last_sync or _now()}
                updated = conn.execute(
                    update(documents).where(documents.c.doc_id == row.doc_id).values(**values)
                ).rowcount
                if not updated:
                    conn.execute(insert(documents).values(**values))

    def touch(self, doc_id: str, mtime_ns: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(documents).where(documents.c.doc_id == doc_id).values(mtime_ns=str(mtime_ns)))

    def set_status(self, doc_ids: Iterable[str], status: str) -> None:
        ids = list(doc_ids)
        if not ids:
            return
        with self.engine.begin() as conn:
            for start in range(0, len(ids), 500):
                conn.execute(
                    update(documents)
                    .where(documents.c.doc_id.in_(ids[start : start + 500]))
                    .values(status=status, last_sync=_now())
                )

    def remove(self, doc_ids: Iterable[str]) -> None:
        ids = list(doc_ids)
        with self.engine.begin() as conn:
            for start in range(0, len(ids), 500):
                conn.execute(delete(documents).where(documents.c.doc_id.in_(ids[start : start + 500])))

    def clear(self, source: str | None = None) -> None:
        with self.engine.begin() as conn:
            query = delete(documents)
            if source:
                query = query.where(documents.c.source == source)
            conn.execute(query)

    def counts(self) -> tuple[int, int, dict[str, int]]:
        """(documents indexed, chunks indexed, documents by status)."""
        with self.engine.connect() as conn:
            by_status = dict(
                conn.execute(select(documents.c.status, func.count()).group_by(documents.c.status)).all()
            )
            chunks = conn.execute(
                select(func.coalesce(func.sum(documents.c.chunk_count), 0)).where(
                    documents.c.status == "indexed"
                )
            ).scalar_one()
        return by_status.get("indexed", 0), int(chunks), {k: int(v) for k, v in by_status.items()}

    def skipped(self) -> list[Skipped]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(documents.c.path, documents.c.reason)
                .where(documents.c.status == "skipped")
                .order_by(documents.c.path)
            ).all()
        return [Skipped(path, reason or "") for path, reason in rows]

    # Sync runs -------------------------------------------------------------------------------

    def start_run(self) -> int:
        with self.engine.begin() as conn:
            return conn.execute(insert(sync_runs).values(started_at=_now())).inserted_primary_key[0]

    def finish_run(self, run_id: int, report: SyncReport) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(sync_runs)
                .where(sync_runs.c.id == run_id)
                .values(
                    finished_at=_now(),
                    ok=report.ok,
                    seconds=report.seconds,
                    summary=json.loads(json.dumps(report.to_dict())),
                    error=report.error,
                )
            )

    def last_run(self) -> dict | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    select(sync_runs)
                    .where(sync_runs.c.finished_at.is_not(None))
                    .order_by(sync_runs.c.id.desc())
                )
                .mappings()
                .first()
            )
        if not row:
            return None
        summary = row["summary"] or {}
        return {
            "started_at": _aware(row["started_at"]).isoformat(),
            "finished_at": _aware(row["finished_at"]).isoformat(),
            "ok": row["ok"],
            "seconds": row["seconds"],
            "error": row["error"],
            **{k: summary.get(k) for k in ("added", "updated", "deleted", "unchanged", "chunks")},
            "skipped": len(summary.get("skipped") or []),
            "refused_deletions": list(summary.get("refused_deletions") or []),
        }

    # Locks -----------------------------------------------------------------------------------

    def acquire_lock(self, name: str, owner: str, lease: timedelta) -> bool:
        """Take ``name`` if free or expired: one atomic statement either way, safe across processes."""
        now = _now()
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(locks)
                .where(locks.c.name == name, (locks.c.expires_at < now) | (locks.c.owner == owner))
                .values(owner=owner, expires_at=now + lease)
            ).rowcount
            if taken:
                return True
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(locks).values(name=name, owner=owner, expires_at=now + lease))
            return True
        except IntegrityError:
            return False

    def lock_holder(self, name: str) -> tuple[str, datetime] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(locks.c.owner, locks.c.expires_at).where(locks.c.name == name)).first()
        return (row[0], _aware(row[1])) if row else None

    def take_over_lock(self, name: str, dead_owner: str, owner: str, lease: timedelta) -> bool:
        """Take a lock from an owner known to be dead (atomic: only if that owner still holds it)."""
        with self.engine.begin() as conn:
            return bool(
                conn.execute(
                    update(locks)
                    .where(locks.c.name == name, locks.c.owner == dead_owner)
                    .values(owner=owner, expires_at=_now() + lease)
                ).rowcount
            )

    def renew_lock(self, name: str, owner: str, lease: timedelta) -> bool:
        with self.engine.begin() as conn:
            return bool(
                conn.execute(
                    update(locks)
                    .where(locks.c.name == name, locks.c.owner == owner)
                    .values(expires_at=_now() + lease)
                ).rowcount
            )

    def release_lock(self, name: str, owner: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(locks).where(locks.c.name == name, locks.c.owner == owner))


def _row(row) -> DocumentRow:
    data = dict(row)
    data["mtime_ns"] = int(data["mtime_ns"] or 0)
    if data.get("last_sync") is not None:
        data["last_sync"] = _aware(data["last_sync"])
    return DocumentRow(**data)
