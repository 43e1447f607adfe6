"""What Slack shows for an answer: always within Slack's limits, in order, and nothing lost.

Generated answers (up to 200k characters, long code blocks and links, emoji, up to 100 sources)
are rendered and every message is checked against Slack's limits, including with the Slack
emulator's own validator; unique tokens planted in the Markdown must all be visible, in order.
One test posts a 100k-character answer through slack_sdk's AsyncWebClient to the emulator.
"""

from __future__ import annotations

import random
import re
import unicodedata
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.answer import Answer, Source
from bot.slack.mrkdwn import slack_len
from bot.slack.render import (
    MAX_BLOCKS,
    SECTION_TEXT_LIMIT,
    SLACK_TEXT_LIMIT,
    SlackMessage,
    footer_blocks,
    render_answer,
    render_error,
    render_help,
    render_status,
    render_stream_text,
    render_sync_report,
    split_text,
    to_mrkdwn,
)
from localslack.emulator import SlackEmulator
from localslack.limits import check_blocks
from tests.emulators import slack_fixtures

slack = slack_fixtures.slack
slack_client = slack_fixtures.slack_client

EMOJI = [
    "👍",
    "👍🏽",
    "👩\u200d👩\u200d👧",
    "🇫🇷",
    "🇯🇵🇫🇷",
    "1\ufe0f\u20e3",
    "e\u0301",
    "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
]
SPECIAL = ["a&b", "x<y", "p>q", "&amp;", "<@U123>", "<!channel>", "5 * 3", "snake_case_name", "R&D:"]
WORDS = ["the", "leave", "policy", "applies", "to", "everyone", "after", "probation", "VPN", "wiki"]


# -- generated answers ---------------------------------------------------------------------------


