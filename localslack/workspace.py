"""The state of an emulated Slack workspace: people, conversations, messages, reactions, streams, files.

Pure data and rules, no I/O. The Web API (``web_api``), the event sender (``events``) and
a browser playground all read and change one :class:`Workspace`, so what one surface does the others
see, as in real Slack. Rules that belong to a *message* (a stream must be streaming to be appended
to, a reaction can be added once per person) live here; rules about *who may call what* (the app must
be in a channel to post there, text limits, tokens) live in the Web API.

IDs are readable rather than random (``U_ALICE``, ``C_GENERAL``); message timestamps are real
``"<seconds>.<micros>"`` strings, strictly increasing across the workspace.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

ChannelKind = Literal["public", "private", "im", "mpim"]
# "streaming": chat.startStream was called and chat.stopStream not yet; "stopped": finished normally;
# "expired": Slack gave up on it (idle too long); "stopped_by_user": someone pressed stop in the client.
StreamState = Literal["streaming", "stopped", "expired", "stopped_by_user"]

# The Events API's channel_type for each kind of conversation.
EVENT_CHANNEL_TYPE: dict[str, str] = {"public": "channel", "private": "group", "im": "im", "mpim": "mpim"}


class SlackError(Exception):
    """A Slack Web API error code such as ``channel_not_found``; ``messages`` become response_metadata."""

    def __init__(self, code: str, *messages: str) -> None:
        super().__init__(code if not messages else f"{code}: {'; '.join(messages)}")
        self.code = code
        self.messages = list(messages)


@dataclass
class User:
    id: str
    name: str
    real_name: str
    team_id: str
    is_bot: bool = False
    bot_id: str | None = None
    app_id: str | None = None
    email: str | None = None
    tz: str = "Europe/London"
    deleted: bool = False

    def to_api(self) -> dict[str, Any]:
        """The ``user`` object of users.info."""
        profile: dict[str, Any] = {
            "real_name": self.real_name,
            "display_name": self.name,
            "real_name_normalized": self.real_name,
            "display_name_normalized": self.name,
            "team": self.team_id,
        }
        if self.email:
            profile["email"] = self.email
        if self.is_bot:
            profile["bot_id"] = self.bot_id
            profile["api_app_id"] = self.app_id
        return {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_label": self.tz,
            "tz_offset": 0,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1700000000,
        }


@dataclass
class Channel:
    id: str
    name: str
    kind: ChannelKind
    members: set[str]
    created: int
    creator: str | None = None
    topic: str = ""
    purpose: str = ""
    is_archived: bool = False
    user: str | None = None  # the person on the other side, for a DM with the app

    @property
    def is_dm(self) -> bool:
        return self.kind == "im"

    @property
    def event_channel_type(self) -> str:
        return EVENT_CHANNEL_TYPE[self.kind]

    def to_api(self, team_id: str) -> dict[str, Any]:
        """The ``channel`` object of conversations.info."""
        base: dict[str, Any] = {
            "id": self.id,
            "created": self.created,
            "is_archived": self.is_archived,
            "is_channel": self.kind in ("public", "private"),
            "is_group": self.kind == "mpim",
            "is_im": self.kind == "im",
            "is_mpim": self.kind == "mpim",
            "is_private": self.kind != "public",
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "context_team_id": team_id,
        }
        if self.kind == "im":
            return base | {"user": self.user, "is_user_deleted": False, "priority": 0}
        return base | {
            "name": self.name,
            "name_normalized": self.name,
            "is_general": self.name == "general",
            "creator": self.creator,
            "is_member": True,
            "num_members": len(self.members),
            "topic": {"value": self.topic, "creator": self.creator or "", "last_set": self.created},
            "purpose": {"value": self.purpose, "creator": self.creator or "", "last_set": self.created},
        }


@dataclass
class File:
    id: str
    name: str
    title: str
    mimetype: str
    filetype: str
    content: bytes
    user: str
    created: int
    channels: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.content)

    def to_api(self, base_url: str, team_id: str) -> dict[str, Any]:
        """The file object of files.info and of ``files`` in messages; ``base_url`` is the emulator's."""
        private = f"{base_url}files-pri/{team_id}-{self.id}/{self.name}"
        return {
            "id": self.id,
            "created": self.created,
            "timestamp": self.created,
            "name": self.name,
            "title": self.title,
            "mimetype": self.mimetype,
            "filetype": self.filetype,
            "pretty_type": self.filetype.upper(),
            "user": self.user,
            "user_team": team_id,
            "editable": False,
            "size": self.size,
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": True,
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": private,
            "url_private_download": f"{base_url}files-pri/{team_id}-{self.id}/download/{self.name}",
            "permalink": f"{base_url}files/{self.user}/{self.id}/{self.name}",
            "channels": list(self.channels),
            "groups": [],
            "ims": [],
            "comments_count": 0,
        }


