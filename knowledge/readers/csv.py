"""CSV: one Section per row, rendered "column: value; column: value" with the header's names.

A row read alone keeps its column names, so "what is Bob's extension?" can match the row
"name: Bob; extension: 4417". The chunker packs consecutive rows into small row groups.
"""

from __future__ import annotations

import csv
import io

from knowledge.errors import UnreadableDocument
from knowledge.readers.decoding import decode_text
from knowledge.readers.normalise import clean_line, humanise_filename
from knowledge.types import ParsedDocument, Section

_SNIFF_CHARS = 64 * 1024
_DELIMITERS = ",;\t|"
# A "CSV" with more rows than this is a data export, not a document to answer questions from.
MAX_ROWS = 1_000_000


def read(data: bytes, name: str) -> ParsedDocument:
    text = decode_text(data).replace("\x00", "")
    rows = csv.reader(io.StringIO(text, newline=""), _dialect(text[:_SNIFF_CHARS]))
    header: list[str] = []
    sections: list[Section] = []
    try:
        for row in rows:
            cells = [clean_line(cell) for cell in row]
            if not any(cells):
                continue
            if not header:
                header = [cell or f"column {i}" for i, cell in enumerate(cells, 1)]
                continue
            if len(sections) >= MAX_ROWS:
                raise UnreadableDocument(f"too many rows: more than {MAX_ROWS:,}")
            sections.append(Section(text=_render(header, cells), row=True))
    except csv.Error as exc:
        raise UnreadableDocument(f"malformed CSV: line {rows.line_num}: {exc}") from None

    if not sections:
        raise UnreadableDocument("no text found")
    return ParsedDocument(title=humanise_filename(name), sections=sections)


def _dialect(sample: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(sample, _DELIMITERS)
    except csv.Error:
        pass
    # The sniffer gives up on ragged rows; the header line's commonest delimiter is a good guess,
    # and a one-column file (no delimiter at all) reads the same with commas.
    header = next((line for line in sample.splitlines() if line.strip()), "")
    counts = {delimiter: header.count(delimiter) for delimiter in _DELIMITERS}
    best = max(counts, key=counts.__getitem__)

    class Guessed(csv.excel):
        delimiter = best if counts[best] else ","

    return Guessed


def _render(header: list[str], cells: list[str]) -> str:
    pairs = []
    for i, value in enumerate(cells):
        if value:
            column = header[i] if i < len(header) else f"column {i + 1}"
            pairs.append(f"{column}: {value}")
    return "; ".join(pairs)
