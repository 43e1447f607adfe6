"""Markdown: one Section per heading, with the path of headings above it.

markdown-it-py finds the headings (ATX and setext, never a ``#`` inside a code block); the text
between two headings is kept as written, so code blocks and tables stay readable.
"""

from __future__ import annotations

import re

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

from knowledge.errors import UnreadableDocument
from knowledge.readers.decoding import decode_text
from knowledge.readers.normalise import clean_line, clean_text, humanise_filename
from knowledge.types import ParsedDocument, Section

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)^(?:---|\.\.\.)[ \t]*$\n?", re.DOTALL | re.MULTILINE)
_PARSER = MarkdownIt("commonmark").enable("table")


def read(data: bytes, name: str) -> ParsedDocument:
    text = decode_text(data).replace("\r\n", "\n").replace("\r", "\n")
    text, meta_title = _split_front_matter(text)
    lines = text.split("\n")

    sections: list[Section] = []
    path: list[tuple[int, str]] = []  # (level, heading) from the outermost down
    first_h1 = ""
    start = 0  # first line of the current section's body
    for level, heading, (head_start, head_end) in _headings(_PARSER.parse(text)):
        _add(sections, lines[start:head_start], path)
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, heading))
        if level == 1 and not first_h1:
            first_h1 = heading
        start = head_end
    _add(sections, lines[start:], path)

    if not sections:
        raise UnreadableDocument("no text found")
    return ParsedDocument(title=first_h1 or meta_title or humanise_filename(name), sections=sections)


def _split_front_matter(text: str) -> tuple[str, str]:
    """Strip YAML front matter; return the body and the front matter's ``title`` (or "")."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return text, ""
    # Front matter that is not valid YAML is still front matter: drop it, take no title from it.
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        meta = None
    title = meta.get("title") if isinstance(meta, dict) else None
    # Keep the line count so markdown-it's line numbers still index ``lines``.
    blank = "\n" * match.group(0).count("\n")
    return blank + text[match.end() :], clean_line(str(title)) if title else ""


def _headings(tokens: list[Token]):
    """Yield (level, plain heading text, (first line, line after)) for top-level headings."""
    for i, token in enumerate(tokens):
        if token.type != "heading_open" or token.level != 0 or token.map is None:
            continue
        inline = tokens[i + 1]
        words = "".join(
            child.content for child in inline.children or () if child.type in ("text", "code_inline")
        )
        heading = clean_line(words or inline.content)
        if heading:
            yield int(token.tag[1]), heading, (token.map[0], token.map[1])


def _add(sections: list[Section], lines: list[str], path: list[tuple[int, str]]) -> None:
    body = clean_text("\n".join(lines), keep_indent=True)
    if body:
        sections.append(Section(text=body, headings=tuple(heading for _, heading in path)))