@dataclass
class Edit:
    """What a message said before one edit."""

    ts: str
    text: str
    blocks: list[dict[str, Any]] | None


@dataclass
class Message:
    channel: str
    ts: str
    text: str = ""
    user: str | None = None
    bot_id: str | None = None
    app_id: str | None = None
    thread_ts: str | None = None
    blocks: list[dict[str, Any]] | None = None
    attachments: list[dict[str, Any]] | None = None
    subtype: str | None = None
    files: list[str] = field(default_factory=list)
    reactions: dict[str, list[str]] = field(default_factory=dict)  # emoji name -> users, in order
    edits: list[Edit] = field(default_factory=list)
    stream: StreamState | None = None
    chunks: list[dict[str, Any]] = field(default_factory=list)  # every streamed chunk, in order
    stream_touched: float = 0.0  # monotonic time of the last stream call, for idle expiry
    metadata: dict[str, Any] | None = None
    client_msg_id: str | None = None
    reply_broadcast: bool = False
    deleted: bool = False
    username: str | None = None
    icon_emoji: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # other fields Slack shows as-is

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    @property
    def is_bot(self) -> bool:
        return self.bot_id is not None

    @property
    def streaming(self) -> bool:
        return self.stream == "streaming"

    @property
    def edited(self) -> bool:
        return bool(self.edits)

    @property
    def display_text(self) -> str:
        """Roughly what a person reads: the blocks when there are any (Slack shows blocks, not
        ``text``), the streamed markdown followed by any blocks for a streamed reply, else ``text``."""
        shown = [b for b in self.blocks or [] if b.get("type") != "rich_text"]
        if not shown:
            return self.text
        parts = [self.text] if self.chunks and self.text else []
        parts.extend(t for b in shown if (t := block_text(b)))
        return "\n".join(parts) or self.text


@dataclass
class Ephemeral:
    """A message only ``user`` sees (chat.postEphemeral, an ephemeral response_url reply, a command ack)."""

    channel: str
    user: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] | None = None
    thread_ts: str | None = None
    source: str = "chat.postEphemeral"


@dataclass
class AssistantThread:
    """What the app set on an assistant thread: its status line (with history), title and prompts."""

    channel: str
    thread_ts: str
    user: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    statuses: list[str] = field(default_factory=list)
    title: str | None = None
    prompts: list[dict[str, Any]] = field(default_factory=list)
    prompts_title: str | None = None

    @property
    def status(self) -> str:
        """The status line a person sees now ("" once cleared, or when the app's reply arrives)."""
        return self.statuses[-1] if self.statuses else ""


@dataclass(frozen=True)
class Change:
    """A notification that the workspace changed, for live views (the playground) and event echoes."""

    kind: str  # message_posted, message_changed, message_deleted, reaction_added, reaction_removed, ...
    channel: str | None = None
    ts: str | None = None
    user: str | None = None
    previous: dict[str, Any] | None = None  # the message as rendered before a change or deletion


def block_text(block: dict[str, Any]) -> str:
    """The words a person reads in one Block Kit block (buttons and images excluded)."""
    pieces: list[str] = []
    text = block.get("text")
    if isinstance(text, dict):
        pieces.append(str(text.get("text", "")))
    elif isinstance(text, str):
        pieces.append(text)
    for item in block.get("fields") or []:
        if isinstance(item, dict):
            pieces.append(str(item.get("text", "")))
    if block.get("type") == "context":
        for item in block.get("elements") or []:
            if isinstance(item, dict) and "text" in item:
                pieces.append(str(item["text"]))
    return "\n".join(p for p in pieces if p)


