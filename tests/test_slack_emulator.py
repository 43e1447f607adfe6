"""The Slack emulator speaks Slack's protocols as slack_sdk and slack_bolt expect them.

Driven with the real AsyncWebClient, SignatureVerifier, Bolt AsyncApp (over HTTP) and Bolt's
AsyncSocketModeHandler, all on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from localslack.emulator import SlackEmulator
from tests.emulators import slack_fixtures
from tests.emulators.slack_fixtures import serve_bolt_app

slack = slack_fixtures.slack
slack_client = slack_fixtures.slack_client

# slack_sdk warns when blocks come without fallback text; some tests send exactly that on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing:UserWarning")

# -- helpers ---------------------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Recorder:
    """A stand-in app endpoint that records signed requests verbatim and acks with 200."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    delay: float = 0.0


@contextlib.asynccontextmanager
async def recording_endpoint() -> AsyncIterator[Recorder]:
    recorder = Recorder()

    async def receive(request: web.Request) -> web.Response:
        recorder.requests.append(Received(dict(request.headers), await request.read()))
        await asyncio.sleep(recorder.delay)
        return web.Response(text="")

    app = web.Application()
    app.router.add_post("/slack/events", receive)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    recorder.url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    try:
        yield recorder
    finally:
        await runner.cleanup()


def bolt_app(slack: SlackEmulator, **kwargs: Any) -> AsyncApp:
    return AsyncApp(
        client=AsyncWebClient(base_url=slack.api_url, token=slack.bot_token),
        signing_secret=slack.signing_secret,
        **kwargs,
    )


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


# -- Web API ---------------------------------------------------------------------------------------


async def test_post_update_delete_as_a_person_sees_them(
    slack: SlackEmulator, slack_client: AsyncWebClient
) -> None:
    question = slack.workspace.post("C_GENERAL", text="where is the handbook?", user="U_ALICE")

    posted = await slack_client.chat_postMessage(channel="C_GENERAL", text="Looking…", thread_ts=question.ts)
    await slack_client.chat_update(channel="C_GENERAL", ts=posted["ts"], text="It is in the wiki.")
    extra = await slack_client.chat_postMessage(channel="#general", text="(extra)", thread_ts=question.ts)
    await slack_client.chat_delete(channel="C_GENERAL", ts=extra["ts"])

    replies = slack.thread("C_GENERAL", question.ts)
    assert [r.text for r in replies] == ["It is in the wiki."]
    assert replies[0].edited and replies[0].edits[0].text == "Looking…"
    assert replies[0].user == "U_BOT" and replies[0].bot_id == "B_BOT"
    assert slack.bot_messages("C_GENERAL") == replies

    # The same thread through the API the app reads it with.
    thread = await slack_client.conversations_replies(channel="C_GENERAL", ts=question.ts)
    assert [m["text"] for m in thread["messages"]] == ["where is the handbook?", "It is in the wiki."]
    assert thread["messages"][0]["reply_count"] == 1
    assert thread["messages"][1]["edited"]["user"] == "U_BOT"
    history = await slack_client.conversations_history(channel="C_GENERAL")
    assert [m["text"] for m in history["messages"]] == ["where is the handbook?"]
    assert [c.method for c in slack.calls()][:2] == ["chat.postMessage", "chat.update"]
    # A user ID as the channel means the DM with that person.
    dm = await slack_client.chat_postMessage(channel="U_BOB", text="psst")
    assert dm["channel"] == "D_BOB" and slack.history("D_BOB")[0].text == "psst"
    assert slack.calls("chat.update")[0].params["text"] == "It is in the wiki."


