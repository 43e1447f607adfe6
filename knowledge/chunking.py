"""Cut a ParsedDocument into Chunks that follow its structure.

Rules, in order:

* Each heading path and page is chunked on its own: a chunk never spans two headings or two PDF
  pages, so its citation (heading, page) is exact.
* Consecutive sections that share a heading path and page are packed together up to ``size``.
* Long tables are ranked by row group, not as one block: a table in the text (Markdown pipe rows, or
  the ``a | b`` rows the HTML and DOCX readers write) longer than ``table_size`` becomes chunks of a
  few whole rows, each repeating the table's header row, up to ``table_size`` characters; a shorter
  table stays with the text around it. CSV rows (sections marked ``row``, which carry their column
  names) are packed into groups of the same size. So a question about one row meets a short chunk
  that states it, with its column names, instead of a long table in which that row is a small part.
  A row is never cut unless it alone exceeds the size.
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

from knowledge.types import WORKSPACE, Chunk, ParsedDocument, Section

# Split points, coarsest first; a match's end is where the next piece begins.
_SEPARATORS = (
    re.compile(r"\n[ \t]*\n\s*"),  # paragraphs
    re.compile(r"\n\s*"),  # lines (lists, tables, code)
    re.compile(r"[.!?…][\"'”’)\]]*\s+"),  # sentences
    re.compile(r"\s+"),  # words
)
_HARD_CUT = len(_SEPARATORS)
_HEADER_MAX = 160
# Characters per table row group (header row included); bench/README.md ("Passages", step 2) has the figures.
TABLE_SIZE = 500
_TABLE_DELIMITER = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?$")
_TABLE_MIN_LINES = 3  # header and two rows, or header, delimiter and one row: a lone "a | b" is prose


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
    table_size: int | None = None,
) -> list[Chunk]:
    if size < 1:
        raise ValueError(f"chunk size must be positive, got {size}")
    if not 0 <= overlap < size:
        raise ValueError(f"chunk overlap must be at least 0 and less than the size ({size}), got {overlap}")
    rows_size = min(size, table_size or TABLE_SIZE)

    placed: list[tuple[tuple[str, ...], int | None, str]] = []
    for (headings, page), group in groupby(doc.sections, key=lambda s: (s.headings, s.page)):
        for body in _bodies(list(group), size, overlap, rows_size):
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


def _bodies(sections: list[Section], size: int, overlap: int, rows_size: int) -> list[str]:
    """The chunk bodies of consecutive sections under one heading and page, in order."""
    bodies: list[str] = []
    prose: list[str] = []
    rows: list[str] = []

    def flush() -> None:
        bodies.extend(_pack(prose, size, overlap))
        bodies.extend(_pack(rows, rows_size, 0))
        prose.clear()
        rows.clear()

    for section in sections:
        if section.row:
            if prose:
                flush()
            rows.append(section.text)
            continue
        if rows:
            flush()
        # A table short enough to rank whole stays in the text around it, exactly as written.
        pending: list[str] = []
        for piece, table in _segments(section.text):
            if table is not None and len(piece) > rows_size:
                if pending:
                    prose.append("\n".join(pending))
                    pending = []
                flush()
                bodies.extend(_row_groups(table, rows_size, size, overlap))
            else:
                pending.append(piece)
        if pending:
            prose.append("\n".join(pending))
    flush()
    return bodies


def _segments(text: str) -> list[tuple[str, list[str] | None]]:
    """``text`` as (prose, None) and (table text, its lines) pieces, in order."""
    lines = text.split("\n")
    pieces: list[tuple[str, list[str] | None]] = []
    start = i = 0
    while i < len(lines):
        end = i
        while end < len(lines) and _is_row(lines[end]):
            end += 1
        if end - i >= _TABLE_MIN_LINES:
            if start < i:
                pieces.append(("\n".join(lines[start:i]), None))
            pieces.append(("\n".join(lines[i:end]), [line.strip() for line in lines[i:end]]))
            start = i = end
        else:
            i = end + 1 if end == i else end
    if start < len(lines):
        pieces.append(("\n".join(lines[start:]), None))
    return pieces  # joined by newlines, the pieces are the text again


def _is_row(line: str) -> bool:
    line = line.strip()
    if _TABLE_DELIMITER.fullmatch(line):
        return True
    return len(line.strip("|").split("|")) >= 2 and (line.startswith("|") or " | " in line)


def _row_groups(table: list[str], rows_size: int, size: int, overlap: int) -> list[str]:
    """Whole rows in groups of at most ``rows_size`` characters, each starting with the header row
    (and the Markdown delimiter row under it)."""
    head = 2 if len(table) > 2 and _TABLE_DELIMITER.fullmatch(table[1]) else 1
    header, rows = "\n".join(table[:head]), table[head:]
    if len(header) > rows_size // 2:  # a header too long to repeat: plain row groups
        return _pack(table, rows_size, 0) if len(header) <= size else _split("\n".join(table), size, overlap)
    groups: list[str] = []
    current: list[str] = []
    for row in rows:
        if current and len(header) + sum(len(r) + 1 for r in current) + 1 + len(row) > rows_size:
            groups.append("\n".join([header, *current]))
            current = []
        current.append(row)
    if current:
        groups.append("\n".join([header, *current]))
    # A row longer than the size on its own is split like prose (header on its first piece only).
    return [
        piece
        for group in groups
        for piece in ([group] if len(group) <= size else _split(group, size, overlap))
    ]


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


__all__ = ["TABLE_SIZE", "chunk_document", "chunk_id", "header_line"]
