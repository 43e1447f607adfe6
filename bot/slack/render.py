"""What Slack shows: an :class:`~bot.answer.Answer` (and the bot's other replies) as text and blocks.

Everything returned here is within Slack's limits, so a post never fails with ``msg_too_long`` or
``invalid_blocks``; when an answer does not fit one message it is split over several, in order,
and nothing is dropped. Pure functions: no I/O, no clients.

Which call takes which text:

* ``chat.postMessage`` / ``chat.update`` with ``text`` + ``blocks``: a :class:`SlackMessage` from
  :func:`render_answer` (``text`` is mrkdwn: the notification and what a screen reader reads).
* ``chat.update`` with ``text`` only, while an answer is still being written: :func:`render_stream_text`.
* ``chat.startStream`` / ``chat.appendStream`` / ``chat.stopStream`` (and slack_sdk's
  ``AsyncChatStream.append``): ``markdown_text`` is standard Markdown that Slack renders itself
  (slack_sdk's own example streams ``"**hello wo"`` then ``"rld!**"``), so pass the Answer's
  Markdown as is, never mrkdwn, at most :data:`MARKDOWN_TEXT_LIMIT` characters per call
  (``AsyncChatStream`` flushes its whole buffer in one call, so append in pieces no longer than
  that). :func:`footer_blocks` gives the blocks for ``chat.stopStream(blocks=...)``: sources and
  the feedback buttons under the streamed text.

Post answers with ``unfurl_links=False, unfurl_media=False``: source links should not unfurl.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.answer import Answer, Source
from bot.freshness import updated_ago
from bot.slack.mrkdwn import escape, slack_len, split_text, to_mrkdwn

__all__ = [
    "ASK_EXPERT",
    "MARKDOWN_TEXT_LIMIT",
    "MAX_BLOCKS",
    "RESOLVED",
    "SECTION_TEXT_LIMIT",
    "SLACK_TEXT_LIMIT",
    "SlackMessage",
    "footer_blocks",
    "render_answer",
    "render_error",
    "render_help",
    "render_status",
    "render_stream_text",
    "render_sync_report",
    "split_text",
    "text_message",
    "to_mrkdwn",
]

# Slack's limits (https://docs.slack.dev/reference/block-kit/blocks and chat.postMessage).
SLACK_TEXT_LIMIT = 40_000
MAX_BLOCKS = 50
SECTION_TEXT_LIMIT = 3_000
HEADER_TEXT_LIMIT = 150
CONTEXT_ELEMENT_LIMIT = 2_000
CONTEXT_ELEMENTS = 10
BUTTON_TEXT_LIMIT = 75
ACTION_ID_LIMIT = 255
BUTTON_VALUE_LIMIT = 2_000
MARKDOWN_TEXT_LIMIT = 12_000  # markdown_text arguments and streamed markdown chunks

FEEDBACK_UP = "feedback_up"
FEEDBACK_DOWN = "feedback_down"
RESOLVED = "thread_resolved"  # the asker marks the thread resolved: a Q&A is proposed from it
ASK_EXPERT = "ask_expert"  # mentions the channel's experts in the thread
SKIPPED_SHOWN = 20

OUTCOME_NOTES = {
    "not_found": ":mag: Not found in the indexed documents.",
    "search_only": ":page_facing_up: Passages only, not a written answer.",
    "error": ":warning: Something went wrong while answering; this may be incomplete.",
}
_NOTHING = ":grey_question: No answer was produced."
_FEEDBACK_PROMPT = "Was this answer helpful?"
_STREAM_MORE = "\n\n_… the rest follows when the answer is complete_"
_SOURCE_URL_LIMIT = 1_000
_LINK_SCHEMES = ("http://", "https://", "mailto:")


@dataclass
class SlackMessage:
    """One Slack message: ``text`` (mrkdwn fallback, ≤ 40,000) and ``blocks`` (≤ 50), ready to post."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class _Part:
    block: dict[str, Any]
    text: str  # what the block contributes to the message's fallback text ("" for buttons)


