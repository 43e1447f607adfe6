"""Resolved threads become answers (``bot.resolutions``), in Slack.

The person who asked marks the thread resolved (a ✅ reaction on the question or the answer, or the
"Resolved" button under an answer); the bot proposes, visible to them only, a short Q&A written from
the thread, with Save / Edit / Discard. Saved, it becomes a document of the knowledge base, scoped like
the channel. ``/kb forget <link>`` and deleting the thread's first message remove it again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bot.conversations import conversation_key
from bot.ledger import claims
from bot.resolutions import (
    DRAFT_INSTRUCTIONS,
    Draft,
    Resolution,
    draft_without_model,
    parse_draft,
    parse_permalink,
    resolution_key,
    thread_transcript,
)
from bot.slack.channel_settings import is_admin
from bot.slack.experts import called_in
from bot.slack.mrkdwn import escape
from bot.slack.web import SlackCallError
from knowledge.saved_answers import document_id, index_saved, keep_only, remove_saved, saved_documents

if TYPE_CHECKING:
    from bot.slack.app import SlackBot

log = logging.getLogger(__name__)

RESOLVED_EMOJI = "white_check_mark"
SAVE, EDIT, DISCARD = "resolution_save", "resolution_edit", "resolution_discard"
ACTIONS = (SAVE, EDIT, DISCARD)
EDIT_VIEW = "resolution_edit"
QUESTION_BLOCK, ANSWER_BLOCK = "question", "answer"

NOT_OURS = "I didn't answer in this thread, so there is nothing to learn from it."
ONLY_ASKER = "Only <@{asker}>, who asked, can mark this thread resolved."
GONE = "That proposal is no longer there (saved, discarded or replaced by a newer one)."
FAILED = "Sorry, I couldn't do that just now ({why}). Please try again."
FORGET_USAGE = "Usage: `/kb forget <link to the thread>` (the link of the thread's first message)."


async def asker_of(bot: SlackBot, team: str, channel: str, thread_ts: str) -> tuple[str, str] | None:
    """(who asked, what) first in the thread the bot answered; None if it never answered there."""
    conversation = conversation_key(team, channel, thread_ts)
    statement = (
        select(claims.c.user_id, claims.c.question)
        .where(claims.c.conversation == conversation)
        .order_by(claims.c.sent_at)
        .limit(1)
    )
    async with bot.engine.connect() as conn:
        row = (await conn.execute(statement)).first()
    return (row.user_id, row.question) if row is not None else None


async def thread_of(bot: SlackBot, team: str, channel: str, ts: str) -> str | None:
    """The thread a question or an answer of the bot's belongs to (from the ledger, no Slack call);
    None for any other message."""
    statement = (
        select(claims.c.ts, claims.c.thread_ts)
        .where(claims.c.team == team, claims.c.channel == channel)
        .where((claims.c.ts == ts) | (claims.c.reply_ts == ts))
        .limit(1)
    )
    async with bot.engine.connect() as conn:
        row = (await conn.execute(statement)).first()
    if row is not None:
        return row.thread_ts or row.ts
    return ts if await asker_of(bot, team, channel, ts) else None  # the thread's first message


# --- marking a thread resolved -------------------------------------------------------------------


async def on_reaction(bot: SlackBot, body: dict[str, Any], event: dict[str, Any]) -> None:
    """✅ on the question or an answer, by the person who asked: propose a Q&A. Others' ✅ are just emoji."""
    item = event.get("item") or {}
    if event.get("reaction") != RESOLVED_EMOJI or item.get("type") != "message":
        return
    channel, ts = item.get("channel") or "", item.get("ts") or ""
    team = body.get("team_id") or ""
    thread_ts = await thread_of(bot, team, channel, ts)
    if thread_ts is None:
        return  # a ✅ on a message the bot had nothing to do with: an emoji, nothing more
    await resolve(bot, team, channel, thread_ts, event.get("user") or "")


