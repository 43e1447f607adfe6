"""Every line written to the process's stderr, by anything, becomes a log record (so, in JSON mode,
one JSON object per line).

Logging covers Python code, but some writers bypass it: C libraries (gRPC's core under pymilvus),
``print(..., file=sys.stderr)`` and ``traceback.print_exc()`` in libraries, Python's own last-resort
messages. ``capture_stderr`` points file descriptor 2 at a pipe; a thread reads it line by line and
logs each line on the ``stderr`` logger (a line that already is a JSON object passes through
untouched), while the log handler writes to the real stderr it returns. ``release`` puts fd 2 back
and drains the pipe, at exit too.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import sys
import threading
from typing import TextIO

log = logging.getLogger("stderr")

# A raw line that looks like a failure is logged as an error, anything else as a warning.
_ERROR = re.compile(r"\b(ERROR|CRITICAL|FATAL|Traceback|Exception|Error)\b|^E\d{4} ")

_state: dict[str, object] = {}


def capture_stderr() -> TextIO:
    """Redirect fd 2 into a reader thread; return a stream on the real stderr for the log handler."""
    if "stream" in _state:
        return _state["stream"]  # type: ignore[return-value]
    sys.stderr.flush()
    real = os.dup(2)
    stream = os.fdopen(real, "w", buffering=1, encoding="utf-8", errors="backslashreplace")
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    # The handler never writes into the pipe, so nothing loops; a failing handler must stay quiet too.
    logging.raiseExceptions = False
    reader = threading.Thread(target=_relay, args=(read_end, stream), name="stderr-lines", daemon=True)
    reader.start()
    _state.update(stream=stream, real=real, reader=reader)
    atexit.register(release)
    return stream


def _relay(read_end: int, stream: TextIO) -> None:
    with os.fdopen(read_end, "rb") as pipe:
        for raw in pipe:
            line = raw.decode("utf-8", "backslashreplace").rstrip("\r\n")
            if not line.strip():
                continue
            if _is_json_object(line):
                stream.write(line + "\n")
                continue
            log.log(logging.ERROR if _ERROR.search(line) else logging.WARNING, "%s", line)


def _is_json_object(line: str) -> bool:
    if not line.startswith("{"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def release(timeout: float = 2.0) -> None:
    """Give fd 2 back to the real stderr and wait for the lines still in the pipe."""
    if "real" not in _state:
        return
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os.dup2(_state.pop("real"), 2)  # closes the pipe's last write end: the reader sees its end
    reader = _state.pop("reader")
    if isinstance(reader, threading.Thread):
        reader.join(timeout)
    _state.pop("stream", None)


__all__ = ["capture_stderr", "release"]
