"""The Slack front: Bolt's ``AsyncApp`` with the listeners registered, around one ``SlackBot``.

``SlackBot`` holds what every surface shares, built once from the settings: the Web API client
(``SLACK_API_URL``), the bot's identity, the database engine with the ledger and the feedback store,
the knowledge base (for ``/kb``), and the receiver (``bot.slack.receive``). ``start`` checks the token
with Slack, creates the tables and builds the Bolt app.

The front answers nothing itself: Bolt acknowledges each event before any listener runs
(``process_before_response=False``), the receiver records the message in the ledger and shows the
working sign, and answer workers (``bot.slack.worker``, in their own processes) take it from there.
File and channel events and ``/kb sync`` are recorded as knowledge jobs (``bot.jobs``) the same way.
So acknowledgements stay fast whatever the model and the team are doing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Literal

import aiohttp
from slack_bolt.async_app import AsyncApp

from bot.channel_config import ChannelConfigStore, ChannelScopes
from bot.experts import ExpertCalls
from bot.feedback import FeedbackStore
from bot.gaps import GapStore
from bot.jobs import JobKind, JobQueue
from bot.ledger import Claim, Ledger, new_owner
from bot.metrics import count_slack_request
from bot.resolutions import ResolutionStore
from bot.settings import Settings, SettingsError
from bot.slack.audience import Audiences
from bot.slack.channel_settings import files_here
from bot.slack.listeners import (
    SURFACES,
    assistant,
    audience,
    commands,
    feedback,
    files,
    loop,
    mention,
    message,
)
from bot.slack.receive import BotUser, Receiver
from bot.slack.web import BotIdentity, SlackCallError, SlackWeb, make_client
from knowledge.base import KnowledgeBase
from knowledge.database import make_async_engine

log = logging.getLogger(__name__)

Mode = Literal["http", "socket", "worker"]
SETUP = "see docs/slack-setup.md"
# Slack sends events in bursts (a busy channel, a retry wave). Recording a message and showing its sign
# wait until no request has come in for ACK_QUIET seconds, never longer than ACK_DEFER_LIMIT: until
# then the loop acknowledges the rest of the burst (bench/README.md, "Slack acknowledgements").
ACK_QUIET = 0.005
ACK_DEFER_LIMIT = 0.05


def require_slack(settings: Settings, mode: Mode) -> None:
    """A clear error, naming each missing or malformed variable, before anything starts."""
    problems = []
    bot_token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
    if not bot_token:
        problems.append(
            "SLACK_BOT_TOKEN is not set (the Bot User OAuth Token, xoxb-…, under OAuth & Permissions)"
        )
    elif not bot_token.startswith("xoxb-"):
        problems.append("SLACK_BOT_TOKEN must be a bot token starting with xoxb-")
    if mode == "http" and not settings.slack_signing_secret:
        problems.append(
            "SLACK_SIGNING_SECRET is not set (Basic Information > App Credentials > Signing Secret)"
        )
    if mode == "socket":
        app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else ""
        if not app_token:
            problems.append(
                "SLACK_APP_TOKEN is not set (an app-level token, xapp-…, with connections:write, "
                "under Basic Information > App-Level Tokens)"
            )
        elif not app_token.startswith("xapp-"):
            problems.append("SLACK_APP_TOKEN must be an app-level token starting with xapp-")
    if problems:
        raise SettingsError("; ".join(problems) + f" ({SETUP})")


def listened_events() -> set[str]:
    """The bot events the app handles, in the manifest's names (message.* per kind of conversation)."""
    events = set(mention.EVENTS) | set(assistant.EVENTS) | set(message.SUBSCRIPTIONS)
    return events | set(files.SUBSCRIPTIONS) | set(audience.SUBSCRIPTIONS) | set(loop.EVENTS)


def listened_commands() -> set[str]:
    return set(commands.COMMANDS)


def listened_actions() -> set[str]:
    return set(feedback.ACTIONS) | set(loop.ACTIONS)