def markdown_of(chunks: Iterable[dict[str, Any]]) -> str:
    """The text a person reads from streamed chunks: every markdown_text chunk, concatenated."""
    return "".join(c.get("text", "") for c in chunks if c.get("type") == "markdown_text")


class Workspace:
    """One Slack workspace with one installed app (the bot under test).

    ``seed=True`` adds a small cast: people ``U_ALICE`` and ``U_BOB``; ``C_GENERAL`` (public, app is a
    member), ``C_RANDOM`` (public, app is not a member), ``C_PRIVATE`` (private, app is a member),
    ``G_TEAM`` (a group DM of Alice, Bob and the app) and their DMs with the app, ``D_ALICE`` and
    ``D_BOB`` (DMs with people added later are made on first use).
    """

    def __init__(
        self,
        *,
        team_id: str = "T_TEAM",
        team_name: str = "Threadwise Test",
        domain: str = "threadwise-test",
        app_id: str = "A_THREADWISE",
        bot_user_id: str = "U_BOT",
        bot_id: str = "B_BOT",
        bot_name: str = "threadwise",
        seed: bool = True,
        stream_idle_timeout: float | None = None,
    ) -> None:
        self.team_id = team_id
        self.team_name = team_name
        self.domain = domain
        self.app_id = app_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_name = bot_name
        # Slack ends a stream that has had no append for a while; None keeps streams open forever.
        self.stream_idle_timeout = stream_idle_timeout
        # The emulator sets this once it knows its address, so file URLs point at its file server.
        self.base_url = "http://127.0.0.1/"
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.messages: dict[str, list[Message]] = {}
        self.files: dict[str, File] = {}
        self.ephemerals: list[Ephemeral] = []
        self.assistant_threads: dict[tuple[str, str], AssistantThread] = {}
        self.home_views: dict[str, dict[str, Any]] = {}
        self.views: dict[str, dict[str, Any]] = {}
        self._listeners: list[Callable[[Change], None]] = []
        self._last_ts = 0.0
        self._ids = itertools.count(1)
        self.users[bot_user_id] = User(
            id=bot_user_id,
            name=bot_name,
            real_name=bot_name.title(),
            team_id=team_id,
            is_bot=True,
            bot_id=bot_id,
            app_id=app_id,
        )
        if seed:
            self._seed()

    def _seed(self) -> None:
        self.add_user("U_ALICE", "alice", "Alice Archer", email="alice@example.com")
        self.add_user("U_BOB", "bob", "Bob Baker", email="bob@example.com")
        everyone = {"U_ALICE", "U_BOB"}
        self.add_channel("C_GENERAL", "general", "public", everyone | {self.bot_user_id})
        self.add_channel("C_RANDOM", "random", "public", everyone)
        self.add_channel("C_PRIVATE", "secret-project", "private", {"U_ALICE", self.bot_user_id})
        self.add_channel("G_TEAM", "mpdm-alice--bob--threadwise-1", "mpim", everyone | {self.bot_user_id})
        self.dm("U_ALICE")
        self.dm("U_BOB")

    # -- listeners ---------------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[Change], None]) -> Callable[[], None]:
        """Call ``listener`` after every change; returns a function that unsubscribes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _notify(self, change: Change) -> None:
        for listener in list(self._listeners):
            listener(change)

    # -- ids and time ------------------------------------------------------------------------------

    def next_ts(self) -> str:
        """A fresh message timestamp: now, but always after the previous one."""
        now = max(time.time(), self._last_ts + 0.000001)
        self._last_ts = now
        return f"{now:.6f}"

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):09d}"

    # -- people and conversations ------------------------------------------------------------------

    def add_user(self, user_id: str, name: str, real_name: str | None = None, **fields: Any) -> User:
        user = User(
            id=user_id, name=name, real_name=real_name or name.title(), team_id=self.team_id, **fields
        )
        self.users[user_id] = user
        return user

    def add_channel(
        self,
        channel_id: str,
        name: str,
        kind: ChannelKind = "public",
        members: Iterable[str] = (),
        *,
        user: str | None = None,
    ) -> Channel:
        if kind not in EVENT_CHANNEL_TYPE:
            raise ValueError(f"unknown channel kind {kind!r}; expected one of {sorted(EVENT_CHANNEL_TYPE)}")
        members = set(members)
        for member in members:
            self.user(member)
        channel = Channel(
            id=channel_id,
            name=name,
            kind=kind,
            members=members,
            created=int(time.time()),
            creator=next(iter(sorted(members - {self.bot_user_id})), None),
            user=user,
        )
        self.channels[channel_id] = channel
        self.messages.setdefault(channel_id, [])
        self._notify(Change("channel_added", channel=channel_id))
        return channel

    def user(self, user_id: str) -> User:
        try:
            return self.users[user_id]
        except KeyError:
            raise SlackError("user_not_found") from None

    def channel(self, channel_id: str) -> Channel:
        try:
            return self.channels[channel_id]
        except KeyError:
            raise SlackError("channel_not_found") from None

    def dm(self, user_id: str) -> Channel:
        """The DM between ``user_id`` and the app (its Messages tab), made on first use."""
        for channel in self.channels.values():
            if channel.kind == "im" and channel.user == user_id:
                return channel
        user = self.user(user_id)
        channel_id = "D_" + user.name.upper().replace(".", "_") if user.name.isascii() else self.new_id("D")
        return self.add_channel(channel_id, user_id, "im", {user_id, self.bot_user_id}, user=user_id)

    def resolve_channel(self, ref: str) -> Channel:
        """A channel from what chat.postMessage accepts: an ID, ``#name``, ``name`` or a user ID (their DM)."""
        if ref in self.channels:
            return self.channels[ref]
        if ref in self.users and ref != self.bot_user_id:
            return self.dm(ref)
        name = ref.removeprefix("#")
        for channel in self.channels.values():
            if channel.kind != "im" and channel.name == name:
                return channel
        raise SlackError("channel_not_found")

    def join(self, channel_id: str, user_id: str) -> Message:
        """Add a member; Slack posts a ``channel_join`` message, returned here."""
        channel = self.channel(channel_id)
        self.user(user_id)
        channel.members.add(user_id)
        return self.post(
            channel_id,
            text=f"<@{user_id}> has joined the channel",
            user=user_id,
            subtype="channel_join",
        )

    # -- messages ----------------------------------------------------------------------------------

    def post(
        self,
        channel_id: str,
        *,
        text: str = "",
        user: str | None = None,
        bot: bool = False,
        thread_ts: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
        attachments: list[dict[str, Any]] | None = None,
        subtype: str | None = None,
        files: Iterable[str] = (),
        metadata: dict[str, Any] | None = None,
        reply_broadcast: bool = False,
        stream: StreamState | None = None,
        username: str | None = None,
        icon_emoji: str | None = None,
        **extra: Any,
    ) -> Message:
        """Add a message as a person (``user``) or as the app (``bot=True``) and return it.

        A person's message gets the ``rich_text`` block and ``client_msg_id`` the Slack client adds.
        ``thread_ts`` naming a reply is taken to mean that reply's thread (Slack threads are one deep).
        """
        channel = self.channel(channel_id)
        if thread_ts is not None:
            parent = self.find(channel_id, thread_ts)
            if parent is None:
                raise SlackError("thread_not_found")
            thread_ts = parent.thread_ts if parent.is_reply else parent.ts
        files = list(files)
        for file_id in files:
            file = self.files[file_id]
            if channel.id not in file.channels:
                file.channels.append(channel.id)
        message = Message(
            channel=channel.id,
            ts=self.next_ts(),
            text=text,
            thread_ts=thread_ts,
            blocks=blocks,
            attachments=attachments,
            subtype=subtype,
            files=files,
            metadata=metadata,
            reply_broadcast=reply_broadcast,
            stream=stream,
            username=username,
            icon_emoji=icon_emoji,
            extra=extra,
        )
        if bot:
            message.user, message.bot_id, message.app_id = self.bot_user_id, self.bot_id, self.app_id
        else:
            if user is None:
                raise ValueError("a message needs a user, or bot=True")
            self.user(user)
            message.user = user
            if subtype is None:
                message.client_msg_id = str(uuid.uuid4())
                if blocks is None and text:
                    message.blocks = rich_text_blocks(text, seed=message.ts)
        if stream is not None:
            message.stream_touched = time.monotonic()
        self.messages[channel.id].append(message)
        self._notify(Change("message_posted", channel=channel.id, ts=message.ts, user=message.user))
        return message

    def post_integration(
        self, channel_id: str, text: str, *, bot_id: str, username: str, thread_ts: str | None = None
    ) -> Message:
        """A message from another integration (a webhook or legacy bot): subtype ``bot_message``."""
        channel = self.channel(channel_id)
        message = Message(
            channel=channel.id,
            ts=self.next_ts(),
            text=text,
            bot_id=bot_id,
            subtype="bot_message",
            thread_ts=thread_ts,
            username=username,
        )
        self.messages[channel.id].append(message)
        self._notify(Change("message_posted", channel=channel.id, ts=message.ts))
        return message

    def find(self, channel_id: str, ts: str, *, include_deleted: bool = False) -> Message | None:
        for message in self.messages.get(channel_id, ()):
            if message.ts == ts and (include_deleted or not message.deleted):
                return message
        return None

    def message(self, channel_id: str, ts: str) -> Message:
        self.channel(channel_id)
        message = self.find(channel_id, ts)
        if message is None:
            raise SlackError("message_not_found")
        return message

    def update(
        self,
        channel_id: str,
        ts: str,
        *,
        text: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
        attachments: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Message:
        """Edit a message; the text and blocks it had are kept in ``edits``."""
        message = self.message(channel_id, ts)
        previous = self.render(message)
        message.edits.append(Edit(ts=self.next_ts(), text=message.text, blocks=message.blocks))
        if text is not None:
            message.text = text
        if blocks is not None:
            message.blocks = blocks or None
        if attachments is not None:
            message.attachments = attachments or None
        if metadata is not None:
            message.metadata = metadata
        if message.user and not message.is_bot and text is not None and blocks is None:
            message.blocks = rich_text_blocks(text, seed=message.ts)
        self._notify(Change("message_changed", channel=channel_id, ts=ts, previous=previous))
        return message

    def delete(self, channel_id: str, ts: str) -> Message:
        """Delete a message. A thread parent with replies stays as a "This message was deleted." tombstone."""
        message = self.message(channel_id, ts)
        previous = self.render(message)
        if not message.is_reply and self.thread(channel_id, ts):
            message.subtype, message.text, message.blocks, message.files = (
                "tombstone",
                "This message was deleted.",
                None,
                [],
            )
            message.user, message.bot_id, message.app_id = "USLACKBOT", None, None
        else:
            message.deleted = True
        self._notify(Change("message_deleted", channel=channel_id, ts=ts, previous=previous))
        return message

    def react(self, channel_id: str, ts: str, name: str, user: str) -> Message:
        message = self.message(channel_id, ts)
        users = message.reactions.setdefault(name, [])
        if user in users:
            raise SlackError("already_reacted")
        users.append(user)
        self._notify(Change("reaction_added", channel=channel_id, ts=ts, user=user))
        return message

    def unreact(self, channel_id: str, ts: str, name: str, user: str) -> Message:
        message = self.message(channel_id, ts)
        users = message.reactions.get(name, [])
        if user not in users:
            raise SlackError("no_reaction")
        users.remove(user)
        if not users:
            del message.reactions[name]
        self._notify(Change("reaction_removed", channel=channel_id, ts=ts, user=user))
        return message

    def post_ephemeral(self, channel_id: str, user: str, text: str, **fields: Any) -> Ephemeral:
        ephemeral = Ephemeral(channel=channel_id, user=user, ts=self.next_ts(), text=text, **fields)
        self.ephemerals.append(ephemeral)
        self._notify(Change("ephemeral_posted", channel=channel_id, ts=ephemeral.ts, user=user))
        return ephemeral

    # -- streams -----------------------------------------------------------------------------------

    def start_stream(self, channel_id: str, *, thread_ts: str | None, **fields: Any) -> Message:
        """A new app message in the streaming state (chat.startStream), still empty."""
        return self.post(channel_id, bot=True, thread_ts=thread_ts, stream="streaming", **fields)

    def append_stream(self, channel_id: str, ts: str, chunks: list[dict[str, Any]]) -> Message:
        message = self._streaming(channel_id, ts)
        self._add_chunks(message, chunks)
        self._notify(Change("stream_appended", channel=channel_id, ts=ts))
        return message

    def stop_stream(
        self,
        channel_id: str,
        ts: str,
        chunks: list[dict[str, Any]],
        *,
        blocks: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Message:
        """Finish a stream; ``blocks`` are shown under the streamed text (e.g. feedback buttons)."""
        message = self._streaming(channel_id, ts)
        self._add_chunks(message, chunks)
        message.stream = "stopped"
        if blocks:
            message.blocks = list(message.blocks or []) + blocks
        if metadata is not None:
            message.metadata = metadata
        self._notify(Change("stream_stopped", channel=channel_id, ts=ts))
        return message

    def end_stream(self, channel_id: str, ts: str, state: StreamState = "expired") -> Message:
        """Take a message out of the streaming state as Slack would: it expired, or the user stopped it."""
        message = self.message(channel_id, ts)
        if message.stream != "streaming":
            raise SlackError("message_not_in_streaming_state")
        message.stream = state
        self._notify(Change("stream_stopped", channel=channel_id, ts=ts))
        return message

    def _streaming(self, channel_id: str, ts: str) -> Message:
        message = self.message(channel_id, ts)
        if (
            message.stream == "streaming"
            and self.stream_idle_timeout is not None
            and time.monotonic() - message.stream_touched > self.stream_idle_timeout
        ):
            message.stream = "expired"
        if message.stream == "stopped_by_user":
            raise SlackError("stopped_by_user")
        if message.stream != "streaming":
            raise SlackError("message_not_in_streaming_state")
        message.stream_touched = time.monotonic()
        return message

    @staticmethod
    def _add_chunks(message: Message, chunks: list[dict[str, Any]]) -> None:
        message.chunks.extend(chunks)
        message.text = markdown_of(message.chunks)
        for chunk in chunks:
            if chunk.get("type") == "blocks":
                message.blocks = list(message.blocks or []) + list(chunk.get("blocks") or [])

    # -- files -------------------------------------------------------------------------------------

    def add_file(
        self,
        name: str,
        content: bytes | str,
        *,
        user: str,
        mimetype: str | None = None,
        title: str | None = None,
    ) -> File:
        self.user(user)
        data = content.encode() if isinstance(content, str) else content
        filetype = name.rsplit(".", 1)[-1].lower() if "." in name else "binary"
        file = File(
            id=self.new_id("F"),
            name=name,
            title=title or name,
            mimetype=mimetype or _MIMETYPES.get(filetype, "application/octet-stream"),
            filetype=filetype,
            content=data,
            user=user,
            created=int(time.time()),
        )
        self.files[file.id] = file
        self._notify(Change("file_added", user=user))
        return file

    def file(self, file_id: str) -> File:
        try:
            return self.files[file_id]
        except KeyError:
            raise SlackError("file_not_found") from None

    # -- assistant threads -------------------------------------------------------------------------

    def assistant_thread(self, channel_id: str, thread_ts: str) -> AssistantThread:
        key = (channel_id, thread_ts)
        if key not in self.assistant_threads:
            self.assistant_threads[key] = AssistantThread(channel=channel_id, thread_ts=thread_ts)
        return self.assistant_threads[key]

    # -- what people see ---------------------------------------------------------------------------

    def history(self, channel_id: str) -> list[Message]:
        """The channel's own timeline, oldest first: top-level messages and replies also sent to it."""
        return [
            m
            for m in self.messages.get(channel_id, ())
            if not m.deleted and (not m.is_reply or m.reply_broadcast)
        ]

    def thread(self, channel_id: str, thread_ts: str) -> list[Message]:
        """The replies under a message, oldest first (not the parent)."""
        return [
            m
            for m in self.messages.get(channel_id, ())
            if not m.deleted and m.is_reply and m.thread_ts == thread_ts
        ]

    def bot_messages(self, channel_id: str, thread_ts: str | None = None) -> list[Message]:
        """The app's messages in a channel (everywhere in it, or only in one thread), oldest first."""
        return [
            m
            for m in self.messages.get(channel_id, ())
            if not m.deleted and m.is_bot and (thread_ts is None or m.thread_ts == thread_ts)
        ]

    def render(self, message: Message) -> dict[str, Any]:
        """A message as conversations.history / conversations.replies / events show it."""
        out: dict[str, Any] = {"type": "message", "ts": message.ts}
        if message.subtype:
            out["subtype"] = message.subtype
        if message.user:
            out["user"] = message.user
        out["text"] = message.text
        if message.is_bot:
            out["bot_id"] = message.bot_id
        if message.bot_id == self.bot_id:
            out["app_id"] = message.app_id
            out["bot_profile"] = {
                "id": message.bot_id,
                "app_id": message.app_id,
                "name": self.bot_name,
                "deleted": False,
                "team_id": self.team_id,
            }
        if message.client_msg_id:
            out["client_msg_id"] = message.client_msg_id
        out["team"] = self.team_id
        if message.blocks is not None:
            out["blocks"] = message.blocks
        if message.attachments:
            out["attachments"] = message.attachments
        if message.files:
            out["files"] = [self.files[f].to_api(self.base_url, self.team_id) for f in message.files]
            out["upload"] = False
            out["display_as_bot"] = False
        if message.thread_ts is not None:
            out["thread_ts"] = message.thread_ts
        if message.is_reply:
            parent = self.find(message.channel, message.thread_ts or "", include_deleted=True)
            if parent is not None and parent.user:
                out["parent_user_id"] = parent.user
        else:
            replies = self.thread(message.channel, message.ts)
            if replies:
                out["thread_ts"] = message.ts
                out["reply_count"] = len(replies)
                users = list(dict.fromkeys(r.user or r.bot_id or "" for r in replies))
                out["reply_users"] = users
                out["reply_users_count"] = len(users)
                out["latest_reply"] = replies[-1].ts
        if message.edits:
            out["edited"] = {"user": message.user, "ts": message.edits[-1].ts}
        if message.reactions:
            out["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in message.reactions.items()
            ]
        if message.metadata:
            out["metadata"] = message.metadata
        if message.username:
            out["username"] = message.username
        if message.icon_emoji:
            out["icons"] = {"emoji": message.icon_emoji}
        return out | message.extra

    def permalink(self, channel_id: str, ts: str) -> str:
        message = self.message(channel_id, ts)
        link = f"https://{self.domain}.slack.com/archives/{channel_id}/p{ts.replace('.', '')}"
        if message.is_reply:
            link += f"?thread_ts={message.thread_ts}&cid={channel_id}"
        return link


_MIMETYPES = {
    "txt": "text/plain",
    "md": "text/markdown",
    "csv": "text/csv",
    "html": "text/html",
    "json": "application/json",
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "png": "image/png",
    "jpg": "image/jpeg",
    "gif": "image/gif",
}

_MARKUP = re.compile(r"<(@[^>|]+|#[^>|]+|![^>|]+|(?:https?|mailto):[^>|]+)(?:\|([^>]*))?>")


def rich_text_blocks(text: str, *, seed: str = "") -> list[dict[str, Any]]:
    """The ``rich_text`` block the Slack client attaches to what a person types (mentions and links kept)."""
    elements: list[dict[str, Any]] = []
    pos = 0
    for match in _MARKUP.finditer(text):
        if match.start() > pos:
            elements.append({"type": "text", "text": text[pos : match.start()]})
        target, label = match.group(1), match.group(2)
        if target.startswith("@"):
            elements.append({"type": "user", "user_id": target[1:]})
        elif target.startswith("#"):
            elements.append({"type": "channel", "channel_id": target[1:]})
        elif target.startswith("!"):
            elements.append({"type": "broadcast", "range": target[1:]})
        else:
            link: dict[str, Any] = {"type": "link", "url": target}
            if label:
                link["text"] = label
            elements.append(link)
        pos = match.end()
    if pos < len(text):
        elements.append({"type": "text", "text": text[pos:]})
    block_id = hashlib.sha1(f"{seed}{text}".encode()).hexdigest()[:5]
    return [
        {
            "type": "rich_text",
            "block_id": block_id,
            "elements": [{"type": "rich_text_section", "elements": elements}],
        }
    ]
