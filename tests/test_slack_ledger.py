"""The ledger's claims on a real database: SQLite, and PostgreSQL where TEST_DATABASE_URL is set.

Several ``Ledger`` objects on one database stand for several processes (or replicas): they share
nothing but the database, as in production.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.answer import Answer, Source
from bot.feedback import FeedbackStore
from bot.ledger import Claim, Ledger
from knowledge.database import make_async_engine


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_async_engine(database_url)
    await Ledger(engine).create()
    yield engine
    await engine.dispose()


def a_claim(ts: str = "1712345678.000100", conversation: str | None = None) -> Claim:
    return Claim(
        team="T1",
        channel="C1",
        ts=ts,
        kind="mention",
        conversation=conversation or f"slack:T1:C1:{ts}",
        thread_ts=ts,
        user="U1",
        question="how do I reset my VPN password?",
        sent_at=float(ts),
        context={"channel_type": "channel"},
    )


async def test_one_message_is_recorded_once_however_many_deliveries_race(engine: AsyncEngine):
    fronts = [Ledger(engine, owner=f"front-{i}") for i in range(5)]
    won = await asyncio.gather(*(fronts[i % 5].record(a_claim()) for i in range(30)))
    assert won.count(True) == 1
    (stored,) = await fronts[0].all()
    assert (stored.status, stored.attempts, stored.owner) == ("open", 0, None)  # queued, nobody's yet
    assert stored.question == "how do I reset my VPN password?"
    assert stored.context == {"channel_type": "channel"}


async def test_a_burst_of_messages_each_delivered_twice_is_recorded_once_each(engine: AsyncEngine):
    front = Ledger(engine, owner="front")
    stamps = [f"1712345678.{i:06d}" for i in range(250)]  # more than one batch
    deliveries = [a_claim(ts) for ts in stamps] + [a_claim(ts) for ts in reversed(stamps)]
    held = a_claim("1712345679.000001")
    won = await asyncio.gather(*(front.record(c) for c in deliveries), front.record(held, hold=True))
    assert won.count(True) == 251
    assert {c.ts for c, w in zip(deliveries, won, strict=False) if w} == set(stamps)
    stored = {c.ts: c for c in await front.all()}
    assert len(stored) == 251
    assert stored[held.ts].owner == "front" and stored[stamps[0]].owner is None
    assert won[-1] and held.owner == "front"


async def test_a_queued_claim_is_taken_by_exactly_one_worker(engine: AsyncEngine):
    assert await Ledger(engine, owner="front").record(a_claim())
    workers = [Ledger(engine, owner=f"worker-{i}") for i in range(5)]
    taken = await asyncio.gather(*(w.take(8, max_age=600) for w in workers))
    (claim,) = [c for found in taken for c in found]
    assert (claim.attempts, claim.resumed) == (1, False)
    holder = next(w for w, found in zip(workers, taken, strict=True) if found)
    assert claim.owner == holder.owner and await holder.holds(claim)


async def test_a_lapsed_claim_is_taken_again_once_and_keeps_its_reply(engine: AsyncEngine):
    await Ledger(engine, owner="front").record(a_claim())
    dead = Ledger(engine, lease=0.5, owner="dead")
    (claim,) = await dead.take(1, max_age=600)
    assert await dead.record_reply(claim, "1712345679.000200", "stream")
    assert await dead.record_parts(claim, ["1712345679.000300", "1712345679.000400"])

    survivors = [Ledger(engine, lease=30, owner=f"alive-{i}") for i in range(3)]
    assert await survivors[0].take(8, max_age=600) == []  # the lease still runs
    await asyncio.sleep(0.6)
    taken = await asyncio.gather(*(s.take(8, max_age=600) for s in survivors))
    (resumed,) = [c for found in taken for c in found]
    assert (resumed.reply_ts, resumed.reply_mode, resumed.attempts) == ("1712345679.000200", "stream", 2)
    assert resumed.reply_parts == ["1712345679.000300", "1712345679.000400"] and resumed.resumed
    holder = next(s for s, found in zip(survivors, taken, strict=True) if found)
    assert await holder.holds(resumed) and not await dead.holds(claim)
    # The dead owner's late writes change nothing; the new holder finishes it.
    assert not await dead.finish(claim, "done")
    assert await holder.finish(resumed, "done")
    (stored,) = await holder.all()
    assert (stored.status, stored.owner) == ("done", None)


async def test_renewal_keeps_the_claims_a_worker_still_works_on_and_only_those(engine: AsyncEngine):
    front = Ledger(engine, owner="front")
    for ts in ("1712345678.000100", "1712345678.000200"):
        await front.record(a_claim(ts))
    worker = Ledger(engine, lease=0.5, owner="worker")
    working, dropped = await worker.take(8, max_age=600)
    other = Ledger(engine, owner="other")
    for _ in range(3):
        await asyncio.sleep(0.3)
        assert await worker.renew([working]) == 1
        taken = await other.take(8, max_age=600)
        assert [c.key for c in taken] in ([], [dropped.key])
    assert not await worker.holds(dropped) and await worker.holds(working)


async def test_claims_too_old_to_resume_are_expired_not_resumed(engine: AsyncEngine):
    assert await Ledger(engine, owner="front").record(a_claim())
    await asyncio.sleep(0.3)
    sweeper = Ledger(engine, owner="sweeper")
    assert await sweeper.take(8, max_age=0.2) == []
    (expired,) = await sweeper.expire_stale(max_age=0.2)
    assert expired.status == "expired"
    assert await sweeper.expire_stale(max_age=0.2) == []
    (stored,) = await sweeper.all()
    assert stored.status == "expired"


async def test_a_held_claim_is_released_and_then_taken_at_once(engine: AsyncEngine):
    front = Ledger(engine, lease=60, owner="front")
    claim = a_claim()
    assert await front.record(claim, hold=True)
    assert await Ledger(engine, owner="worker").take(8, max_age=600) == []  # /ask: thread not posted yet
    assert await front.release(claim)
    (taken,) = await Ledger(engine, owner="worker").take(8, max_age=600)
    assert taken.key == claim.key


async def test_a_thread_the_bot_was_called_in_is_known(engine: AsyncEngine):
    ledger = Ledger(engine)
    assert not await ledger.answered("slack:T1:C1:1712345678.000100")
    assert await ledger.record(a_claim())
    assert await ledger.answered("slack:T1:C1:1712345678.000100")
    assert not await ledger.answered("slack:T1:C1:1712345999.000100")


async def test_one_conversation_is_answered_one_message_at_a_time_oldest_first_across_workers(
    engine: AsyncEngine,
):
    front = Ledger(engine, owner="front")
    for ts in ("1712345678.000300", "1712345678.000100", "1712345678.000200"):
        assert await front.record(a_claim(ts, conversation="slack:T1:C1:thread"))
    assert await front.record(a_claim("1712345678.000900"))  # another conversation
    workers = [Ledger(engine, owner=f"worker-{i}") for i in range(4)]
    order = []
    for _ in range(3):
        taken = [
            c for found in await asyncio.gather(*(w.take(8, max_age=600) for w in workers)) for c in found
        ]
        in_thread = [c for c in taken if c.conversation == "slack:T1:C1:thread"]
        assert len(in_thread) == 1, [c.ts for c in taken]  # never two of one conversation at once
        order.append(in_thread[0].ts)
        holder = next(w for w in workers if w.owner == in_thread[0].owner)
        assert await holder.finish(in_thread[0])
    assert order == ["1712345678.000100", "1712345678.000200", "1712345678.000300"]


async def test_a_claim_is_left_to_settle_before_it_is_taken(engine: AsyncEngine):
    assert await Ledger(engine, owner="front").record(a_claim())
    worker = Ledger(engine, owner="worker")
    assert await worker.take(8, max_age=600, settle=0.3) == []
    await asyncio.sleep(0.35)
    assert len(await worker.take(8, max_age=600, settle=0.3)) == 1


async def test_a_click_is_stored_with_the_question_answer_and_sources(engine: AsyncEngine):
    store = FeedbackStore(engine)
    await store.create()
    source = Source(1, "engineering/vpn.md", "VPN access", "Reset", None, "Open the portal", "c1", "")
    answer = Answer(text="Open the Gatekeeper portal [1].", sources=[source], conversation="slack:T1:C1:1.0")
    await store.record_answer("T1:C1:1.0", "how do I reset it?", answer)
    assert await store.record_click("T1:C1:unknown", "U1", "helpful") is None
    first = await store.record_click("T1:C1:1.0", "U1", "not_helpful")
    assert first is not None and first.answer == answer.text
    await store.record_click("T1:C1:1.0", "U1", "helpful")
    (stored,) = await store.clicks("T1:C1:1.0")
    assert (stored.user, stored.rating, stored.question) == ("U1", "helpful", "how do I reset it?")
    assert stored.sources[0]["doc"] == "engineering/vpn.md"
    with pytest.raises(ValueError, match="unknown rating"):
        await store.record_click("T1:C1:1.0", "U1", "meh")  # type: ignore[arg-type]


def test_claim_ids_are_stable_and_fit_a_button_value():
    claim = a_claim()
    assert claim.id == "T1:C1:1712345678.000100" and len(claim.id) < 2000
    assert time.time() > claim.sent_at
