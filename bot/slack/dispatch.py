"""Runs the claimed answers: one at a time per conversation, in the order sent, a bounded number at once.

``submit`` takes a claimed message, puts up its working sign at once (whatever is queued ahead) and
queues it under its conversation. Each conversation has one
worker that takes its claims oldest-sent first; a semaphore bounds how many answers run across
conversations.

The dispatcher also keeps the ledger honest for this process: it renews the leases of every claim it
holds (queued or running), and it sweeps for claims whose owner stopped renewing them (a crashed or
killed process, here or on another replica): the young ones are taken over and answered, the ones
older than THREADWISE_MAX_RESUME_AGE are closed with an apology in their thread. The first sweep runs
at start, which is how a restarted process finishes what it had claimed.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from dataclasses import dataclass, field

from bot.ledger import Claim, Ledger
from bot.slack.responder import Responder

log = logging.getLogger(__name__)

# Slack delivers the events of messages sent close together in no fixed order: a new conversation
# worker waits this long before its first answer, so that they are queued, and answered, by ts.
ORDER_WINDOW = 0.1


@dataclass(order=True)
class _Job:
    sent_at: float
    seq: int
    claim: Claim = field(compare=False)
    sign: asyncio.Future | None = field(default=None, compare=False)


class Dispatcher:
    def __init__(
        self,
        ledger: Ledger,
        responder: Responder,
        *,
        concurrency: int = 8,
        max_resume_age: float = 600.0,
    ):
        self.ledger = ledger
        self.responder = responder
        self.max_resume_age = max_resume_age
        self._slots = asyncio.Semaphore(concurrency)
        self._queues: dict[str, list[_Job]] = {}
        self._workers: dict[str, asyncio.Task] = {}
        self._running: dict[tuple[str, str, str], Claim] = {}
        self._known: set[tuple[str, str, str]] = set()  # queued or running here
        self._tasks: set[asyncio.Task] = set()
        self._seq = itertools.count()
        self._loops: list[asyncio.Task] = []
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False

    # -- work ------------------------------------------------------------------------------------

    def submit(self, claim: Claim) -> None:
        """Hand on a claim this process holds: the sign goes up now, the answer when its turn comes."""
        if self._closing:
            return  # the claim stays open in the ledger; whoever sweeps next answers it
        if claim.key in self._known:
            return  # already here (taken over again after a stall): one answer
        self._known.add(claim.key)
        job = _Job(claim.sent_at, next(self._seq), claim)
        job.sign = self._spawn(self.responder.sign.show(claim))
        heapq.heappush(self._queues.setdefault(claim.conversation, []), job)
        self._idle.clear()
        if claim.conversation not in self._workers:
            self._workers[claim.conversation] = self._spawn(self._work(claim.conversation))

    async def _work(self, conversation: str) -> None:
        queue = self._queues[conversation]
        try:
            await asyncio.sleep(ORDER_WINDOW)
            while queue and not self._closing:
                job = heapq.heappop(queue)
                if job.sign is not None:
                    await job.sign  # for /ask the sign posts the thread the answer goes in
                async with self._slots:
                    self._running[job.claim.key] = job.claim
                    try:
                        await self.responder.deliver(job.claim)
                    finally:
                        self._running.pop(job.claim.key, None)
                        self._known.discard(job.claim.key)
        finally:
            del self._workers[conversation]
            if not queue:
                del self._queues[conversation]
            if not self._workers:
                self._idle.set()

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def wait_idle(self, timeout: float | None = None) -> None:
        """Until nothing is queued or running (for tests and a clean shutdown)."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    # -- leases and resumption -------------------------------------------------------------------

    async def start(self) -> None:
        lease = self.ledger.lease
        self._loops = [
            self._spawn(self._every(lease / 3, self._renew)),
            self._spawn(self._every(max(0.2, lease / 2), self.sweep, first_now=True)),
        ]

    async def _every(self, seconds: float, action, *, first_now: bool = False) -> None:
        if not first_now:
            await asyncio.sleep(seconds)
        while True:
            try:
                await action()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ledger %s failed; trying again in %.1f s", action.__name__, seconds)
            await asyncio.sleep(seconds)

    async def _renew(self) -> None:
        await self.ledger.renew()

    async def sweep(self) -> None:
        """Resume claims whose owner is gone; close the ones too old to resume. Returns when queued."""
        for claim in await self.ledger.expire_stale(self.max_resume_age):
            self._spawn(self.responder.apologise(claim))
        for claim in await self.ledger.take_over(self.max_resume_age):
            log.info("%s: resuming a claim its owner did not finish (attempt %d)", claim.id, claim.attempts)
            self.submit(claim)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop sweeping; let running answers finish for ``grace`` s; hand back the rest to the ledger."""
        self._closing = True
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        if self._workers:  # they take no new job now; the running answers may finish
            await asyncio.wait(list(self._workers.values()), timeout=grace)
        queued = [job.claim for queue in self._queues.values() for job in queue]
        unfinished = queued + list(self._running.values())
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for claim in unfinished:
            try:
                await self.ledger.release(claim)
            except Exception:
                log.exception("%s: could not hand the claim back", claim.id)
        if unfinished:
            log.info("handed %d unfinished claims back to the ledger", len(unfinished))


__all__ = ["Dispatcher"]
