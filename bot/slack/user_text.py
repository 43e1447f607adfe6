"""Text a person wrote, shown back in a message the bot posts: readable, and never a ping.

Slack reads ``<…>`` as markup (``<!channel>``, ``<!here>``, ``<!everyone>``, ``<!subteam^S1>``,
``<@U1>``, links) and escapes a typed ``&``, ``<`` or ``>`` as ``&amp;``, ``&lt;``, ``&gt;`` in the
text it sends (https://docs.slack.dev/messaging/formatting-message-text#escaping). So a question
echoed as it arrived would notify the channel or the people it names once more, this time from the
bot. ``quote`` turns each piece of markup into what a reader saw (``@channel``, ``@alice``,
``#general``, a link's label and address), then escapes the three control characters, so the posted
text shows what the person typed and Slack parses nothing in it.
"""

from __future__ import annotations

import re

_MARKUP = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))  # &amp; last: "&amp;lt;" is a typed "&lt;"


def escape(text: str) -> str:
    """Escape the three characters Slack reads as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _readable(match: re.Match[str]) -> str:
    target, label = match.group(1), match.group(2)
    if target.startswith("!subteam^"):
        return label or "@" + target.removeprefix("!subteam^")
    if target.startswith("!"):  # !here, !channel, !everyone, !date^…
        return label or "@" + target[1:].split("^", 1)[0]
    if target.startswith("@"):
        return "@" + (label or target[1:])
    if target.startswith("#"):
        return "#" + (label or target[1:])
    return f"{label} ({target})" if label and label != target else target  # a link


def unescape(text: str) -> str:
    for entity, char in _ENTITIES:
        text = text.replace(entity, char)
    return text


def plain(text: str) -> str:
    """What a reader sees of Slack-formatted text: markup as its readable form, entities decoded."""
    return unescape(_MARKUP.sub(_readable, text or ""))


def quote(text: str) -> str:
    """A person's text, safe to put in a message: shows what they typed, parsed by Slack as nothing."""
    return escape(plain(text))


def defuse_markdown(text: str) -> str:
    """Markdown streamed to Slack (model output, which may repeat a question): no markup that pings.

    Only ``<`` that opens a mention, broadcast or channel link is escaped, so the rest of the
    Markdown (code included) reads as written.
    """
    return re.sub(r"<(?=[!@#])", "&lt;", text)


__all__ = ["defuse_markdown", "escape", "plain", "quote", "unescape"]
