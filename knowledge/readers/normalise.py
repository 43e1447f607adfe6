"""Whitespace clean-up and titles shared by every reader."""

from __future__ import annotations

import re
from pathlib import PurePath

# Characters that look like spaces (NBSP, the typographic spaces, ideographic space).
_SPACES = re.compile(r"[\t\v\xa0\u1680\u2000-\u200a\u202f\u205f\u3000]")
# Zero-width characters, BOMs, NUL and the other controls carry nothing a reader can see.
_INVISIBLE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\u200b-\u200d\u2060\ufeff]")
_RUNS = re.compile(r" {2,}")
_BLANK_LINES = re.compile(r"\n{3,}")


def clean_text(text: str, *, keep_indent: bool = False) -> str:
    """Normalise line endings and whitespace and drop invisible characters.

    Runs of spaces collapse to one, lines lose trailing (and, unless ``keep_indent`` is set for
    code, leading) spaces, and at most one blank line separates paragraphs.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n\n")
    if keep_indent:
        text = text.expandtabs(4)
    text = _INVISIBLE.sub("", _SPACES.sub(" ", text))
    lines = []
    for line in text.split("\n"):
        body = line.lstrip(" ")
        indent = line[: len(line) - len(body)] if keep_indent else ""
        lines.append(indent + _RUNS.sub(" ", body).rstrip())
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")


def clean_line(text: str) -> str:
    """One line of text: a heading, a title, a table cell."""
    return " ".join(clean_text(text).split())


def humanise_filename(name: str) -> str:
    """``db-failover_runbook.md`` -> ``Db failover runbook``: a title for documents without one."""
    stem = PurePath(name).stem if PurePath(name).suffix else PurePath(name).name
    words = " ".join(re.split(r"[\s_\-]+", stem)).strip()
    if not words:
        return name
    return words[0].upper() + words[1:] if words.islower() else words


def short_error(exc: BaseException, limit: int = 120) -> str:
    """A parser's exception as a short, one-line reason."""
    text = clean_line(str(exc)) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
