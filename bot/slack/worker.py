"""Answer workers: take recorded messages from the ledger and answer them, away from the Slack front.

The front (``bot.slack.app``) only verifies, records, acknowledges and shows the first sign; the
ledger is the queue between them. A worker asks the ledger for work every ``POLL_INTERVAL`` (and at
once when one of its answers ends), takes at most THREADWISE_MAX_CONCURRENT_ANSWERS claims at a
time, oldest first and never two of one conversation across all workers (``Ledger.take``), and
answers each with the responder. Beside the answers it takes the knowledge jobs the front recorded
(``bot.jobs``: Slack-file events, ``/kb sync``) and runs them (``bot.slack.jobs``). It renews the
leases of the claims and jobs it still works on, and only those; a worker that dies stops renewing,
and its claims and jobs are taken again by whichever worker asks first (an answer resumes in the
messages already posted). Claims too old to resume are closed with an apology in their thread.

Leases are renewed from a heartbeat thread with its own database connection, not from the event
loop: the team's work can hold the loop for a second at a time on a busy machine, and a lease lost
to that means an answer started again elsewhere. The heartbeat stops renewing when the loop has not
turned for ``STALL_LIMIT``, so a worker that hangs still gives its claims up.

``threadwise worker`` runs one in its own process (``serve`` and ``socket`` start THREADWISE_WORKERS of
them, ``bot.workers``). ``WorkerThread`` runs one on its own thread and event loop inside another
process: the tests and the playground, where one person asks at a time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import threading
import time

import aiohttp

from bot.answering import Answerer
from bot.channel_config import ChannelConfigStore, ChannelScopes
from bot.feedback import FeedbackStore
from bot.gaps import GapStore
from bot.jobs import Job, JobQueue
from bot.ledger import Claim, Ledger, new_owner
from bot.logs import bind
from bot.metrics import REGISTRY
from bot.settings import Settings
from bot.slack.audience import Audiences
from bot.slack.channel_settings import files_here
from bot.slack.files import FileIndexer
from bot.slack.jobs import JobRunner
from bot.slack.responder import Responder
from bot.slack.web import SlackWeb, make_client
from bot.worker_metrics import DIR_VARIABLE, write_snapshot
from knowledge.base import KnowledgeBase
from knowledge.database import make_async_engine, make_engine

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.1  # seconds between asking the ledger for work when idle
# Slack delivers the events of messages sent close together in no fixed order: a claim is left this
# long after it was recorded, so that the messages of one conversation are answered by ts.
ORDER_WINDOW = 0.1
STALL_LIMIT = 10.0  # seconds without a turn of the loop before the heartbeat lets the leases lapse
AUDIENCE_SECONDS = 60.0  # a worker process hears no sharing events: it asks Slack again this often
JOB_POLL_INTERVAL = 0.5  # seconds between asking for knowledge jobs when idle (a job takes seconds)
JOBS_AT_ONCE = 2  # the file jobs' lane and a /kb sync


class AnswerWorker:
    def __init__(
        self,
        settings: Settings,
        knowledge: KnowledgeBase | None = None,
        *,
        owner: str | None = None,
        audiences: Audiences | None = None,
    ):
        self.settings = settings
        self._own_knowledge = knowledge is None
        self.knowledge = knowledge or KnowledgeBase(settings.knowledge())
        self.owner = owner or new_owner()
        self.concurrency = settings.max_concurrent_answers
        # Who may read what. A worker beside the front shares the front's, which Slack's sharing
        # events keep true; a worker process keeps its own, whose facts expire sooner (AUDIENCE_SECONDS).
        self.audiences = audiences or Audiences(
            settings.external, knowledge=self.knowledge, seconds=AUDIENCE_SECONDS
        )
        self.ledger: Ledger
        self.jobs: JobQueue
        self.responder: Responder
        self._job_runner: JobRunner
        self._answerer: Answerer | None = None
        self._session: aiohttp.ClientSession | None = None
        self._engine = None
        self._running: dict[tuple[str, str, str], Claim] = {}
        self._jobs: dict[str, Job] = {}
        self._tasks: set[asyncio.Task] = set()
        self._loops: list[asyncio.Task] = []
        self._wake = asyncio.Event()
        self._job_ended = False
        self._closing = False
        self._tick = time.monotonic()  # the last turn of the take loop
        self._heartbeat_stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    @property
    def answerer(self) -> Answerer:
        """The answerer this worker runs (built when the worker starts)."""
        if self._answerer is None:
            raise RuntimeError("the answer worker has not started")
        return self._answerer

    async def start(self) -> AnswerWorker:
        settings = self.settings
        token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
        self._session = aiohttp.ClientSession()
        web = SlackWeb(make_client(token, settings.slack_api_url, session=self._session))
        self._engine = make_async_engine(settings.database_url)
        self.ledger = Ledger(self._engine, lease=settings.claim_lease, owner=self.owner)
        await self.ledger.create()
        self.jobs = JobQueue(self._engine, lease=settings.claim_lease, owner=self.owner)
        await self.jobs.create()
        self._job_runner = JobRunner(
            web, self.knowledge, self.jobs, FileIndexer(web, self.knowledge, settings)
        )
        feedback = FeedbackStore(self._engine)
        await feedback.create()
        self._answerer = Answerer(settings, self.knowledge)
        self.responder = Responder(
            web,
            self.ledger,
            self._answerer,
            feedback,
            stream=settings.slack_streaming,
            timeout=settings.answer_timeout,
            audiences=self.audiences,
            gaps=GapStore(self._engine),
            channels=ChannelScopes(ChannelConfigStore(self._engine), self.knowledge, files_here(web)),
        )
        lease = self.ledger.lease
        self._loops = [
            self._spawn(self._every(max(0.2, lease / 2), self._expire)),
            self._spawn(self._take_loop()),
        ]
        self._heartbeat = threading.Thread(target=self._renew_leases, name="threadwise-leases", daemon=True)
        self._heartbeat.start()
        log.info("answer worker %s ready (%d answers at once)", self.owner, self.concurrency)
        return self

    # -- taking work -----------------------------------------------------------------------------

    async def _take_loop(self) -> None:
        """Claims every turn; knowledge jobs every JOB_POLL_INTERVAL or when one ended (one poller:
        one database connection at a time)."""
        next_jobs = 0.0
        while not self._closing:
            self._tick = time.monotonic()
            try:
                free = self.concurrency - len(self._running)
                for claim in await self.ledger.take(
                    free, max_age=self.settings.max_resume_age, settle=ORDER_WINDOW
                ):
                    self._running[claim.key] = claim
                    self._spawn(self._answer(claim))
                if self._job_ended or self._tick >= next_jobs:
                    self._job_ended, next_jobs = False, self._tick + JOB_POLL_INTERVAL
                    for job in await self.jobs.take(JOBS_AT_ONCE - len(self._jobs)):
                        self._jobs[job.key] = job
                        self._spawn(self._run_job(job))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error(
                    "taking work from the ledger failed (%s: %s); trying again", type(exc).__name__, exc
                )
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_INTERVAL)

    async def _answer(self, claim: Claim) -> None:
        bind(claim=claim.id)
        if claim.resumed:
            log.info("%s: resuming a claim its owner did not finish (attempt %d)", claim.id, claim.attempts)
        else:
            log.info("%s taken (%s)", claim.id, claim.kind)
        try:
            await self.responder.deliver(claim)
        finally:
            self._running.pop(claim.key, None)
            self._wake.set()  # the conversation's next message may be waiting
            with contextlib.suppress(OSError):
                write_snapshot(REGISTRY)  # the front's /metrics counts it at once

    async def _run_job(self, job: Job) -> None:
        bind(job=job.key)
        if job.attempts > 1:
            log.info("job %s: taken again after its worker stopped (attempt %d)", job.key, job.attempts)
        try:
            try:
                await self._job_runner.run(job)
            except asyncio.CancelledError:
                raise  # stopping: handed back in stop()
            except Exception:
                log.exception("job %s failed", job.key)
            await self.jobs.finish(job)
        except Exception as exc:  # left held: taken again once its lease runs out
            log.error("job %s could not be marked done (%s: %s)", job.key, type(exc).__name__, exc)
        finally:
            self._jobs.pop(job.key, None)
            self._job_ended = True  # the lane's next job may be waiting
            self._wake.set()

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _every(self, seconds: float, action) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await action()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error(
                    "ledger %s failed (%s: %s); trying again in %.1f s",
                    action.__name__,
                    type(exc).__name__,
                    exc,
                    seconds,
                )

    def _renew_leases(self) -> None:
        """The heartbeat thread: renew the leases of the claims being answered, every lease / 3."""
        engine = make_engine(self.settings.database_url)
        limit = max(STALL_LIMIT, 3 * self.ledger.lease)
        try:
            while not self._heartbeat_stop.wait(self.ledger.lease / 3):
                held = list(self._running.copy().values())
                jobs = list(self._jobs.copy().values())
                if not (held or jobs) or time.monotonic() - self._tick > limit:
                    continue  # nothing to renew, or the loop is stuck: let the leases lapse
                try:
                    with engine.begin() as conn:
                        kept = (
                            {tuple(row) for row in conn.execute(self.ledger.renewal(held)).all()}
                            if held
                            else set()
                        )
                        if jobs:
                            conn.execute(self.jobs.renewal(jobs))
                    for claim in held:
                        if claim.key not in kept:
                            claim.owner = None  # lost: its reply stops writing (bot.slack.reply)
                except Exception as exc:
                    log.error("renewing leases failed (%s: %s); trying again", type(exc).__name__, exc)
        finally:
            engine.dispose()

    async def _expire(self) -> None:
        for claim in await self.ledger.expire_stale(self.settings.max_resume_age):
            self._spawn(self.responder.apologise(claim))
        for job in await self.jobs.drop_stuck():
            self._spawn(self._job_runner.dropped(job))

    # -- stopping --------------------------------------------------------------------------------

    async def stop(self, grace: float = 5.0) -> None:
        """Take no more work; let running answers finish for ``grace`` s; hand the rest back."""
        self._closing = True
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._tick = time.monotonic() + 3600  # running answers may finish: keep their leases meanwhile
        answering = [t for t in self._tasks if not t.done()]
        if answering:
            await asyncio.wait(answering, timeout=grace)
        unfinished = list(self._running.values())
        unfinished_jobs = list(self._jobs.values())
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
        for job in unfinished_jobs:
            try:
                await self.jobs.release(job)
            except Exception:
                log.exception("job %s: could not hand it back", job.key)
        self._heartbeat_stop.set()
        if self._heartbeat is not None:
            await asyncio.to_thread(self._heartbeat.join, 10)
        if self._answerer is not None:
            await self._answerer.aclose()
        if self._engine is not None:
            await self._engine.dispose()
        if self._session is not None:
            await self._session.close()
        if self._own_knowledge:
            self.knowledge.close()


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    """``threadwise worker``: answer until ``stop`` is set, with the scheduled sync beside it.

    Every worker schedules the sync; the manifest's database lock lets one of them run it at a time,
    and the one that ran it then queues the reconcile of the files shared in Slack, which runs in the
    file jobs' lane in whichever worker takes it. Neither runs on a front.
    """
    from bot.retention import schedule_pruning
    from bot.supervisor import tell_ready
    from bot.worker_metrics import keep_writing
    from knowledge.scheduler import start_sync_scheduler

    worker = await AnswerWorker(settings).start()
    loop = asyncio.get_running_loop()

    def reconcile_files(_report) -> None:  # called on the scheduler's thread after a sync it ran
        asyncio.run_coroutine_threadsafe(worker.jobs.record("reconcile"), loop).result(60)

    scheduler = schedule_pruning(
        start_sync_scheduler(worker.knowledge, settings.sync_minutes, on_report=reconcile_files), settings
    )
    counters = asyncio.get_running_loop().create_task(keep_writing(REGISTRY))
    if settings.worker_metrics_port and not os.environ.get(DIR_VARIABLE):  # no front shows them
        from prometheus_client import start_http_server

        start_http_server(settings.worker_metrics_port, registry=REGISTRY)
        log.info("worker counters on http://0.0.0.0:%d/metrics", settings.worker_metrics_port)
    tell_ready()
    try:
        await stop.wait()
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        await worker.stop()
        counters.cancel()
        await asyncio.gather(counters, return_exceptions=True)


class WorkerThread:
    """An ``AnswerWorker`` on its own thread and event loop, inside a process that also serves Slack."""

    def __init__(
        self,
        settings: Settings,
        knowledge: KnowledgeBase | None = None,
        *,
        audiences: Audiences | None = None,
    ):
        self.worker = AnswerWorker(settings, knowledge, audiences=audiences)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="threadwise-answers", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def _call(self, coroutine) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    async def start(self) -> WorkerThread:
        self._thread.start()
        try:
            await asyncio.wrap_future(self._call(self.worker.start()))
        except BaseException:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            raise
        return self

    async def stop(self, grace: float = 5.0) -> None:
        if not self._thread.is_alive():
            return
        try:
            await asyncio.wrap_future(self._call(self.worker.stop(grace)))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            await asyncio.to_thread(self._thread.join, 30)


__all__ = ["AnswerWorker", "WorkerThread", "run_worker"]
