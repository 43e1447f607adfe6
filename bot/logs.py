"""Logging for the long-running commands: one line per event, readable on a terminal or as JSON.

Secrets never reach a log line: a filter masks anything shaped like a Slack token (``xoxb-``,
``xapp-``, ``xoxp-``...), an OpenAI-style key (``sk-...``) or a password in a URL, and, whatever their
shape, the configured secret values themselves (``register_secrets``: the settings' ``SecretStr``
fields, registered when a command starts), wherever they appear: message, arguments, traceback,
``extra`` fields, the JSON line's context.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import re
import sys
import threading
import time
from contextvars import ContextVar
from types import TracebackType
from typing import Any

from pydantic import SecretStr

_SECRETS = re.compile(
    r"\b(xox[abpers]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|sk-[A-Za-z0-9_-]{8,})"
    r"|(?<=://)([^/\s:@]+):([^/\s@]+)@"
)


MASK = "•••"
MIN_SECRET_LENGTH = 6  # shorter values would mask ordinary words; no real token or key is that short
_secret_values: set[str] = set()
_values_pattern: re.Pattern[str] | None = None


def register_secrets(*values: str | None) -> None:
    """Mask these exact values in every log line from now on (also as they appear inside JSON)."""
    global _values_pattern
    for value in values:
        if value and len(value.strip()) >= MIN_SECRET_LENGTH:
            _secret_values.update({value, value.strip(), json.dumps(value)[1:-1]})
    if _secret_values:
        ordered = sorted(_secret_values, key=len, reverse=True)  # the longest first: no partial masks
        _values_pattern = re.compile("|".join(re.escape(value) for value in ordered))


def register_settings_secrets(settings: Any) -> None:
    """Register every ``SecretStr`` field of a pydantic settings object (tokens, keys, secrets)."""
    register_secrets(
        *(
            value.get_secret_value()
            for name in type(settings).model_fields
            if isinstance(value := getattr(settings, name, None), SecretStr)
        )
    )


def redact(text: str) -> str:
    def mask(match: re.Match[str]) -> str:
        if match.group(1):
            return match.group(1)[:5] + "…"
        return f"{match.group(2)}:•••@"

    # Shapes first (whole tokens, URL passwords), then the exact configured values that remain: masking a
    # value first could cut a token so its shape no longer matches, leaving the rest of it visible.
    text = _SECRETS.sub(mask, text)
    if _values_pattern is not None:
        text = _values_pattern.sub(MASK, text)
    return text


_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        for name, value in list(vars(record).items()):  # logger.info(..., extra={...})
            if name not in _RECORD_FIELDS and value is not None and not isinstance(value, (int, float, bool)):
                shown = value if isinstance(value, str) else repr(value)
                if redact(shown) != shown:
                    setattr(record, name, redact(shown))
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
        if record.stack_info:
            entry["stack"] = record.stack_info
        return redact(json.dumps(entry, ensure_ascii=False))  # the context too (bind() takes anything)


# Libraries that install their own handlers at import (pymilvus: "[ERROR][_log_rpc_error] …" on
# stderr; agno: its own lines on stdout), imported first so that their loggers can be adopted.
SELF_CONFIGURED = ("pymilvus", "agno.utils.log")


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Every log line of the process through one stderr handler in ``fmt``; quiet the chatty libraries.

    The libraries' own handlers are removed so that their records reach ours; Python warnings and
    uncaught exceptions (any thread) become records too. With ``json``, whatever else writes to
    stderr (C libraries, prints) is turned into records as well (``bot.stderr_capture``).
    """
    stream = sys.stderr
    if fmt == "json":
        from bot.stderr_capture import capture_stderr

        stream = capture_stderr()
    handler = logging.StreamHandler(stream)
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
    _adopt_library_loggers()
    logging.captureWarnings(True)  # warnings.warn(...) -> the "py.warnings" logger
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    noisy_loggers = ("aiohttp.access", "slack_sdk", "slack_bolt", "threadwise.bolt", "httpx", "apscheduler")
    for noisy in (*noisy_loggers, "faiss", "milvus_lite"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def _adopt_library_loggers() -> None:
    for module in SELF_CONFIGURED:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and (logger.handlers or not logger.propagate):
            for own in list(logger.handlers):
                logger.removeHandler(own)
            logger.propagate = True


def _log_uncaught(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, tb)
        return
    logging.getLogger("threadwise").critical("uncaught exception", exc_info=(kind, value, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread else "?"
    logging.getLogger("threadwise").error(
        "uncaught exception in thread %s",
        name,
        exc_info=(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback),
    )


__all__ = [
    "JsonFormatter",
    "RedactSecrets",
    "bind",
    "configure_logging",
    "log_context",
    "redact",
    "register_secrets",
    "register_settings_secrets",
]
