"""HTML: the page's own text, one Section per h1–h6, without scripts, styles and navigation.

Parsed with the standard library's ``html.parser`` through BeautifulSoup (no lxml needed). The
walk is iterative so a pathologically nested page cannot exhaust the stack.
"""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import PreformattedString

from knowledge.errors import UnreadableDocument
from knowledge.readers.decoding import has_bom, looks_binary
from knowledge.readers.normalise import clean_line, clean_text, humanise_filename
from knowledge.types import ParsedDocument, Section

_DROP = frozenset({"script", "style", "noscript", "template", "nav", "footer", "svg", "head", "iframe"})
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
# Elements that are paragraphs of their own, and those that are lines (list items, table rows);
# everything else (a, span, em, td...) is inline.
_BLOCKS = frozenset(
    {
        *("address", "article", "aside", "blockquote", "body", "details", "div", "dl", "fieldset"),
        *("figure", "form", "header", "hr", "main", "ol", "p", "section", "table", "tbody", "thead"),
        *("tfoot", "ul"),
    }
)
_LINE_BLOCKS = frozenset({"li", "dt", "dd", "caption", "figcaption", "summary"})
_SPACE = re.compile(r"\s+")


class _Break(int):
    """A line break (1) or paragraph break (2) the walk owes before the next text."""


def read(data: bytes, name: str) -> ParsedDocument:
    if looks_binary(data) and not has_bom(data):
        raise UnreadableDocument("binary content in a text file")
    try:
        markup: str | bytes = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        markup = data  # BeautifulSoup honours <meta charset> and guesses the rest
    try:
        soup = BeautifulSoup(markup, "html.parser")
    except Exception as exc:  # html.parser is lenient; anything it still rejects is corrupt
        raise UnreadableDocument(f"corrupt HTML: {exc}") from None

    title = clean_line(soup.title.get_text(" ")) if soup.title else ""
    sections = _sections(soup.body or soup)
    if not sections:
        raise UnreadableDocument("no text found")
    if not title:
        first_h1 = soup.find("h1")
        title = clean_line(first_h1.get_text(" ")) if first_h1 else ""
    return ParsedDocument(title=title or humanise_filename(name), sections=sections)


def _sections(root: Tag) -> list[Section]:
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    buffer: list[str] = []
    owed = 0  # newlines owed before the next text; adjacent breaks merge instead of adding up

    def write(text: str) -> None:
        nonlocal owed
        if owed and not text.strip():
            return  # whitespace between blocks
        if owed:
            buffer.append("\n" * owed)
            owed = 0
        buffer.append(text)

    def flush() -> None:
        nonlocal owed
        text = clean_text("".join(buffer))
        buffer.clear()
        owed = 0
        if text:
            sections.append(Section(text=text, headings=tuple(h for _, h in path)))

    stack: list[object] = list(reversed(root.contents))
    while stack:
        node = stack.pop()
        if isinstance(node, _Break):
            owed = max(owed, int(node))
        elif isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString):  # comments, CDATA, doctype
                write(_SPACE.sub(" ", node))
        elif isinstance(node, Tag):
            name = node.name.lower()
            if name in _DROP:
                continue
            if name in _HEADINGS:
                heading = clean_line(node.get_text(" "))
                if heading:
                    flush()
                    level = _HEADINGS[name]
                    while path and path[-1][0] >= level:
                        path.pop()
                    path.append((level, heading))
            elif name == "br":
                owed = max(owed, 1)
            elif name == "pre":
                owed = max(owed, 2)
                write(node.get_text())
                owed = 2
            elif name == "tr":
                cells = node.find_all(["td", "th"], recursive=False)
                owed = max(owed, 1)
                write(" | ".join(clean_line(c.get_text(" ")) for c in cells))
                owed = 1
            elif name in _BLOCKS or name in _LINE_BLOCKS:
                gap = _Break(1 if name in _LINE_BLOCKS else 2)
                stack.append(gap)
                stack.extend(reversed(node.contents))
                stack.append(gap)
            else:
                stack.extend(reversed(node.contents))
    flush()
    return sections
