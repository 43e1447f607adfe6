"""The playground in a real browser: headless Chromium drives the page against the real app.

Search-only (no model): a question typed in #general gets the handbook's passages with their
sources; a thread opens; a feedback click lands in the app's feedback store; /kb status shows the
index; the answer's panel shows the retrieved chunks. Screenshots go to artifacts/playground/.
Skips, saying so, where Chromium or Playwright is not installed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.playground.server import HANDBOOK, Playground, playground_settings
from bot.settings import Settings
from knowledge.base import KnowledgeBase

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "playground"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]

async_playwright = pytest.importorskip(
    "playwright.async_api", reason="Playwright for Python is not installed: browser test skipped"
).async_playwright
if CHROMIUM is None:
    pytest.skip(
        "no chromium on PATH (apt-get install chromium): browser test skipped", allow_module_level=True
    )


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "THREADWISE_ANSWER_MODE"):
        monkeypatch.delenv(name, raising=False)
    base = Settings(_env_file=None, sync_minutes=0, openai_api_key=None, openai_base_url=None)
    settings = playground_settings(base, docs=[HANDBOOK], data=tmp_path / "playground")
    kb = KnowledgeBase(settings.knowledge())
    try:
        assert kb.sync().ok
    finally:
        kb.close()
    return settings


async def test_a_question_in_the_browser_gets_passages_a_thread_feedback_and_kb_status(settings: Settings):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with Playground(settings, port=0) as playground, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = await browser.new_page(viewport={"width": 1400, "height": 860})
        try:
            await page.goto(playground.url)
            await page.locator("#channels li", has_text="general").wait_for()

            # A mention in #general: the bot answers in the question's thread, with passages plainly
            # labelled as such, their sources, and how to configure a model.
            await page.fill("#text", "@threadwise how do I connect to the VPN?")
            await page.press("#text", "Enter")
            await page.locator("#timeline .open-thread", has_text="1 reply").click()
            reply = page.locator("#replies .message.bot", has_text="Sources")
            await reply.wait_for(timeout=30_000)
            text = await reply.inner_text()
            assert "Passages only" in text and "not a written answer" in text
            assert "OPENAI_API_KEY" in text and "[1]" in text
            await page.screenshot(path=str(ARTIFACTS / "answer.png"))

            # The panel: the retrieved chunks with scores, citations kept, timings.
            await reply.locator(".show-details").click()
            panel = page.locator("#details-body")
            await panel.locator(".chunks li").first.wait_for()
            details = await panel.inner_text()
            assert "score" in details and "kept" in details and "retrieval" in details
            await page.screenshot(path=str(ARTIFACTS / "panel.png"))
            await page.click("#close-details")

            # A follow-up in the thread is answered in the same thread.
            await page.fill("#thread-text", "what about two-factor authentication?")
            await page.press("#thread-text", "Enter")
            await page.locator("#replies .message.bot", has_text="Sources").nth(1).wait_for(timeout=30_000)
            await page.screenshot(path=str(ARTIFACTS / "thread.png"))

            # Feedback: the click reaches the app, which stores it.
            await page.locator("#replies .message.bot .action", has_text="Helpful").first.click()
            assert playground.bot is not None
            for _ in range(50):
                clicks = await playground.bot.feedback.clicks()
                if clicks:
                    break
                await page.wait_for_timeout(100)
            assert [c.rating for c in clicks] == ["helpful"] and clicks[0].user == "U_ALICE"

            # /kb status: the app's ephemeral reply, only visible to the person who ran it.
            await page.click("#close-thread")
            await page.fill("#text", "/kb status")
            await page.press("#text", "Enter")
            status = page.locator(".message.ephemeral", has_text="Knowledge base")
            await status.wait_for(timeout=15_000)
            assert "Chunks" in await status.inner_text()
            await page.screenshot(path=str(ARTIFACTS / "kb-status.png"))
        except BaseException:
            await page.screenshot(path=str(ARTIFACTS / "failure.png"))
            raise
        finally:
            await browser.close()
