"""The citation contract: an answer may cite only chunks retrieved for it, and lists exactly those.

A marker is ``[n]`` or a group ``[n, m]``. Each number must point at a chunk this answer's searches
returned; any other number is removed (and counted) before anyone sees it. The numbers left are
renumbered 1..m in order of first use, and the sources are exactly the chunks cited.

``CitationFilter`` does this on a stream: it decides each marker the moment it closes and holds back
only what it cannot decide yet (``[1`` at the end of a piece, spaces that may precede a marker, a
backtick run that may grow). Renumbering by first use depends only on what came before, so the
streamed text and the text of the whole answer are the same. Text inside backtick code spans or
fences is left alone: ``items[0]`` is code, not a citation.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass

from bot.answer import Source
from knowledge.types import Chunk

MARKER = re.compile(r"\[\s*\d{1,4}\s*(?:,\s*\d{1,4}\s*)*\]")
# Everything a marker can start with; a tail matching this may still become one.
_PARTIAL = re.compile(r"\[\s*(?:\d{1,4}\s*(?:,\s*(?:\d{1,4}\s*)?)*)?")
_MAX_PARTIAL = 48  # a longer undecided tail is plain text: never hold a stream back for long
_SPACE = " \t"
SNIPPET_CHARS = 280


@dataclass(frozen=True)
class Checked:
    """An answer's text after the contract: ``cited[i]`` is the original number now shown as ``[i + 1]``."""

    text: str
    cited: tuple[int, ...]
    stripped: int


class CitationFilter:
    """Checks citation markers in text that arrives in pieces.

    ``valid`` is consulted when a marker closes, so a live container (a dict that grows as searches
    return chunks) works: a number becomes citable as soon as its chunk has been retrieved.
    """

    def __init__(self, valid: Container[int]):
        self._valid = valid
        self._pending = ""
        self._new: dict[int, int] = {}  # original number -> shown number
        self._parts: list[str] = []
        self.stripped = 0

    @property
    def text(self) -> str:
        """Everything released so far."""
        return "".join(self._parts)

    @property
    def cited(self) -> tuple[int, ...]:
        return tuple(self._new)

    def feed(self, piece: str) -> str:
        """Add a piece of the answer; returns the text that can now be shown (possibly empty)."""
        return self._run(piece, final=False)

    def finish(self) -> str:
        """The answer is complete: release whatever was held back."""
        return self._run("", final=True)

    def result(self) -> Checked:
        return Checked(self.text, self.cited, self.stripped)

    # -- the state machine

    def _run(self, piece: str, *, final: bool) -> str:
        s = self._pending + piece
        out: list[str] = []
        i, n = 0, len(s)
        while i < n:
            c = s[i]
            if c == "`":
                j = i
                while j < n and s[j] == "`":
                    j += 1
                if j == n and not final:
                    break  # the run may go on in the next piece
                end = _code_end(s, i, j)
                # An open span's markers are code only if it closes; a closing run at the end may grow.
                if not final and (end == n or (end is None and not _code_cannot_close(s, i, j))):
                    break
                if end is None:
                    out.append(s[i:j])  # never closed: literal backticks, and the text after is prose
                    i = j
                else:
                    out.append(s[i:end])
                    i = end
            elif c in _SPACE or c == "[":
                j = i
                while j < n and s[j] in _SPACE:
                    j += 1
                if j == n:
                    if not final:
                        break  # spaces at the end may turn out to precede a marker
                    out.append(s[i:j])
                    i = j
                    continue
                if s[j] != "[":
                    out.append(s[i:j])
                    i = j
                    continue
                marker = MARKER.match(s, j)
                if marker:
                    shown = self._render(marker.group())
                    # a removed marker takes the spaces before it along ("work [7]." -> "work.")
                    out.append(s[i:j] + shown if shown else "")
                    i = marker.end()
                    continue
                tail = s[j:]
                if not final and len(tail) <= _MAX_PARTIAL and _PARTIAL.fullmatch(tail):
                    break  # undecided: wait for more
                out.append(s[i : j + 1])
                i = j + 1
            else:
                j = i + 1
                while j < n and s[j] not in "`[ \t":
                    j += 1
                out.append(s[i:j])
                i = j
        self._pending = s[i:]
        released = "".join(out)
        if released:
            self._parts.append(released)
        return released

    def _render(self, marker: str) -> str:
        shown: list[int] = []
        for number in (int(part) for part in re.findall(r"\d+", marker)):
            if number not in self._valid:
                self.stripped += 1
                continue
            new = self._new.setdefault(number, len(self._new) + 1)
            if new not in shown:
                shown.append(new)
        return "".join(f"[{new}]" for new in shown)


def _code_end(s: str, start: int, stop: int) -> int | None:
    """Where the code span opened by the backtick run ``s[start:stop]`` ends, or None if it does not.

    A run of three or more opens a fence that may span lines; a shorter run opens an inline span
    that must close, with a run of the same length, before the line ends.
    """
    run = stop - start
    for closing in re.finditer(r"`+", s[stop:]):
        if run < 3 and "\n" in s[stop : stop + closing.start()]:
            return None
        if len(closing.group()) == run:
            return stop + closing.end()
    return None


def _code_cannot_close(s: str, start: int, stop: int) -> bool:
    """An inline span whose line has already ended can no longer close."""
    return stop - start < 3 and "\n" in s[stop:]


def check_citations(text: str, valid: Container[int]) -> Checked:
    """The contract applied to a whole text at once (the same rules as the stream)."""
    citations = CitationFilter(valid)
    citations.feed(text)
    citations.finish()
    return citations.result()


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0] or flat[:limit]
    return cut + "…"


def build_sources(cited: Iterable[int], chunks: Mapping[int, Chunk]) -> list[Source]:
    """One Source per cited chunk, numbered as shown in the checked text."""
    sources = []
    for shown, original in enumerate(cited, start=1):
        chunk = chunks[original]
        sources.append(
            Source(
                n=shown,
                doc=chunk.doc_path,
                title=chunk.title,
                heading=chunk.heading,
                page=chunk.page,
                snippet=snippet(chunk.quote),
                chunk_id=chunk.chunk_id,
                url=chunk.url,
            )
        )
    return sources
