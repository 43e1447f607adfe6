"""One reader per format. ``read_document`` picks one by suffix and returns a ParsedDocument.

Every failure is an ``UnreadableDocument`` whose ``reason`` is short enough for a sync summary
("encrypted PDF", "too large: 61.2 MB > 50 MB limit"); no parser exception escapes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePath

from knowledge.errors import UnreadableDocument
from knowledge.readers import csv, docx, html, markdown, pdf, text
from knowledge.readers.normalise import short_error
from knowledge.types import ParsedDocument

Reader = Callable[[bytes, str], ParsedDocument]

_READERS: dict[str, Reader] = {
    ".md": markdown.read,
    ".markdown": markdown.read,
    ".txt": text.read,
    ".text": text.read,
    ".html": html.read,
    ".htm": html.read,
    ".pdf": pdf.read,
    ".docx": docx.read,
    ".csv": csv.read,
}
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_READERS)

_MB = 1024 * 1024

__all__ = ["SUPPORTED_SUFFIXES", "read_bytes", "read_document"]


def read_document(path: Path, max_bytes: int) -> ParsedDocument:
    """Read the file at ``path``; files over ``max_bytes`` are refused before they are read."""
    reader = _reader_for(path.name)
    try:
        size = path.stat().st_size
        check_size(size, max_bytes)
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableDocument(f"cannot read file: {exc.strerror or short_error(exc)}") from None
    return _read(reader, data, path.name, max_bytes)


def read_bytes(data: bytes, name: str, max_bytes: int | None = None) -> ParsedDocument:
    """Read a document held in memory (a Slack file); ``name`` gives the format and fallback title."""
    return _read(_reader_for(name), data, name, max_bytes)


def _reader_for(name: str) -> Reader:
    suffix = PurePath(name).suffix.lower()
    if suffix not in _READERS:
        raise UnreadableDocument(f"unsupported format {suffix or '(no extension)'}")
    return _READERS[suffix]


def check_size(size: int, max_bytes: int | None) -> None:
    if size == 0:
        raise UnreadableDocument("empty file")
    if max_bytes is not None and size > max_bytes:
        raise UnreadableDocument(f"too large: {_human(size)} > {_human(max_bytes, exact=True)} limit")


def _human(size: int, *, exact: bool = False) -> str:
    """61.2 MB; a limit (``exact``) drops a trailing ".0" so 50 MB reads as set."""
    for unit, scale in (("MB", _MB), ("KB", 1024)):
        if size >= scale:
            number = f"{size / scale:.1f}"
            return f"{number.removesuffix('.0') if exact else number} {unit}"
    return f"{size} bytes"


def _read(reader: Reader, data: bytes, name: str, max_bytes: int | None) -> ParsedDocument:
    check_size(len(data), max_bytes)
    try:
        return reader(data, PurePath(name).name)
    except UnreadableDocument:
        raise
    except RecursionError:
        raise UnreadableDocument("corrupt document: nested too deeply") from None
    except MemoryError:
        raise UnreadableDocument("too large to parse in memory") from None
    except Exception as exc:  # a parser bug or an input no reader anticipated: still a reason, not a crash
        raise UnreadableDocument(f"unreadable {PurePath(name).suffix.lower()}: {short_error(exc)}") from None