# -- answers ----------------------------------------------------------------------------------------


def render_answer(
    answer: Answer, *, feedback_id: str | None = None, max_blocks: int = MAX_BLOCKS
) -> list[SlackMessage]:
    """The answer as one or more messages to post in order; sources and buttons come last."""
    if not 1 <= max_blocks <= MAX_BLOCKS:
        raise ValueError(f"max_blocks must be between 1 and {MAX_BLOCKS}, got {max_blocks}")
    head: list[_Part] = []
    note = OUTCOME_NOTES.get(answer.outcome)
    if note:
        head.append(_context(note))
    head.extend(_section(piece) for piece in split_text(to_mrkdwn(answer.text), SECTION_TEXT_LIMIT))
    tail = _footer(answer.sources, feedback_id)
    if not head and not tail:
        head.append(_context(_NOTHING))
    return [_message(parts) for parts in _pack(head, tail, max_blocks)]


def footer_blocks(answer: Answer, *, feedback_id: str | None = None) -> list[dict[str, Any]]:
    """Sources and feedback buttons alone, for ``chat.stopStream(blocks=...)`` under streamed text.

    Raises ValueError if they need more than one message's blocks (then post ``render_answer``'s
    last message instead).
    """
    parts = _footer(answer.sources, feedback_id)
    if len(parts) > MAX_BLOCKS:
        raise ValueError(f"{len(parts)} footer blocks do not fit one message")
    return [part.block for part in parts]


def render_stream_text(markdown: str) -> str:
    """mrkdwn for ``chat.update(text=...)`` while the answer is still arriving; never empty.

    Beyond 40,000 characters the start is shown with a visible note; the final ``render_answer``
    messages replace it.
    """
    text = to_mrkdwn(markdown)
    if not text:
        return "…"
    if slack_len(text) <= SLACK_TEXT_LIMIT:
        return text
    return split_text(text, SLACK_TEXT_LIMIT - slack_len(_STREAM_MORE))[0] + _STREAM_MORE


def render_error(message: str) -> SlackMessage:
    """A short visible error line."""
    line = ":warning: " + escape(_clip(message, 500) or "Something went wrong.")
    return SlackMessage(text=line, blocks=[_section(line).block])


def _footer(sources: Sequence[Source], feedback_id: str | None) -> list[_Part]:
    parts = _source_parts(sources)
    if feedback_id is not None:
        parts.append(_feedback(feedback_id))
    return parts


def _source_parts(sources: Sequence[Source]) -> list[_Part]:
    if not sources:
        return []
    lines = ["*Sources*"] + [_source_line(s) for s in sorted(sources, key=lambda s: s.n)]
    return [_context(text) for text in _pack_lines(lines, CONTEXT_ELEMENT_LIMIT)]


def _source_line(source: Source) -> str:
    """``[n] <url|title> — heading (p. 3) · _updated 3 months ago_``; without a URL the document's
    path stands in for the link."""
    title = _clip(source.title, 150) or _clip(source.doc, 150) or "Untitled"
    url = source.url.strip()
    linked = url.startswith(_LINK_SCHEMES) and len(url) <= _SOURCE_URL_LIMIT and not re.search(r"\s", url)
    if linked:
        line = f"[{source.n}] <{escape(url.replace('|', '%7C'))}|{escape(title)}>"
    else:
        line = f"[{source.n}] {escape(title)}"
    heading = _clip(source.heading, 150)
    if heading and heading != title:
        line += f" — {escape(heading)}"
    if source.page is not None:
        line += f" (p. {source.page})"
    doc = _clip(source.doc, 200)
    if not linked and doc and doc != title:
        line += f" · {escape(doc)}"
    age = updated_ago(source.updated) if source.updated else ""
    if age:
        line += f" · _{age}_"
    return line