async def test_form_encoded_bodies_and_tokens(slack: SlackEmulator) -> None:
    async with aiohttp.ClientSession() as http:

        async def call(
            method: str, data: Any = None, headers: dict[str, str] | None = None
        ) -> dict[str, Any]:
            async with http.post(slack.api_url + method, data=data, headers=headers) as response:
                return await response.json()

        bearer = {"Authorization": f"Bearer {slack.bot_token}"}
        blocks = json.dumps([section("*Hello* from a form")])
        posted = await call("chat.postMessage", {"channel": "C_GENERAL", "blocks": blocks}, bearer)
        assert posted["ok"], posted
        assert slack.history("C_GENERAL")[0].display_text == "*Hello* from a form"
        # The token may also travel as a form field.
        assert (await call("auth.test", {"token": slack.bot_token}))["user_id"] == "U_BOT"

        assert (await call("auth.test"))["error"] == "not_authed"
        assert (await call("auth.test", headers={"Authorization": "Bearer xoxb-wrong"}))[
            "error"
        ] == "invalid_auth"
        assert (
            await call(
                "chat.postMessage",
                {"channel": "C_GENERAL", "text": "x"},
                {"Authorization": f"Bearer {slack.app_token}"},
            )
        )["error"] == "not_allowed_token_type"
        assert (await call("chat.fly", {}, bearer))["error"] == "unknown_method"
        bad_json = await call("chat.postMessage", b"{not json", bearer | {"Content-Type": "application/json"})
        assert bad_json["error"] == "invalid_json"


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"text": "x" * 40_001}, "msg_too_long"),
        ({"blocks": [section("x")] * 51}, "invalid_blocks"),
        ({"blocks": [section("x" * 3_001)]}, "invalid_blocks"),
        (
            {"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}]},
            "invalid_blocks",
        ),
        ({"blocks": [{"type": "sparkles"}]}, "invalid_blocks"),
        ({"text": ""}, "no_text"),
        ({"text": "hi", "channel": "C_NOPE"}, "channel_not_found"),
        ({"text": "hi", "channel": "C_RANDOM"}, "not_in_channel"),
    ],
)
async def test_slack_limits_are_enforced(
    slack: SlackEmulator, slack_client: AsyncWebClient, arguments: dict[str, Any], error: str
) -> None:
    with pytest.raises(SlackApiError) as raised:
        await slack_client.chat_postMessage(**({"channel": "C_GENERAL"} | arguments))
    assert raised.value.response["error"] == error
    assert slack.history(arguments.get("channel", "C_GENERAL")) == []


async def test_limits_are_inclusive_bounds(slack: SlackEmulator, slack_client: AsyncWebClient) -> None:
    await slack_client.chat_postMessage(channel="C_GENERAL", text="x" * 40_000)
    await slack_client.chat_postMessage(channel="C_GENERAL", text="fallback", blocks=[section("x")] * 50)
    await slack_client.chat_postMessage(channel="C_GENERAL", text="fallback", blocks=[section("x" * 3_000)])
    header = {"type": "header", "text": {"type": "plain_text", "text": "x" * 150}}
    await slack_client.chat_postMessage(channel="C_GENERAL", text="fallback", blocks=[header])
    assert len(slack.bot_messages("C_GENERAL")) == 4


async def test_update_errors(slack: SlackEmulator, slack_client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError, match="message_not_found"):
        await slack_client.chat_update(channel="C_GENERAL", ts="1700000000.000001", text="x")
    alice = slack.workspace.post("C_GENERAL", text="mine", user="U_ALICE")
    with pytest.raises(SlackApiError, match="cant_update_message"):
        await slack_client.chat_update(channel="C_GENERAL", ts=alice.ts, text="yours now")
    assert slack.history("C_GENERAL")[0].text == "mine"


async def test_streaming_with_the_sdk_chat_stream_helper(
    slack: SlackEmulator, slack_client: AsyncWebClient
) -> None:
    question = slack.workspace.post("C_GENERAL", text="explain the VPN", user="U_ALICE")
    stream = await slack_client.chat_stream(
        channel="C_GENERAL",
        thread_ts=question.ts,
        recipient_team_id="T_TEAM",
        recipient_user_id="U_ALICE",
        buffer_size=8,
    )
    await stream.append(markdown_text="Use the ")
    assert stream.ts is not None
    reply = slack.thread("C_GENERAL", question.ts)[0]
    assert reply.streaming and reply.text == "Use the "
    # While it streams, the message cannot be edited, and readers see the text so far.
    with pytest.raises(SlackApiError, match="streaming_state_conflict"):
        await slack_client.chat_update(channel="C_GENERAL", ts=stream.ts, text="x")
    await stream.append(markdown_text="corporate VPN ")
    await stream.append(markdown_text="[1]")  # buffered: below buffer_size
    await stream.stop(
        blocks=[{"type": "context", "elements": [{"type": "mrkdwn", "text": "Sources: handbook.md"}]}]
    )

    [reply] = slack.thread("C_GENERAL", question.ts)
    assert reply.stream == "stopped"
    assert reply.text == "Use the corporate VPN [1]"
    assert reply.display_text == "Use the corporate VPN [1]\nSources: handbook.md"
    assert [c.method for c in slack.calls()] == [
        "chat.startStream",
        "chat.update",
        "chat.appendStream",
        "chat.stopStream",
    ]
    with pytest.raises(SlackApiError, match="message_not_in_streaming_state"):
        await slack_client.chat_appendStream(channel="C_GENERAL", ts=reply.ts, markdown_text="late")


