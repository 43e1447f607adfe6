"""Logging for the long-running commands: one line per event, readable on a terminal or as JSON.

Secrets never reach a log line: a filter masks anything shaped like a Slack token (``xoxb-``,
``xapp-``, ``xoxp-``...), an OpenAI-style key (``sk-...``) or a password in a URL, whatever logged it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from contextvars import ContextVar
from typing import Any

_SECRETS = re.compile(
    r"\b(xox[abpers]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|sk-[A-Za-z0-9_-]{8,})"
    r"|(?<=://)([^/\s:@]+):([^/\s@]+)@"
)


def redact(text: str) -> str:
    def mask(match: re.Match[str]) -> str:
        if match.group(1):
            return match.group(1)[:5] + "…"
        return f"{match.group(2)}:•••@"

    return _SECRETS.sub(mask, text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


# What the current task works on (the Slack event_id, the claim): added to every JSON line it logs.
# A ContextVar follows asyncio tasks, so concurrent answers never mix their ids.
_context: ContextVar[dict[str, Any] | None] = ContextVar("threadwise_log_context", default=None)


def bind(**fields: Any) -> None:
    """Add ``fields`` to every log line of the current task (and the tasks it starts)."""
    _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}})


def log_context() -> dict[str, Any]:
    return dict(_context.get() or {})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **(_context.get() or {}),
        }
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Replace the root handlers with one stderr handler in ``fmt``; quiet the chatty libraries."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactSecrets())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    noisy_loggers = ("aiohttp.access", "slack_sdk", "slack_bolt", "threadwise.bolt", "httpx", "apscheduler")
    for noisy in (*noisy_loggers, "faiss", "milvus_lite"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


__all__ = ["JsonFormatter", "RedactSecrets", "bind", "configure_logging", "log_context", "redact"]