class Generator:
    """Random Markdown answers with planted tokens (``tok17x``) that must all reach the reader."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.tokens: list[str] = []

    def token(self) -> str:
        token = f"tok{len(self.tokens)}x"
        self.tokens.append(token)
        return token

    def words(self, n: int) -> str:
        rng, out = self.rng, []
        for _ in range(n):
            roll = rng.random()
            if roll < 0.15:
                out.append(self.token())
            elif roll < 0.2:
                out.append(f"**bold {self.token()}**")
            elif roll < 0.25:
                out.append(f"_it {self.token()}_")
            elif roll < 0.28:
                out.append(f"`code {self.token()} <x> & y`")
            elif roll < 0.31:
                label = f"see {self.token()} " + " ".join(rng.choices(WORDS, k=rng.randint(0, 12)))
                out.append(f"[{label.strip()}](https://wiki.example.com/p?a=1&b={rng.randint(0, 99)})")
            elif roll < 0.36:
                out.append(rng.choice(["[1]", "[2, 3]", "[12]"]))
            elif roll < 0.42:
                out.append(rng.choice(EMOJI))
            elif roll < 0.47:
                out.append(rng.choice(SPECIAL))
            elif roll < 0.52:
                out.append(rng.choice(WORDS) + rng.choice([".", "!", "?"]))
            else:
                out.append(rng.choice(WORDS))
        return " ".join(out)

    def block(self) -> str:
        rng = self.rng
        kind = rng.choices(
            ["para", "long_word", "long_link", "code", "list", "numbered", "heading", "quote", "table"],
            weights=[10, 1, 1, 3, 2, 1, 1, 1, 1],
        )[0]
        if kind == "para":
            return self.words(rng.randint(1, 600))
        if kind == "long_word":
            unit = rng.choice(["y", "👩\u200d👩\u200d👧", "🇫🇷", "é", "&"])
            return f"{self.token()} {unit * rng.randint(100, 9000)} {self.token()}"
        if kind == "long_link":
            return f"[label {self.token()}](https://example.com/{'a' * rng.randint(100, 4000)}?x=1&y=2)"
        if kind == "code":
            lines = []
            for _ in range(rng.randint(1, 600)):
                if rng.random() < 0.02:
                    lines.append("z" * rng.randint(1000, 7000))
                else:
                    lines.append(f"    if a < b and c & d: call({self.token()})  # **not bold** [1]")
            return "```python\n" + "\n".join(lines) + "\n```"
        if kind in ("list", "numbered"):
            marks = (lambda i: "- ") if kind == "list" else (lambda i: f"{i + 1}. ")
            return "\n".join(marks(i) + self.words(rng.randint(1, 40)) for i in range(rng.randint(1, 30)))
        if kind == "heading":
            return f"## Heading {self.token()} **and** more"
        if kind == "quote":
            return "\n".join(f"> {self.words(rng.randint(1, 30))}" for _ in range(rng.randint(1, 5)))
        rows = [f"| {self.token()} | {self.words(3)} |" for _ in range(rng.randint(1, 20))]
        return "| key | value |\n|---|---|\n" + "\n".join(rows)

    def markdown(self, size: int) -> str:
        blocks, length = [], 0
        while length < size:
            blocks.append(self.block())
            length += len(blocks[-1]) + 2
        return "\n\n".join(blocks)

    def sources(self, count: int) -> list[Source]:
        rng, out = self.rng, []
        for n in range(1, count + 1):
            title = rng.choice(["Employee handbook", "R&D <team> notes", "Guide 👍🏽", "x" * 400, ""])
            url = rng.choice(["", "https://wiki.example.com/page?id=1&v=2", "https://e.com/" + "u" * 900])
            out.append(
                Source(
                    n=n,
                    doc=f"docs/{rng.choice(['hr', 'it', 'R&D'])}/file_{n}.md",
                    title=title,
                    heading=rng.choice(["", "Leave > Annual leave", "Setup *VPN*", "h" * 300]),
                    page=rng.choice([None, 1, 42]),
                    snippet="…",
                    chunk_id=f"chunk-{n}",
                    url=url,
                )
            )
        return out


def generated(seed: int) -> tuple[Answer, list[str]]:
    gen = Generator(seed)
    size = gen.rng.choice([300, 3_000, 20_000, 60_000, 120_000, 200_000])
    text = gen.markdown(size)
    outcome = gen.rng.choice(["answered", "answered", "not_found", "search_only", "error"])
    answer = Answer(
        text=text, sources=gen.sources(gen.rng.randint(0, 100)), conversation="c", outcome=outcome
    )
    return answer, gen.tokens


# -- checks ----------------------------------------------------------------------------------------


def texts(messages: list[SlackMessage], kind: str) -> list[str]:
    """The mrkdwn of every ``section`` (or every ``context`` element), in reading order."""
    out = []
    for message in messages:
        for block in message.blocks:
            if block["type"] == kind == "section":
                out.append(block["text"]["text"])
            elif block["type"] == kind == "context":
                out.extend(element["text"] for element in block["elements"])
    return out


def assert_intact(text: str) -> None:
    """A piece Slack reads as intended: whole links, escapes, code blocks, characters."""
    assert text.strip()
    assert not re.search(r"[\ud800-\udfff]", text), "lone surrogate"
    first, last = text[0], text[-1]
    assert not unicodedata.category(first).startswith("M") and first not in "\u200d\ufe0f", repr(text[:20])
    assert not 0x1F3FB <= ord(first) <= 0x1F3FF and last != "\u200d", "emoji cut apart"
    unquoted = re.sub(r"(?m)^>(?: |$)", "", text)  # a leading > is a block quote
    assert not re.search(r"[<>]", re.sub(r"<[^<>\n]*>", "", unquoted)), "a link was cut"
    assert not re.search(r"&(?!amp;|lt;|gt;)", text), "an escape was cut"
    assert text.count("```") % 2 == 0, "a code block is left open"


def assert_within_limits(messages: list[SlackMessage]) -> None:
    assert messages
    for message in messages:
        assert 1 <= len(message.blocks) <= MAX_BLOCKS
        assert message.text.strip() and slack_len(message.text) <= SLACK_TEXT_LIMIT
        check_blocks(message.blocks)  # the emulator's validator: raises what Slack would answer
        for block in message.blocks:
            if block["type"] == "section":
                assert slack_len(block["text"]["text"]) <= SECTION_TEXT_LIMIT
                assert_intact(block["text"]["text"])
            elif block["type"] == "context":
                assert 1 <= len(block["elements"]) <= 10
                for element in block["elements"]:
                    assert 0 < slack_len(element["text"]) <= 2_000
                    assert_intact(element["text"])
            elif block["type"] == "actions":
                for button in block["elements"]:
                    assert len(button["text"]["text"]) <= 75 and len(button["action_id"]) <= 255
                    assert len(button["value"]) <= 2_000
            else:
                raise AssertionError(f"unexpected block {block['type']}")


def squash(text: str) -> str:
    """Text modulo what splitting may change: whitespace, and a code block closed and reopened."""
    return re.sub(r"\s+", "", text).replace("``````", "")


def assert_in_order(haystack: str, needles: list[str]) -> None:
    at = 0
    for needle in needles:
        found = haystack.find(needle, at)
        assert found >= 0, f"{needle} missing or out of order"
        at = found + len(needle)


def buttons(message: SlackMessage) -> list[dict[str, Any]]:
    return [b for b in message.blocks if b["type"] == "actions"]


# -- generated answers -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_generated_answers_fit_slack_lose_nothing_and_end_with_the_buttons(seed: int) -> None:
    answer, tokens = generated(seed)
    feedback = f"fb-{seed}" if seed % 4 else None
    messages = render_answer(answer, feedback_id=feedback)

    assert_within_limits(messages)
    body = texts(messages, "section")
    assert squash("".join(body)) == squash(to_mrkdwn(answer.text))
    assert_in_order("\n".join(body), tokens)

    # Buttons once, at the very end, only when there is something to rate.
    if feedback:
        assert [buttons(m) for m in messages[:-1]] == [[]] * (len(messages) - 1)
        assert messages[-1].blocks[-1]["type"] == "actions"
        assert [e["value"] for e in messages[-1].blocks[-1]["elements"]] == [feedback, feedback]
    else:
        assert not any(buttons(m) for m in messages)

    # Sources after the body, each once, in order; together in the last message when they fit one.
    context = texts(messages, "context")
    assert_in_order("\n".join(context), [f"[{s.n}] " for s in answer.sources])
    if answer.sources:
        first_source = next(i for i, m in enumerate(messages) if "*Sources*" in m.text)
        assert all("*Sources*" not in m.text for m in messages[:first_source])
        if (
            len(footer_blocks(answer, feedback_id=feedback)) <= MAX_BLOCKS
            and sum(slack_len(t) for t in context) < SLACK_TEXT_LIMIT // 2
        ):
            assert first_source == len(messages) - 1

    # The fallback text is the message's own part, and what a screen reader gets is the body.
    for message in messages:
        for piece in texts([message], "section"):
            assert piece in message.text

    # The outcome is said up front.
    note = {"not_found": "Not found in the indexed documents", "search_only": "Passages only"}.get(
        answer.outcome, "Something went wrong" if answer.outcome == "error" else None
    )
    if note:
        assert note in messages[0].blocks[0]["elements"][0]["text"]
    else:
        assert not any("Not found" in t or "Passages only" in t for t in context)


@pytest.mark.parametrize("max_blocks", [1, 2, 3, 7])
def test_a_small_block_budget_still_loses_nothing(max_blocks: int) -> None:
    gen = Generator(99)
    answer = Answer(text=gen.markdown(30_000), sources=gen.sources(12), conversation="c")
    messages = render_answer(answer, feedback_id="fb", max_blocks=max_blocks)
    assert_within_limits(messages)
    assert all(len(m.blocks) <= max_blocks for m in messages)
    assert squash("".join(texts(messages, "section"))) == squash(to_mrkdwn(answer.text))
    assert_in_order("\n".join(texts(messages, "section")), gen.tokens)
    assert messages[-1].blocks[-1]["type"] == "actions"
    assert sum(len(buttons(m)) for m in messages) == 1


def test_many_long_sources_spill_over_messages_in_order() -> None:
    sources = [
        Source(n, f"docs/{n}.md", "T&" * 75, "H<" * 75, n, "", f"c{n}", "https://e.com/" + "u" * 980)
        for n in range(1, 101)
    ]
    messages = render_answer(Answer(text="Short [1].", sources=sources, conversation="c"), feedback_id="f")
    assert_within_limits(messages)
    assert len(messages) > 1
    assert_in_order("\n".join(texts(messages, "context")), [f"[{n}] <https://e.com/" for n in range(1, 101)])
    assert messages[-1].blocks[-1]["type"] == "actions"
    with pytest.raises(ValueError, match="do not fit one message"):
        footer_blocks(Answer(text="x", sources=sources, conversation="c"))


# -- one answer, as a person sees it ----------------------------------------------------------------


def test_a_short_answer_is_one_message_with_sources_and_buttons() -> None:
    answer = Answer(
        text="Take **annual leave** in the HR portal [1]. VPN setup: see [2].",
        sources=[
            Source(
                1,
                "hr/leave.md",
                "Leave & holidays",
                "Annual leave",
                3,
                "…",
                "c1",
                "https://wiki.example.com/leave?x=1&y=2",
            ),
            Source(2, "it/vpn.md", "VPN <setup>", "", None, "…", "c2"),
        ],
        conversation="c",
    )
    [message] = render_answer(answer, feedback_id="F123")
    assert message.blocks[0] == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "Take *annual leave* in the HR portal [1]. VPN setup: see [2]."},
    }
    assert message.blocks[1]["elements"][0]["text"] == (
        "*Sources*\n"
        "[1] <https://wiki.example.com/leave?x=1&amp;y=2|Leave &amp; holidays> — Annual leave (p. 3)\n"
        "[2] VPN &lt;setup&gt; · it/vpn.md"
    )
    up, down = message.blocks[2]["elements"]
    assert (up["text"]["text"], up["action_id"], up["value"]) == ("👍 Helpful", "feedback_up", "F123")
    assert (down["text"]["text"], down["action_id"], down["value"]) == (
        "👎 Not helpful",
        "feedback_down",
        "F123",
    )
    assert message.text.startswith("Take *annual leave*") and "[2] VPN &lt;setup&gt;" in message.text


@pytest.mark.parametrize(
    ("outcome", "note"),
    [
        ("not_found", ":mag: Not found in the indexed documents."),
        ("search_only", ":page_facing_up: Passages only, not a written answer."),
        ("error", ":warning: Something went wrong while answering; this may be incomplete."),
    ],
)
def test_outcomes_are_said_in_a_context_line(outcome: str, note: str) -> None:
    [message] = render_answer(Answer(text="Some passages.", sources=[], conversation="c", outcome=outcome))
    assert message.blocks[0] == {"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}
    assert message.text.startswith(note)


def test_an_empty_answer_still_says_something() -> None:
    [message] = render_answer(Answer(text="  \n", sources=[], conversation="c"))
    assert message.text == ":grey_question: No answer was produced."
    check_blocks(message.blocks)


@pytest.mark.parametrize("bad", ["", "x" * 2_001])
def test_a_bad_feedback_id_is_a_clear_error(bad: str) -> None:
    with pytest.raises(ValueError, match="feedback_id"):
        render_answer(Answer(text="hi", sources=[], conversation="c"), feedback_id=bad)
    with pytest.raises(ValueError, match="max_blocks"):
        render_answer(Answer(text="hi", sources=[], conversation="c"), max_blocks=51)


# -- Markdown to mrkdwn ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("markdown", "mrkdwn"),
    [
        ("**bold** and __bold__", "*bold* and *bold*"),
        ("*italic* and _italic_", "_italic_ and _italic_"),
        ("***both***", "_*both*_"),
        ("~~gone~~", "~gone~"),
        ("[the wiki](https://e.com/a?b=1&c=2)", "<https://e.com/a?b=1&amp;c=2|the wiki>"),
        ("[**bold** `label`](https://e.com)", "<https://e.com|bold label>"),
        ("<https://e.com>", "<https://e.com>"),
        ("![diagram](https://e.com/d.png)", "<https://e.com/d.png|diagram>"),
        ("[click](javascript:alert(1))", "[click](javascript:alert(1))"),
        ("# Title", "*Title*"),
        ("## A **bold** heading", "*A bold heading*"),
        ("Title\n=====", "*Title*"),
        ("- one\n- two", "• one\n• two"),
        ("* one\n* two", "• one\n• two"),
        ("- one\n  - nested", "• one\n  • nested"),
        ("1. one\n2. two", "1. one\n2. two"),
        ("3) three\n4) four", "3) three\n4) four"),
        ("`**x** <y> & z`", "`**x** &lt;y&gt; &amp; z`"),
        ("```python\nif a < b and **c**:\n    x = [1]\n```", "```\nif a &lt; b and **c**:\n    x = [1]\n```"),
        ("````\n```\n````", "```\n``\u200b`\n```"),
        ("a & b < c > d", "a &amp; b &lt; c &gt; d"),
        ("<!channel> and <@U123>", "&lt;!channel&gt; and &lt;@U123&gt;"),
        ("As the handbook says [1], and [2, 3].", "As the handbook says [1], and [2, 3]."),
        ("[1]: handbook.md", "[1]: handbook.md"),
        ("> quoted\n> again", "> quoted\n> again"),
        ("| a | b |\n|---|---|\n| 1 | **2** |", "*a* | *b*\n1 | *2*"),
        ("line one\nline two", "line one\nline two"),
        ("para one\n\n\n\npara two", "para one\n\npara two"),
        ("---", "───"),
        ("", ""),
        ("  \n ", ""),
    ],
)
def test_to_mrkdwn(markdown: str, mrkdwn: str) -> None:
    assert to_mrkdwn(markdown) == mrkdwn


def test_a_link_too_long_to_keep_whole_becomes_text_and_url() -> None:
    url = "https://e.com/" + "a" * 3_000
    assert to_mrkdwn(f"[label]({url})") == f"label ({url})"


# -- the splitter -----------------------------------------------------------------------------------


def test_split_prefers_paragraphs_then_lines_then_sentences_then_words() -> None:
    one, two = "a" * 40 + ".", "b" * 40 + "."
    assert split_text(f"{one}\n\n{two}", 60) == [one, two]
    assert split_text(f"{one}\n{two}", 60) == [one, two]
    assert split_text(f"{'word ' * 5}end. {'more ' * 8}", 40) == [
        "word word word word word end.",
        ("more " * 8).strip(),
    ]
    pieces = split_text("word " * 40, 50)
    assert all(p.split() == ["word"] * len(p.split()) for p in pieces)
    assert sum(len(p.split()) for p in pieces) == 40


def test_split_never_cuts_a_link_or_an_escape() -> None:
    link = "<https://e.com/" + "a" * 100 + "|the label>"
    for offset in range(0, 150, 7):
        text = "x" * offset + " " + link + " &amp;&lt;&gt; tail"
        for piece in split_text(text, 140):
            assert_intact(piece)
            assert slack_len(piece) <= 140
        assert link in split_text(text, 140)[0] + "".join(split_text(text, 140)[1:2])


def test_split_closes_and_reopens_a_code_block() -> None:
    lines = [f"line {i}: if a &lt; b: pass" for i in range(200)]
    text = "Intro.\n\n```\n" + "\n".join(lines) + "\n```\n\nOutro."
    pieces = split_text(text, 500)
    assert len(pieces) > 5
    for piece in pieces:
        assert slack_len(piece) <= 500
        assert_intact(piece)
    assert pieces[0].startswith("Intro.") and pieces[-1].endswith("Outro.")
    shown = [line for p in pieces for line in p.split("\n") if line.startswith("line ")]
    assert shown == lines  # every code line whole, in order


def test_split_keeps_emoji_and_flags_whole_and_counts_utf16() -> None:
    family = "👩\u200d👩\u200d👧"
    for piece in split_text(family * 500, 100):
        assert re.fullmatch(f"(?:{family})+", piece) and slack_len(piece) <= 100
    for piece in split_text("🇫🇷" * 500, 99):
        assert len(piece) % 2 == 0 and slack_len(piece) <= 99  # each flag is two regional indicators
    pieces = split_text("😀" * 3_000, SECTION_TEXT_LIMIT)
    assert "".join(pieces) == "😀" * 3_000 and all(len(p) <= 1_500 for p in pieces)
    accents = "e\u0301" * 1_000
    assert all(not unicodedata.category(p[0]).startswith("M") for p in split_text(accents, 64))


def test_split_soup_of_awkward_characters() -> None:
    rng = random.Random(7)
    alphabet = [
        "a",
        " ",
        "\n",
        "`",
        "```",
        "<",
        ">",
        "&",
        "&amp;",
        "|",
        "*",
        "👍🏽",
        "🇫🇷",
        "e\u0301",
        "\u200d",
    ]
    for _ in range(200):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 3_000)))
        limit = rng.randint(32, 400)
        pieces = split_text(text, limit)
        assert all(slack_len(p) <= limit and p.strip() for p in pieces)
        assert squash("".join(pieces)) == squash(text)


def test_split_rejects_a_limit_too_small_and_gives_nothing_for_blank_text() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        split_text("hello", 10)
    assert split_text(" \n\t ", 100) == []
    assert split_text("short", 100) == ["short"]


# -- streaming, errors, /kb replies -------------------------------------------------------------------


def test_stream_text_is_mrkdwn_within_the_limit_and_never_empty() -> None:
    assert render_stream_text("**Hi** [1]") == "*Hi* [1]"
    assert render_stream_text("") == "…"
    # Backticks mid-line are no fence in Markdown; in mrkdwn they would open one, so they are broken up.
    assert render_stream_text("Partial ```python\ncode") == "Partial ``\u200b`python\ncode"
    assert render_stream_text("Here:\n\n```python\nx = 1 < 2") == "Here:\n\n```\nx = 1 &lt; 2\n```"
    long = render_stream_text(("A sentence of the answer. " * 3_000).strip())
    assert slack_len(long) <= SLACK_TEXT_LIMIT and long.endswith(
        "_… the rest follows when the answer is complete_"
    )


def test_error_line() -> None:
    message = render_error("Search failed: <timeout> & retry")
    assert message.text == ":warning: Search failed: &lt;timeout&gt; &amp; retry"
    check_blocks(message.blocks)
    assert render_error("").text == ":warning: Something went wrong."


def status_dict(skipped: int) -> dict[str, Any]:
    return {
        "collection": "threadwise",
        "milvus_uri": "https://admin:s3cret@milvus.example.com:19530",
        "embedder": "local:wordllama",
        "dimension": 256,
        "documents": 120,
        "chunks": 3_456,
        "by_status": {"indexed": 118, "failed": 2},
        "last_sync": {
            "started_at": "2025-01-01T09:00:00+00:00",
            "finished_at": "2025-01-01T09:00:03+00:00",
            "ok": True,
            "error": None,
            "added": 3,
            "updated": 1,
            "deleted": 0,
            "unchanged": 116,
            "chunks": 42,
            "seconds": 3.21,
            "skipped": skipped,
        },
        "skipped": [{"path": f"docs/scan_{i}.pdf", "reason": "no text <image only>"} for i in range(skipped)],
    }


def test_status_summarises_a_long_skipped_list_and_hides_passwords() -> None:
    message = render_status(status_dict(45))
    check_blocks(message.blocks)
    text = message.text
    assert "*Documents:* 120 · *Chunks:* 3456 (failed 2, indexed 118)" in text
    assert "admin:•••@milvus.example.com" in text and "s3cret" not in text
    assert (
        "Sync finished 2025-01-01T09:00:03+00:00 in 3.2 s. 3 added, 1 updated, 0 deleted, 116 unchanged"
        in text
    )
    assert "*Skipped (45):*" in text and "…and 25 more" in text
    assert text.count("• `docs/scan_") == 20 and "`docs/scan_19.pdf` — no text &lt;image only&gt;" in text
    never = render_status(status_dict(0) | {"last_sync": None})
    assert "*Last sync:* never" in never.text and "Skipped" not in never.text


def test_sync_report_ok_and_failed() -> None:
    ok = render_sync_report(
        {
            "added": 2,
            "updated": 0,
            "deleted": 1,
            "unchanged": 9,
            "skipped": [],
            "chunks": 17,
            "seconds": 1.5,
            "ok": True,
        }
    )
    assert (
        ok.text
        == ":white_check_mark: Sync finished in 1.5 s. 2 added, 0 updated, 1 deleted, 9 unchanged · 17 chunks written"
    )
    failed = render_sync_report(
        {"ok": False, "error": "Milvus unreachable", "skipped": [{"path": "a.doc", "reason": "unsupported"}]}
    )
    assert failed.text.startswith(":warning: Sync failed: Milvus unreachable")
    assert "• `a.doc` — unsupported" in failed.text
    check_blocks(failed.blocks)


def test_help_lists_every_way_to_ask() -> None:
    message = render_help("U_BOT")
    for usage in (
        "/ask &lt;question&gt;",
        "/kb status",
        "/kb sync",
        "/kb help",
        "<@U_BOT>",
        "direct message",
    ):
        assert usage in message.text
    check_blocks(message.blocks)


# -- through the Slack emulator -------------------------------------------------------------------


async def test_a_100k_answer_is_posted_in_order_and_accepted(
    slack: SlackEmulator, slack_client: AsyncWebClient
) -> None:
    gen = Generator(2024)
    text = gen.markdown(100_000)
    assert len(text) >= 100_000
    answer = Answer(text=text, sources=gen.sources(30), conversation="c")
    question = slack.workspace.post("C_GENERAL", text="tell me everything", user="U_ALICE")

    # As one message Slack refuses it: this is what the splitting is for.
    with pytest.raises(SlackApiError, match="msg_too_long"):
        await slack_client.chat_postMessage(channel="C_GENERAL", thread_ts=question.ts, text=to_mrkdwn(text))

    messages = render_answer(answer, feedback_id="fb-1")
    assert len(messages) > 1
    for message in messages:
        await slack_client.chat_postMessage(
            channel="C_GENERAL",
            thread_ts=question.ts,
            text=message.text,
            blocks=message.blocks,
            unfurl_links=False,
            unfurl_media=False,
        )

    replies = slack.thread("C_GENERAL", question.ts)
    assert [r.text for r in replies] == [m.text for m in messages]
    assert [r.blocks for r in replies] == [m.blocks for m in messages]
    shown = "\n".join(b["text"]["text"] for r in replies for b in r.blocks or [] if b["type"] == "section")
    assert_in_order(shown, gen.tokens)
    assert [b["type"] for b in replies[-1].blocks or []][-1] == "actions"
    assert all(b["type"] != "actions" for r in replies[:-1] for b in r.blocks or [])


async def test_kb_replies_are_accepted(slack: SlackEmulator, slack_client: AsyncWebClient) -> None:
    worst = status_dict(300) | {
        "collection": "&" * 500,
        "skipped": [{"path": "&<" * 500, "reason": ">" * 1_000} for _ in range(300)],
    }
    for message in (render_status(worst), render_help(), render_error("x" * 5_000)):
        assert slack_len(message.text) <= SLACK_TEXT_LIMIT and len(message.blocks) <= MAX_BLOCKS
        await slack_client.chat_postMessage(channel="C_GENERAL", text=message.text, blocks=message.blocks)
    assert len(slack.bot_messages("C_GENERAL")) == 3