async def test_stream_rules_and_failures(slack: SlackEmulator, slack_client: AsyncWebClient) -> None:
    question = slack.workspace.post("C_GENERAL", text="q", user="U_ALICE")
    # Outside a DM Slack needs the recipient.
    with pytest.raises(SlackApiError, match="missing_recipient_team_id"):
        await slack_client.chat_startStream(channel="C_GENERAL", thread_ts=question.ts, markdown_text="a")
    # In a DM it does not.
    dm_question = slack.workspace.post("D_ALICE", text="q", user="U_ALICE")
    started = await slack_client.chat_startStream(
        channel="D_ALICE", thread_ts=dm_question.ts, markdown_text="a"
    )
    assert slack.thread("D_ALICE", dm_question.ts)[0].text == "a"

    # Injected: streaming not allowed for this workspace, once.
    slack.fail("chat.startStream", "feature_not_enabled")
    recipient = {"recipient_team_id": "T_TEAM", "recipient_user_id": "U_ALICE"}
    with pytest.raises(SlackApiError, match="feature_not_enabled"):
        await slack_client.chat_startStream(channel="C_GENERAL", thread_ts=question.ts, **recipient)
    assert slack.thread("C_GENERAL", question.ts) == []

    # Slack expired the stream: appends fail, and chat.update on the same ts is the way out.
    stream = await slack_client.chat_startStream(
        channel="C_GENERAL", thread_ts=question.ts, markdown_text="partial", **recipient
    )
    slack.expire_stream("C_GENERAL", stream["ts"])
    with pytest.raises(SlackApiError, match="message_not_in_streaming_state"):
        await slack_client.chat_appendStream(channel="C_GENERAL", ts=stream["ts"], markdown_text=" more")
    await slack_client.chat_update(channel="C_GENERAL", ts=stream["ts"], text="partial and the rest")
    assert [r.text for r in slack.thread("C_GENERAL", question.ts)] == ["partial and the rest"]

    # A person pressed stop.
    slack.user_stops_stream("D_ALICE", started["ts"])
    with pytest.raises(SlackApiError, match="stopped_by_user"):
        await slack_client.chat_appendStream(channel="D_ALICE", ts=started["ts"], markdown_text="b")

    # An injected mid-stream expiry: one append fails, the next works again.
    again = await slack_client.chat_startStream(
        channel="D_ALICE", thread_ts=dm_question.ts, markdown_text="x"
    )
    slack.fail("chat.appendStream", "message_not_in_streaming_state")
    with pytest.raises(SlackApiError, match="message_not_in_streaming_state"):
        await slack_client.chat_appendStream(channel="D_ALICE", ts=again["ts"], markdown_text="y")
    await slack_client.chat_appendStream(channel="D_ALICE", ts=again["ts"], markdown_text="z")
    assert slack.workspace.message("D_ALICE", again["ts"]).text == "xz"


async def test_stream_expires_after_idle_time(slack: SlackEmulator, slack_client: AsyncWebClient) -> None:
    slack.workspace.stream_idle_timeout = 0.2
    question = slack.workspace.post("D_ALICE", text="q", user="U_ALICE")
    stream = await slack_client.chat_startStream(channel="D_ALICE", thread_ts=question.ts, markdown_text="a")
    await slack_client.chat_appendStream(channel="D_ALICE", ts=stream["ts"], markdown_text="b")
    await asyncio.sleep(0.3)
    with pytest.raises(SlackApiError, match="message_not_in_streaming_state"):
        await slack_client.chat_stopStream(channel="D_ALICE", ts=stream["ts"])
    assert slack.workspace.message("D_ALICE", stream["ts"]).stream == "expired"


