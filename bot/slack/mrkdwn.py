"""Markdown to Slack mrkdwn, and a splitter that cuts mrkdwn only where Slack still reads it right.

``to_mrkdwn`` parses with markdown-it-py (CommonMark plus tables and strikethrough) and writes the
tree back out in Slack's dialect, so emphasis, lists and code are recognised the way a Markdown
reader would, and nothing inside code is reformatted. Two deliberate choices:

* ``&``, ``<`` and ``>`` are escaped everywhere they are not Slack control characters, inside code
  too: Slack reads ``<...>`` as a link or mention even between backticks, and shows ``&lt;`` in code
  as ``<`` (the events Slack sends carry code typed by people escaped the same way).
* Link reference definitions are not parsed: ``[1]: handbook.md`` is text a reader should see, not
  a definition that silently disappears.

``split_text`` measures length the way JavaScript does (UTF-16 code units), which is never less
than Python's count, so a piece within the limit is within it whichever way Slack counts.
"""

from __future__ import annotations

import bisect
import itertools
import re
import unicodedata
from collections.abc import Iterator

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

# A link longer than this is written as text and URL: a splitter must be able to keep it whole.
MAX_LINK = 2_000
MIN_SPLIT_LIMIT = 32  # room for a reopened code fence and a few characters of content

_PARSER = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"]).disable("reference")
_FENCE = "```"
_ZWSP = "\u200b"
_HR = "───"


def escape(text: str) -> str:
    """Escape the three characters Slack reads as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_len(text: str) -> int:
    """Length in UTF-16 code units: an astral character (most emoji) counts twice."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


# -- Markdown -> mrkdwn ------------------------------------------------------------------------------


def to_mrkdwn(markdown: str) -> str:
    """Slack mrkdwn for ``markdown``; ``[n]`` citation markers and code are kept as written."""
    if not markdown.strip():
        return ""
    markdown = markdown.replace("\r\n", "\n").replace("\r", "\n")
    tree = SyntaxTreeNode(_PARSER.parse(markdown))
    return _join_blocks(tree.children, tight=False).strip("\n")


def _join_blocks(nodes: list[SyntaxTreeNode], *, tight: bool) -> str:
    parts = [text for text in (_block(node) for node in nodes) if text]
    return ("\n" if tight else "\n\n").join(parts)


def _block(node: SyntaxTreeNode) -> str:
    kind = node.type
    if kind == "paragraph":
        return _inline(node.children[0]) if node.children else ""
    if kind == "heading":
        text = _inline(node.children[0], bold=False).strip() if node.children else ""
        return f"*{text}*" if text else ""
    if kind in ("bullet_list", "ordered_list"):
        return _list(node)
    if kind == "blockquote":
        inner = _join_blocks(node.children, tight=False)
        return "\n".join(f"> {line}" if line else ">" for line in inner.split("\n"))
    if kind in ("fence", "code_block"):
        return _code_block(node.content)
    if kind == "hr":
        return _HR
    if kind == "table":
        return _table(node)
    if kind == "html_block":
        return escape(node.content.rstrip("\n"))
    if node.children:
        return _join_blocks(node.children, tight=False)
    return escape(node.content)


def _code_block(content: str) -> str:
    content = content.rstrip("\n")
    if not content.strip():
        return ""
    # A ``` inside the code would close Slack's block early; a zero-width space keeps it one block.
    content = content.replace(_FENCE, f"``{_ZWSP}`")
    return f"{_FENCE}\n{escape(content)}\n{_FENCE}"


def _list(node: SyntaxTreeNode) -> str:
    tight = all(p.hidden for item in node.children for p in item.children if p.type == "paragraph")
    ordered = node.type == "ordered_list"
    start = int(node.attrs.get("start", 1)) if ordered else 1
    items = []
    for i, item in enumerate(node.children):
        marker = f"{item.info or start + i}{item.markup or '.'} " if ordered else "• "
        body = _join_blocks(item.children, tight=tight)
        lines = body.split("\n") if body else [""]
        pad = " " * len(marker)
        items.append("\n".join([marker + lines[0]] + [pad + line if line else line for line in lines[1:]]))
    return ("\n" if tight else "\n\n").join(items)


def _table(node: SyntaxTreeNode) -> str:
    rows = []
    for section in node.children:  # thead, tbody
        for row in section.children:
            cells = [_inline(cell.children[0]) if cell.children else "" for cell in row.children]
            if section.type == "thead":
                cells = [f"*{c}*" if c else c for c in cells]
            rows.append(" | ".join(cells))
    return "\n".join(rows)