async def on_resolved_click(bot: SlackBot, body: dict[str, Any]) -> None:
    """The "Resolved" button under an answer."""
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id") or ""
    thread_ts = message.get("thread_ts") or container.get("thread_ts") or message.get("ts") or ""
    refused = await resolve(
        bot, (body.get("team") or {}).get("id") or "", channel, thread_ts, body["user"]["id"]
    )
    if refused:
        await _respond(bot, body.get("response_url"), refused)


async def resolve(
    bot: SlackBot,
    team: str,
    channel: str,
    thread_ts: str,
    resolver: str,
    *,
    messages: list[dict[str, Any]] | None = None,
) -> str | None:
    """Propose the thread's Q&A to the asker; the reason it was not proposed, otherwise."""
    asked = await asker_of(bot, team, channel, thread_ts)
    if asked is None:
        return NOT_OURS
    asker, question = asked
    if resolver != asker:
        return ONLY_ASKER.format(asker=asker)
    try:
        messages = messages if messages is not None else await bot.web.replies(channel, thread_ts)
        experts = await called_in(bot, team, channel, thread_ts)
        draft = await _draft(bot, question, messages, resolver, experts)
        private = await bot.web.is_private(channel)
        name = await bot.web.channel_name(channel)
        link = await bot.web.permalink(channel, thread_ts)
        resolution = Resolution(
            team=team,
            channel=channel,
            channel_name=name,
            thread_ts=thread_ts,
            private=private,
            asker=asker,
            question=draft.question,
            answer=draft.answer,
            answered_by=draft.answered_by,
            permalink=link,
        )
        await bot.resolutions.put(resolution)
        text, blocks = proposal(resolution)
        await bot.web.post_ephemeral(channel, asker, text, blocks=blocks, thread_ts=thread_ts)
    except Exception as exc:
        log.error("could not propose a Q&A for %s/%s: %s", channel, thread_ts, exc)
        return FAILED.format(why=type(exc).__name__)
    return None


async def _draft(
    bot: SlackBot, question: str, messages: list[dict[str, Any]], resolver: str, experts: list[str]
) -> Draft:
    """By the model when one is configured; else the resolver's last reply (an expert's, if one was
    called and answered) for the asker to edit."""
    me = bot.identity.user_id
    plain = draft_without_model(question, messages, resolver, me)
    if experts:
        by_expert = [m for m in messages[1:] if m.get("user") in experts and (m.get("text") or "").strip()]
        if by_expert:
            plain = Draft(plain.question, by_expert[-1]["text"].strip(), f"<@{by_expert[-1]['user']}>")
    settings = bot.settings
    if not settings.model_configured or settings.search_only:
        return plain
    from bot.team import model_client

    client = model_client(settings)
    try:
        response = await client.chat.completions.create(
            model=settings.writer_model or settings.model,
            messages=[
                {"role": "system", "content": DRAFT_INSTRUCTIONS},
                {
                    "role": "user",
                    "content": f"Question: {question}\n\nThread:\n{thread_transcript(messages)}",
                },
            ],
        )
        return parse_draft(response.choices[0].message.content or "", plain)
    except Exception as exc:  # the asker can still edit the plain draft
        log.warning("the model could not draft a Q&A (%s); proposing the plain one", exc)
        return plain
    finally:
        await client.close()


def proposal(resolution: Resolution) -> tuple[str, list[dict[str, Any]]]:
    """The ephemeral proposal: the Q&A and Save / Edit / Discard."""
    head = (
        ":white_check_mark: *Resolved. Save this as an answer for next time?* People asking something "
        f"similar will get it, cited as _{escape(resolution.title)}_."
    )
    body = f"*Q:* {escape(resolution.question)}\n*A:* {escape(resolution.answer) or '_(empty: edit it)_'}"
    if resolution.answered_by:
        body += f"\n_Answered by {resolution.answered_by}_"
    if resolution.permalink:
        body += f" · <{resolution.permalink}|the thread>"
    buttons = [("Save", SAVE, "primary"), ("Edit", EDIT, None), ("Discard", DISCARD, None)]
    actions = []
    for label, action_id, style in buttons:
        button: dict[str, Any] = {
            "type": "button",
            "text": {"type": "plain_text", "text": label},
            "action_id": action_id,
            "value": resolution.key,
        }
        if style:
            button["style"] = style
        actions.append(button)
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": head}},
        {"type": "section", "text": {"type": "mrkdwn", "text": body[:3000]}},
        {"type": "actions", "elements": actions},
    ]
    return f"{head}\n{body}", blocks


