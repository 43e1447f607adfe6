"""Slack-file events and /kb sync are knowledge jobs in the database: the front records them, an
answer worker runs them, and none is lost to a front that stops or a worker that dies mid-job.

End to end: the Slack emulator delivers the events to the real Bolt app over HTTP; the answer worker
(on its own thread and loop, as in the playground) downloads and indexes into real Milvus Lite. The
queue itself is checked on SQLite and PostgreSQL: what lands in the table.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest

from bot.jobs import MAX_ATTEMPTS, JobQueue
from knowledge.base import KnowledgeBase
from knowledge.database import make_async_engine
from knowledge.sync import SYNC_LOCK
from knowledge.types import AccessScope
from localslack.emulator import SlackEmulator
from tests import test_slack_files
from tests.app_fixtures import make_settings, serving
from tests.emulators.openai import ModelServer
from tests.test_slack_files import found, indexed

kb = test_slack_files.kb  # an empty knowledge base in Milvus Lite, of this test's own
model = test_slack_files.model
slack = test_slack_files.slack

MENU = "# Menu\n\nSoup of the day is LENTIL-77.\n"


async def test_a_file_shared_while_no_worker_runs_is_indexed_by_the_next_worker_even_after_one_died(
    slack: SlackEmulator,
    model: ModelServer,
    sqlite_url: str,
    kb: KnowledgeBase,
    caplog: pytest.LogCaptureFixture,
):
    settings = make_settings(slack, model, sqlite_url, claim_lease=1.0)
    async with serving(slack, settings, kb, workers=0):  # the front alone, stopped after these
        await slack.user_shares_file("C_GENERAL", "menu.md", MENU)
        await slack.user_runs_command("/kb", "sync")
        assert "Syncing the document folders" in slack.ephemerals("U_ALICE")[-1].text
    assert "LENTIL-77" not in found(kb, "soup of the day", AccessScope.workspace())  # not on the front
    assert not [e for e in slack.ephemerals("U_ALICE") if e.text.startswith("Slack files:")]
    engine = make_async_engine(sqlite_url)
    # file_shared and the message carrying the file: one job
    assert sorted(j.kind for j in await JobQueue(engine).all()) == ["file", "sync"]

    # A worker takes the file job and dies in it: its lease runs out, and the next worker takes it.
    dead = JobQueue(engine, lease=1.0, owner="dead-worker")
    taken = {j.kind: j for j in await dead.take(2)}
    assert taken["file"].attempts == 1
    await dead.release(taken["sync"])
    await engine.dispose()

    with caplog.at_level(logging.INFO, logger="bot.slack.worker"):
        async with serving(slack, settings, kb) as bot:
            await indexed(bot)
            assert await bot.jobs.all() == []
            report = await slack.wait_for(
                lambda: [e for e in slack.ephemerals("U_ALICE") if e.text.startswith("Slack files:")], 30
            )
    assert "LENTIL-77" in found(kb, "soup of the day", AccessScope.workspace())
    assert report[0].text.startswith("Slack files: 0 added, 0 updated, 0 removed, 1 unchanged")
    assert any("taken again after its worker stopped (attempt 2)" in r.getMessage() for r in caplog.records)


async def test_kb_sync_while_another_replica_syncs_tells_the_person_so(
    slack: SlackEmulator, model: ModelServer, sqlite_url: str, kb: KnowledgeBase
):
    assert kb.manifest.acquire_lock(SYNC_LOCK, "another-host:1:replica", timedelta(minutes=5))
    async with serving(slack, make_settings(slack, model, sqlite_url), kb) as bot:
        await slack.user_runs_command("/kb", "sync")
        assert "Syncing the document folders" in slack.ephemerals("U_ALICE")[-1].text
        await slack.wait_for(lambda: [e for e in slack.ephemerals("U_ALICE") if "already running" in e.text])
        await bot.wait_idle(30)
    shown = [e.text for e in slack.ephemerals("U_ALICE")]
    assert shown[-1] == "A sync is already running. Check `/kb status` in a minute."
    assert not [text for text in shown if text.startswith("Slack files:")]  # no reconcile after it


# --- the queue ----------------------------------------------------------------------------------


@pytest.fixture
async def queues(database_url: str):
    engine = make_async_engine(database_url)
    yield JobQueue(engine, lease=30, owner="one"), JobQueue(engine, lease=30, owner="two")
    await engine.dispose()


async def test_repeated_events_coalesce_and_one_arriving_mid_job_runs_it_again(queues):
    one, two = queues
    await one.record("file", "F1")
    await one.record("file", "F1")  # file_shared and the message carrying it
    await one.record("privacy", "C1", {"private": True})
    await one.record("privacy", "C1", {"private": False})  # made public again before it ran
    assert [(j.key, j.generation, j.args) for j in await one.all()] == [
        ("file:F1", 2, {}),
        ("privacy:C1", 2, {"private": False}),
    ]

    (job,) = await one.take(5)  # one lane: the oldest only
    assert job.key == "file:F1" and await two.take(5) == []
    await two.record("file", "F1")  # changed again while it runs
    await one.finish(job)
    (again,) = await two.take(5)
    assert again.key == "privacy:C1"  # the rerun of F1 goes behind what waited
    await two.finish(again)
    (rerun,) = await one.take(5)
    assert (rerun.key, rerun.attempts) == ("file:F1", 1)
    await one.finish(rerun)
    assert await one.pending() == 0


async def test_each_sync_is_its_own_lane_and_a_job_whose_workers_die_is_dropped(queues):
    one, _ = queues
    await one.record("file", "F1")
    await one.record("sync", "trigger-1", {"response_url": "http://x"})
    await one.record("sync", "trigger-2", {"response_url": "http://y"})
    taken = await one.take(5)
    assert sorted(j.key for j in taken) == ["file:F1", "sync:trigger-1", "sync:trigger-2"]
    for job in taken:
        await one.finish(job)

    short = JobQueue(one.engine, lease=0.01, owner="dies")
    await short.record("reconcile")
    for _ in range(MAX_ATTEMPTS):
        await asyncio.sleep(0.02)
        assert [j.key for j in await short.take(5)] == ["reconcile:"]  # taken again once the lease lapses
    await asyncio.sleep(0.02)
    assert await short.take(5) == []
    assert [j.key for j in await short.drop_stuck()] == ["reconcile:"]
    assert "reconcile:" not in [j.key for j in await one.all()]
