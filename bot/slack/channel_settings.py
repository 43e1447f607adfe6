"""``/kb config``: a modal where an admin sets what counts in a channel, how the bot replies there and
who its experts are; the submission is stored (``bot.channel_config``) and confirmed to the admin only.

Who may: the workspace's admins and owners (``users.info``) and the people in ``THREADWISE_ADMINS``;
everyone else gets an ephemeral "not allowed", at the command and again at the submission.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bot.channel_config import ChannelConfig, folder_names
from bot.slack.mrkdwn import escape
from bot.slack.web import SlackCallError, SlackWeb

if TYPE_CHECKING:
    from bot.slack.app import SlackBot

log = logging.getLogger(__name__)

CALLBACK_ID = "channel_config"
NOT_ALLOWED = (
    ":no_entry: Sorry, you're not allowed to change this channel's settings: only workspace admins "
    "and the people in THREADWISE_ADMINS are."
)
NOT_HERE = "Channel settings are for channels: run `/kb config` in the channel you want to set up."
SAVED = ":white_check_mark: Saved this channel's settings. `/kb status` shows them."
FAILED = "Sorry, I couldn't open the settings just now ({code}). Please try again."
MAX_OPTIONS = 100  # a select menu's limit

# block ids (and action ids) of the modal's inputs
FOLDERS, FILES, FOLLOW_UPS, EXPERTS, EXPERT_GROUP = (
    "folders",
    "files",
    "follow_ups",
    "experts",
    "expert_group",
)


async def is_admin(bot: SlackBot, user: str) -> bool:
    if user in bot.settings.admins:
        return True
    try:
        info = await bot.web.user_info(user)
    except SlackCallError:
        return False  # fail closed
    return bool(info.get("is_admin") or info.get("is_owner") or info.get("is_primary_owner"))


async def open_modal(bot: SlackBot, ack: Any, command: dict[str, Any]) -> None:
    """Ack the command (with "not allowed" when it is) and open the modal on its trigger."""
    user, channel, team = command["user_id"], command["channel_id"], command["team_id"]
    if channel.startswith("D"):
        await ack(text=NOT_HERE)
        return
    if not await is_admin(bot, user):
        await ack(text=NOT_ALLOWED)
        return
    await ack()
    config = await bot.channels.get(team, channel) or ChannelConfig(team, channel)
    groups = await _user_groups(bot)
    view = modal(config, folder_names(bot.settings.docs), groups)
    try:
        await bot.web.open_view(command["trigger_id"], view)
    except SlackCallError as exc:
        await bot.web.respond(command["response_url"], FAILED.format(code=exc.code))


async def _user_groups(bot: SlackBot) -> list[tuple[str, str]]:
    """(id, handle) of the workspace's user groups; [] without usergroups:read."""
    try:
        groups = await bot.web.user_groups()
    except SlackCallError:
        return []
    return [(g["id"], g.get("handle") or g.get("name") or g["id"]) for g in groups if g.get("id")]


def _text(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[:75], "emoji": True}


def _option(label: str, value: str) -> dict[str, Any]:
    return {"text": _text(label), "value": value}


def modal(config: ChannelConfig, folders: list[str], groups: list[tuple[str, str]]) -> dict[str, Any]:
    """The settings modal, filled in with ``config``."""
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"Settings for <#{config.channel}>: what I search here, and how I reply.",
            },
        }
    ]
    if folders:
        select: dict[str, Any] = {
            "type": "multi_static_select",
            "action_id": FOLDERS,
            "placeholder": _text("All document folders"),
            "options": [_option(name, name) for name in folders[:MAX_OPTIONS]],
        }
        chosen = [name for name in config.folders or () if name in folders]
        if chosen:
            select["initial_options"] = [_option(name, name) for name in chosen]
        blocks.append(
            {
                "type": "input",
                "block_id": FOLDERS,
                "optional": True,
                "label": _text("Document folders"),
                "hint": _text("Leave empty for all folders."),
                "element": select,
            }
        )
    files_options = [
        _option("Count Slack files from other public channels", "yes"),
        _option("Only files shared in this channel", "no"),
    ]
    follow_options = [
        _option("Answer follow-ups in my threads without a mention", "always"),
        _option("Answer only when I'm mentioned", "mention"),
    ]
    blocks.append(
        {
            "type": "input",
            "block_id": FILES,
            "label": _text("Slack files"),
            "element": {
                "type": "radio_buttons",
                "action_id": FILES,
                "options": files_options,
                "initial_option": files_options[0 if config.other_channel_files else 1],
            },
        }
    )
    blocks.append(
        {
            "type": "input",
            "block_id": FOLLOW_UPS,
            "label": _text("Follow-ups"),
            "element": {
                "type": "radio_buttons",
                "action_id": FOLLOW_UPS,
                "options": follow_options,
                "initial_option": follow_options[0 if config.follow_ups == "always" else 1],
            },
        }
    )
    experts: dict[str, Any] = {"type": "multi_users_select", "action_id": EXPERTS}
    if config.experts:
        experts["initial_users"] = list(config.experts)
    blocks.append(
        {
            "type": "input",
            "block_id": EXPERTS,
            "optional": True,
            "label": _text("Experts to call"),
            "hint": _text("“Ask an expert” under an answer mentions them in the thread."),
            "element": experts,
        }
    )
    if groups:
        group_select: dict[str, Any] = {
            "type": "static_select",
            "action_id": EXPERT_GROUP,
            "placeholder": _text("No user group"),
            "options": [_option(f"@{handle}", gid) for gid, handle in groups[:MAX_OPTIONS]],
        }
        current = next(((g, h) for g, h in groups if g == config.expert_group), None)
        if current:
            group_select["initial_option"] = _option(f"@{current[1]}", current[0])
        blocks.append(
            {
                "type": "input",
                "block_id": EXPERT_GROUP,
                "optional": True,
                "label": _text("Or a user group of experts"),
                "element": group_select,
            }
        )
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "title": _text("Channel settings"),
        "submit": _text("Save"),
        "close": _text("Cancel"),
        "private_metadata": json.dumps({"team": config.team, "channel": config.channel}),
        "blocks": blocks,
    }