# --- Save / Edit / Discard -----------------------------------------------------------------------


async def _mine(bot: SlackBot, key: str, user: str) -> Resolution | None:
    resolution = await bot.resolutions.get(key)
    if resolution is None or resolution.state != "proposed" or resolution.asker != user:
        return None
    return resolution


async def save(bot: SlackBot, resolution: Resolution) -> Resolution:
    """Index it, then mark it saved (a failed index leaves it proposed, to try again)."""
    await asyncio.to_thread(index_saved, bot.knowledge, resolution.as_document())
    return await bot.resolutions.put(replace(resolution, state="saved"))


def saved_text(resolution: Resolution) -> str:
    return (
        f":floppy_disk: Saved. Questions like “{escape(resolution.question)}” now find it, cited as "
        f"_{escape(resolution.title)}_. Remove it with `/kb forget {resolution.permalink}`."
    )


async def on_choice(bot: SlackBot, body: dict[str, Any], action: dict[str, Any]) -> None:
    """A click on Save / Edit / Discard (Edit opens the modal; the others answer in place)."""
    user, key = body["user"]["id"], str(action.get("value") or "")
    resolution = await _mine(bot, key, user)
    if resolution is None:
        await _respond(bot, body.get("response_url"), GONE)
        return
    kind = action["action_id"]
    try:
        if kind == SAVE:
            saved = await save(bot, resolution)
            await _respond(bot, body.get("response_url"), saved_text(saved))
        elif kind == DISCARD:
            await bot.resolutions.put(replace(resolution, state="discarded"))
            await _respond(bot, body.get("response_url"), "Discarded: nothing was saved.")
        else:
            await bot.web.open_view(body["trigger_id"], edit_view(resolution))
    except Exception as exc:
        log.error("%s of %s failed: %s", kind, key, exc)
        await _respond(bot, body.get("response_url"), FAILED.format(why=type(exc).__name__))


