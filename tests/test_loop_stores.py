"""The loop's stores on SQLite and PostgreSQL: idempotent records, upserts, what each list shows."""

from __future__ import annotations

import time

from bot.channel_config import ChannelConfig, ChannelConfigStore
from bot.experts import ExpertCalls
from bot.gaps import Gap, GapStore
from bot.resolutions import Resolution, ResolutionStore, parse_permalink
from knowledge.database import make_async_engine


async def test_gaps_channels_resolutions_and_expert_calls_round_trip(database_url: str):
    engine = make_async_engine(database_url)
    try:
        gaps = GapStore(engine)
        now = time.time()
        public = Gap("not_found", "T1", "C1", False, "k1", "U1", "where is the wifi password?", ["wifi"], now)
        secret = Gap("not_helpful", "T1", "G1", True, "k2", "U2", "what is the code?", [], now)
        assert await gaps.record("a1", public) and not await gaps.record("a1", public)  # a retry: once
        assert await gaps.record("a2", secret)
        assert [g.channel for g in await gaps.list(visible_in="C9")] == ["C1"]
        assert {g.channel for g in await gaps.list(visible_in="G1")} == {"C1", "G1"}
        await gaps.withdraw("a2", "U2")
        assert [g.channel for g in await gaps.list()] == ["C1"]

        channels = ChannelConfigStore(engine)
        await channels.put(ChannelConfig("T1", "C1", folders=("people",)))
        await channels.put(ChannelConfig("T1", "C1", folders=None, follow_ups="mention"))  # replaced
        (config,) = await channels.all()
        assert (config.folders, config.follow_ups) == (None, "mention")

        resolutions = ResolutionStore(engine)
        entry = Resolution(
            "T1", "C1", "general", "1764892800.000100", False, "U1", "Q?", "A.", "<@U2>", "https://x"
        )
        await resolutions.put(entry)
        assert await resolutions.list() == []  # proposed, not saved
        await resolutions.put(Resolution(**{**entry.__dict__, "state": "saved", "answer": "B."}))
        (saved,) = await resolutions.list()
        assert saved.answer == "B." and saved.title == "#general thread, 2025-12-05"

        calls = ExpertCalls(engine)
        assert await calls.call_once("T1:C1:1", "U1", ("U2", "subteam:S1")) is not None
        assert await calls.call_once("T1:C1:1", "U3", ("U2",)) is None
        assert (await calls.get("T1:C1:1")).called_by == "U1"
    finally:
        await engine.dispose()


def test_a_thread_link_names_its_channel_and_thread():
    link = "https://acme.slack.com/archives/C0123ABC/p1764892800000100"
    assert parse_permalink(link) == ("C0123ABC", "1764892800.000100")
    reply = "<https://acme.slack.com/archives/C0123ABC/p1764892900000200?thread_ts=1764892800.000100&cid=C0123ABC>"
    assert parse_permalink(reply) == ("C0123ABC", "1764892800.000100")
