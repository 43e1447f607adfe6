"""Plain text: the whole file is one Section; paragraphs are kept for the chunker to split on."""

from __future__ import annotations

from knowledge.errors import UnreadableDocument
from knowledge.readers.decoding import decode_text
from knowledge.readers.normalise import clean_line, clean_text, humanise_filename
from knowledge.types import ParsedDocument, Section

_TITLE_MAX = 80


def read(data: bytes, name: str) -> ParsedDocument:
    text = clean_text(decode_text(data))
    if not text:
        raise UnreadableDocument("no text found")
    return ParsedDocument(title=_title(text) or humanise_filename(name), sections=[Section(text=text)])


def _title(text: str) -> str:
    """A short first line set off by a blank line reads as a title ("Onboarding notes\\n\\n...")."""
    first, _, rest = text.partition("\n")
    if not rest.startswith("\n"):
        return ""
    line = clean_line(first)
    if len(line) > _TITLE_MAX or line.endswith((".", ",", ";", ":")):
        return ""
    return line
