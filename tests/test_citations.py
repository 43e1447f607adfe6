"""The citation contract as pure functions: what survives, how it is renumbered, what a stream shows."""

from __future__ import annotations

import re

import pytest

from bot.citations import CitationFilter, build_sources, check_citations, snippet
from knowledge.types import Chunk

VALID = {1, 2, 3, 5}


def streamed(text: str, valid, sizes=(1,)) -> tuple[list[str], str]:
    """Feed ``text`` in pieces; returns every cumulative visible text and the final one."""
    citations = CitationFilter(valid)
    shown, i, k = [], 0, 0
    while i < len(text):
        size = sizes[k % len(sizes)]
        citations.feed(text[i : i + size])
        shown.append(citations.text)
        i, k = i + size, k + 1
    citations.finish()
    shown.append(citations.text)
    return shown, citations.text


def test_valid_markers_are_kept_and_renumbered_in_order_of_first_use():
    checked = check_citations("Leave is 27 days [3]. Carry over until March [5]. Book early [3].", VALID)
    assert checked.text == "Leave is 27 days [1]. Carry over until March [2]. Book early [1]."
    assert checked.cited == (3, 5)
    assert checked.stripped == 0


def test_invalid_markers_are_removed_with_the_space_before_them_and_counted():
    checked = check_citations("Use the VPN [7]. Reset it in Gatekeeper [1] [42].", VALID)
    assert checked.text == "Use the VPN. Reset it in Gatekeeper [1]."
    assert checked.stripped == 2
    assert checked.cited == (1,)


def test_groups_keep_their_valid_numbers_only():
    checked = check_citations("Deploys stop on Fridays [2, 9, 3] and [9,10].", VALID)
    assert checked.text == "Deploys stop on Fridays [1][2] and."
    assert checked.stripped == 3
    assert checked.cited == (2, 3)


def test_zero_and_huge_numbers_are_not_citations_of_anything():
    checked = check_citations("a [0] b [12345] c [1]", VALID)
    assert "[0]" not in checked.text
    assert checked.stripped == 1  # [12345] is not a marker (more than 4 digits): left as text
    assert checked.text == "a b [12345] c [1]"


def test_brackets_that_are_not_markers_are_left_alone():
    text = "See [the handbook](https://example.com) and [draft] notes; [x] done [1]."
    checked = check_citations(text, VALID)
    assert checked.text == text
    assert checked.stripped == 0


def test_code_spans_and_fences_are_code_not_citations():
    text = "Run `items[9]` then\n```\nx = rows[7]\n```\nDone [2]."
    checked = check_citations(text, VALID)
    assert checked.text == "Run `items[9]` then\n```\nx = rows[7]\n```\nDone [1]."
    assert checked.stripped == 0


def test_an_unclosed_backtick_does_not_hide_an_invented_citation():
    checked = check_citations("It says `so [9]\nand [9] too [1]", VALID)
    assert "[9]" not in checked.text
    assert checked.stripped == 2
    assert checked.text == "It says `so\nand too [1]"


@pytest.mark.parametrize(
    "text",
    [
        "Use the VPN [7]. Reset it in Gatekeeper [1] [42]. Book [2, 9].",
        "Start [3][3] and `code [8]` and ``double `tick` [8]`` then [99] end [5]",
        "Trailing partial [1",
        "Trailing spaces   ",
        "```\nfence [8]\n``` after [8] and [2]",
        "[9] at the start, [1] later, [12 ] spaced, [ 2 ] padded",
    ],
)
@pytest.mark.parametrize("sizes", [(1,), (2,), (3, 1), (7,), (1000,)])
def test_a_stream_shows_exactly_the_whole_text_result_and_never_an_invalid_marker(text, sizes):
    whole = check_citations(text, VALID)
    shown, final = streamed(text, VALID, sizes)
    assert final == whole.text
    for visible in shown:
        assert final.startswith(visible)  # text is only ever appended
        # outside code, every marker shown is a renumbered valid one (1..number of cited chunks)
        for marker in re.findall(r"\[\s*(\d+)\s*\]", _prose(visible)):
            assert 1 <= int(marker) <= len(whole.cited)


def _prose(text: str) -> str:
    """``text`` without its closed code spans and fences."""
    return re.sub(r"```.*?```|``.*?``|`[^`\n]*`", "", text, flags=re.S)


def test_a_partial_marker_is_held_back_until_it_can_be_decided():
    citations = CitationFilter(VALID)
    assert citations.feed("Leave is 27 days [") == "Leave is 27 days"
    assert citations.feed("4") == ""
    assert citations.feed("2") == ""
    assert citations.feed("]. More") == ". More"  # [42] decided: removed, with its space
    assert citations.feed(" [") == ""
    assert citations.feed("2]") == " [1]"
    assert citations.text == "Leave is 27 days. More [1]"
    assert citations.stripped == 1


def test_a_number_becomes_citable_once_its_chunk_is_retrieved():
    valid: dict[int, str] = {}
    citations = CitationFilter(valid)
    citations.feed("before [1] ")
    valid[1] = "chunk"
    citations.feed("after [1]")
    citations.finish()
    assert citations.text == "before after [1]"
    assert citations.stripped == 1


def _chunk(n: int, text: str = "Some text") -> Chunk:
    return Chunk(
        chunk_id=f"c{n}",
        doc_id=f"d{n}",
        doc_path=f"docs/{n}.md",
        title=f"Doc {n}",
        heading=f"Doc {n} > Part",
        page=n if n % 2 else None,
        position=0,
        text=text,
        url=f"https://example.com/{n}",
    )


def test_sources_are_exactly_the_cited_chunks_numbered_as_shown():
    chunks = {n: _chunk(n) for n in (1, 2, 3, 5)}
    checked = check_citations("x [5] y [2] z [5] w [8]", chunks)
    sources = build_sources(checked.cited, chunks)
    assert [(s.n, s.chunk_id, s.doc) for s in sources] == [(1, "c5", "docs/5.md"), (2, "c2", "docs/2.md")]
    assert sources[0].page == 5 and sources[1].page is None
    assert sources[0].url == "https://example.com/5"


def test_snippet_is_one_line_and_bounded():
    assert snippet("a\n\n b  c") == "a b c"
    long = snippet("word " * 200, limit=50)
    assert len(long) <= 51 and long.endswith("…") and "\n" not in long