async def test_rate_limits_with_the_sdk_retry_handler(slack: SlackEmulator) -> None:
    plain = AsyncWebClient(base_url=slack.api_url, token=slack.bot_token)
    slack.rate_limit("chat.postMessage", times=1, retry_after=1)
    with pytest.raises(SlackApiError) as raised:
        await plain.chat_postMessage(channel="C_GENERAL", text="hi")
    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "1"
    assert raised.value.response["error"] == "ratelimited"

    retrying = AsyncWebClient(
        base_url=slack.api_url,
        token=slack.bot_token,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    slack.rate_limit("chat.postMessage", times=1, retry_after=1)
    started = time.monotonic()
    await retrying.chat_postMessage(channel="C_GENERAL", text="hi")
    assert time.monotonic() - started >= 1.0
    assert [c.status for c in slack.calls("chat.postMessage")] == [429, 429, 200]
    assert [m.text for m in slack.history("C_GENERAL")] == ["hi"]


async def test_slow_methods(slack: SlackEmulator, slack_client: AsyncWebClient) -> None:
    slack.slow("auth.test", 0.3, times=1)
    started = time.monotonic()
    await slack_client.auth_test()
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    await slack_client.auth_test()
    assert time.monotonic() - started < 0.3


async def test_conversations_users_team_reactions(slack: SlackEmulator, slack_client: AsyncWebClient) -> None:
    flags = {}
    for channel in ("C_GENERAL", "C_PRIVATE", "G_TEAM", "D_BOB"):
        info = (await slack_client.conversations_info(channel=channel))["channel"]
        flags[channel] = (info["is_channel"], info["is_private"], info["is_im"], info["is_mpim"])
    assert flags == {
        "C_GENERAL": (True, False, False, False),
        "C_PRIVATE": (True, True, False, False),
        "G_TEAM": (False, True, False, True),
        "D_BOB": (False, True, True, False),
    }
    # A private channel the app is not in does not exist, for the app.
    slack.workspace.add_channel("C_HR", "hr", "private", {"U_BOB"})
    with pytest.raises(SlackApiError, match="channel_not_found"):
        await slack_client.conversations_info(channel="C_HR")

    user = (await slack_client.users_info(user="U_ALICE"))["user"]
    assert (user["real_name"], user["is_bot"]) == ("Alice Archer", False)
    assert (await slack_client.users_info(user="U_BOT"))["user"]["profile"]["bot_id"] == "B_BOT"
    assert (await slack_client.team_info())["team"]["id"] == "T_TEAM"

    message = slack.workspace.post("C_GENERAL", text="nice", user="U_ALICE")
    await slack_client.reactions_add(channel="C_GENERAL", timestamp=message.ts, name="eyes")
    with pytest.raises(SlackApiError, match="already_reacted"):
        await slack_client.reactions_add(channel="C_GENERAL", timestamp=message.ts, name="eyes")
    with pytest.raises(SlackApiError, match="invalid_name"):
        await slack_client.reactions_add(channel="C_GENERAL", timestamp=message.ts, name=":tada:")
    await slack_client.reactions_add(channel="C_GENERAL", timestamp=message.ts, name="white_check_mark")
    await slack_client.reactions_remove(channel="C_GENERAL", timestamp=message.ts, name="eyes")
    assert slack.reactions("C_GENERAL", message.ts) == {"white_check_mark": ["U_BOT"]}

    link = await slack_client.chat_getPermalink(channel="C_GENERAL", message_ts=message.ts)
    assert link["permalink"].endswith(f"/archives/C_GENERAL/p{message.ts.replace('.', '')}")

    await slack_client.chat_postEphemeral(channel="C_GENERAL", user="U_BOB", text="only you")
    assert [e.text for e in slack.ephemerals(user="U_BOB")] == ["only you"]
    assert slack.history("C_GENERAL") == [message]


async def test_history_pages(slack: SlackEmulator, slack_client: AsyncWebClient) -> None:
    for i in range(5):
        slack.workspace.post("C_GENERAL", text=f"m{i}", user="U_ALICE")
    first = await slack_client.conversations_history(channel="C_GENERAL", limit=2)
    assert [m["text"] for m in first["messages"]] == ["m4", "m3"] and first["has_more"]
    cursor = first["response_metadata"]["next_cursor"]
    second = await slack_client.conversations_history(channel="C_GENERAL", limit=2, cursor=cursor)
    assert [m["text"] for m in second["messages"]] == ["m2", "m1"]
    with pytest.raises(SlackApiError, match="not_in_channel"):
        await slack_client.conversations_history(channel="C_RANDOM")


# -- Events API ------------------------------------------------------------------------------------


async def test_user_says_delivers_signed_events_as_slack_does(slack: SlackEmulator) -> None:
    verifier = SignatureVerifier(slack.signing_secret)
    async with recording_endpoint() as app:
        slack.request_url = app.url
        said = await slack.user_says("C_GENERAL", "what is our VPN policy?")

        assert [a.status for a in said.acks] == [200, 200]
        assert all(a.elapsed < 1 for a in said.acks)
        assert all(verifier.is_valid_request(r.body, r.headers) for r in app.requests)
        bodies = {r.json()["event"]["type"]: r.json() for r in app.requests}
        assert set(bodies) == {"app_mention", "message"}
        mention, message = bodies["app_mention"], bodies["message"]
        assert mention["event_id"] != message["event_id"]
        assert mention["event"]["ts"] == message["event"]["ts"] == said.ts
        assert mention["event"]["text"] == "<@U_BOT> what is our VPN policy?"
        assert message["event"]["channel_type"] == "channel" and "channel_type" not in mention["event"]
        assert mention["type"] == "event_callback" and mention["api_app_id"] == "A_THREADWISE"
        assert mention["authorizations"][0]["user_id"] == "U_BOT"
        user_element = mention["event"]["blocks"][0]["elements"][0]["elements"][0]
        assert user_element == {"type": "user", "user_id": "U_BOT"}

        # The message is in the workspace: the app would find it with conversations.replies.
        assert slack.history("C_GENERAL")[0].ts == said.ts

        # A reply in the thread without a mention: one message event with thread_ts.
        app.requests.clear()
        reply = await slack.user_says("C_GENERAL", "and from home?", thread_ts=said.ts, mention=False)
        [event] = [r.json()["event"] for r in app.requests]
        assert (event["type"], event["thread_ts"], event["parent_user_id"]) == ("message", said.ts, "U_ALICE")
        assert reply.message.thread_ts == said.ts

        # A DM: one message event with channel_type im, no mention added.
        app.requests.clear()
        await slack.user_says("D_ALICE", "hi")
        [event] = [r.json()["event"] for r in app.requests]
        assert (event["channel_type"], event["text"], event["channel"]) == ("im", "hi", "D_ALICE")

        # A private channel is a "group"; a channel the app is not in delivers nothing.
        app.requests.clear()
        await slack.user_says("C_PRIVATE", "psst", mention=False)
        await slack.user_says("C_RANDOM", "nobody home", user="U_BOB")
        assert [r.json()["event"]["channel_type"] for r in app.requests] == ["group"]


async def test_redelivery_bad_signatures_and_stale_timestamps(slack: SlackEmulator) -> None:
    verifier = SignatureVerifier(slack.signing_secret)
    async with recording_endpoint() as app:
        slack.request_url = app.url
        said = await slack.user_says("U_ALICE", "hello")  # a user ID means their DM
        [first] = said.acks
        again = await slack.redeliver(first)
        original, retried = app.requests
        assert retried.json()["event_id"] == original.json()["event_id"]
        assert retried.headers["X-Slack-Retry-Num"] == "1"
        assert retried.headers["X-Slack-Retry-Reason"] == "http_timeout"
        assert "X-Slack-Retry-Num" not in original.headers
        assert again.retry_num == 1 and verifier.is_valid_request(retried.body, retried.headers)

        await slack.send_event(
            {"type": "app_home_opened", "user": "U_ALICE", "tab": "home"}, bad_signature=True
        )
        await slack.send_event(
            {"type": "app_home_opened", "user": "U_ALICE", "tab": "home"}, timestamp=int(time.time()) - 600
        )
        forged, stale = app.requests[2:]
        assert not verifier.is_valid_request(forged.body, forged.headers)
        assert not verifier.is_valid_request(stale.body, stale.headers)
        # The stale one is correctly signed, just old.
        assert stale.headers["X-Slack-Signature"] == verifier.generate_signature(
            timestamp=stale.headers["X-Slack-Request-Timestamp"], body=stale.body
        )

        # A slow app: the delivery counts as failed after Slack's 3 seconds (shortened here).
        slack.http.timeout = 0.2
        app.delay = 0.5
        slow = await slack.send_event({"type": "app_home_opened", "user": "U_ALICE", "tab": "home"})
        assert slow.timed_out and not slow.ok and 0.2 <= slow.elapsed < 0.5


async def test_other_events_as_slack_shapes_them(slack: SlackEmulator) -> None:
    slack.workspace.add_user("U_CAROL", "carol", "Carol Cole")
    async with recording_endpoint() as app:
        slack.request_url = app.url

        def events() -> list[dict[str, Any]]:
            found = [r.json()["event"] for r in app.requests]
            app.requests.clear()
            return found

        said = await slack.user_says("G_TEAM", "summarise this", user="U_BOB")
        assert sorted((e["type"], e.get("channel_type")) for e in events()) == [
            ("app_mention", None),
            ("message", "mpim"),
        ]

        await slack.user_edits("G_TEAM", said.ts, "<@U_BOT> summarise this, please")
        [changed] = events()
        assert (changed["subtype"], changed["hidden"]) == ("message_changed", True)
        assert (
            changed["message"]["text"].endswith("please") and changed["message"]["edited"]["user"] == "U_BOB"
        )
        assert changed["previous_message"]["text"] == "<@U_BOT> summarise this"

        await slack.user_reacts("G_TEAM", said.ts, "thumbsup", user="U_ALICE")
        [reaction] = events()
        assert reaction["type"] == "reaction_added"
        assert reaction["item"] == {"type": "message", "channel": "G_TEAM", "ts": said.ts}

        await slack.user_deletes("G_TEAM", said.ts)
        [deleted] = events()
        assert (deleted["subtype"], deleted["deleted_ts"]) == ("message_deleted", said.ts)
        assert slack.history("G_TEAM") == []

        await slack.user_joins("C_GENERAL", "U_CAROL", inviter="U_ALICE")
        joined = {e["type"]: e for e in events()}
        assert joined["member_joined_channel"]["user"] == "U_CAROL"
        assert joined["member_joined_channel"]["channel_type"] == "C"
        assert joined["message"]["subtype"] == "channel_join"

        await slack.other_bot_says("C_GENERAL", "deploy finished")
        [other] = events()
        assert (other["subtype"], other["bot_id"], other["username"]) == (
            "bot_message",
            "B_OTHER",
            "deploy-bot",
        )
        assert "bot_profile" not in other

        # Events the app did not subscribe to are not sent.
        slack.subscriptions.discard("reaction_added")
        await slack.user_reacts("C_GENERAL", slack.history("C_GENERAL")[-1].ts, "eyes")
        assert events() == []


async def test_views(slack: SlackEmulator, slack_client: AsyncWebClient) -> None:
    home = {"type": "home", "blocks": [section("Your knowledge base")]}
    await slack_client.views_publish(user_id="U_ALICE", view=home)
    assert slack.workspace.home_views["U_ALICE"]["blocks"] == home["blocks"]
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "x"}, "blocks": []}
    with pytest.raises(SlackApiError, match="invalid_trigger_id"):
        await slack_client.views_open(trigger_id="123.456.abc", view=modal)


