"""A Slack workspace on loopback, for tests and the playground: Web API, Events API, Socket Mode.

:class:`SlackEmulator` serves, on one aiohttp server in the test's event loop:

* the Web API at ``/api/<method>`` (``emu.api_url``), for ``AsyncWebClient(base_url=emu.api_url)``,
  with Slack's limits and errors, injected faults and a log of every call (``web_api``);
* Socket Mode at the URL ``apps.connections.open`` hands out (``socket_mode``);
* ``response_url`` endpoints and private file downloads;

and it *sends* what Slack sends: signed Events API requests, slash commands and interactivity
payloads, over HTTP to ``request_url`` or over the app's Socket Mode connection once it has one
(``events``). Its state is a :class:`~localslack.workspace.Workspace` (people,
channels, messages, threads, reactions, streams, files), which tests read in terms of what a person
sees. The default cast: ``U_ALICE``, ``U_BOB``, the app's bot ``U_BOT`` (bot id ``B_BOT``) in team
``T_TEAM``; channels ``C_GENERAL`` (app is a member), ``C_RANDOM`` (it is not), ``C_PRIVATE``,
``G_TEAM`` (group DM) and the DMs ``D_ALICE`` / ``D_BOB``.

The server runs in the test's own event loop, so code under test must not block that loop (a
blocked loop also stalls the emulator, as it would stall a real app's acks).

Typical use in an async test (pytest-asyncio, auto mode)::

    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from localslack.emulator import SlackEmulator
    from tests.emulators.slack_fixtures import serve_bolt_app

    async def test_answers_a_mention_in_its_thread():
        async with SlackEmulator() as slack:
            app = AsyncApp(
                client=AsyncWebClient(base_url=slack.api_url, token=slack.bot_token),
                signing_secret=slack.signing_secret,
            )

            @app.event("app_mention")
            async def answer(event, say):
                await say(text="Use the VPN.", thread_ts=event["ts"])

            @app.event("message")
            async def other_messages():
                pass  # unhandled, Bolt would answer 404 (and Slack would retry)

            async with serve_bolt_app(app) as url:
                slack.request_url = url  # or connect an AsyncSocketModeHandler instead
                said = await slack.user_says("C_GENERAL", "how do I work remotely?")
                assert [ack.status for ack in said.acks] == [200, 200]  # app_mention and message
                replies = await slack.wait_for_reply("C_GENERAL", said.ts)
                assert replies[0].text == "Use the VPN."

Reading what people see: ``slack.thread(channel, ts)`` (replies, final text after edits and
streams), ``slack.bot_messages(channel, thread_ts=None)``, ``slack.reactions(channel, ts)``,
``slack.ephemerals(user)``, ``slack.assistant_thread(channel, ts).status``; and what the app did:
``slack.calls("chat.postMessage")``, ``slack.deliveries`` (each :class:`Ack` with status and time).

Faults: ``slack.fail("chat.startStream", "not_allowed")``, ``slack.rate_limit("chat.postMessage",
times=2)``, ``slack.slow("chat.update", 2.0)``, ``slack.expire_stream(channel, ts)``. Deliveries:
``slack.send_event(...)``, ``slack.redeliver(ack)`` (same event_id, ``X-Slack-Retry-Num``),
``bad_signature=True`` / ``timestamp=...`` for forged or stale requests.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from aiohttp import web

from localslack.events import (
    ACK_TIMEOUT,
    Ack,
    HttpDelivery,
    app_mention_event,
    assistant_thread_started_event,
    block_actions_payload,
    channel_shared_event,
    channel_unshared_event,
    envelope,
    file_change_event,
    file_deleted_event,
    file_shared_event,
    file_unshared_event,
    find_action,
    left_event,
    member_joined_channel_event,
    message_changed_event,
    message_deleted_event,
    message_event,
    reaction_event,
    slash_command_form,
    url_verification,
    view_submission_payload,
)
from localslack.responses import ResponsePost, ResponseUrls
from localslack.socket_mode import SocketModeServer
from localslack.web_api import Call, WebApi
from localslack.workspace import (
    AssistantThread,
    Change,
    Channel,
    Ephemeral,
    File,
    Message,
    Workspace,
    rich_text_blocks,
)

T = TypeVar("T")

# Everything a threadwise-like app subscribes to (bot events; message.* per conversation type).
DEFAULT_SUBSCRIPTIONS = frozenset(
    {
        "app_mention",
        "message.channels",
        "message.groups",
        "message.im",
        "message.mpim",
        "assistant_thread_started",
        "assistant_thread_context_changed",
        "file_shared",
        "member_joined_channel",
        "reaction_added",
        "reaction_removed",
    }
)
_MESSAGE_SUBSCRIPTION = {"channel": "channels", "group": "groups", "im": "im", "mpim": "mpim"}


@dataclass
class Said:
    """A person's message and how the app acknowledged what Slack delivered for it."""

    message: Message
    acks: list[Ack] = field(default_factory=list)

    @property
    def ts(self) -> str:
        return self.message.ts

    @property
    def channel(self) -> str:
        return self.message.channel


