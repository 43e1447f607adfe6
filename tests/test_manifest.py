"""manifest.yml against the code: what Slack is told to send is exactly what the app listens to, every
URL is the one request URL the server serves, and the scopes cover every Web API method the bot calls;
and against Slack's own JSON Schema for app manifests (vendored in tests/manifest_schema/)."""

from __future__ import annotations

import ast
import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from bot.server import EVENTS_PATH
from bot.slack import resolved
from bot.slack.app import listened_actions, listened_commands, listened_events
from bot.slack.render import ASK_EXPERT, FEEDBACK_DOWN, FEEDBACK_UP, RESOLVED

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))
SCHEMA = json.loads((ROOT / "tests/manifest_schema/manifest.schema.2.0.0.json").read_text(encoding="utf-8"))

# The bot scope each Web API method needs (https://docs.slack.dev/reference/methods).
SCOPES = {
    "auth.test": set(),
    "chat.postMessage": {"chat:write"},
    "chat.update": {"chat:write"},
    "chat.delete": {"chat:write"},  # a later part of an answer that is now shorter; a withdrawn reply
    "chat.startStream": {"chat:write"},
    "chat.appendStream": {"chat:write"},
    "chat.stopStream": {"chat:write"},
    "reactions.add": {"reactions:write"},
    "reactions.remove": {"reactions:write"},
    "assistant.threads.setStatus": {"assistant:write"},
    "assistant.threads.setTitle": {"assistant:write"},
    "assistant.threads.setSuggestedPrompts": {"assistant:write"},
    "users.info": {"users:read"},
    "conversations.info": {"channels:read", "groups:read", "im:read", "mpim:read"},
    "users.conversations": {"channels:read", "groups:read", "im:read", "mpim:read"},
    "files.info": {"files:read"},
    "files.list": {"files:read"},
    "chat.postEphemeral": {"chat:write"},
    "chat.getPermalink": set(),
    "views.open": set(),
    "usergroups.list": {"usergroups:read"},
    "usergroups.users.list": {"usergroups:read"},
    "conversations.replies": {"channels:history", "groups:history", "im:history", "mpim:history"},
}
# Each message.* subscription needs the history scope of its kind of conversation.
EVENT_SCOPES = {
    "app_mention": {"app_mentions:read"},
    "message.channels": {"channels:history"},
    "message.groups": {"groups:history"},
    "message.im": {"im:history"},
    "message.mpim": {"mpim:history"},
    "assistant_thread_started": {"assistant:write"},
    "assistant_thread_context_changed": {"assistant:write"},
    "file_shared": {"files:read"},
    "file_unshared": {"files:read"},
    "file_change": {"files:read"},
    "file_deleted": {"files:read"},
    "channel_left": {"channels:read"},
    "group_left": {"groups:read"},
    "channel_shared": {"channels:read"},
    "channel_unshared": {"channels:read"},
    "member_joined_channel": {"channels:read"},
    "reaction_added": {"reactions:read"},
}


def web_api_methods() -> set[str]:
    """Every method name bot/slack/web.py passes to ``self.call``: the only place the bot calls Slack."""
    tree = ast.parse((ROOT / "bot/slack/web.py").read_text(encoding="utf-8"))
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "call"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }


def test_the_subscribed_events_are_exactly_the_ones_the_app_listens_to():
    subscribed = set(MANIFEST["settings"]["event_subscriptions"]["bot_events"])
    assert subscribed == listened_events()
    # Issue 6's floor, so production deployments can rely on it.
    assert {"app_mention", "message.channels", "message.groups", "message.im"} <= subscribed


def test_slash_commands_and_interactivity_point_at_the_one_request_url():
    url = MANIFEST["settings"]["event_subscriptions"]["request_url"]
    assert url.endswith(EVENTS_PATH)
    commands = MANIFEST["features"]["slash_commands"]
    assert {c["command"] for c in commands} == listened_commands() == {"/ask", "/kb"}
    assert {c["url"] for c in commands} == {url}
    assert all(c["description"] and c.get("usage_hint") for c in commands)
    assert MANIFEST["settings"]["interactivity"] == {"is_enabled": True, "request_url": url}
    # The buttons render.py draws under an answer, and those of a resolved thread's proposal.
    assert listened_actions() == {FEEDBACK_UP, FEEDBACK_DOWN, RESOLVED, ASK_EXPERT, *resolved.ACTIONS}


def test_the_scopes_cover_every_method_and_event_and_nothing_is_left_unexplained():
    scopes = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    methods = web_api_methods()
    assert methods <= SCOPES.keys(), f"add the scope of {methods - SCOPES.keys()} to SCOPES"
    needed = set().union(*(SCOPES[m] for m in methods), *EVENT_SCOPES.values(), {"commands"})
    # files:read is for files shared in conversations (issue 7); reactions:write for the working sign.
    assert needed | {"files:read"} == scopes


def test_the_assistant_view_is_on_and_the_manifest_is_pasteable():
    assert MANIFEST["_metadata"]["major_version"] == 2
    assistant = MANIFEST["features"]["assistant_view"]
    assert assistant["assistant_description"] and all(
        p["title"] and p["message"] for p in assistant["suggested_prompts"]
    )
    assert MANIFEST["features"]["bot_user"]["display_name"]
    assert MANIFEST["features"]["app_home"]["messages_tab_enabled"] is True  # DMs
    assert MANIFEST["settings"]["socket_mode_enabled"] is False  # docs/slack-setup.md says when to turn it on
    assert 174 <= len(MANIFEST["display_information"]["long_description"]) <= 4000  # Slack refuses otherwise


def schema_errors(manifest: dict) -> list[str]:
    validator = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(manifest)]


def test_the_manifest_is_valid_against_slacks_published_schema():
    jsonschema.validators.validator_for(SCHEMA).check_schema(SCHEMA)
    assert schema_errors(MANIFEST) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("display_information", "name"), "threadwise, the bot that answers from the team's documents"),
        (("features", "slash_commands", 0, "command"), "ask"),  # commands start with a slash
        (("settings", "event_subscriptions", "request_url"), "threadwise.example.com/slack/events"),
        (("oauth_config", "scopes", "bot"), "chat:write"),  # a list, not a string
        (("settings", "not_a_setting"), True),
    ],
)
def test_the_schema_check_catches_what_slack_would_refuse(path: tuple, value: object):
    broken = copy.deepcopy(MANIFEST)
    target = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert schema_errors(broken), f"the schema accepted {path} = {value!r}"