class _ClientGiven(logging.Filter):
    """Bolt warns that SLACK_BOT_TOKEN (which it reads itself) goes unused: the client carries it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def build_app(bot: SlackBot) -> AsyncApp:
    """Bolt's app over the bot's shared client, with every surface registered."""
    signing_secret = bot.settings.slack_signing_secret
    bolt_log = logging.getLogger("threadwise.bolt")
    if not any(isinstance(f, _ClientGiven) for f in bolt_log.filters):
        bolt_log.addFilter(_ClientGiven())
    app = AsyncApp(
        name="threadwise",
        client=bot.web.client,
        signing_secret=signing_secret.get_secret_value() if signing_secret else "",
        process_before_response=False,
        logger=bolt_log,
    )
    app.use(count_slack_request)
    app.use(bot.note_request)
    for surface in SURFACES:
        surface.register(app, bot)
    return app


class SlackBot:
    """Everything the Slack surfaces share. ``await start()`` before use, ``await stop()`` after."""

    def __init__(
        self, settings: Settings, *, knowledge: KnowledgeBase | None = None, owner: str | None = None
    ):
        self.settings = settings
        self._own_knowledge = knowledge is None
        self.knowledge = knowledge or KnowledgeBase(settings.knowledge())
        self._owner = owner or new_owner()
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task] = set()
        self._receiving: set[asyncio.Task] = set()
        self._last_request = 0.0  # loop time of the latest request from Slack
        self.web: SlackWeb
        self.identity: BotIdentity
        self.ledger: Ledger
        self.jobs: JobQueue
        self.feedback: FeedbackStore
        self.gaps: GapStore
        self.channels: ChannelConfigStore
        self.resolutions: ResolutionStore
        self.expert_calls: ExpertCalls
        self.audiences: Audiences
        self.receiver: Receiver
        self.app: AsyncApp

    async def start(self) -> SlackBot:
        settings = self.settings
        token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
        self._session = aiohttp.ClientSession()
        self.web = SlackWeb(make_client(token, settings.slack_api_url, session=self._session))
        try:
            self.identity = await self.web.identity()
        except SlackCallError as exc:
            await self._session.close()
            raise SettingsError(
                f"Slack refused SLACK_BOT_TOKEN ({exc.code}) at {settings.slack_api_url} ({SETUP})"
            ) from None
        self.engine = make_async_engine(settings.database_url)
        self.ledger = Ledger(self.engine, lease=settings.claim_lease, owner=self._owner)
        self.jobs = JobQueue(self.engine, lease=settings.claim_lease, owner=self._owner)
        self.feedback = FeedbackStore(self.engine)
        self.gaps = GapStore(self.engine)
        self.channels = ChannelConfigStore(self.engine)
        self.resolutions = ResolutionStore(self.engine)
        self.expert_calls = ExpertCalls(self.engine)
        await self.ledger.create()
        await self.jobs.create()
        await self.feedback.create()
        me = BotUser(self.identity.user_id, self.identity.bot_id)
        # Who may read what: the listeners keep it true (sharing events); answer workers on threads of
        # this process share it.
        self.audiences = Audiences(settings.external, knowledge=self.knowledge, team=self.identity.team_id)
        follow_ups = ChannelScopes(self.channels, self.knowledge, files_here(self.web)).follow_ups
        self.receiver = Receiver(
            self.web,
            self.ledger,
            me,
            allow_bots=settings.slack_allow_bots,
            dm_gap_seconds=settings.dm_gap_minutes * 60,
            follow_ups=follow_ups,
        )
        self.app = build_app(self)
        log.info(
            "slack app ready as %s (%s) in team %s; ledger owner %s",
            self.identity.name,
            self.identity.user_id,
            self.identity.team_id,
            self._owner,
        )
        return self

    def take(self, body: dict[str, Any], event: dict[str, Any], *, assistant: bool = False) -> None:
        """An acknowledged message event: recorded for the workers if it is for the bot, sign shown."""
        self._receive(self.receiver.message(body, event, assistant=assistant))

    def _receive(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self._after_acks(coroutine))
        self._receiving.add(task)
        task.add_done_callback(self._receiving.discard)

    async def note_request(self, next: Callable[[], Awaitable[Any]]) -> Any:
        """Bolt middleware: when Slack's latest request came in."""
        self._last_request = asyncio.get_running_loop().time()
        return await next()

    async def _after_acks(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coroutine`` once the burst of requests it came in has been acknowledged."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ACK_DEFER_LIMIT
        while loop.time() - self._last_request < ACK_QUIET and loop.time() < deadline:
            await asyncio.sleep(ACK_QUIET)
        return await coroutine

    def record_job(self, kind: JobKind, subject: str, args: dict[str, Any] | None = None) -> None:
        """An acknowledged file or channel event: a knowledge job for the workers (``bot.jobs``)."""

        async def record() -> None:
            try:
                await self.jobs.record(kind, subject, args)
            except Exception as exc:  # the next reconcile catches up with what the event said
                log.error(
                    "could not record the %s job for %s (%s: %s)", kind, subject, type(exc).__name__, exc
                )

        self._receive(record())

    async def claim(self, claim: Claim) -> Claim | None:
        """/ask, before its ack: recorded and held here until its thread is posted; None if seen before."""
        return claim if await self.ledger.record(claim, hold=True) else None

    def hand_on(self, claim: Claim | None) -> None:
        """/ask, after its ack: post the thread the answer goes in, then let the workers take it."""
        if claim is not None:
            self._receive(self.receiver.command(claim))

    async def wait_idle(self, timeout: float | None = None) -> None:
        """Until every recorded message is answered and every knowledge job done, by whichever
        worker (tests, benchmarks)."""

        async def idle() -> None:
            while True:
                await asyncio.gather(*self._receiving, return_exceptions=True)
                if (
                    not self._receiving
                    and await self.ledger.open_count() == 0
                    and await self.jobs.pending() == 0
                ):
                    return
                await asyncio.sleep(0.05)

        await asyncio.wait_for(idle(), timeout)

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task:
        """Background work a listener hands on (e.g. /kb status); cancelled at stop."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def stop(self, grace: float = 5.0) -> None:
        if self._receiving:  # acknowledged messages are recorded before the front goes
            await asyncio.wait(list(self._receiving), timeout=grace)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.engine.dispose()
        if self._session is not None:
            await self._session.close()
        if self._own_knowledge:  # off the loop: it waits (bounded) for a running sync's safe point
            await asyncio.to_thread(self.knowledge.close)


__all__ = [
    "SlackBot",
    "build_app",
    "listened_actions",
    "listened_commands",
    "listened_events",
    "require_slack",
]
