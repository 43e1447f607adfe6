"""``threadwise playground``: the real Slack app against a local Slack workspace, in a browser.

Two aiohttp servers on loopback, in one process and one event loop:

- the playground: the page (``static/``), its small JSON API (``/pg/...``) and, on the same port, the
  local Slack workspace (``localslack``, the same code the tests emulate Slack with): the Web API
  the app calls through ``SLACK_API_URL``, response URLs, file downloads;
- the app's front exactly as ``threadwise serve`` runs it (``bot.server.running_bot`` +
  ``build_web_app``), to which the workspace sends signed Events API requests, slash commands and
  button clicks, with one answer worker on its own thread (``WorkerThread``) instead of worker
  processes: one person asks at a time, it starts in seconds, and the page's answer panel reads the
  worker's answers in process.

What a person does on the page becomes what Slack would do (``SlackEmulator.user_says`` and friends);
what the app does lands in the workspace, which tells the page to redraw over a websocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from pydantic import SecretStr

from bot.answer import Answer
from bot.server import EVENTS_PATH, build_web_app, running_bot
from bot.settings import Settings
from bot.slack.app import SlackBot
from bot.slack.worker import WorkerThread
from localslack.emulator import SlackEmulator
from localslack.workspace import Change, Message, markdown_of

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
HANDBOOK = Path(__file__).resolve().parents[2] / "examples" / "handbook"
ME = "U_ALICE"  # the person at the keyboard
# Channels on the page, in order: one where the bot is, one where it is not, one private; the DM.
SHOWN = ("C_GENERAL", "C_RANDOM", "C_PRIVATE", "D_ALICE")
COMMANDS = ("/ask", "/kb")
MAX_UPLOAD = 20 * 1024 * 1024


def playground_settings(settings: Settings, *, docs: list[Path], data: Path) -> Settings:
    """The user's settings (model, embedder, chunking) with the playground's own store and documents.

    Its own data folder keeps the playground from touching a real deployment's index and ledger.
    Unless THREADWISE_EMBEDDER is set, it embeds with the fast static model (wordllama): the first
    start then indexes the handbook in a second or two instead of a minute of CPU for the default
    transformer (bench/README.md, "Passages").
    """
    data.mkdir(parents=True, exist_ok=True)
    embedder = settings.embedder if "embedder" in settings.model_fields_set else "wordllama"
    return settings.model_copy(
        update={
            "embedder": embedder,
            "docs": docs,
            "milvus_uri": str(data / "milvus.db"),
            "milvus_token": None,
            "database_url": f"sqlite:///{data / 'threadwise.db'}",
            "auto_migrate": True,  # its own database: always bring it up to date
        }
    )


@dataclass
class Seen:
    """One answer the app gave, as the panel shows it."""

    question: str
    answer: dict[str, Any]
    at: float


class AnswerLog:
    """The answers the app's answerer produced, by (conversation, question); written from its thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[tuple[str, str], Seen] = {}

    def record(self, question: str, answer: Answer) -> None:
        with self._lock:
            self._answers[(answer.conversation, question)] = Seen(question, answer.to_dict(), time.time())

    def find(self, conversation: str, question: str) -> Seen | None:
        with self._lock:
            return self._answers.get((conversation, question))


