"""The assistant (agent) view: a greeting with suggested prompts when a thread opens, then every
message in the thread is a question (with a status line and a title while the bot works on it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.middleware.assistant.async_assistant import AsyncAssistant

from bot.slack.web import SlackCallError

if TYPE_CHECKING:
    from bot.slack.app import SlackBot

EVENTS = ("assistant_thread_started", "assistant_thread_context_changed")

GREETING = "Hi! Ask me anything about the team's documents: I answer with the sources I used."
PROMPTS_TITLE = "Try asking"
SUGGESTED_PROMPTS = (
    {
        "title": "What can you answer?",
        "message": "What kinds of questions can you answer from our documents?",
    },
    {"title": "Find a policy", "message": "What does our handbook say about working remotely?"},
    {"title": "How do I…", "message": "How do I get access to the tools I need on my first day?"},
)


def register(app: AsyncApp, bot: SlackBot) -> None:
    assistant = AsyncAssistant(logger=app.logger)

    @assistant.thread_started
    async def on_thread_started(body: dict[str, Any]) -> None:
        thread = body["event"]["assistant_thread"]
        channel, thread_ts = thread["channel_id"], thread["thread_ts"]
        try:
            await bot.web.post(channel, GREETING, thread_ts=thread_ts)
            await bot.web.set_suggested_prompts(channel, thread_ts, SUGGESTED_PROMPTS, title=PROMPTS_TITLE)
        except SlackCallError:
            pass  # logged by SlackWeb; the person can still type a question

    @assistant.user_message
    async def on_question(body: dict[str, Any]) -> None:
        bot.take(body, body["event"], assistant=True)

    # assistant_thread_context_changed: Bolt's default handler keeps the context (which channel the
    # person is looking at); answers do not depend on it, so nothing else is registered.
    app.assistant(assistant)