async def test_bot_messages_echo_when_asked(slack: SlackEmulator, slack_client: AsyncWebClient) -> None:
    slack.echo_bot_messages = True
    async with recording_endpoint() as app:
        slack.request_url = app.url
        posted = await slack_client.chat_postMessage(channel="C_GENERAL", text="from the app")
        await slack_client.chat_update(channel="C_GENERAL", ts=posted["ts"], text="edited by the app")
        await slack.wait_for(lambda: len(app.requests) == 2)
        new, changed = (r.json()["event"] for r in app.requests)
        assert (new["bot_id"], new["text"], new["channel_type"]) == ("B_BOT", "from the app", "channel")
        assert changed["subtype"] == "message_changed"
        assert changed["message"]["text"] == "edited by the app"
        assert changed["previous_message"]["text"] == "from the app"


async def test_files_shared_in_a_channel(slack: SlackEmulator, slack_client: AsyncWebClient) -> None:
    async with recording_endpoint() as app:
        slack.request_url = app.url
        file, said = await slack.user_shares_file(
            "C_GENERAL", "notes.md", "# Notes\nVPN always.", text="our notes"
        )
        events = sorted((r.json()["event"] for r in app.requests), key=lambda e: e["type"])
        assert [(e["type"], e.get("subtype")) for e in events] == [
            ("file_shared", None),
            ("message", "file_share"),
        ]
        assert events[0]["file_id"] == file.id and events[1]["files"][0]["id"] == file.id
        assert said.message.files == [file.id]

    info = (await slack_client.files_info(file=file.id))["file"]
    assert (info["name"], info["mimetype"], info["size"]) == ("notes.md", "text/markdown", 19)
    assert [f["id"] for f in (await slack_client.files_list(channel="C_GENERAL"))["files"]] == [file.id]

    async with aiohttp.ClientSession() as http:
        async with http.get(info["url_private"], headers={"Authorization": f"Bearer {slack.bot_token}"}) as r:
            assert (r.status, await r.text()) == (200, "# Notes\nVPN always.")
        async with http.get(info["url_private_download"]) as r:  # no token: Slack's sign-in page
            assert r.status == 200 and r.content_type == "text/html"
    assert [d.authorized for d in slack.web_api.downloads] == [True, False]


