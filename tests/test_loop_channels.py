"""Per-channel settings, end to end: ``/kb config`` (admins only) opens a modal, its submission is
stored, ``/kb status`` shows it, and the channel's answers follow it: folders and other channels'
Slack files narrowed inside Milvus, follow-ups only when mentioned (the real Bolt app, the local Slack
workspace with its modals, the scripted team, Milvus Lite)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.channel_config import ChannelConfig, ChannelConfigStore
from knowledge.base import KnowledgeBase
from knowledge.config import KnowledgeConfig
from knowledge.database import make_async_engine
from knowledge.slack_files import SOURCE
from knowledge.store import render_filter
from knowledge.types import AccessScope, Chunk
from localslack.emulator import SlackEmulator
from tests import app_fixtures
from tests.app_fixtures import (
    analyst_saw,
    make_settings,
    script_team,
    serving,
    shown_to,
    synced_kb,
)
from tests.corpus import write_corpus
from tests.emulators.openai import ModelServer

HERE_FILE = "# Standup\n\nThe daily standup is at 09:15 in the Kestrel room (HERE-FILE)."
QUESTION = "who books the Kestrel room on Fridays, and how many vacation days do I get?"
OTHER_FILE = "# Kestrel room\n\nThe design team books the Kestrel room on Fridays (OTHER-FILE)."


@pytest.fixture
def kb(tmp_path: Path) -> Iterator[KnowledgeBase]:
    write_corpus(tmp_path / "docs")
    with synced_kb(tmp_path, "channels_test") as base:
        yield base


model, slack = app_fixtures.model, app_fixtures.slack


async def wait_until(check, timeout: float = 20.0):
    for _ in range(int(timeout / 0.05)):
        if found := await check() if asyncio.iscoroutinefunction(check) else check():
            return found
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def asked(slack: SlackEmulator, model: ModelServer, channel: str, text: str) -> str:
    """What the analyst was shown for one question asked in ``channel``."""
    model.reset()
    script_team(model)
    said = await slack.user_says(channel, text)
    await slack.wait_for_reply(channel, said.ts, timeout=20)
    return analyst_saw(model)


async def test_an_admin_sets_a_channel_up_and_its_answers_follow_the_settings(
    slack: SlackEmulator, model: ModelServer, sqlite_url: str, kb: KnowledgeBase
):
    ws = slack.workspace
    ws.user("U_ALICE").is_admin = True
    ws.add_channel("C_DESIGN", "design", "public", {"U_ALICE", "U_BOB", ws.bot_user_id})
    ws.add_user_group("S_ONCALL", "oncall", ["U_BOB"])
    script_team(model)
    settings = make_settings(slack, model, sqlite_url, docs=list(kb.config.docs))
    async with serving(slack, settings, kb) as bot:
        await slack.user_shares_file("C_GENERAL", "standup.md", HERE_FILE)
        await slack.user_shares_file("C_DESIGN", "kestrel.md", OTHER_FILE)
        await wait_until(lambda: len(kb.manifest.documents(SOURCE)) == 2)

        # Not an admin: told so, nothing opens. Not a channel: told where to run it.
        await slack.user_runs_command("/kb", "config", user="U_BOB")
        assert "not allowed" in shown_to(slack, "U_BOB") and slack.opened_views() == []
        await slack.user_runs_command("/kb", "config", channel="D_ALICE")
        assert "run `/kb config` in the channel" in shown_to(slack)

        await slack.user_runs_command("/kb", "config")
        (view,) = await slack.wait_for(slack.opened_views)
        blocks = {b.get("block_id"): b for b in view["blocks"]}
        assert [o["value"] for o in blocks["folders"]["element"]["options"]] == [
            "engineering",
            "people",
            "security",
        ]
        assert [o["value"] for o in blocks["expert_group"]["element"]["options"]] == ["S_ONCALL"]
        ack = await slack.user_submits_view(
            view["id"],
            {
                "folders": ["engineering"],
                "files": "no",
                "follow_ups": "mention",
                "experts": ["U_BOB"],
                "expert_group": "S_ONCALL",
            },
        )
        assert ack.ok and not (ack.body or {}).get("response_action"), ack.body
        await slack.wait_for(lambda: "Saved this channel's settings" in shown_to(slack))
        stored = await bot.channels.get("T_TEAM", "C_GENERAL")
        assert stored is not None and stored.folders == ("engineering",) and stored.updated_by == "U_ALICE"

        before = len(slack.ephemerals("U_ALICE"))
        await slack.user_runs_command("/kb", "status")
        (status,) = await slack.wait_for(lambda: slack.ephemerals("U_ALICE")[before:])
        for line in (
            "Document folders: engineering",
            "Slack files from other public channels: left out",
            "Follow-ups in threads: only when I'm mentioned",
            "Experts: <@U_BOB>, <!subteam^S_ONCALL>",
        ):
            assert line in status.text

        # The channel searches engineering documents and its own files only.
        general = await asked(slack, model, "C_GENERAL", QUESTION)
        assert "HERE-FILE" in general and "engineering/" in general
        assert "people/" not in general and "OTHER-FILE" not in general
        # A channel without settings sees everything the workspace may.
        design = await asked(slack, model, "C_DESIGN", QUESTION)
        assert "people/vacation.md" in design and "OTHER-FILE" in design

        # Follow-ups: only when mentioned.
        said = await slack.user_says("C_GENERAL", "how do I reset my VPN password?")
        await slack.wait_for_reply("C_GENERAL", said.ts, timeout=20)
        await slack.user_says("C_GENERAL", "and which clients?", thread_ts=said.ts, mention=False)
        await asyncio.sleep(0.5)
        await bot.wait_idle(timeout=30)
        assert len(slack.bot_messages("C_GENERAL", said.ts)) == 1
        await slack.user_says("C_GENERAL", "and which clients?", thread_ts=said.ts)
        await slack.wait_for_reply("C_GENERAL", said.ts, count=2, timeout=20)


async def test_settings_survive_a_restart_and_defaults_stand_without_them(sqlite_url: str):
    engine = make_async_engine(sqlite_url)
    store = ChannelConfigStore(engine)
    assert await store.get("T1", "C1") is None
    await store.put(ChannelConfig("T1", "C1", folders=("people",), follow_ups="mention", experts=("U1",)))
    await engine.dispose()
    engine = make_async_engine(sqlite_url)
    again = await ChannelConfigStore(engine).get("T1", "C1")
    assert again is not None and again.folders == ("people",) and again.experts == ("U1",)
    with pytest.raises(ValueError, match="follow_ups"):
        await ChannelConfigStore(engine).put(ChannelConfig("T1", "C2", follow_ups="never"))  # type: ignore[arg-type]
    await engine.dispose()


def test_a_folder_filter_is_one_escaped_condition_inside_milvus(tmp_path: Path):
    expr = render_filter([("folder", "in", ["a_b", "100%"])])
    assert expr == r'(url != "" or doc_path like "a\\_b/%" or doc_path like "100\\%/%")'
    with pytest.raises(ValueError, match="invalid folder"):
        render_filter([("folder", "in", ['x" or true or "'])])

    kb = KnowledgeBase(
        KnowledgeConfig(
            milvus_uri=str(tmp_path / "milvus.db"),
            collection="folders_test",
            database_url=f"sqlite:///{tmp_path / 'm.db'}",
        )
    )
    chunks = [
        Chunk(
            f"c{i}",
            f"d{i}",
            path,
            path,
            "",
            None,
            0,
            f"parking rules for bikes, as {path} ({i}) tells them",
            url=url,
        )
        for i, (path, url) in enumerate(
            [("a_b/x.md", ""), ("aXb/y.md", ""), ("a_b2/z.md", ""), ("notes.md", "https://slack.example/f")]
        )
    ]
    kb.open_store()
    kb.store.upsert(chunks, kb.embedder.embed_documents([c.text for c in chunks]))
    scope = AccessScope(folders=("a_b",))
    found = {hit.chunk.doc_path for hit in kb.search("parking rules", k=10, scope=scope)}
    assert found == {"a_b/x.md", "notes.md"}
    excluded = AccessScope(folders=("a_b",), exclude_docs=("d3",))
    assert {hit.chunk.doc_path for hit in kb.search("parking", k=10, mode="bm25", scope=excluded)} == {
        "a_b/x.md"
    }
    kb.close()


def test_the_modal_round_trips_its_settings():
    from bot.slack.channel_settings import modal, read_submission

    config = ChannelConfig("T1", "C1", folders=("people",), other_channel_files=False, experts=("U1",))
    view = modal(config, ["engineering", "people"], [("S1", "oncall")])
    assert json.loads(view["private_metadata"]) == {"team": "T1", "channel": "C1"}
    values = {}
    for block in view["blocks"]:
        element = block.get("element") or {}
        if element.get("type") == "multi_static_select":
            values[block["block_id"]] = {
                element["action_id"]: {"selected_options": element.get("initial_options")}
            }
        elif element.get("type") == "radio_buttons":
            values[block["block_id"]] = {element["action_id"]: {"selected_option": element["initial_option"]}}
        elif element.get("type") == "multi_users_select":
            values[block["block_id"]] = {
                element["action_id"]: {"selected_users": element.get("initial_users")}
            }
    back = read_submission(view | {"state": {"values": values}}, "U9")
    assert (back.folders, back.other_channel_files, back.follow_ups, back.experts) == (
        ("people",),
        False,
        "always",
        ("U1",),
    )


def test_the_command_line_lists_the_configured_channels(sqlite_url: str, monkeypatch, capsys):
    from bot.cli import main

    async def seed() -> None:
        engine = make_async_engine(sqlite_url)
        await ChannelConfigStore(engine).put(
            ChannelConfig("T1", "C1", folders=("people",), other_channel_files=False, expert_group="S1")
        )
        await engine.dispose()

    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    assert main(["channels"]) == 0
    assert "No channel has its own settings" in capsys.readouterr().out
    asyncio.run(seed())
    assert main(["channels", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert (listed["channel"], listed["folders"], listed["other_channel_files"]) == ("C1", ["people"], False)
    assert main(["channels"]) == 0
    shown = capsys.readouterr().out
    assert "folders: people" in shown and "files from other public channels: left out" in shown