def _inline(node: SyntaxTreeNode, *, bold: bool = True) -> str:
    """One inline run; ``bold=False`` inside headings, which are bold already (mrkdwn cannot nest it)."""
    out: list[str] = []
    for child in node.children:
        kind = child.type
        if kind == "text":
            out.append(_literal(child.content))
        elif kind in ("softbreak", "hardbreak"):
            out.append("\n")
        elif kind == "code_inline":
            out.append(f"`{_literal(child.content)}`")
        elif kind == "strong":
            out.append(_wrap("*" if bold else "", _inline(child, bold=False)))
        elif kind == "em":
            out.append(_wrap("_", _inline(child, bold=bold)))
        elif kind == "s":
            out.append(_wrap("~", _inline(child, bold=bold)))
        elif kind == "link":
            out.append(_link(child.attrs.get("href", ""), _plain(child)))
        elif kind == "image":
            out.append(_link(child.attrs.get("src", ""), _plain(child) or "image"))
        elif child.children:
            out.append(_inline(child, bold=bold))
        else:
            out.append(escape(child.content))
    return "".join(out)


def _literal(text: str) -> str:
    """Escaped text that cannot open a code block: a ``` outside a fence would start one in Slack."""
    return escape(text).replace(_FENCE, f"``{_ZWSP}`")


def _wrap(mark: str, inner: str) -> str:
    if not mark or not inner.strip():
        return inner
    return f"{mark}{inner}{mark}"


def _plain(node: SyntaxTreeNode) -> str:
    """A link's label as plain text: Slack shows no formatting inside ``<url|label>``."""
    if node.type in ("text", "code_inline"):
        return node.content
    if node.type in ("softbreak", "hardbreak"):
        return " "
    return "".join(_plain(child) for child in node.children)


def _link(href: str, label: str) -> str:
    url = escape(href.replace("|", "%7C").replace(" ", "%20"))
    label = " ".join(label.split())
    if not url:
        return escape(label)
    text = f"<{url}>" if not label or label == href else f"<{url}|{escape(label)}>"
    if len(text) > MAX_LINK:
        return escape(f"{label} ({href})" if label and label != href else href)
    return text


# -- splitting ----------------------------------------------------------------------------------------

_ATOM = re.compile(r"<[^<>\n]*>|&#?[A-Za-z0-9]{1,10};|`[^`\n]+`")
_SENTENCE = re.compile(r"[.!?…][\"'”’)\]]*(?=[ \t])")
_JOINERS = {"\u200d", "\u034f", "\u2060"}


def split_text(text: str, limit: int) -> list[str]:
    """Cut mrkdwn into pieces of at most ``limit`` (UTF-16 units) each, losing only whitespace.

    Cuts prefer, in order: a blank line, a line end, a sentence end, a space, then any character,
    and never land inside ``<url|text>``, an escape like ``&amp;``, a short inline code span, a
    surrogate pair or a grapheme (emoji with modifiers, flags, combining accents). A cut inside a
    ``` code block closes the block and the next piece reopens it. Whitespace-only text gives [].
    """
    if limit < MIN_SPLIT_LIMIT:
        raise ValueError(f"split limit must be at least {MIN_SPLIT_LIMIT}, got {limit}")
    if not text.strip():
        return []
    if slack_len(text) <= limit:
        return [text]
    return _Splitter(text, limit).run()