# -- a real Bolt app -------------------------------------------------------------------------------


async def test_bolt_app_over_http_answers_a_mention_in_its_thread(slack: SlackEmulator) -> None:
    app = bolt_app(slack)
    seen: list[str] = []

    @app.event("app_mention")
    async def answer(event: dict[str, Any], say: Any) -> None:
        await say(text=f"You asked: {event['text'].split('>', 1)[1].strip()}", thread_ts=event["ts"])

    @app.event("message")
    async def message(event: dict[str, Any]) -> None:
        seen.append(event["ts"])

    async with serve_bolt_app(app) as url:
        slack.request_url = url
        assert (await slack.verify_url("abc")).body == {"challenge": "abc"}
        said = await slack.user_says("C_GENERAL", "where is the VPN guide?")
        assert [a.status for a in said.acks] == [200, 200]
        [reply] = await slack.wait_for_reply("C_GENERAL", said.ts)
        assert reply.text == "You asked: where is the VPN guide?"
        assert slack.thread("C_GENERAL", said.ts) == [reply]
        await slack.wait_for(lambda: seen == [said.ts])

        # Bolt refuses what Slack did not sign.
        forged = await slack.send_event({"type": "app_mention"}, bad_signature=True)
        stale = await slack.send_event({"type": "app_mention"}, timestamp=int(time.time()) - 600)
        assert (forged.status, stale.status) == (401, 401)
    assert len(slack.bot_messages("C_GENERAL")) == 1


