""" "Ask an expert" under an answer: the channel's experts (``/kb config``) are mentioned in the thread
once; later clicks say who was already called. The call marks the thread for the loop: a later ✅ by
the asker drafts the Q&A from the experts' replies."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bot.resolutions import resolution_key
from bot.slack.web import SlackCallError

if TYPE_CHECKING:
    from bot.slack.app import SlackBot

log = logging.getLogger(__name__)

NO_EXPERTS = (
    "No experts are set for this channel yet. A workspace admin can add people or a user group with "
    "`/kb config`."
)
GROUP = "subteam:"


def mention(expert: str) -> str:
    return f"<!subteam^{expert.removeprefix(GROUP)}>" if expert.startswith(GROUP) else f"<@{expert}>"


async def called_in(bot: SlackBot, team: str, channel: str, thread_ts: str) -> list[str]:
    """The people called into the thread (a group's members as they are now); [] if none were."""
    call = await bot.expert_calls.get(resolution_key(team, channel, thread_ts))
    if call is None:
        return []
    people: list[str] = []
    for expert in call.experts:
        if expert.startswith(GROUP):
            try:
                people += await bot.web.group_members(expert.removeprefix(GROUP))
            except SlackCallError:
                pass
        else:
            people.append(expert)
    return people


async def on_ask_expert(bot: SlackBot, body: dict[str, Any]) -> None:
    user = body["user"]["id"]
    team = (body.get("team") or {}).get("id") or ""
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id") or ""
    thread_ts = message.get("thread_ts") or container.get("thread_ts") or message.get("ts") or ""
    response_url = body.get("response_url")
    config = await bot.channels.get(team, channel)
    experts = tuple(config.experts) if config else ()
    if config and config.expert_group:
        experts += (GROUP + config.expert_group,)
    if not experts:
        await _respond(bot, response_url, NO_EXPERTS)
        return
    key = resolution_key(team, channel, thread_ts)
    call = await bot.expert_calls.call_once(key, user, experts)
    if call is None:
        earlier = await bot.expert_calls.get(key)
        who = ", ".join(mention(e) for e in (earlier.experts if earlier else experts))
        by = f" by <@{earlier.called_by}>" if earlier else ""
        await _respond(bot, response_url, f"Already called{by}: {who}. They'll reply in this thread.")
        return
    text = (
        f"{' '.join(mention(e) for e in experts)}: <@{user}> could use an expert here. Once it's settled, "
        "the person who asked can mark the thread :white_check_mark: resolved, and I'll keep the answer "
        "for next time."
    )
    try:
        await bot.web.post(channel, text, thread_ts=thread_ts)
    except SlackCallError as exc:
        await bot.expert_calls.cancel(key)
        await _respond(bot, response_url, f"Sorry, I couldn't call the experts ({exc.code}).")


async def _respond(bot: SlackBot, response_url: str | None, text: str) -> None:
    if response_url:
        try:
            await bot.web.respond(response_url, text)
        except SlackCallError:
            pass  # logged by SlackWeb


__all__ = ["called_in", "mention", "on_ask_expert"]
