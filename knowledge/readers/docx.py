"""DOCX: one Section per Heading 1–6 paragraph, tables as pipe-separated rows.

The "Title" paragraph style names the document; headings nest by their level as in Markdown.
"""

from __future__ import annotations

import io
import re

from docx import Document
from docx.table import Table
from docx.text.paragraph import Paragraph

from knowledge.errors import UnreadableDocument
from knowledge.readers.normalise import clean_line, clean_text, humanise_filename, short_error
from knowledge.types import ParsedDocument, Section

_HEADING_STYLE = re.compile(r"^Heading ([1-6])$")


def read(data: bytes, name: str) -> ParsedDocument:
    try:
        document = Document(io.BytesIO(data))
        blocks = list(document.iter_inner_content())
        core_title = document.core_properties.title or ""
    except Exception as exc:  # zip, XML and package errors all mean the same to a user
        raise UnreadableDocument(f"corrupt DOCX: {short_error(exc)}") from None

    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []
    title = ""

    def flush() -> None:
        text = clean_text("\n".join(lines))
        lines.clear()
        if text:
            sections.append(Section(text=text, headings=tuple(h for _, h in path)))

    try:
        for block in blocks:
            if isinstance(block, Table):
                lines.extend(["", *_table_rows(block), ""])
                continue
            style, text = _style_name(block), block.text
            if style == "Title" and not title and clean_line(text):
                title = clean_line(text)
            elif (level := _heading_level(style)) and clean_line(text):
                flush()
                while path and path[-1][0] >= level:
                    path.pop()
                path.append((level, clean_line(text)))
            else:
                lines.append(text)
        flush()
    except Exception as exc:
        raise UnreadableDocument(f"corrupt DOCX: {short_error(exc)}") from None

    if not sections:
        raise UnreadableDocument("no text found")
    top_heading = next((s.headings[0] for s in sections if s.headings), "")
    title = title or clean_line(core_title) or top_heading or humanise_filename(name)
    return ParsedDocument(title=title, sections=sections)


def _style_name(paragraph: Paragraph) -> str:
    style = paragraph.style
    return (style.name or "") if style is not None else ""


def _heading_level(style: str) -> int:
    match = _HEADING_STYLE.match(style)
    return int(match.group(1)) if match else 0


def _table_rows(table: Table) -> list[str]:
    rows = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            # A merged cell is returned once per grid column it spans; keep it once.
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            cells.append(clean_line(cell.text))
        if any(cells):
            rows.append(" | ".join(cells))
    return rows