def edit_view(resolution: Resolution) -> dict[str, Any]:
    def field(block: str, label: str, value: str, multiline: bool) -> dict[str, Any]:
        return {
            "type": "input",
            "block_id": block,
            "label": {"type": "plain_text", "text": label},
            "element": {
                "type": "plain_text_input",
                "action_id": block,
                "multiline": multiline,
                "initial_value": value,
                "max_length": 2500 if multiline else 500,
            },
        }

    return {
        "type": "modal",
        "callback_id": EDIT_VIEW,
        "title": {"type": "plain_text", "text": "Edit the answer"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json.dumps({"key": resolution.key}),
        "blocks": [
            field(QUESTION_BLOCK, "Question", resolution.question, False),
            field(ANSWER_BLOCK, "Answer", resolution.answer, True),
        ],
    }


async def on_edit_submission(bot: SlackBot, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
    user = body["user"]["id"]
    values = (view.get("state") or {}).get("values") or {}

    def value(block: str) -> str:
        return " ".join(str(((values.get(block) or {}).get(block) or {}).get("value") or "").split()).strip()

    question, answer = value(QUESTION_BLOCK), value(ANSWER_BLOCK)
    if not question or not answer:
        empty = QUESTION_BLOCK if not question else ANSWER_BLOCK
        await ack(response_action="errors", errors={empty: "Please fill this in."})
        return
    try:
        key = json.loads(view.get("private_metadata") or "{}")["key"]
    except (ValueError, KeyError, TypeError):
        key = ""
    resolution = await _mine(bot, key, user)
    if resolution is None:
        await ack(response_action="errors", errors={QUESTION_BLOCK: GONE})
        return
    await ack()
    edited = replace(resolution, question=question, answer=answer)
    try:
        saved = await save(bot, edited)
        await bot.web.post_ephemeral(saved.channel, user, saved_text(saved), thread_ts=saved.thread_ts)
    except Exception as exc:
        log.error("saving the edited Q&A of %s failed: %s", key, exc)
        try:
            await bot.web.post_ephemeral(
                resolution.channel,
                user,
                FAILED.format(why=type(exc).__name__),
                thread_ts=resolution.thread_ts,
            )
        except SlackCallError:
            pass


# --- forgetting ------------------------------------------------------------------------------------


async def forget(bot: SlackBot, command: dict[str, Any], words: list[str]) -> None:
    """``/kb forget <link>``: by the person who saved it, or an admin."""
    response_url = command["response_url"]
    if not words:
        await _respond(bot, response_url, FORGET_USAGE)
        return
    try:
        channel, thread_ts = parse_permalink(words[0])
    except ValueError as exc:
        await _respond(bot, response_url, f"{exc}. {FORGET_USAGE}")
        return
    resolution = await bot.resolutions.get(resolution_key(command["team_id"], channel, thread_ts))
    if resolution is None or resolution.state != "saved":
        await _respond(bot, response_url, "There is no saved answer from that thread.")
        return
    user = command["user_id"]
    if user != resolution.asker and not await is_admin(bot, user):
        await _respond(
            bot, response_url, f"Only <@{resolution.asker}>, who saved it, or an admin can remove it."
        )
        return
    await remove(bot, resolution)
    await _respond(
        bot, response_url, f":wastebasket: Forgotten: _{escape(resolution.title)}_ is no longer used."
    )


async def remove(bot: SlackBot, resolution: Resolution) -> None:
    await asyncio.to_thread(remove_saved, bot.knowledge, resolution.key)
    await bot.resolutions.put(replace(resolution, state="discarded"))


async def on_deleted(bot: SlackBot, body: dict[str, Any], event: dict[str, Any]) -> None:
    """The thread's first message was deleted: its saved answer goes too."""
    previous = event.get("previous_message") or {}
    ts = previous.get("ts") or event.get("deleted_ts")
    if not ts or (previous.get("thread_ts") not in (None, ts)):
        return  # a reply, not the thread's first message
    team = body.get("team_id") or ""
    resolution = await bot.resolutions.get(resolution_key(team, event.get("channel") or "", ts))
    if resolution is not None and resolution.state == "saved":
        await remove(bot, resolution)
        log.info("the first message of %s was deleted: its saved answer is removed", resolution.key)


async def reconcile(bot: SlackBot) -> None:
    """At start: every saved answer is in the index, and nothing else is (a ``sync --rebuild`` empties
    the collection; a kill between the database and the index leaves one behind)."""
    try:
        entries = await bot.resolutions.list("saved")
        known = await asyncio.to_thread(saved_documents, bot.knowledge)
        await asyncio.to_thread(keep_only, bot.knowledge, [entry.key for entry in entries])
        for entry in entries:
            if document_id(entry.key) not in known:
                await asyncio.to_thread(index_saved, bot.knowledge, entry.as_document())
    except Exception as exc:
        log.error("could not reconcile the saved answers with the index: %s", exc)


async def _respond(bot: SlackBot, response_url: str | None, text: str) -> None:
    if not response_url:
        return
    try:
        await bot.web.respond(response_url, text)
    except SlackCallError:
        pass  # logged by SlackWeb


__all__ = [
    "ACTIONS",
    "EDIT_VIEW",
    "RESOLVED_EMOJI",
    "asker_of",
    "forget",
    "on_choice",
    "on_deleted",
    "on_edit_submission",
    "on_reaction",
    "on_resolved_click",
    "proposal",
    "resolve",
]
