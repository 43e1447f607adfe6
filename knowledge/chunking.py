"""Cut a ParsedDocument into Chunks that follow its structure.

Rules, in order:

* Each heading path and page is chunked on its own: a chunk never spans two headings or two PDF
  pages, so its citation (heading, page) is exact.
* Consecutive sections that share a heading path and page are packed together up to ``size``.
  That is how CSV rows (one section each, all with the same empty path) become chunks of several
  whole rows rather than one tiny chunk per row; a row is never cut unless it alone exceeds ``size``.
* A section longer than ``size`` is split at paragraph, then line, then sentence, then word
  boundaries (a single word longer than ``size`` is cut), and each piece after the first starts
  with up to ``overlap`` characters from the end of the one before, beginning at a word.
  A piece is only closed early when it is at least half full; otherwise the next paragraph is
  split finer to fill it, so no tiny fragments are stored.
* Every chunk's ``text`` starts with a short header line, ``"{title} — {heading path}\\n"``
  (the path without a first heading that repeats the title), so the title and headings take part
  in both BM25 and dense retrieval. A chunk's text is at most ``size`` plus that header.
* ``chunk_id`` is ``sha1(f"{doc_id}:{version}:{position}")``: re-chunking the same version of a
  document gives the same ids.
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from itertools import groupby, pairwise

from knowledge.types import WORKSPACE, Chunk, ParsedDocument

# Split points, coarsest first; a match's end is where the next piece begins.
_SEPARATORS = (
    re.compile(r"\n[ \t]*\n\s*"),  # paragraphs
    re.compile(r"\n\s*"),  # lines (lists, tables, code)
    re.compile(r"[.!?…][\"'”’)\]]*\s+"),  # sentences
    re.compile(r"\s+"),  # words
)
_HARD_CUT = len(_SEPARATORS)
_HEADER_MAX = 160


def chunk_document(
    doc: ParsedDocument,
    *,
    doc_id: str,
    doc_path: str,
    version: str,
    size: int = 1200,
    overlap: int = 150,
    access: str = WORKSPACE,
    url: str = "",
) -> list[Chunk]:
    if size < 1:
        raise ValueError(f"chunk size must be positive, got {size}")
    if not 0 <= overlap < size:
        raise ValueError(f"chunk overlap must be at least 0 and less than the size ({size}), got {overlap}")

    placed: list[tuple[tuple[str, ...], int | None, str]] = []
    for (headings, page), group in groupby(doc.sections, key=lambda s: (s.headings, s.page)):
        for body in _pack([s.text for s in group], size, overlap):
            placed.append((headings, page, body))

    return [
        Chunk(
            chunk_id=chunk_id(doc_id, version, position),
            doc_id=doc_id,
            doc_path=doc_path,
            title=doc.title,
            heading=" > ".join(headings),
            page=page,
            position=position,
            text=header_line(doc.title, headings) + body,
            access=access,
            url=url,
        )
        for position, (headings, page, body) in enumerate(placed)
    ]


def chunk_id(doc_id: str, version: str, position: int) -> str:
    """A chunk's id, the same whenever the same version of a document is chunked the same way."""
    return hashlib.sha1(f"{doc_id}:{version}:{position}".encode()).hexdigest()


def header_line(title: str, headings: tuple[str, ...]) -> str:
    """``"Runbooks — Database > Failover\\n"``: what a chunk's text starts with (may be "")."""
    path = list(headings[1:] if headings and headings[0] == title else headings)
    line = " — ".join(part for part in (title, " > ".join(path)) if part)
    if len(line) > _HEADER_MAX:
        line = line[: _HEADER_MAX - 1] + "…"
    return line + "\n" if line else ""


def _pack(texts: list[str], size: int, overlap: int) -> list[str]:
    """Whole short sections joined by newlines up to ``size``; long ones split on their own."""
    bodies: list[str] = []
    current = ""
    for text in (t.strip() for t in texts):
        if not text:
            continue
        if len(text) > size:
            if current:
                bodies.append(current)
                current = ""
            bodies.extend(_split(text, size, overlap))
        elif current and len(current) + 1 + len(text) <= size:
            current += "\n" + text
        else:
            if current:
                bodies.append(current)
            current = text
    if current:
        bodies.append(current)
    return bodies


def _split(text: str, size: int, overlap: int) -> list[str]:
    """Pieces of at most ``size`` characters, cut at the coarsest boundary that fits."""
    pieces: list[str] = []
    queue = deque(_atoms(text, size, 0))
    current = ""
    while queue:
        atom, level = queue.popleft()
        if len(current) + len(atom) <= size:
            current += atom
            continue
        if len(current) < size // 2 and (finer := _finer(atom, level)):
            queue.extendleft(reversed(finer))  # fill this piece from the next paragraph
            continue
        pieces.append(current)
        tail = _tail(current, min(overlap, size - len(atom)))
        current = tail + atom
    pieces.append(current)
    return [p for p in (piece.strip() for piece in pieces) if p]


def _atoms(text: str, size: int, level: int) -> list[tuple[str, int]]:
    """``text`` cut into pieces of at most ``size``, each with the level to split it further at."""
    if len(text) <= size:
        return [(text, level)]
    if level == _HARD_CUT:
        return [(text[i : i + size], _HARD_CUT) for i in range(0, len(text), size)]
    atoms: list[tuple[str, int]] = []
    for part in _cut(text, level):
        atoms.extend(_atoms(part, size, level + 1))
    return atoms


def _finer(atom: str, level: int) -> list[tuple[str, int]]:
    """``atom`` split at the first finer boundary it has (never a hard cut), or [] if none."""
    for finer in range(level, _HARD_CUT):
        parts = _cut(atom, finer)
        if len(parts) > 1:
            return [(part, finer + 1) for part in parts]
    return []


def _cut(text: str, level: int) -> list[str]:
    """Cut after every separator of ``level``; the pieces concatenate back to ``text``."""
    ends = [m.end() for m in _SEPARATORS[level].finditer(text) if 0 < m.end() < len(text)]
    bounds = [0, *ends, len(text)]
    return [text[a:b] for a, b in pairwise(bounds) if a < b]


def _tail(piece: str, limit: int) -> str:
    """The last ``limit`` characters of ``piece`` (at most half of it), from a sentence or word start."""
    limit = min(limit, len(piece.strip()) // 2)
    if limit <= 0:
        return ""
    window = piece[-limit:]
    if piece[-limit - 1].isspace() or window[0].isspace():
        return window.lstrip()
    end = len(window.rstrip())
    starts = [m.end() for sep in _SEPARATORS[:3] for m in sep.finditer(window) if m.end() < end]
    if not starts:
        starts = [m.end() for m in _SEPARATORS[3].finditer(window) if m.end() < end]
    # One long word (a hard cut): no clean place to start, so no overlap.
    return window[min(starts) :].lstrip() if starts else ""


__all__ = ["chunk_document", "chunk_id", "header_line"]