class _Splitter:
    def __init__(self, text: str, limit: int):
        self.text = text
        self.limit = limit
        # units[i] = UTF-16 length of text[:i]
        self.units = [0, *itertools.accumulate(2 if ord(ch) > 0xFFFF else 1 for ch in text)]
        # visible[i] = how many non-whitespace characters text[:i] holds
        self.visible = [0, *itertools.accumulate(0 if ch.isspace() else 1 for ch in text)]
        self.fences = [m.start() for m in re.finditer(_FENCE, text)]
        atoms = [(m.start(), m.end()) for m in _ATOM.finditer(text) if m.end() - m.start() <= limit - 8]
        self.atom_starts = [a for a, _ in atoms]
        self.atom_ends = [b for _, b in atoms]

    # where a cut may go

    def fences_before(self, p: int) -> int:
        """How many ``` runs end at or before ``p``."""
        return bisect.bisect_right(self.fences, p - 3)

    def in_fence_token(self, p: int) -> bool:
        i = bisect.bisect_right(self.fences, p) - 1
        return i >= 0 and self.fences[i] < p < self.fences[i] + 3

    def in_code(self, p: int) -> bool:
        return self.fences_before(p) % 2 == 1

    def in_atom(self, p: int) -> bool:
        i = bisect.bisect_right(self.atom_starts, p - 1) - 1
        return i >= 0 and self.atom_ends[i] > p and self.atom_starts[i] < p

    def grapheme_safe(self, p: int) -> bool:
        text = self.text
        if p <= 0 or p >= len(text):
            return True
        before, after = text[p - 1], text[p]
        if "\ud800" <= before <= "\udbff" and "\udc00" <= after <= "\udfff":
            return False
        if before in _JOINERS or after in _JOINERS:
            return False
        code = ord(after)
        if unicodedata.category(after).startswith("M") or 0x1F3FB <= code <= 0x1F3FF:
            return False  # combining marks, variation selectors, skin tones
        if 0xE0020 <= code <= 0xE007F:
            return False  # emoji tag sequences (subdivision flags)
        if _regional(before) and _regional(after):
            run = 0
            while p - 1 - run >= 0 and _regional(text[p - 1 - run]):
                run += 1
            return run % 2 == 0  # between two flags, not inside one
        return True

    def code_cut_ok(self, p: int) -> bool:
        """Inside code, a cut must leave code on both sides (no empty reopened block)."""
        i = self.fences_before(p)
        opened_at = self.fences[i - 1] + 3
        closes_at = self.fences[i] if i < len(self.fences) else len(self.text)
        visible = self.visible
        return visible[p] > visible[opened_at] and visible[closes_at] > visible[p]

    def valid(self, p: int, start: int, *, strict: bool = True) -> bool:
        if p <= start or p > len(self.text) or self.in_fence_token(p) or not self.grapheme_safe(p):
            return False
        if self.in_code(p) and not self.code_cut_ok(p):
            return False
        return not (strict and self.in_atom(p))

    # the loop

    def last_index(self, start: int, budget: int) -> int:
        """The largest end such that text[start:end] fits in ``budget`` units."""
        return bisect.bisect_right(self.units, self.units[start] + budget) - 1

    def find_cut(self, start: int, budget: int) -> int:
        hi = self.last_index(start, budget)
        hi_code = self.last_index(start, budget - len(_FENCE) - 1)  # room to close the block

        def fits(p: int) -> bool:
            return p <= (hi_code if self.in_code(p) else hi)

        text, lo = self.text, start + 1
        tiers: list[Iterator[int]] = [
            _descending(text, "\n\n", lo, hi + 1),
            _descending(text, "\n", lo, hi + 1),
            reversed([m.end() for m in _SENTENCE.finditer(text, lo, hi + 1)]),
            _descending(text, " ", lo, hi + 1),
        ]
        # The best cut of each kind; a better kind wins unless it would leave a piece under half full.
        best = [next((p for p in tier if fits(p) and self.valid(p, start)), -1) for tier in tiers]
        half = start + (hi - start) // 2
        preferred = [p for p in best if p >= half] or [p for p in best if p > start]
        if preferred:
            return preferred[0]
        for strict in (True, False):
            for p in range(hi, start, -1):
                if fits(p) and self.valid(p, start, strict=strict):
                    return p
        return max(hi_code, start + 1)  # nothing safe (e.g. thousands of combining marks)

    def run(self) -> list[str]:
        text, n = self.text, len(self.text)
        pieces: list[str] = []
        start = 0
        while start < n:
            prefix = f"{_FENCE}\n" if self.in_code(start) else ""  # carried on from the last piece
            budget = self.limit - len(prefix)
            fits_all = self.units[n] - self.units[start] <= budget
            cut = n if fits_all else self.find_cut(start, budget)
            inside = cut < n and self.in_code(cut)
            body = text[start:cut]
            if inside:
                piece = prefix + body + f"\n{_FENCE}"
                start = cut + 1 if text[cut] == "\n" else cut
            else:
                piece = (prefix + body).rstrip()
                start = _skip_space(text, cut)
            if piece.strip():
                pieces.append(piece)
        return pieces


def _regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _descending(text: str, sep: str, lo: int, top: int) -> Iterator[int]:
    """Positions of ``sep`` in text[lo:top], last first."""
    while (p := text.rfind(sep, lo, top)) != -1:
        yield p
        top = p


def _skip_space(text: str, p: int) -> int:
    """Where the next piece starts: past the whitespace at the cut, keeping the new line's indent."""
    q = p
    while q < len(text) and text[q] in " \t\r\n":
        q += 1
    line_start = text.rfind("\n", p, q)
    return line_start + 1 if line_start != -1 else q