def _feedback(feedback_id: str) -> _Part:
    if not isinstance(feedback_id, str) or not feedback_id or len(feedback_id) > BUTTON_VALUE_LIMIT:
        raise ValueError(f"feedback_id must be a non-empty string of at most {BUTTON_VALUE_LIMIT} characters")
    buttons = [
        ("👍 Helpful", FEEDBACK_UP),
        ("👎 Not helpful", FEEDBACK_DOWN),
        ("✅ Resolved", RESOLVED),
        ("🙋 Ask an expert", ASK_EXPERT),
    ]
    block = {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": label, "emoji": True},
                "action_id": action_id,
                "value": feedback_id,
            }
            for label, action_id in buttons
        ],
    }
    return _Part(block, "")


# -- packing blocks into messages -------------------------------------------------------------------


def _pack(head: list[_Part], tail: list[_Part], max_blocks: int) -> list[list[_Part]]:
    """Fill messages in order; the tail (sources, buttons) stays together in the last one if it can."""
    groups: list[list[_Part]] = []
    _fill(groups, head, max_blocks)
    if tail and _fits(tail, max_blocks):
        if groups and _fits(groups[-1] + tail, max_blocks):
            groups[-1] = groups[-1] + tail
        else:
            groups.append(list(tail))
    else:
        _fill(groups, tail, max_blocks)
    return groups


def _fill(groups: list[list[_Part]], parts: Iterable[_Part], max_blocks: int) -> None:
    for part in parts:
        if groups and _fits([*groups[-1], part], max_blocks):
            groups[-1].append(part)
        else:
            groups.append([part])


def _fits(parts: list[_Part], max_blocks: int) -> bool:
    return len(parts) <= max_blocks and slack_len(_fallback(parts)) <= SLACK_TEXT_LIMIT


def _fallback(parts: list[_Part]) -> str:
    return "\n\n".join(part.text for part in parts if part.text)


def _message(parts: list[_Part]) -> SlackMessage:
    return SlackMessage(text=_fallback(parts) or _FEEDBACK_PROMPT, blocks=[part.block for part in parts])


def _section(text: str) -> _Part:
    return _Part({"type": "section", "text": {"type": "mrkdwn", "text": text}}, text)


