"""Connecting to Milvus (Lite file or server) and translating its errors into the knowledge layer's."""

from __future__ import annotations

import ipaddress
import logging
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from knowledge.config import KnowledgeConfig
from knowledge.errors import KnowledgeError, StoreUnavailable

log = logging.getLogger(__name__)

# pymilvus pings every 10 s even when idle; Milvus Lite's in-process gRPC server keeps gRPC's default
# ping policy and once answered GOAWAY "too_many_pings" after a quiet minute (seen in bench_search),
# dropping the connection. Over loopback to our own process a keepalive has nothing to detect anyway.
LITE_GRPC = {"grpc.keepalive_time_ms": 600_000, "grpc.keepalive_permit_without_calls": False}

LITE_LOCKED = (
    "Milvus Lite file {uri} is open in another process (a running `threadwise serve`?). "
    "Stop it, or point MILVUS_URI at a Milvus server."
)

# --- Milvus Lite: one server per file per process ---------------------------------------------------

_lite_lock = threading.Lock()
_lite_users: dict[str, int] = {}  # absolute .db path -> open ChunkStores using it in this process
_write_locks: dict[tuple[str, str], threading.Lock] = {}


def write_lock(where: str, collection: str) -> threading.Lock:
    """This process's lock for writes to one collection: Milvus Lite's engine is single-writer."""
    with _lite_lock:
        return _write_locks.setdefault((where, collection), threading.Lock())


def _lite_path_is_locked(path: Path) -> bool:
    """Whether another process holds the Milvus Lite data directory (its advisory flock on LOCK)."""
    try:
        import fcntl
    except ImportError:  # Windows: cannot tell
        return False
    lock_file = path / "LOCK"
    if not lock_file.exists():
        return False
    with open(lock_file, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def redact_uri(uri: str) -> str:
    """The URI as it can be shown: without user:password."""
    parts = urlsplit(uri)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit(parts._replace(netloc=netloc))
    return uri


def open_client(config: KnowledgeConfig, where: str, connect_timeout: float) -> tuple[Any, str | None]:
    """A MilvusClient for ``config.milvus_uri`` and, for Milvus Lite, the resolved path it holds
    (give it back with ``release_lite`` when done)."""
    from pymilvus.exceptions import MilvusException

    uri = config.milvus_uri
    if config.is_lite:
        if not uri.endswith(".db"):
            raise StoreUnavailable(
                f"MILVUS_URI {uri!r} is neither a Milvus Lite file (ending in .db) "
                "nor a Milvus server URL (http://, https://, tcp://)"
            )
        path = Path(uri).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot create the folder for Milvus Lite file {uri}: {exc.strerror}"
            ) from None
        if path.is_file():
            raise StoreUnavailable(
                f"{uri} is a file (an older Milvus Lite's format?); this Milvus Lite keeps a directory "
                "there. Move it away, or point MILVUS_URI at another path."
            )
        with _lite_lock:
            try:
                client = milvus_client(str(path), timeout=connect_timeout)
            except MilvusException as exc:
                if _lite_path_is_locked(path):
                    raise StoreUnavailable(LITE_LOCKED.format(uri=uri)) from None
                raise StoreUnavailable(f"cannot open Milvus Lite file {uri}: {exc.message}") from None
            lite_path = str(path.resolve())
            _lite_users[lite_path] = _lite_users.get(lite_path, 0) + 1
        return client, lite_path
    try:
        return milvus_client(uri, token=config.milvus_token or "", timeout=connect_timeout), None
    except MilvusException as exc:
        if is_unreachable(exc):
            wait = f"{connect_timeout:g}s"
            raise StoreUnavailable(
                f"cannot reach Milvus at {where} (refused, or no answer in {wait})"
            ) from None
        raise StoreUnavailable(f"cannot connect to Milvus at {where}: {one_line(exc)}") from None


def milvus_client(uri: str, *, token: str = "", timeout: float = 10.0) -> Any:
    """A MilvusClient of its own for a Milvus Lite file or server URL, with the gRPC options it needs.

    pymilvus shares one channel per address among clients and keeps the options of whichever client
    came first, so a client made elsewhere with pymilvus's defaults would impose them on ours: each
    client here gets a dedicated channel, closed with the client. A server on loopback is, in practice,
    `milvus-lite server` (the one `serve` starts for a Lite file, or a developer's): it keeps gRPC's
    default ping policy, so pymilvus's 10 s keepalive pings earn a GOAWAY "too_many_pings" and a
    dropped connection. A Milvus server permits those pings.
    """
    from pymilvus import MilvusClient

    options = {"grpc_options": LITE_GRPC} if uri.endswith(".db") or _on_loopback(uri) else {}
    return MilvusClient(uri, token=token, timeout=timeout, dedicated=True, **options)


def _on_loopback(uri: str) -> bool:
    host = urlsplit(uri).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def release_lite(path: str) -> None:
    """The last store on a Lite file stops its in-process server, which frees the file's lock."""
    with _lite_lock:
        _lite_users[path] -= 1
        if _lite_users[path] > 0:
            return
        del _lite_users[path]
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(path)


# --- errors -----------------------------------------------------------------------------------------


def milvus_errors() -> tuple[type[Exception], ...]:
    import grpc
    from pymilvus.exceptions import MilvusException

    return (MilvusException, grpc.RpcError, grpc.FutureTimeoutError)


def _code(exc: Exception) -> object:
    code = getattr(exc, "code", None)
    return code() if callable(code) else code


def is_unreachable(exc: Exception) -> bool:
    import grpc
    from pymilvus.exceptions import MilvusUnavailableException

    return (
        isinstance(exc, (MilvusUnavailableException, grpc.FutureTimeoutError))
        or _code(exc)
        in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, 2)  # 2: ConnectFailed
        or "Fail connecting to server" in one_line(exc)
    )


def is_transient(exc: Exception) -> bool:
    import grpc

    return _code(exc) == grpc.StatusCode.DEADLINE_EXCEEDED or bool(getattr(exc, "retriable", False))


def one_line(exc: Exception) -> str:
    code = _code(exc)
    message = getattr(exc, "message", None) or (code.name if hasattr(code, "name") else str(exc))
    message = message or type(exc).__name__
    return " ".join(str(message).split())[:300]


def translate(where: str, what: str, exc: Exception) -> KnowledgeError:
    """A Milvus error as the knowledge layer's: StoreUnavailable when Milvus did not answer."""
    if is_unreachable(exc):
        return StoreUnavailable(f"Milvus at {where} did not answer ({what}): {one_line(exc)}")
    return KnowledgeError(f"Milvus {what} failed: {one_line(exc)}")