def read_submission(view: dict[str, Any], user: str) -> ChannelConfig:
    """The settings a submitted modal holds; ValueError if it is not this modal."""
    try:
        where = json.loads(view.get("private_metadata") or "{}")
        team, channel = where["team"], where["channel"]
    except (ValueError, KeyError, TypeError):
        raise ValueError("the settings modal lost which channel it was for") from None
    values = (view.get("state") or {}).get("values") or {}

    def state(block: str) -> dict[str, Any]:
        return (values.get(block) or {}).get(block) or {}

    chosen = [o["value"] for o in state(FOLDERS).get("selected_options") or []]
    files = (state(FILES).get("selected_option") or {}).get("value", "yes")
    follow = (state(FOLLOW_UPS).get("selected_option") or {}).get("value", "always")
    group = (state(EXPERT_GROUP).get("selected_option") or {}).get("value")
    return ChannelConfig(
        team=team,
        channel=channel,
        folders=tuple(chosen) or None,
        other_channel_files=files != "no",
        follow_ups="mention" if follow == "mention" else "always",
        experts=tuple(state(EXPERTS).get("selected_users") or ()),
        expert_group=group,
        updated_by=user,
    )


async def on_submission(bot: SlackBot, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
    user = body["user"]["id"]
    try:
        config = read_submission(view, user)
    except ValueError as exc:
        await ack(response_action="errors", errors={FILES: str(exc)})
        return
    if not await is_admin(bot, user):
        await ack(response_action="errors", errors={FILES: "Only workspace admins can change this."})
        return
    known = set(folder_names(bot.settings.docs))
    unknown = [name for name in config.folders or () if name not in known]
    if unknown:
        await ack(response_action="errors", errors={FOLDERS: f"Unknown folder: {', '.join(unknown)}"})
        return
    try:
        await bot.channels.put(config)
    except Exception as exc:
        log.error("channel settings of %s could not be stored: %s", config.channel, exc)
        await ack(response_action="errors", errors={FILES: "Could not save just now; please try again."})
        return
    await ack()
    try:
        await bot.web.post_ephemeral(config.channel, user, SAVED)
    except SlackCallError:
        pass  # logged by SlackWeb; the settings are saved


def files_here(web: SlackWeb) -> Callable[[str], Awaitable[set[str]]]:
    """The ids of the files shared in a channel; none when Slack cannot say (fail closed: a channel
    that leaves other channels' files out then sees none of the public ones)."""

    async def ids(channel: str) -> set[str]:
        try:
            return {f["id"] for f in await web.files_in(channel) if f.get("id")}
        except SlackCallError:
            return set()

    return ids


def settings_lines(config: ChannelConfig | None) -> list[str]:
    """This channel's settings as /kb status shows them."""
    if config is None:
        return ["*This channel:* default settings (all folders, all files; `/kb config` to change)"]
    folders = ", ".join(escape(f) for f in config.folders) if config.folders is not None else "all"
    experts = [f"<@{u}>" for u in config.experts]
    if config.expert_group:
        experts.append(f"<!subteam^{config.expert_group}>")
    files = "count" if config.other_channel_files else "left out"
    follow = "answered without a mention" if config.follow_ups == "always" else "only when I'm mentioned"
    return [
        "*This channel:*",
        f"• Document folders: {folders or 'none'}",
        f"• Slack files from other public channels: {files}",
        f"• Follow-ups in threads: {follow}",
        f"• Experts: {', '.join(experts) or 'none'}",
    ]


__all__ = [
    "CALLBACK_ID",
    "files_here",
    "is_admin",
    "modal",
    "on_submission",
    "open_modal",
    "read_submission",
    "settings_lines",
]
