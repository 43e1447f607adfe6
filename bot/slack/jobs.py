"""The knowledge jobs (``bot.jobs``) as an answer worker runs them.

Slack-file jobs go to the ``FileIndexer``. A ``/kb sync`` job runs ``KnowledgeBase.sync`` in a thread
(the manifest's database lock lets one sync run at a time across every process: a busy lock tells the
person a sync is already running), posts the report through the command's ``response_url``, then
queues the Slack-file reconcile in the file jobs' lane, which posts its own summary the same way.
Slack accepts up to 5 posts to a ``response_url`` within 30 minutes of the command: these are two,
and a report later than that is logged instead.
"""

from __future__ import annotations

import asyncio
import logging
import time

from bot.jobs import Job, JobQueue
from bot.slack.files import FileIndexer
from bot.slack.mrkdwn import escape
from bot.slack.render import SlackMessage, render_error, render_sync_report
from bot.slack.web import SlackCallError, SlackWeb
from knowledge.base import KnowledgeBase
from knowledge.errors import SyncBusy
from knowledge.slack_files import FilesReport

log = logging.getLogger(__name__)

SYNC_BUSY = "A sync is already running. Check `/kb status` in a minute."
RESPONSE_URL_SECONDS = 30 * 60 - 60  # Slack's 30 minutes, less a margin for clocks and the post itself


def files_summary(report: FilesReport) -> str:
    line = (
        f"Slack files: {report.added} added, {report.updated} updated, {report.removed} removed, "
        f"{report.unchanged} unchanged, {len(report.skipped)} skipped"
    )
    return line + "".join(f"\n• {escape(problem)}" for problem in report.errors[:5])


class JobRunner:
    def __init__(self, web: SlackWeb, knowledge: KnowledgeBase, jobs: JobQueue, files: FileIndexer):
        self.web = web
        self.knowledge = knowledge
        self.jobs = jobs
        self.files = files

    async def run(self, job: Job) -> None:
        if job.kind == "sync":
            await self._sync(job)
            return
        try:
            report = await self.files.run(job)
        except Exception as exc:
            if job.args.get("response_url"):  # the reconcile after a /kb sync
                await self._respond(job, render_error(f"The sync of Slack files failed: {exc}"))
            raise
        if report is not None and job.args.get("response_url"):
            await self._respond(job, SlackMessage(text=files_summary(report)))

    async def _sync(self, job: Job) -> None:
        try:
            report = await asyncio.to_thread(self.knowledge.sync)
        except SyncBusy:
            await self._respond(job, SlackMessage(text=SYNC_BUSY))
            return
        except Exception as exc:
            log.error("/kb sync failed: %s", exc)
            await self._respond(job, render_error(f"The sync failed: {exc}"))
            return
        await self._respond(job, render_sync_report(report.to_dict()))
        # Queued before this job is deleted, so the queue is never empty in between.
        await self.jobs.record("reconcile", job.subject, job.args)

    async def dropped(self, job: Job) -> None:
        """A job given up after its workers died in it: the person who asked for it is told."""
        log.error("job %s dropped: its worker stopped %d times while running it", job.key, job.attempts)
        if job.args.get("response_url"):
            await self._respond(job, render_error("The sync stopped: the worker running it died."))

    async def _respond(self, job: Job, message: SlackMessage) -> None:
        url = job.args.get("response_url")
        if not url:
            return
        if time.time() - float(job.args.get("asked_at") or 0) > RESPONSE_URL_SECONDS:
            log.warning("job %s: too late to answer through its response_url: %s", job.key, message.text)
            return
        try:
            await self.web.respond(url, message.text, blocks=message.blocks)
        except SlackCallError:
            pass  # logged by SlackWeb


__all__ = ["SYNC_BUSY", "JobRunner", "files_summary"]
