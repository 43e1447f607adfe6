"""PDF: one Section per page, numbered from 1, so an answer can cite the page.

pypdf reads the text layer only: a scanned PDF without one has "no text found" (no OCR here).
"""

from __future__ import annotations

import io

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

from knowledge.errors import UnreadableDocument
from knowledge.readers.normalise import clean_line, clean_text, humanise_filename, short_error
from knowledge.types import ParsedDocument, Section

_TITLE_MAX = 100
# Titles that authoring tools write when the author gave none.
_PLACEHOLDER_TITLES = frozenset({"untitled", "untitled document", "title", "document"})


def read(data: bytes, name: str) -> ParsedDocument:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            # Only an empty user password (an "owner password" PDF) opens without asking anyone.
            raise UnreadableDocument("encrypted PDF")
        pages = reader.pages
        count = len(pages)
    except UnreadableDocument:
        raise
    except (FileNotDecryptedError, DependencyError):
        raise UnreadableDocument("encrypted PDF") from None
    except Exception as exc:  # pypdf raises PdfReadError but also bare ValueError/KeyError on junk
        raise UnreadableDocument(f"corrupt PDF: {short_error(exc)}") from None

    sections = []
    for number in range(1, count + 1):
        try:
            text = clean_text(pages[number - 1].extract_text() or "")
        except (FileNotDecryptedError, DependencyError):
            raise UnreadableDocument("encrypted PDF") from None
        except Exception as exc:
            # One unreadable page fails the document with a reason, rather than a silent gap.
            raise UnreadableDocument(f"corrupt PDF: page {number}: {short_error(exc)}") from None
        if text:
            sections.append(Section(text=text, page=number))
    if not sections:
        raise UnreadableDocument("no text found")
    return ParsedDocument(title=_title(reader, sections) or humanise_filename(name), sections=sections)


def _title(reader: PdfReader, sections: list[Section]) -> str:
    try:
        info = reader.metadata
        meta = clean_line(str(info.title or "")) if info else ""
    except (PdfReadError, ValueError, KeyError, TypeError):
        meta = ""
    meta = meta.removeprefix("Microsoft Word - ")
    if meta and meta.lower() not in _PLACEHOLDER_TITLES:
        return meta
    first_line = clean_line(sections[0].text.split("\n", 1)[0])
    return first_line if len(first_line) <= _TITLE_MAX else ""
