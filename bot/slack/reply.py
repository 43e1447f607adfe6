"""The one message an answer is written into, and how it changes while the answer is being written.

It starts as soon as the work starts: a stream (``chat.startStream``) where Slack streams replies,
otherwise a placeholder posted with ``chat.postMessage``. Its ts goes into the ledger at once, so an
answer resumed after a restart finishes in the same message. While the team writes, the growing
text is appended to the stream (standard Markdown) or, without a stream, the message is updated
(mrkdwn), at a bounded rate. When a stream is refused, expires or is cut short, the message falls
back to updates; nothing a person already saw is posted twice.

At the end the answer is shown with its sources and feedback buttons: under the streamed text
(``chat.stopStream(blocks=...)``) when the stream holds exactly the answer, otherwise by replacing
the message with ``render_answer``'s first message and posting the rest (a long answer) after it.
Every later message is recorded in the ledger as it is posted, so an answer resumed after a crash
edits those messages instead of posting them again. A stream the person stopped keeps the text they
saw, and still gets the sources and buttons under it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

from bot.answer import Answer
from bot.ledger import Claim, Ledger, ReplyMode
from bot.slack.render import (
    MARKDOWN_TEXT_LIMIT,
    SlackMessage,
    footer_blocks,
    render_answer,
    render_error,
    render_stream_text,
)
from bot.slack.user_text import defuse_markdown
from bot.slack.web import SlackCallError, SlackWeb

log = logging.getLogger(__name__)

PLACEHOLDER = ":hourglass_flowing_sand: Looking through the documents…"
RESUMING = ":hourglass_flowing_sand: Picking this up again after a restart…"
STREAM_LIMIT = MARKDOWN_TEXT_LIMIT  # beyond this the text is shown by the final messages, not streamed
APPEND_INTERVAL = 0.25  # seconds between appends to a stream
UPDATE_INTERVAL = 1.0  # seconds between chat.update calls (Slack allows about one a second)
# Slack's answers to an append on a stream that is no longer streaming.
STREAM_GONE = {"message_not_in_streaming_state", "streaming_state_conflict", "message_not_found"}


class ClaimLost(Exception):
    """Another worker took the claim (this one's lease ran out): it answers; this one withdraws."""


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


class Reply:
    """The reply to one claimed message. Not safe for concurrent use except ``show`` (the team's on_text)."""

    def __init__(self, web: SlackWeb, ledger: Ledger, claim: Claim, *, stream: bool):
        self.web = web
        self.ledger = ledger
        self.claim = claim
        self.want_stream = stream and claim.thread_ts is not None  # Slack streams replies in threads only
        self.ts = claim.reply_ts
        self.streaming = False  # a stream is open on self.ts
        self.streamed = ""  # the Markdown appended to the stream so far
        self.diverged = False  # the text stopped growing by appending: later text waits for the end
        self.stopped_by_user = False
        self._last_sent = 0.0

    @property
    def channel(self) -> str:
        return self.claim.channel

    async def open(self) -> None:
        """Make the message exist (or reuse the one a previous attempt made) and record it."""
        if self.ts is not None:
            if self.claim.reply_mode == "stream":
                try:  # the dead process's stream may still be open; end it so it can be updated
                    await self.web.stop_stream(self.channel, self.ts)
                except SlackCallError:
                    pass
            try:
                await self.web.update(self.channel, self.ts, RESUMING)
            except SlackCallError as exc:
                if exc.code not in ("message_not_found", "cant_update_message"):
                    raise
                self.ts = None  # deleted meanwhile: start a new one
            else:
                await self.ledger.record_reply(self.claim, self.ts, "message")
                return
        if self.want_stream:
            try:
                self.ts = await self.web.start_stream(
                    self.channel,
                    self.claim.thread_ts or "",
                    recipient_team=self.claim.team,
                    recipient_user=self.claim.user,
                )
            except SlackCallError as exc:
                log.info("streaming refused in %s (%s): posting and updating instead", self.channel, exc.code)
            else:
                self.streaming = True
                await self._record_or_withdraw("stream")
                return
        self.ts = await self.web.post(self.channel, PLACEHOLDER, thread_ts=self.claim.thread_ts)
        await self._record_or_withdraw("message")

    async def _record_or_withdraw(self, mode: ReplyMode) -> None:
        """Record the new message; if the claim is no longer ours, take the message down and stop."""
        if await self.ledger.record_reply(self.claim, self.ts or "", mode):
            return
        try:
            if self.streaming:
                await self.web.stop_stream(self.channel, self.ts or "")
            await self.web.delete(self.channel, self.ts or "")
        except SlackCallError:
            pass  # logged by SlackWeb
        raise ClaimLost(self.claim.id)

    async def show(self, markdown: str) -> None:
        """The answer so far (citation-checked Markdown); called each time it grows."""
        if self.ts is None or self.stopped_by_user or self.claim.owner != self.ledger.owner:
            return  # nothing to show yet, the person stopped it, or another worker holds the claim now
        markdown = defuse_markdown(markdown)  # it may repeat a person's <!channel>: never a ping
        if self.streaming:
            if self.diverged or not markdown.startswith(self.streamed) or len(markdown) > STREAM_LIMIT:
                self.diverged = True  # cannot un-append: the final message will be exact
                return
            await self._pace(APPEND_INTERVAL)
            if await self._append(markdown[len(self.streamed) :]):
                return
        await self._pace(UPDATE_INTERVAL)
        try:
            await self.web.update(self.channel, self.ts, render_stream_text(markdown))
        except SlackCallError:
            pass  # logged; the final update says it all

    async def _pace(self, interval: float) -> None:
        wait = self._last_sent + interval - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_sent = time.monotonic()

    async def _append(self, delta: str) -> bool:
        """Append to the stream; False when the stream is gone and updates must take over."""
        try:
            for piece in _pieces(delta, MARKDOWN_TEXT_LIMIT):
                if piece:
                    await self.web.append_stream(self.channel, self.ts or "", piece)
                    self.streamed += piece
            return True
        except SlackCallError as exc:
            return await self._stream_lost(exc)

    async def _stream_lost(self, exc: SlackCallError) -> bool:
        self.streaming = False
        if exc.code == "stopped_by_user":
            self.stopped_by_user = True
            log.info("%s: the person stopped the stream; the answer ends there", self.claim.id)
            return True
        log.info("%s: stream ended (%s); updating the message instead", self.claim.id, exc.code)
        if exc.code not in STREAM_GONE:  # Slack refused an append but the stream may still be open
            try:
                await self.web.stop_stream(self.channel, self.ts or "")
            except SlackCallError:
                pass
        if not await self.ledger.record_reply(self.claim, self.ts or "", "message"):
            self.claim.owner = None  # another worker resumed it (and ended this stream): hands off
        return False

    async def finish(self, answer: Answer, *, feedback_id: str) -> None:
        """Show the final answer with sources and buttons."""
        assert self.ts is not None
        if self.streaming and not self.stopped_by_user and await self._finish_stream(answer, feedback_id):
            await self._parts([])  # a resumed answer that now fits the stream: earlier parts go
            return
        if self.stopped_by_user:  # what they saw stays; the sources and buttons go under it
            answer = dataclasses.replace(answer, text=self.streamed)
        messages = render_answer(answer, feedback_id=feedback_id)
        await self._replace(messages[0])
        await self._parts(messages[1:])

    async def _parts(self, messages: list[SlackMessage]) -> None:
        """The messages after the first: the ones posted before are edited, the rest posted and recorded."""
        parts = list(self.claim.reply_parts)
        for i, message in enumerate(messages):
            if i < len(parts):
                try:
                    await self.web.update(self.channel, parts[i], message.text, blocks=message.blocks)
                    continue
                except SlackCallError as exc:
                    if exc.code not in ("message_not_found", "cant_update_message"):
                        raise
                    del parts[i:]  # deleted meanwhile: post from here on
            ts = await self.web.post(
                self.channel, message.text, blocks=message.blocks, thread_ts=self.claim.thread_ts
            )
            parts.append(ts)
            await self.ledger.record_parts(self.claim, parts)
        if len(parts) > len(messages):  # an earlier attempt's answer was longer
            for ts in parts[len(messages) :]:
                try:
                    await self.web.delete(self.channel, ts)
                except SlackCallError:
                    pass  # logged by SlackWeb
            await self.ledger.record_parts(self.claim, parts[: len(messages)])

    async def _finish_stream(self, answer: Answer, feedback_id: str) -> bool:
        """Complete the stream with the rest of the text and the footer; False if it cannot hold the answer."""
        exact = (
            answer.outcome == "answered"
            and not self.diverged
            and answer.text.startswith(self.streamed)
            and len(answer.text) <= STREAM_LIMIT
        )
        try:
            footer = footer_blocks(answer, feedback_id=feedback_id) if exact else None
        except ValueError:
            footer, exact = None, False
        if exact and footer is not None:
            rest = answer.text[len(self.streamed) :]
            if rest and not await self._append(rest):
                return False
            if self.stopped_by_user:
                return False  # finished by an update, under what they saw
            try:
                await self.web.stop_stream(self.channel, self.ts or "", blocks=footer)
                self.streaming = False
                return True
            except SlackCallError as exc:
                if exc.code not in STREAM_GONE:
                    raise
                await self._stream_lost(exc)
                return False
        await self._end_stream()
        return False

    async def _end_stream(self) -> None:
        if not self.streaming:
            return
        self.streaming = False
        try:
            await self.web.stop_stream(self.channel, self.ts or "")
        except SlackCallError as exc:
            if exc.code not in STREAM_GONE:
                raise

    async def _replace(self, message: SlackMessage) -> None:
        await self.web.update(self.channel, self.ts or "", message.text, blocks=message.blocks)

    async def fail(self, text: str) -> bool:
        """Say, visibly, that no answer is coming. Never raises; False if even that could not be shown."""
        message = render_error(text)
        if self.ts is not None:
            self.streaming = self.streaming or self.claim.reply_mode == "stream"
            try:
                await self._end_stream()
            except SlackCallError:
                pass
            try:
                await self._replace(message)
                return True
            except SlackCallError:
                pass  # e.g. the placeholder was deleted: post instead
        try:
            await self.web.post(
                self.channel, message.text, blocks=message.blocks, thread_ts=self.claim.thread_ts
            )
            return True
        except SlackCallError as exc:
            log.error("%s: could not tell the thread that the answer failed: %s", self.claim.id, exc.code)
            return False


__all__ = ["PLACEHOLDER", "RESUMING", "ClaimLost", "Reply"]