async def test_bolt_app_streams_with_say_stream_and_sets_assistant_status(slack: SlackEmulator) -> None:
    app = bolt_app(slack)

    @app.event("assistant_thread_started")
    async def started(event: dict[str, Any], client: AsyncWebClient) -> None:
        thread = event["assistant_thread"]
        await client.assistant_threads_setSuggestedPrompts(
            channel_id=thread["channel_id"],
            thread_ts=thread["thread_ts"],
            prompts=[{"title": "VPN", "message": "How do I use the VPN?"}],
        )

    @app.event("message")
    async def message(event: dict[str, Any], set_status: Any, say_stream: Any) -> None:
        await set_status("is reading the handbook…")
        stream = await say_stream(buffer_size=4)
        for word in ("Use ", "the ", "VPN."):
            await stream.append(markdown_text=word)
        await stream.stop()

    async with serve_bolt_app(app) as url:
        slack.request_url = url
        opened = await slack.user_opens_assistant("U_ALICE")
        assert opened.ack is not None and opened.ack.ok
        await slack.wait_for(lambda: slack.assistant_thread(opened.channel, opened.thread_ts).prompts)
        said = await slack.user_says(opened.channel, "How do I use the VPN?", thread_ts=opened.thread_ts)
        [reply] = await slack.wait_for_reply(opened.channel, opened.thread_ts)
        assert said.message.thread_ts == opened.thread_ts
        assert (reply.text, reply.stream) == ("Use the VPN.", "stopped")
        thread = slack.assistant_thread(opened.channel, opened.thread_ts)
        # Slack clears the status line when the app's reply arrives.
        assert thread.statuses == ["is reading the handbook…", ""] and thread.status == ""