class Playground:
    """The page and the local workspace around one running app. ``async with`` it."""

    def __init__(self, settings: Settings, *, host: str = "127.0.0.1", port: int = 3000):
        self.slack = SlackEmulator(host=host, port=port, echo_bot_messages=False)
        self.slack.workspace.team_name = "Threadwise Playground"
        # The person at the keyboard runs the workspace (so /kb config is theirs); Bob is an expert.
        self.slack.workspace.user(ME).is_owner = True
        self.slack.workspace.add_user_group("S_EXPERTS", "experts", ["U_BOB"], name="Experts")
        self.settings = settings
        self.answers = AnswerLog()
        self.bot: SlackBot | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._stack = contextlib.AsyncExitStack()

    @property
    def url(self) -> str:
        return self.slack.base_url

    async def __aenter__(self) -> Playground:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()

    async def _start(self) -> None:
        slack = self.slack
        # The workspace and the page on the address the person opens.
        runner = web.AppRunner(self._web_app(), handle_signals=False, access_log=None)
        await runner.setup()
        self._stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, slack.host, slack.port)
        await site.start()
        slack.port = runner.addresses[0][1]
        slack.workspace.base_url = slack.base_url
        self._stack.push_async_callback(slack.stop)
        slack.workspace.subscribe(self._changed)
        # The app, as `threadwise serve` runs it, with this workspace as its Slack.
        settings = self.settings.model_copy(
            update={
                "slack_bot_token": SecretStr(slack.bot_token),
                "slack_signing_secret": SecretStr(slack.signing_secret),
                "slack_api_url": slack.api_url,
                "slack_streaming": True,
            }
        )
        self.bot = bot = await self._stack.enter_async_context(running_bot(settings, workers=0))
        worker = await WorkerThread(settings, bot.knowledge, audiences=bot.audiences).start()
        self._stack.push_async_callback(worker.stop)
        bolt = web.AppRunner(build_web_app(bot), handle_signals=False, access_log=None)
        await bolt.setup()
        self._stack.push_async_callback(bolt.cleanup)
        bolt_site = web.TCPSite(bolt, "127.0.0.1", 0)
        await bolt_site.start()
        slack.request_url = f"http://127.0.0.1:{bolt.addresses[0][1]}{EVENTS_PATH}"
        # The panel's view of each answer (the worker builds its answerer when it starts).
        worker.worker.answerer.add_listener(self.answers.record)

    # -- the page's API ----------------------------------------------------------------------------

    def _web_app(self) -> web.Application:
        app = self.slack.web_app()  # Slack's endpoints, the ones the app calls
        app.router.add_get("/", self._index)
        app.router.add_static("/static/", STATIC)
        app.router.add_get("/pg/state", self._state)
        app.router.add_get("/pg/messages/{channel}", self._messages)
        app.router.add_post("/pg/say", self._say)
        app.router.add_post("/pg/command", self._command)
        app.router.add_post("/pg/click", self._click)
        app.router.add_post("/pg/react", self._react)
        app.router.add_get("/pg/views", self._views)
        app.router.add_post("/pg/submit", self._submit)
        app.router.add_post("/pg/share", self._share)
        app.router.add_get("/pg/answer/{feedback_id}", self._answer)
        app.router.add_get("/pg/live", self._live)
        return app

    async def _index(self, _request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def _state(self, _request: web.Request) -> web.Response:
        ws = self.slack.workspace
        channels = []
        for channel_id in SHOWN:
            channel = ws.channel(channel_id)
            channels.append(
                {
                    "id": channel.id,
                    "name": ws.bot_name if channel.is_dm else channel.name,
                    "kind": channel.kind,
                    "bot_member": ws.bot_user_id in channel.members,
                }
            )
        users = {u.id: {"name": u.real_name, "is_bot": u.is_bot} for u in ws.users.values()}
        return web.json_response(
            {"team": ws.team_name, "me": ME, "bot": ws.bot_user_id, "channels": channels, "users": users}
        )

    async def _messages(self, request: web.Request) -> web.Response:
        ws = self.slack.workspace
        channel = ws.channel(request.match_info["channel"])
        messages = [self._message(m) for m in ws.messages.get(channel.id, ()) if not m.deleted]
        ephemerals = [
            {"ts": e.ts, "text": e.text, "blocks": e.blocks, "thread_ts": e.thread_ts, "ephemeral": True}
            for e in ws.ephemerals
            if e.channel == channel.id and e.user == ME
        ]
        statuses = {
            ts: thread.status for (ch, ts), thread in ws.assistant_threads.items() if ch == channel.id
        }
        return web.json_response({"messages": messages, "ephemerals": ephemerals, "statuses": statuses})

    def _message(self, m: Message) -> dict[str, Any]:
        ws = self.slack.workspace
        files = [ws.files[f] for f in m.files if f in ws.files]
        return {
            "ts": m.ts,
            "user": m.user,
            "bot": m.is_bot,
            "text": m.text,
            "markdown": markdown_of(m.chunks) if m.chunks else None,
            "blocks": [b for b in m.blocks or [] if b.get("type") != "rich_text"],
            "thread_ts": m.thread_ts,
            "reply": m.is_reply,
            "reactions": m.reactions,
            "files": [{"id": f.id, "name": f.name, "size": f.size} for f in files],
            "streaming": m.streaming,
            "edited": m.edited,
            "subtype": m.subtype,
        }

    async def _say(self, request: web.Request) -> web.Response:
        body = await request.json()
        channel, text = str(body.get("channel", "")), str(body.get("text", "")).strip()
        if not text:
            raise web.HTTPBadRequest(text="say something")
        ws = self.slack.workspace
        text = text.replace(f"@{ws.bot_name}", f"<@{ws.bot_user_id}>")  # what Slack's composer does
        said = await self.slack.user_says(
            channel, text, user=ME, thread_ts=body.get("thread_ts"), mention=False
        )
        return web.json_response({"ts": said.ts, "delivered": [a.status for a in said.acks]})

    async def _command(self, request: web.Request) -> web.Response:
        body = await request.json()
        command = str(body.get("command", ""))
        if command not in COMMANDS:
            raise web.HTTPBadRequest(text=f"unknown command {command}: try {' or '.join(COMMANDS)}")
        ack = await self.slack.user_runs_command(
            command, str(body.get("text", "")), user=ME, channel=str(body.get("channel", ""))
        )
        return web.json_response({"status": ack.status})

    async def _click(self, request: web.Request) -> web.Response:
        body = await request.json()
        ts = str(body["ts"])
        mine = [e for e in self.slack.workspace.ephemerals if e.ts == ts and e.user == ME]
        if mine:  # a button in a message only this person sees (a proposal, say)
            ack = await self.slack.user_clicks_ephemeral(mine[-1], str(body["action_id"]))
        else:
            ack = await self.slack.user_clicks(
                str(body["channel"]), ts, str(body["action_id"]), user=ME, value=body.get("value")
            )
        return web.json_response({"status": ack.status})

    async def _react(self, request: web.Request) -> web.Response:
        """An emoji reaction (the page offers ✅, which marks a thread resolved)."""
        body = await request.json()
        try:
            await self.slack.user_reacts(str(body["channel"]), str(body["ts"]), str(body["name"]), user=ME)
        except Exception as exc:  # already_reacted and the like: Slack's answer, shown on the page
            raise web.HTTPBadRequest(text=str(exc)) from None
        return web.json_response({"ok": True})

    async def _views(self, _request: web.Request) -> web.Response:
        """The modals the app opened and nobody closed yet (the page shows the last one)."""
        return web.json_response({"views": self.slack.opened_views()})

    async def _submit(self, request: web.Request) -> web.Response:
        """A modal submitted with ``values`` (block id -> the chosen value or values)."""
        body = await request.json()
        view_id = str(body.get("view_id", ""))
        if body.get("cancel"):
            self.slack.workspace.views.pop(view_id, None)
            return web.json_response({"ok": True})
        if view_id not in self.slack.workspace.views:
            raise web.HTTPNotFound(text="that modal is closed")
        ack = await self.slack.user_submits_view(view_id, body.get("values") or {}, user=ME)
        return web.json_response({"status": ack.status, "response": ack.body})

    async def _share(self, request: web.Request) -> web.Response:
        """A file dropped into a channel, shared the way Slack shares it (file_shared, message)."""
        form = await request.post()
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            raise web.HTTPBadRequest(text="no file")
        content = upload.file.read(MAX_UPLOAD + 1)
        if len(content) > MAX_UPLOAD:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_UPLOAD, actual_size=len(content))
        file, said = await self.slack.user_shares_file(
            str(form.get("channel", "")), upload.filename, content, user=ME, text=str(form.get("text", ""))
        )
        return web.json_response({"file": file.id, "ts": said.ts})

    async def _answer(self, request: web.Request) -> web.Response:
        """What the panel shows for the answer behind one feedback id (the app's claim id)."""
        team, channel, ts = request.match_info["feedback_id"].split(":", 2)
        assert self.bot is not None
        claim = await self.bot.ledger.get(team, channel, ts)
        seen = claim and self.answers.find(claim.conversation, claim.question)
        if not seen:
            raise web.HTTPNotFound(text="no details for this answer")
        return web.json_response({"question": seen.question, **seen.answer})

    async def _live(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(heartbeat=20)
        await socket.prepare(request)
        self._sockets.add(socket)
        try:
            async for message in socket:
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            self._sockets.discard(socket)
        return socket

    def _changed(self, change: Change) -> None:
        """Tell every open page which conversation changed; it fetches it again."""
        for socket in list(self._sockets):
            if not socket.closed:
                task = asyncio.ensure_future(
                    socket.send_json({"channel": change.channel, "kind": change.kind})
                )
                task.add_done_callback(lambda t: t.cancelled() or t.exception())


async def serve_playground(
    settings: Settings, *, host: str = "127.0.0.1", port: int = 3000, open_browser: bool = False
) -> None:
    """Until SIGINT/SIGTERM."""
    from bot.server import stop_on_signals  # one way of stopping for every long-running command

    stop = stop_on_signals()
    async with Playground(settings, host=host, port=port) as playground:
        print(f"threadwise playground: open {playground.url}  (Ctrl+C to stop)", flush=True)
        if open_browser:
            import webbrowser

            webbrowser.open(playground.url)
        await stop.wait()


__all__ = ["HANDBOOK", "Playground", "playground_settings", "serve_playground"]
