"""Bytes to text for the text-like formats (Markdown, plain text, CSV, HTML).

UTF-8 is tried first because it is almost always right and never decodes legacy text by accident;
charset-normalizer guesses the rest. Binary content behind a text extension is refused up front.
"""

from __future__ import annotations

import codecs

from charset_normalizer import from_bytes

from knowledge.errors import UnreadableDocument

_SAMPLE = 8192
# Control bytes that never occur in text (tab, newline, CR, form feed and ESC do).
_BINARY_BYTES = frozenset(range(0x20)) - {0x09, 0x0A, 0x0C, 0x0D, 0x1B}
_BINARY_RATIO = 0.05

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Without a BOM these "detections" are nearly always a misreading of short legacy text.
_NO_BOM_EXCLUDED = ["utf_16", "utf_16_be", "utf_16_le", "utf_32", "utf_32_be", "utf_32_le"]


def has_bom(data: bytes) -> bool:
    return any(data.startswith(bom) for bom, _ in _BOMS)


def looks_binary(data: bytes) -> bool:
    """True when the start of ``data`` has the control bytes of an image, archive or executable."""
    sample = data[:_SAMPLE]
    if not sample:
        return False
    controls = sum(1 for byte in sample if byte in _BINARY_BYTES)
    return controls / len(sample) > _BINARY_RATIO


def decode_text(data: bytes) -> str:
    """Decode a text file's bytes, or raise UnreadableDocument saying why it is not text."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                raise UnreadableDocument(f"undecodable text: invalid {encoding}") from None
    if looks_binary(data):
        raise UnreadableDocument("binary content in a text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    matches = from_bytes(data, cp_exclusion=_NO_BOM_EXCLUDED)
    best = matches.best()
    if best is None:
        raise UnreadableDocument("undecodable text: unknown encoding")
    # On short text the detector has no language evidence and ties are broken arbitrarily
    # (e.g. cp1006 for "café"); prefer Windows-1252, the usual legacy encoding, on a tie.
    for match in matches:
        if (
            "cp1252" in match.could_be_from_charset
            and match.chaos <= best.chaos
            and match.coherence >= best.coherence
        ):
            return str(match)
    return str(best)