@dataclass
class AssistantOpened:
    """A person opened the app's assistant container: a new thread in their DM with the app."""

    channel: str
    thread_ts: str
    ack: Ack | None


class SlackEmulator:
    """One emulated workspace with the app under test installed. Use ``async with``.

    ``request_url`` is where HTTP deliveries go (Bolt's ``/slack/events``); ``commands_url`` and
    ``interactivity_url`` default to it. Once the app connects over Socket Mode, deliveries use the
    socket instead. ``echo_bot_messages`` makes Slack deliver ``message`` events for the app's own
    posts and edits too, as real Slack does (off by default to keep traffic down).
    """

    def __init__(
        self,
        *,
        request_url: str | None = None,
        commands_url: str | None = None,
        interactivity_url: str | None = None,
        workspace: Workspace | None = None,
        bot_token: str = "xoxb-emulator-bot-token",
        app_token: str = "xapp-1-emulator-app-token",
        signing_secret: str = "emulator-signing-secret",
        host: str = "127.0.0.1",
        port: int = 0,
        ack_timeout: float = ACK_TIMEOUT,
        subscriptions: Iterable[str] = DEFAULT_SUBSCRIPTIONS,
        echo_bot_messages: bool = False,
    ) -> None:
        self.request_url = request_url
        self.commands_url = commands_url
        self.interactivity_url = interactivity_url
        self.workspace = workspace or Workspace()
        self.bot_token = bot_token
        self.app_token = app_token
        self.signing_secret = signing_secret
        self.host = host
        self.port = port
        self.subscriptions = set(subscriptions)
        self.echo_bot_messages = echo_bot_messages
        self.web_api = WebApi(self.workspace, bot_token=bot_token, app_token=app_token)
        self.socket = SocketModeServer(
            app_id=self.workspace.app_id, base_url=lambda: self.base_url, ack_timeout=ack_timeout
        )
        self.web_api.socket_url = self.socket.issue_url
        self.responses = ResponseUrls(self.workspace, base_url=lambda: self.base_url)
        self.http = HttpDelivery(signing_secret, timeout=ack_timeout)
        self.deliveries: list[Ack] = []
        self._runner: web.AppRunner | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._unsubscribe: Callable[[], None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def web_app(self) -> web.Application:
        """The aiohttp application serving every endpoint (for embedding, e.g. in the playground)."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self.web_api.handle)
        app.router.add_get("/files-pri/{team}-{file_id:F[A-Za-z0-9_]+}/{name}", self.web_api.download)
        app.router.add_get(
            "/files-pri/{team}-{file_id:F[A-Za-z0-9_]+}/download/{name}", self.web_api.download
        )
        app.router.add_post("/hooks/{kind}/{team}/{token}", self.responses.handle)
        app.router.add_get("/link/", self.socket.handle)
        return app

    async def start(self) -> SlackEmulator:
        self._runner = web.AppRunner(self.web_app(), handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.workspace.base_url = self.base_url
        self._unsubscribe = self.workspace.subscribe(self._on_change)
        return self

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.socket.close()
        await self.http.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackEmulator:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def api_url(self) -> str:
        """The Web API base URL, for ``AsyncWebClient(base_url=...)`` / ``SLACK_API_URL``."""
        return f"{self.base_url}api/"

    # -- what a person sees ------------------------------------------------------------------------

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        """The visible replies under ``thread_ts``, oldest first, as they read now (after edits/streams)."""
        return self.workspace.thread(channel, thread_ts)

    def bot_messages(self, channel: str, thread_ts: str | None = None) -> list[Message]:
        """The app's messages in ``channel`` (only in one thread if ``thread_ts``), oldest first."""
        return self.workspace.bot_messages(channel, thread_ts)

    def history(self, channel: str) -> list[Message]:
        """The channel's top-level timeline, oldest first."""
        return self.workspace.history(channel)

    def reactions(self, channel: str, ts: str) -> dict[str, list[str]]:
        """Emoji name -> who reacted, on one message."""
        return {name: list(users) for name, users in self.workspace.message(channel, ts).reactions.items()}

    def ephemerals(self, user: str | None = None, channel: str | None = None) -> list[Ephemeral]:
        """Messages only one person saw (postEphemeral, ephemeral responses, command acks)."""
        return [
            e
            for e in self.workspace.ephemerals
            if (user is None or e.user == user) and (channel is None or e.channel == channel)
        ]

    def assistant_thread(self, channel: str, thread_ts: str) -> AssistantThread:
        """Status, title and suggested prompts the app set on a thread."""
        return self.workspace.assistant_thread(channel, thread_ts)

    def calls(self, method: str | None = None) -> list[Call]:
        """Every Web API call received (or those of one method), in order."""
        return [c for c in self.web_api.calls if method is None or c.method == method]

    @property
    def response_posts(self) -> list[ResponsePost]:
        return self.responses.posts

    # -- faults ------------------------------------------------------------------------------------

    def fail(self, method: str, error: str, *, times: int | None = 1) -> None:
        """The next ``times`` calls of ``method`` answer ``{"ok": false, "error": error}`` (None: all)."""
        self.web_api.faults.fail(method, error, times=times)

    def rate_limit(self, method: str, *, times: int | None = 1, retry_after: int = 1) -> None:
        """The next ``times`` calls of ``method`` get HTTP 429 with ``Retry-After``."""
        self.web_api.faults.rate_limit(method, times=times, retry_after=retry_after)

    def slow(self, method: str, seconds: float, *, times: int | None = None) -> None:
        """Calls of ``method`` take ``seconds`` longer to answer."""
        self.web_api.faults.delay(method, seconds, times=times)

    def clear_faults(self, method: str | None = None) -> None:
        self.web_api.faults.clear(method)

    def expire_stream(self, channel: str, ts: str) -> Message:
        """Slack ends a stream (as after inactivity): later appends get message_not_in_streaming_state."""
        return self.workspace.end_stream(channel, ts, "expired")

    def user_stops_stream(self, channel: str, ts: str) -> Message:
        """A person presses stop on a streaming reply: later appends get stopped_by_user."""
        return self.workspace.end_stream(channel, ts, "stopped_by_user")

    # -- deliveries --------------------------------------------------------------------------------

    async def deliver(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        retry_num: int = 0,
        retry_reason: str | None = None,
        bad_signature: bool = False,
        timestamp: int | None = None,
    ) -> Ack:
        """Send one request to the app the way it is connected: Socket Mode if it ever connected, else HTTP."""
        if self.socket.enabled and kind != "url_verification":
            if bad_signature or timestamp is not None:
                raise ValueError("Socket Mode requests are not signed: bad_signature/timestamp need HTTP")
            accepts = kind == "slash_commands" or payload.get("type") in (
                "view_submission",
                "block_suggestion",
            )
            ack = await self.socket.send(
                kind,
                payload,
                accepts_response_payload=accepts,
                retry_attempt=retry_num,
                retry_reason=retry_reason or ("" if not retry_num else "timeout"),
            )
        else:
            url = {"slash_commands": self.commands_url, "interactive": self.interactivity_url}.get(kind)
            url = url or self.request_url
            if url is None:
                raise RuntimeError("nowhere to deliver: set request_url or connect the app over Socket Mode")
            ack = await self.http.send(
                url,
                kind,
                payload,
                retry_num=retry_num,
                retry_reason=retry_reason,
                bad_signature=bad_signature,
                timestamp=timestamp,
            )
        self.deliveries.append(ack)
        return ack

    async def send_event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int = 0,
        retry_reason: str | None = None,
        bad_signature: bool = False,
        timestamp: int | None = None,
    ) -> Ack:
        """Wrap an inner event in an ``event_callback`` envelope and deliver it."""
        body = envelope(self.workspace, event, event_id=event_id)
        return await self.deliver(
            "events_api",
            body,
            retry_num=retry_num,
            retry_reason=retry_reason,
            bad_signature=bad_signature,
            timestamp=timestamp,
        )

    async def redeliver(self, ack: Ack, *, reason: str | None = None) -> Ack:
        """Deliver the same request again as Slack's retry: same payload (same event_id), retry headers."""
        default = "http_timeout" if ack.transport == "http" else "timeout"
        return await self.deliver(
            ack.kind, ack.payload, retry_num=ack.retry_num + 1, retry_reason=reason or default
        )

    async def verify_url(self, challenge: str = "emulator-challenge") -> Ack:
        """Slack's request URL check: the app must echo the challenge."""
        return await self.deliver("url_verification", url_verification(challenge))

    def subscribed(self, event: dict[str, Any]) -> bool:
        """Whether the app's event subscriptions include this inner event."""
        if event["type"] == "message":
            return f"message.{_MESSAGE_SUBSCRIPTION[event['channel_type']]}" in self.subscriptions
        return event["type"] in self.subscriptions

    async def _send_all(self, events: list[dict[str, Any]]) -> list[Ack]:
        """Deliver several events at once, as Slack does (their order of arrival is not fixed)."""
        wanted = [e for e in events if self.subscribed(e)]
        return list(await asyncio.gather(*(self.send_event(e) for e in wanted)))

    def _app_hears(self, channel: Channel) -> bool:
        """Slack only sends message events from conversations the app is in."""
        return self.workspace.bot_user_id in channel.members

    # -- what people do ----------------------------------------------------------------------------

    async def user_says(
        self,
        channel: str,
        text: str,
        user: str = "U_ALICE",
        thread_ts: str | None = None,
        mention: bool = True,
    ) -> Said:
        """A person posts ``text``; Slack stores it and delivers the events it would.

        In channels, ``mention`` prefixes ``<@U_BOT>`` (unless the text already mentions the app), and
        a message mentioning the app is delivered twice: as ``app_mention`` and as ``message``, with
        two event_ids and the same ts. In a DM (``channel`` may be ``"D_ALICE"`` or a user ID) the
        app gets one ``message`` event with ``channel_type: im``; ``mention`` is ignored there.
        """
        ws = self.workspace
        conversation = ws.resolve_channel(channel)
        if user not in conversation.members:
            raise ValueError(f"{user} is not a member of {conversation.id}, so cannot post there")
        mention_tag = f"<@{ws.bot_user_id}>"
        if mention and not conversation.is_dm and mention_tag not in text:
            text = f"{mention_tag} {text}"
        message = ws.post(conversation.id, text=text, user=user, thread_ts=thread_ts)
        return Said(message, await self._deliver_message(conversation, message))

    async def _deliver_message(self, conversation: Channel, message: Message) -> list[Ack]:
        if not self._app_hears(conversation):
            return []
        events = []
        if not conversation.is_dm and f"<@{self.workspace.bot_user_id}>" in message.text:
            events.append(app_mention_event(self.workspace, message))
        events.append(message_event(self.workspace, message))
        return await self._send_all(events)

    async def user_shares_file(
        self,
        channel: str,
        name: str,
        content: bytes | str,
        *,
        user: str = "U_ALICE",
        text: str = "",
        thread_ts: str | None = None,
        mimetype: str | None = None,
    ) -> tuple[File, Said]:
        """A person uploads a file into a conversation: a ``file_share`` message and ``file_shared``."""
        ws = self.workspace
        conversation = ws.resolve_channel(channel)
        if user not in conversation.members:
            raise ValueError(f"{user} is not a member of {conversation.id}, so cannot share there")
        file = ws.add_file(name, content, user=user, mimetype=mimetype)
        message = ws.post(
            conversation.id,
            text=text,
            user=user,
            thread_ts=thread_ts,
            subtype="file_share",
            files=[file.id],
            blocks=rich_text_blocks(text, seed=name) if text else None,
        )
        acks = await self._deliver_message(conversation, message)
        if self._app_hears(conversation):
            acks += await self._send_all([file_shared_event(ws, file, channel=conversation, user=user)])
        return file, Said(message, acks)

    async def user_shares_existing_file(
        self, file_id: str, channel: str, *, user: str = "U_ALICE", text: str = ""
    ) -> Said:
        """A person shares a file already in Slack into another conversation (``file_share`` + ``file_shared``)."""
        ws = self.workspace
        file = ws.file(file_id)
        conversation = ws.resolve_channel(channel)
        if user not in conversation.members:
            raise ValueError(f"{user} is not a member of {conversation.id}, so cannot share there")
        message = ws.post(conversation.id, text=text, user=user, subtype="file_share", files=[file.id])
        acks = await self._deliver_message(conversation, message)
        if self._app_hears(conversation):
            acks += await self._send_all([file_shared_event(ws, file, channel=conversation, user=user)])
        return Said(message, acks)

    def _app_sees_file(self, file: File) -> bool:
        return any(self._app_hears(self.workspace.channel(c)) for c in file.channels)

    async def user_changes_file(self, file_id: str, content: bytes | str) -> list[Ack]:
        """The file's owner replaces its content (e.g. edits a post or a canvas): ``file_change``."""
        file = self.workspace.file(file_id)
        file.content = content.encode() if isinstance(content, str) else content
        if not self._app_sees_file(file):
            return []
        return await self._send_all([file_change_event(self.workspace, file)])

    async def user_deletes_file(self, file_id: str) -> list[Ack]:
        """The file is deleted from Slack: ``file_deleted``; it is gone from files.info and downloads."""
        file = self.workspace.file(file_id)
        seen = self._app_sees_file(file)
        del self.workspace.files[file_id]
        return await self._send_all([file_deleted_event(self.workspace, file)]) if seen else []

    async def app_leaves(self, channel: str) -> list[Ack]:
        """The app is removed from a conversation: ``channel_left`` or ``group_left``."""
        conversation = self.workspace.channel(channel)
        conversation.members.discard(self.workspace.bot_user_id)
        return await self._send_all([left_event(self.workspace, conversation)])

    async def channel_made_private(self, channel: str, user: str = "U_ALICE") -> list[Ack]:
        """An admin makes a public channel private: a ``channel_convert_to_private`` message."""
        said = "made this channel *private*. Now, it can only be viewed or joined by invitation."
        return await self._channel_converted(channel, "private", said, user)

    async def channel_made_public(self, channel: str, user: str = "U_ALICE") -> list[Ack]:
        """An admin makes a private channel public: a ``channel_convert_to_public`` message."""
        said = "made this channel public. Now, anyone in the workspace can see and join it."
        return await self._channel_converted(channel, "public", said, user)

    async def _channel_converted(
        self, channel: str, kind: Literal["private", "public"], text: str, user: str
    ) -> list[Ack]:
        conversation = self.workspace.channel(channel)
        conversation.kind = kind
        message = self.workspace.post(
            conversation.id, text=text, user=user, subtype=f"channel_convert_to_{kind}"
        )
        return await self._deliver_message(conversation, message)

    async def user_unshares_file(self, file_id: str, channel: str, *, user: str = "U_ALICE") -> list[Ack]:
        """The file is removed from one conversation (it may stay shared elsewhere): ``file_unshared``."""
        file = self.workspace.file(file_id)
        conversation = self.workspace.channel(channel)
        if conversation.id in file.channels:
            file.channels.remove(conversation.id)
        if not self._app_hears(conversation):
            return []
        return await self._send_all(
            [file_unshared_event(self.workspace, file, channel=conversation, user=user)]
        )

    async def channel_shared_with(
        self, channel: str, team_id: str, *, people: Iterable[tuple[str, str]] = ()
    ) -> list[Ack]:
        """Slack Connect: another organisation (``team_id``) joins the channel with ``people`` (id, name),
        who become members: ``channel_shared``, then ``member_joined_channel`` for each."""
        ws = self.workspace
        conversation = ws.channel(channel)
        if team_id not in conversation.external_teams:
            conversation.external_teams.append(team_id)
        acks = await self._send_all([channel_shared_event(ws, conversation, connected_team=team_id)])
        for user_id, name in people:
            if user_id not in ws.users:
                ws.add_user(user_id, name, team_id=team_id)
            acks += await self.user_joins(channel, user_id)
        return acks

    async def channel_unshared_from(self, channel: str, team_id: str) -> list[Ack]:
        """The other organisation leaves the channel, with its people: ``channel_unshared``."""
        ws = self.workspace
        conversation = ws.channel(channel)
        if team_id in conversation.external_teams:
            conversation.external_teams.remove(team_id)
        conversation.members -= {u for u in conversation.members if ws.users[u].team_id == team_id}
        return await self._send_all([channel_unshared_event(ws, conversation, removed_team=team_id)])

    async def user_edits(self, channel: str, ts: str, text: str) -> list[Ack]:
        """The author edits a message: Slack sends ``message`` / ``message_changed``."""
        previous = self.workspace.render(self.workspace.message(channel, ts))
        message = self.workspace.update(channel, ts, text=text)
        conversation = self.workspace.channel(channel)
        if not self._app_hears(conversation):
            return []
        return await self._send_all([message_changed_event(self.workspace, message, previous)])

    async def user_deletes(self, channel: str, ts: str) -> list[Ack]:
        """The author deletes a message: Slack sends ``message`` / ``message_deleted``."""
        previous = self.workspace.render(self.workspace.message(channel, ts))
        self.workspace.delete(channel, ts)
        conversation = self.workspace.channel(channel)
        if not self._app_hears(conversation):
            return []
        return await self._send_all([message_deleted_event(self.workspace, conversation, previous)])

    async def user_reacts(self, channel: str, ts: str, name: str, user: str = "U_ALICE") -> list[Ack]:
        """A person adds an emoji reaction to a message: ``reaction_added``."""
        message = self.workspace.react(channel, ts, name, user)
        if not self._app_hears(self.workspace.channel(channel)):
            return []
        return await self._send_all([reaction_event(self.workspace, message, name=name, user=user)])

    async def user_joins(self, channel: str, user: str, *, inviter: str | None = None) -> list[Ack]:
        """Someone (or the app, with the bot user ID) joins: ``member_joined_channel`` plus ``channel_join``."""
        conversation = self.workspace.channel(channel)
        message = self.workspace.join(channel, user)
        if not self._app_hears(conversation):
            return []
        joined = member_joined_channel_event(
            self.workspace, channel=conversation, user=user, inviter=inviter, event_ts=message.ts
        )
        return await self._send_all([joined, message_event(self.workspace, message)])

    async def other_bot_says(
        self, channel: str, text: str, *, bot_id: str = "B_OTHER", username: str = "deploy-bot"
    ) -> list[Ack]:
        """Another integration posts (subtype ``bot_message``); the app must not answer bots."""
        conversation = self.workspace.channel(channel)
        message = self.workspace.post_integration(conversation.id, text, bot_id=bot_id, username=username)
        if not self._app_hears(conversation):
            return []
        return await self._send_all([message_event(self.workspace, message)])

    async def user_opens_assistant(
        self, user: str = "U_ALICE", *, context_channel: str | None = None
    ) -> AssistantOpened:
        """A person opens the app's assistant pane: a new thread in their DM and ``assistant_thread_started``."""
        ws = self.workspace
        dm = ws.dm(user)
        parent = ws.post(
            dm.id,
            bot=True,
            subtype="assistant_app_thread",
            assistant_app_thread={"title": "", "title_blocks": [], "artifacts": [], "context": {}},
        )
        thread = ws.assistant_thread(dm.id, parent.ts)
        thread.user = user
        thread.context = {"channel_id": context_channel} if context_channel else {}
        event = assistant_thread_started_event(
            ws, user=user, channel=dm, thread_ts=parent.ts, context_channel=context_channel
        )
        acks = await self._send_all([event])
        return AssistantOpened(channel=dm.id, thread_ts=parent.ts, ack=acks[0] if acks else None)

    async def user_runs_command(
        self, command: str, text: str = "", *, user: str = "U_ALICE", channel: str = "C_GENERAL"
    ) -> Ack:
        """A person runs a slash command; what the app returns in its ack is shown to them."""
        conversation = self.workspace.resolve_channel(channel)
        target = self.responses.issue("command", channel=conversation.id, user=user)
        form = slash_command_form(
            self.workspace,
            command=command,
            text=text,
            user=user,
            channel=conversation,
            response_url=target.url,
            trigger_id=self.web_api.issue_trigger(),
        )
        ack = await self.deliver("slash_commands", form)
        if ack.ok and ack.body:
            self.responses.apply(target, ack.body)
        return ack

    async def user_clicks(
        self, channel: str, ts: str, action_id: str, *, user: str = "U_ALICE", value: Any = None
    ) -> Ack:
        """A person presses a button (or picks from a menu) in a message: ``block_actions``."""
        return await self._click(self.workspace.message(channel, ts), action_id, user=user, value=value)

    async def user_clicks_ephemeral(self, ephemeral: Ephemeral, action_id: str) -> Ack:
        """The person an ephemeral message was shown to presses one of its buttons."""
        return await self._click(ephemeral, action_id, user=ephemeral.user)

    async def _click(
        self, message: Message | Ephemeral, action_id: str, *, user: str, value: Any = None
    ) -> Ack:
        element, block_id = find_action(message, action_id)
        # replace_original / delete_original act on a posted message; ephemerals are not kept to edit.
        posted_ts = None if isinstance(message, Ephemeral) else message.ts
        target = self.responses.issue(
            "action", channel=message.channel, user=user, message_ts=posted_ts, thread_ts=message.thread_ts
        )
        payload = block_actions_payload(
            self.workspace,
            user=user,
            message=message,
            action=element,
            block_id=block_id,
            response_url=target.url,
            trigger_id=self.web_api.issue_trigger(),
            value=value,
        )
        return await self.deliver("interactive", payload)

    def opened_views(self) -> list[dict[str, Any]]:
        """The modals the app opened (views.open), oldest first."""
        return list(self.workspace.views.values())

    async def user_submits_view(
        self, view_id: str, values: dict[str, Any] | None = None, *, user: str = "U_ALICE"
    ) -> Ack:
        """A person presses a modal's submit button: ``view_submission`` (see ``view_submission_payload``
        for ``values``). The ack may carry ``response_action`` (``errors`` keeps the modal open)."""
        view = self.workspace.views[view_id]
        payload = view_submission_payload(
            self.workspace, user=user, view=view, values=values or {}, trigger_id=self.web_api.issue_trigger()
        )
        ack = await self.deliver("interactive", payload)
        if ack.ok and not (ack.body or {}).get("response_action"):
            self.workspace.views.pop(view_id, None)  # closed
        return ack

    # -- echoes of the app's own messages ----------------------------------------------------------

    def _on_change(self, change: Change) -> None:
        if not self.echo_bot_messages or change.channel is None or change.ts is None:
            return
        message = self.workspace.find(change.channel, change.ts)
        if message is None or not message.is_bot or message.bot_id != self.workspace.bot_id:
            return
        if change.kind == "message_posted":
            event = message_event(self.workspace, message)
        elif change.kind == "message_changed" and change.previous is not None:
            event = message_changed_event(self.workspace, message, change.previous)
        else:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # changed from synchronous code: nothing can be delivered from here
            return
        task = loop.create_task(self._send_all([event]))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- waiting -----------------------------------------------------------------------------------

    async def wait_for(
        self,
        predicate: Callable[[], T | Awaitable[T]],
        timeout: float = 10.0,
        *,
        interval: float = 0.02,
        message: str | None = None,
    ) -> T:
        """Poll ``predicate`` (sync or async) until it returns something truthy; return that value."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result  # type: ignore[return-value]
            if time.monotonic() >= deadline:
                recent = ", ".join(f"{c.method}->{c.error or 'ok'}" for c in self.web_api.calls[-8:])
                raise TimeoutError(
                    f"{message or 'condition'} not met within {timeout}s (last calls: {recent or 'none'})"
                )
            await asyncio.sleep(interval)

    async def wait_for_reply(
        self, channel: str, thread_ts: str, *, count: int = 1, timeout: float = 10.0
    ) -> list[Message]:
        """Wait until the app has ``count`` finished (not streaming) replies in the thread; return them.

        An app that ends a stream and then replaces its text with ``chat.update`` (as it must when the
        final answer is not what it streamed) has a stopped reply that is not yet its last word in
        between; when what the reply says matters, wait for its final form too (e.g. its buttons).
        """

        def done() -> list[Message]:
            replies = self.bot_messages(channel, thread_ts)
            finished = len(replies) >= count and not any(r.streaming for r in replies)
            return replies if finished else []

        return await self.wait_for(
            done, timeout, message=f"{count} finished app replies in {channel}/{thread_ts}"
        )
