"""Delivers one claimed message's answer to its thread, visibly, whatever happens.

``deliver`` works out who asks and what they may see, opens the reply
(:class:`~bot.slack.reply.Reply`), runs the team with the text streaming into it, and shows the
final answer with sources and feedback buttons. Any failure (the model, a timeout, the search, Slack
itself) ends in a short message in the thread and one log line with the reason; the claim is then
closed as failed, never retried behind the person's back.

The bookkeeping around a good answer (storing it for the feedback buttons, closing the claim) is
retried with backoff and logged when it fails; it is never shown over the answer. While it is
retried the claim stays this worker's, so no other worker answers again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from bot.answer import Answer
from bot.answering import AnswerError, ModelFailed, ModelNotConfigured, SearchFailed
from bot.channel_config import ChannelScopes
from bot.conversations import SlackUser
from bot.feedback import FeedbackStore
from bot.gaps import GapStore, record_not_found
from bot.ledger import Claim, Ledger
from bot.logs import bind
from bot.metrics import observe_answer
from bot.slack.audience import Audiences
from bot.slack.reply import ClaimLost, Reply
from bot.slack.signs import WorkingSign
from bot.slack.web import SlackCallError, SlackWeb
from knowledge.types import WORKSPACE, AccessScope

log = logging.getLogger(__name__)

NO_QUESTION = "Ask me a question after the mention, e.g. “@threadwise how do I reset my VPN password?”"
PASSAGES_TIMEOUT = 15.0  # the search behind a failed answer's passages
BOOKKEEPING_PATIENCE = 120.0  # seconds the writes after a posted answer are retried
TOO_OLD = (
    "Sorry, I was restarted while answering this and it is now too old to pick up again. "
    "Please ask again if you still need an answer."
)


class AnswersQuestions(Protocol):
    async def answer(
        self, question: str, *, conversation: str, user=None, scope=None, on_text=None
    ) -> Answer: ...


def explain(exc: BaseException, timeout: float) -> tuple[str, str]:
    """(what the thread is told, the reason for the log) for a failed answer."""
    if isinstance(exc, TimeoutError):
        return (
            f"Sorry, this took longer than {timeout:g} seconds, so I stopped. Please try again.",
            f"timed out after {timeout:g} s",
        )
    if isinstance(exc, ModelNotConfigured):
        return "I can't answer yet: no language model is configured for me.", str(exc)
    if isinstance(exc, ModelFailed):
        return "Sorry, the language model is not answering right now. Please try again in a minute.", str(exc)
    if isinstance(exc, SearchFailed):
        return "Sorry, I couldn't search the documents just now. Please try again in a minute.", str(exc)
    if isinstance(exc, AnswerError):
        return f"Sorry, I couldn't answer: {exc}", str(exc)
    if isinstance(exc, SlackCallError) and exc.code in ("not_in_channel", "channel_not_found"):
        return (
            "I'm not a member of this conversation, so I can't answer here. Invite me with "
            "`/invite @threadwise`, or ask me in a direct message.",
            str(exc),
        )
    if isinstance(exc, SlackCallError):
        return f"Sorry, Slack refused my answer ({exc.code}). Please try again.", str(exc)
    return (
        "Sorry, something went wrong while answering. It has been logged.",
        f"{type(exc).__name__}: {exc}",
    )


class Responder:
    def __init__(
        self,
        web: SlackWeb,
        ledger: Ledger,
        answerer: AnswersQuestions,
        feedback: FeedbackStore,
        *,
        stream: bool = True,
        timeout: float = 180.0,
        audiences: Audiences | None = None,
        gaps: GapStore | None = None,
        channels: ChannelScopes | None = None,
    ):
        self.web = web
        self.audiences = audiences or Audiences()
        self.ledger = ledger
        self.answerer = answerer
        self.feedback = feedback
        self.stream = stream
        self.timeout = timeout
        self.gaps = gaps  # the questions the documents did not cover (bot.gaps)
        self.channels = channels  # per-channel settings (bot.channel_config)
        self.sign = WorkingSign(web, ledger)

    # -- the answer ------------------------------------------------------------------------------

    async def deliver(self, claim: Claim) -> None:
        """Answer one claimed message in its thread and close the claim. Raises only CancelledError."""
        started = time.perf_counter()
        bind(claim=claim.id, conversation=claim.conversation)
        reply: Reply | None = None
        scope: AccessScope | None = None
        try:
            if claim.kind == "command" and claim.thread_ts is None:
                await self.sign.open_command_thread(claim)  # the sign could not post it; try once more
            reply = Reply(self.web, self.ledger, claim, stream=self.stream)
            if not claim.question.strip():
                await self.web.post(claim.channel, NO_QUESTION, thread_ts=claim.thread_ts)
                await self.ledger.finish(claim, "done")
                return
            name, access = await asyncio.gather(
                self.web.user_name(claim.user),
                self.audiences.access(
                    self.web,
                    team=claim.team,
                    channel=claim.channel,
                    user=claim.user,
                    channel_type=claim.context.get("channel_type"),
                ),
            )
            user = SlackUser(claim.user, name)
            if access.nothing:  # a guest, or a channel shared outside: nothing it may be told
                await self.web.post(claim.channel, access.refusal, thread_ts=claim.thread_ts)
                await self.ledger.finish(claim, "done")
                log.info("%s: no answer for this audience (%s)", claim.id, access.reason)
                return
            scope = access.scope
            # Gaps of a conversation the workspace may not read stay with that conversation.
            private = WORKSPACE not in access.scope.tokens
            await reply.open()
            if self.channels is not None:  # the channel's settings narrow it, inside Milvus
                scope = await self.channels.narrow(claim.team, claim.channel, scope)
            answer = await asyncio.wait_for(
                self.answerer.answer(
                    claim.question,
                    conversation=claim.conversation,
                    user=user,
                    scope=scope,
                    on_text=reply.show,
                ),
                timeout=self.timeout,
            )
            if not await self.ledger.holds(claim):
                log.warning("%s: another process took this claim over; not posting a second answer", claim.id)
                return

            def store() -> Awaitable[Any]:
                return self.feedback.record_answer(claim.id, claim.question, answer)

            stored = await self._bookkeep(claim, "store the answer", store, patience=0)
            await reply.finish(answer, feedback_id=claim.id)  # the answer never waits on bookkeeping
            if not stored:
                await self._bookkeep(claim, "store the answer", store)
            await self._bookkeep(claim, "close the claim", lambda: self.ledger.finish(claim, "done"))
            gap = self.gaps
            if gap is not None and answer.outcome == "not_found":
                await self._bookkeep(
                    claim,
                    "record the gap",
                    lambda: record_not_found(
                        gap,
                        claim.id,
                        team=claim.team,
                        channel=claim.channel,
                        private=private,
                        conversation=claim.conversation,
                        user=claim.user,
                        question=claim.question,
                        searched=answer.searched,
                    ),
                )
            observe_answer(answer.outcome, time.perf_counter() - started, answer.timings)
            log.info(
                "%s answered in %.2f s (%s, %d sources%s)",
                claim.id,
                time.perf_counter() - started,
                answer.outcome,
                len(answer.sources),
                ", resumed" if claim.resumed else "",
            )
        except asyncio.CancelledError:
            raise  # shutting down: the claim stays open and is resumed
        except ClaimLost:
            log.warning("%s: another worker took this claim over; it answers", claim.id)
            return  # its sign stays up for the worker that answers
        except Exception as exc:
            shown, reason = explain(exc, self.timeout)
            log.error("%s: answer failed: %s", claim.id, reason)
            observe_answer("failed", time.perf_counter() - started)
            if (
                reply is not None
                and scope is not None
                and await self._show_passages(claim, reply, scope, exc, shown)
            ):
                pass
            elif reply is None or not await reply.fail(shown):
                await self._post_error(claim, shown)
            try:
                await self.ledger.finish(claim, "failed", reason)
            except Exception:
                log.exception("%s: could not close the failed claim", claim.id)
        finally:
            if claim.status != "open":  # else whoever holds the claim now clears it
                await self.sign.clear(claim)

    async def _bookkeep(
        self,
        claim: Claim,
        what: str,
        write: Callable[[], Awaitable[Any]],
        *,
        patience: float = BOOKKEEPING_PATIENCE,
    ) -> bool:
        """A write that must not undo a good answer: retried with backoff for ``patience`` s, logged,
        never raised; whether it was done."""
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(Exception),
                stop=stop_after_delay(patience),
                wait=wait_exponential(multiplier=0.2, max=5.0),
                before_sleep=lambda state: log.warning(
                    "%s: could not %s (%s); retrying", claim.id, what, state.outcome.exception()
                ),
                reraise=True,
            ):
                with attempt:
                    await write()
            return True
        except Exception as exc:
            log.log(
                logging.ERROR if patience else logging.WARNING,
                "%s: could not %s: %s: %s%s",
                claim.id,
                what,
                type(exc).__name__,
                exc,
                "" if patience else "; trying again after the answer is shown",
            )
            return False

    async def _show_passages(
        self, claim: Claim, reply: Reply, scope: AccessScope, exc: Exception, shown: str
    ) -> bool:
        """The model failed or timed out: the error reply carries the best passages, so a person is
        never left with nothing. False if there are none (or no search), and the plain error is shown."""
        passages = getattr(self.answerer, "passages", None)
        if passages is None or not isinstance(exc, (ModelFailed, TimeoutError)):
            return False
        try:
            answer = await asyncio.wait_for(
                passages(
                    claim.question,
                    conversation=claim.conversation,
                    scope=scope,
                    intro=f":warning: {shown}\n\n_Meanwhile, these passages from the documents may help (not a written answer):_",
                    outcome="error",
                ),
                timeout=PASSAGES_TIMEOUT,
            )
            if answer.outcome != "error":  # nothing found
                return False
            await self.feedback.record_answer(claim.id, claim.question, answer)
            await reply.finish(answer, feedback_id=claim.id)
            return True
        except Exception as failure:
            log.warning("%s: no passages for the failed answer either: %s", claim.id, failure)
            return False

    async def _post_error(self, claim: Claim, text: str) -> None:
        response_url = claim.context.get("response_url")
        try:
            if claim.thread_ts or claim.kind != "command":
                await Reply(self.web, self.ledger, claim, stream=False).fail(text)
            elif response_url:  # /ask where the bot cannot post: tell the person who asked
                await self.web.respond(response_url, text)
        except Exception:
            log.exception("%s: could not show the failure", claim.id)

    async def apologise(self, claim: Claim) -> None:
        """A claim too old to resume: say so in its thread rather than go quiet."""
        log.warning("%s: unfinished claim older than the resume bound; telling the thread", claim.id)
        await Reply(self.web, self.ledger, claim, stream=False).fail(TOO_OLD)
        await self.sign.clear(claim)


__all__ = ["Responder", "explain"]