async def test_bolt_slash_command_and_button(slack: SlackEmulator) -> None:
    app = bolt_app(slack)

    @app.command("/kb")
    async def kb(ack: Any, respond: Any, command: dict[str, Any]) -> None:
        await ack(f"Checking {command['text']}…")
        await respond(
            response_type="in_channel",
            text="Index is fresh",
            blocks=[
                section("Index is fresh"),
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": "resync",
                            "text": {"type": "plain_text", "text": "Resync"},
                            "value": "all",
                        }
                    ],
                },
            ],
        )

    @app.action("resync")
    async def resync(ack: Any, respond: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await client.views_open(
            trigger_id=body["trigger_id"],
            view={"type": "modal", "title": {"type": "plain_text", "text": "Resync"}, "blocks": []},
        )
        await respond(replace_original=True, text=f"Resync of {body['actions'][0]['value']} started")

    async with serve_bolt_app(app) as url:
        slack.request_url = url
        ack = await slack.user_runs_command("/kb", "status", user="U_BOB")
        assert ack.ok
        assert [e.text for e in slack.ephemerals(user="U_BOB")] == ["Checking status…"]
        [posted] = await slack.wait_for(lambda: slack.bot_messages("C_GENERAL"))
        assert posted.display_text == "Index is fresh"

        clicked = await slack.user_clicks("C_GENERAL", posted.ts, "resync", user="U_BOB")
        assert clicked.ok
        await slack.wait_for(lambda: slack.history("C_GENERAL")[0].text.startswith("Resync"))
        assert slack.history("C_GENERAL")[0].display_text == "Resync of all started"
        # The ack and the response_url post race, as they do against Slack.
        assert sorted(p.effect for p in slack.response_posts) == ["ephemeral", "in_channel", "replaced"]
        assert [c.ok for c in slack.calls("views.open")] == [True]


async def test_a_click_in_a_posted_and_in_an_ephemeral_message_is_told_apart(
    slack: SlackEmulator, slack_client: AsyncWebClient
) -> None:
    app = bolt_app(slack)
    clicked: list[dict[str, Any]] = []

    @app.action("save")
    async def save(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        clicked.append(body)

    button = {
        "type": "button",
        "action_id": "save",
        "text": {"type": "plain_text", "text": "Save"},
        "value": "draft-1",
        "style": "primary",
    }
    blocks = [section("Save this?"), {"type": "actions", "block_id": "choice", "elements": [button]}]
    parent = slack.workspace.post("C_GENERAL", text="question", user="U_ALICE")
    posted = await slack_client.chat_postMessage(
        channel="C_GENERAL", thread_ts=parent.ts, text="Save this?", blocks=blocks
    )
    await slack_client.chat_postEphemeral(
        channel="C_GENERAL", user="U_BOB", thread_ts=parent.ts, text="Save this?", blocks=blocks
    )
    (ephemeral,) = slack.ephemerals(user="U_BOB")
    async with serve_bolt_app(app) as url:
        slack.request_url = url
        assert (await slack.user_clicks("C_GENERAL", posted["ts"], "save")).ok
        assert (await slack.user_clicks_ephemeral(ephemeral, "save")).ok
    in_message, in_ephemeral = clicked
    assert in_message["container"] == {
        "type": "message",
        "message_ts": posted["ts"],
        "channel_id": "C_GENERAL",
        "is_ephemeral": False,
        "thread_ts": parent.ts,
    }
    assert in_message["message"]["ts"] == posted["ts"] and in_message["user"]["id"] == "U_ALICE"
    # Slack sends no copy of an ephemeral message: the app never stored one.
    assert in_ephemeral["container"] == {
        "type": "message",
        "message_ts": ephemeral.ts,
        "channel_id": "C_GENERAL",
        "is_ephemeral": True,
        "thread_ts": parent.ts,
    }
    assert "message" not in in_ephemeral and in_ephemeral["user"]["id"] == "U_BOB"
    for body in clicked:
        (action,) = body["actions"]
        assert (action["block_id"], action["value"], action["style"]) == ("choice", "draft-1", "primary")
        assert action["text"] == {"type": "plain_text", "text": "Save"}


# -- Socket Mode -----------------------------------------------------------------------------------


async def test_socket_mode_round_trip_and_reconnects(slack: SlackEmulator) -> None:
    app = bolt_app(slack)

    @app.event("app_mention")
    async def answer(event: dict[str, Any], say: Any) -> None:
        await say(text="on it", thread_ts=event["ts"])

    @app.event("message")
    async def ignore(event: dict[str, Any]) -> None:
        pass

    handler = AsyncSocketModeHandler(app, app_token=slack.app_token)
    await handler.connect_async()
    try:
        await slack.socket.wait_connected()
        assert slack.calls("apps.connections.open")[0].ok

        said = await slack.user_says("C_GENERAL", "first")
        assert [(a.transport, a.ok) for a in said.acks] == [("socket", True), ("socket", True)]
        assert all(a.elapsed < 1 for a in said.acks)
        await slack.wait_for_reply("C_GENERAL", said.ts)

        # Slack asks for a refresh: the client opens a new connection and carries on.
        await slack.socket.request_reconnect()
        await slack.socket.wait_connected(count=2)
        said = await slack.user_says("C_GENERAL", "second")
        assert all(a.ok for a in said.acks)
        await slack.wait_for_reply("C_GENERAL", said.ts)

        # The connection drops: the client reconnects by itself.
        await slack.socket.drop()
        await slack.socket.wait_connected(count=3)
        said = await slack.user_says("C_GENERAL", "third")
        assert all(a.ok for a in said.acks)
        await slack.wait_for_reply("C_GENERAL", said.ts)
        assert len(slack.calls("apps.connections.open")) == 3
    finally:
        await handler.close_async()
    assert [m.text for m in slack.bot_messages("C_GENERAL")] == ["on it"] * 3


async def test_socket_mode_survives_a_cut_connection(slack: SlackEmulator) -> None:
    app = bolt_app(slack)

    @app.event("app_mention")
    async def answer(event: dict[str, Any], say: Any) -> None:
        await say(text="still here", thread_ts=event["ts"])

    @app.event("message")
    async def ignore(event: dict[str, Any]) -> None:
        pass

    # A short ping interval lets the client notice a dead socket quickly.
    handler = AsyncSocketModeHandler(app, app_token=slack.app_token, ping_interval=0.2)
    await handler.connect_async()
    try:
        await slack.socket.wait_connected()
        await slack.socket.drop(graceful=False)
        await slack.socket.wait_connected(count=2, timeout=5)
        said = await slack.user_says("C_GENERAL", "are you there?")
        assert all(a.ok for a in said.acks)
        await slack.wait_for_reply("C_GENERAL", said.ts)
    finally:
        await handler.close_async()


async def test_socket_mode_slash_command_ack_payload(slack: SlackEmulator) -> None:
    app = bolt_app(slack)

    @app.command("/ask")
    async def ask(ack: Any) -> None:
        await ack(text="Thinking…")

    handler = AsyncSocketModeHandler(app, app_token=slack.app_token)
    await handler.connect_async()
    try:
        await slack.socket.wait_connected()
        ack = await slack.user_runs_command("/ask", "vpn?", channel="C_PRIVATE")
        assert ack.ok and ack.body == {"text": "Thinking…"}
        assert [e.text for e in slack.ephemerals(channel="C_PRIVATE")] == ["Thinking…"]
    finally:
        await handler.close_async()


async def test_wait_for_says_what_it_waited_for(slack: SlackEmulator) -> None:
    assert await slack.wait_for(lambda: 42) == 42
    with pytest.raises(TimeoutError, match=r"a reply not met within 0\.1s"):
        await slack.wait_for(lambda: False, 0.1, message="a reply")