def _context(text: str) -> _Part:
    return _Part({"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}, text)


def _pack_lines(lines: Iterable[str], limit: int) -> list[str]:
    """Join lines with newlines into texts of at most ``limit``; a longer line is split safely."""
    out: list[str] = []
    for line in lines:
        for piece in split_text(line, limit) if slack_len(line) > limit else [line]:
            if out and slack_len(out[-1]) + 1 + slack_len(piece) <= limit:
                out[-1] += "\n" + piece
            else:
                out.append(piece)
    return out


def _clip(text: str | None, limit: int) -> str:
    """One line of at most ``limit`` characters; a cut is marked with an ellipsis."""
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# -- /kb status, /kb sync, /kb help ------------------------------------------------------------------


def render_status(status: dict[str, Any]) -> SlackMessage:
    """``/kb status``: what is indexed, how the last sync went, what was skipped (``Status.to_dict()``)."""
    docs, chunks = status.get("documents", 0), status.get("chunks", 0)
    lines = [f"*Knowledge base* `{escape(_clip(status.get('collection'), 100))}`"]
    counts = f"*Documents:* {docs} · *Chunks:* {chunks}"
    by_status = status.get("by_status") or {}
    if by_status:
        counts += " (" + ", ".join(f"{escape(str(k))} {v}" for k, v in sorted(by_status.items())) + ")"
    lines.append(counts)
    embedder = escape(_clip(status.get("embedder"), 100))
    uri = escape(_clip(_hide_password(str(status.get("milvus_uri") or "")), 200))
    lines.append(f"*Embedder:* {embedder} ({status.get('dimension', '?')} dimensions) · *Milvus:* `{uri}`")
    last = status.get("last_sync")
    lines.append("*Last sync:* " + (_sync_summary(last) if last else "never"))
    lines += _skipped_lines(status.get("skipped"))
    return text_message("\n".join(lines))


def render_sync_report(report: dict[str, Any]) -> SlackMessage:
    """``/kb sync``: the outcome of one sync (``SyncReport.to_dict()``)."""
    lines = [_sync_summary(report)]
    lines += _skipped_lines(report.get("skipped"))
    return text_message("\n".join(lines))


def render_help(bot_user_id: str | None = None) -> SlackMessage:
    """``/kb help``: every way to ask, and the admin commands."""
    me = f"<@{bot_user_id}>" if bot_user_id else "@threadwise"
    text = "\n".join(
        [
            "*threadwise* answers questions from the team's documents and shows its sources.",
            "• `/ask &lt;question&gt;` — ask in any channel; the answer cites numbered sources.",
            f"• Mention {me} with a question — it answers in the thread; reply there to follow up.",
            "• Send it a direct message — ask privately; each thread is its own conversation.",
            "• `/kb status` — documents and chunks indexed, the last sync, files skipped.",
            "• `/kb sync` — sync the document folders now.",
            "• `/kb gaps [30d]` — the questions the documents did not answer, grouped by topic.",
            "• `/kb config` — this channel's folders, files, follow-ups and experts (admins).",
            "• `/kb forget <link>` — stop using the answer saved from that thread.",
            "• `/kb help` — this message.",
            "Rate an answer with 👍 Helpful / 👎 Not helpful under it; when a thread is settled, "
            "mark it ✅ Resolved and I keep the answer for next time; 🙋 Ask an expert calls a person.",
        ]
    )
    return text_message(text)


def _sync_summary(sync: dict[str, Any]) -> str:
    when = f" {escape(_clip(sync['finished_at'], 40))}" if sync.get("finished_at") else ""
    seconds = sync.get("seconds")
    took = f" in {seconds:.1f} s" if isinstance(seconds, int | float) else ""
    counts = ", ".join(
        f"{sync[key]} {key}"
        for key in ("added", "updated", "deleted", "unchanged")
        if isinstance(sync.get(key), int)
    )
    if isinstance(sync.get("chunks"), int):
        counts += f" · {sync['chunks']} chunks written"
    if sync.get("ok", True):
        head = f":white_check_mark: Sync finished{when}{took}"
    else:
        error = escape(_clip(sync.get("error"), 300)) or "unknown error"
        head = f":warning: Sync failed{when}{took}: {error}"
    return f"{head}. {counts}" if counts else head


def _skipped_lines(skipped: Any) -> list[str]:
    if isinstance(skipped, int):  # a manifest summary counts them
        return [f"*Skipped:* {skipped} files"] if skipped else []
    items = list(skipped or [])
    if not items:
        return []
    lines = [f"*Skipped ({len(items)}):*"]
    for item in items[:SKIPPED_SHOWN]:
        path, reason = (item.get("path"), item.get("reason")) if isinstance(item, dict) else (item, "")
        line = f"• `{escape(_clip(path, 120))}`"
        lines.append(line + (f" — {escape(_clip(reason, 120))}" if reason else ""))
    if len(items) > SKIPPED_SHOWN:
        lines.append(f"…and {len(items) - SKIPPED_SHOWN} more")
    return lines


def text_message(text: str) -> SlackMessage:
    """A short reply as sections, and as the fallback text.

    Short by construction: every field is clipped and lists stop at SKIPPED_SHOWN, so even fully
    escaped it stays far under 40,000 characters and 50 blocks.
    """
    pieces = split_text(text, SECTION_TEXT_LIMIT)
    return SlackMessage(text="\n".join(pieces), blocks=[_section(piece).block for piece in pieces])


def _hide_password(uri: str) -> str:
    """``https://user:secret@host`` -> ``https://user:•••@host``: status is posted in channels."""
    return re.sub(r"(//[^/@:\s]*:)[^/@\s]+@", r"\1•••@", uri)
