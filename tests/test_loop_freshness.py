"""Fresh and conflicting sources, end to end: the writer is told each passage's date, every source under
the answer says how old its document is, and two documents that disagree on a figure are both cited,
the newer first (the real Bolt app, the local Slack workspace, the scripted team, Milvus Lite)."""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime, timedelta

import pytest

from bot.freshness import updated_ago
from knowledge.base import KnowledgeBase
from localslack.emulator import SlackEmulator
from tests import app_fixtures
from tests.app_fixtures import make_settings, script_team, serving, synced_kb
from tests.emulators.openai import ModelRequest, ModelServer
from tests.team_script import WRITER

NOW = time.time()
OLD = NOW - 800 * 86400  # about two years ago
NEW = NOW - 95 * 86400  # about three months ago
MEALS_OLD = "# Meal allowance (2023)\n\nMeals while travelling are reimbursed up to 45 euros per day.\n"
MEALS_NEW = "# Meal allowance\n\nMeals while travelling are reimbursed up to 60 euros per day.\n"


def day(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d")


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("fresh-kb")
    docs = root / "docs" / "people"
    docs.mkdir(parents=True)
    for name, text, stamp in (("meals-2023.md", MEALS_OLD, OLD), ("meals.md", MEALS_NEW, NEW)):
        (docs / name).write_text(text, encoding="utf-8")
        os.utime(docs / name, (stamp, stamp))
    with synced_kb(root, "fresh_test") as base:
        yield base


model, slack = app_fixtures.model, app_fixtures.slack


def conflicting_writer(request: ModelRequest) -> str:
    """States the newer figure first and cites both, as the writer's instructions ask."""
    passages = re.findall(
        r'<passage n="(\d+)" document="([^"]+)"[^>]*?updated="([\d-]+)"', request.transcript
    )
    by_doc = {doc: (n, date) for n, doc, date in passages}
    new, old = by_doc["people/meals.md"], by_doc["people/meals-2023.md"]
    return (
        f"Meals are reimbursed up to 60 euros per day [{new[0]}] (updated {new[1]}); an older document "
        f"says 45 euros [{old[0]}] (updated {old[1]})."
    )


async def test_the_writer_gets_each_passages_date_and_the_sources_say_how_old_they_are(
    slack: SlackEmulator, model: ModelServer, sqlite_url: str, kb: KnowledgeBase
):
    script_team(model, writer=conflicting_writer)
    async with serving(slack, make_settings(slack, model, sqlite_url), kb) as bot:
        said = await slack.user_says("C_GENERAL", "what is the meal allowance per day when travelling?")
        (reply,) = await slack.wait_for_reply("C_GENERAL", said.ts, timeout=20)
        await bot.wait_idle(timeout=30)

    writer_saw = "\n".join(r.transcript for r in model.chat_requests if r.model == WRITER)
    assert re.search(f'document="people/meals.md" [^>]*updated="{day(NEW)}"', writer_saw)
    assert re.search(f'document="people/meals-2023.md" [^>]*updated="{day(OLD)}"', writer_saw)
    shown = reply.display_text
    # The newer figure first, both cited, each source with its age.
    assert shown.index("60 euros") < shown.index("45 euros")
    assert re.search(r"60 euros per day \[\d\].*45 euros \[\d\]", shown)
    sources = shown[shown.index("Sources") :]
    assert "updated 3 months ago" in sources and "updated 2 years ago" in sources


def test_ages_read_as_people_say_them():
    now = datetime(2026, 12, 5, tzinfo=UTC)
    ago = {
        0: "updated today",
        1: "updated yesterday",
        5: "updated 5 days ago",
        21: "updated 3 weeks ago",
        95: "updated 3 months ago",
        800: "updated 2 years ago",
    }
    for days, words in ago.items():
        assert updated_ago((now - timedelta(days=days, hours=1)).isoformat(), now) == words
    assert updated_ago("", now) == "" and updated_ago("not a date", now) == ""
