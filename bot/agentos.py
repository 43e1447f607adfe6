"""AgentOS, Agno's control plane, served by ``threadwise serve`` over the bot's own team and sessions.

On with ``THREADWISE_AGENTOS=1``; every request must carry ``Authorization: Bearer
$THREADWISE_AGENTOS_KEY`` (401 otherwise; only ``/``, ``/health`` and ``/info`` answer without it).

How it is served, and why:

- **Its own port** (``THREADWISE_AGENTOS_PORT``, default 7777), from uvicorn, rather than a path
  prefix proxied by the aiohttp server. AgentOS is a FastAPI app whose routes sit at the root and
  whose clients (os.agno.com) expect them there, with server-sent events and websockets: uvicorn
  serves all of that as Agno tests it, where a proxy or an ASGI bridge in aiohttp would be ours to
  get right. A separate port also keeps the control plane off the public ``/slack/events`` address:
  it can stay on an internal network.
- **Its own thread and event loop**, inside the ``serve`` process. The loop serving Slack only
  acknowledges, so that acks stay fast while answers run elsewhere (``bot.slack.worker``); a team
  run started from AgentOS must not hold that loop either. In a thread, uvicorn also leaves the
  process's signal handlers alone: SIGTERM still reaches ``serve``, which stops AgentOS with the rest.
- **The same team**: a ``TeamFactory`` builds ``bot.team_run.team_for_scope`` per run, as
  ``Answerer`` does per answer, bound to the workspace scope (only what every member of the
  workspace may see; a run from AgentOS belongs to no channel) and under the same citation contract
  as a post-hook, so what it stores reads like a Slack answer.
- **The same sessions**: Agno's session store on ``DATABASE_URL`` (``open_session_db``), where the
  Slack app's conversations are; opened on AgentOS's loop, since a database engine belongs to one loop.
  AgentOS creates no tables of its own at start (``auto_provision_dbs=False``) and sends no telemetry.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any

from agno.db.base import AsyncBaseDb
from agno.factory.utils import RequestContext
from agno.team import Team, TeamFactory
from openai import AsyncOpenAI

from bot.conversations import open_session_db
from bot.settings import Settings, SettingsError
from bot.team import TEAM_ID, model_client, route_agno_logging
from bot.team_run import team_for_scope
from knowledge.base import KnowledgeBase
from knowledge.types import AccessScope

log = logging.getLogger(__name__)

MIN_KEY_LENGTH = 16
START_TIMEOUT = 30.0
STOP_TIMEOUT = 6.0  # runs in flight get 3 s of it; serve exits within 15 s of SIGTERM
TEAM_DESCRIPTION = (
    "Answers questions from the team's documents, with sources (workspace-visible documents only)."
)


def check_agentos_settings(settings: Settings) -> None:
    """A clear start error for AgentOS turned on without a usable key (before anything starts)."""
    if not settings.agentos:
        return
    key = settings.agentos_key.get_secret_value().strip() if settings.agentos_key else ""
    if not key:
        raise SettingsError(
            "THREADWISE_AGENTOS is on but THREADWISE_AGENTOS_KEY is not set: AgentOS is never served "
            "without a key (clients send it as 'Authorization: Bearer <key>')"
        )
    if len(key) < MIN_KEY_LENGTH:
        raise SettingsError(
            f"THREADWISE_AGENTOS_KEY is too short ({len(key)} characters): use at least {MIN_KEY_LENGTH}, "
            "e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )


def team_factory(
    settings: Settings, knowledge: KnowledgeBase, *, client: AsyncOpenAI, db: AsyncBaseDb
) -> TeamFactory:
    """The bot's team for AgentOS: built per run, searching what the whole workspace may see."""

    def build(_context: RequestContext) -> Team:
        return team_for_scope(settings, knowledge, AccessScope.workspace(), client=client, db=db).team

    return TeamFactory(id=TEAM_ID, db=db, factory=build, name="threadwise", description=TEAM_DESCRIPTION)


def build_agentos(settings: Settings, knowledge: KnowledgeBase, *, client: AsyncOpenAI, db: AsyncBaseDb):
    """The AgentOS over the team and the session store, guarded by THREADWISE_AGENTOS_KEY."""
    from agno.os import AgentOS
    from agno.os.settings import AgnoAPISettings

    check_agentos_settings(settings)
    assert settings.agentos_key is not None
    return AgentOS(
        id="threadwise",
        name="threadwise",
        description="The threadwise Slack bot's team and conversations.",
        teams=[team_factory(settings, knowledge, client=client, db=db)],
        settings=AgnoAPISettings(
            os_security_key=settings.agentos_key.get_secret_value().strip(), docs_enabled=False
        ),
        auto_provision_dbs=False,  # the database's tables are the migrations' and the session store's
        telemetry=False,
    )


async def start_agentos(settings: Settings, knowledge: KnowledgeBase, *, host: str) -> AgentOSServer | None:
    """AgentOS started on ``host:THREADWISE_AGENTOS_PORT`` when THREADWISE_AGENTOS is on; else None."""
    if not settings.agentos:
        return None
    return await AgentOSServer(settings, knowledge, host=host, port=settings.agentos_port).start()


class AgentOSServer:
    """AgentOS on ``host:port``, served by uvicorn on a thread and event loop of its own.

    ``await start()`` returns once it accepts connections (or raises ``SettingsError`` when the port
    cannot be had); ``await stop()`` lets runs in flight finish for a few seconds, then closes it.
    """

    def __init__(self, settings: Settings, knowledge: KnowledgeBase, *, host: str, port: int):
        self.settings = settings
        self.knowledge = knowledge
        self.host = host
        self.port = port
        self._server: Any = None  # uvicorn.Server, made on the thread
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> AgentOSServer:
        check_agentos_settings(self.settings)
        try:
            import uvicorn  # noqa: F401  (AgentOS's server: agno[os] brings fastapi and uvicorn)
        except ImportError as exc:
            raise SettingsError(f"THREADWISE_AGENTOS needs fastapi and uvicorn installed ({exc})") from None
        route_agno_logging()
        # Bound here, so a taken port is a start error and port 0 (tests) resolves to a real one.
        try:
            sock = socket.create_server((self.host, self.port), reuse_port=False)
        except OSError as exc:
            raise SettingsError(
                f"THREADWISE_AGENTOS_PORT: cannot listen on {self.host}:{self.port} ({exc.strerror or exc})"
            ) from None
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(
            target=self._run, args=(sock,), name="threadwise-agentos", daemon=True
        )
        self._thread.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        while not (self._server is not None and self._server.started):
            if not self._thread.is_alive() or loop.time() > deadline:
                await self.stop()
                raise SettingsError(
                    f"AgentOS did not start on {self.host}:{self.port}: {self._error or 'timed out'}"
                )
            await asyncio.sleep(0.02)
        log.info("AgentOS listening on %s (key required)", self.url)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True  # uvicorn's own loop sees it within 0.1 s
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, STOP_TIMEOUT)
            if self._thread.is_alive():
                log.warning("AgentOS did not stop within %.0f s", STOP_TIMEOUT)
            self._thread = None

    def _run(self, sock: socket.socket) -> None:
        try:
            asyncio.run(self._serve(sock))
        except BaseException as exc:  # uvicorn exits with SystemExit when its startup fails
            self._error = exc
            log.error("AgentOS stopped: %s", exc or type(exc).__name__)
        finally:
            sock.close()

    async def _serve(self, sock: socket.socket) -> None:
        import uvicorn

        # Loop-bound things (HTTP client, database engine) are made on this loop and closed on it.
        client = model_client(self.settings)
        db = open_session_db(self.settings.database_url)  # closed by AgentOS's own shutdown
        try:
            app = build_agentos(self.settings, self.knowledge, client=client, db=db).get_app()
            config = uvicorn.Config(
                app,
                log_config=None,  # our logging (JSON, redaction) as configured by the command
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=3,
            )
            self._server = uvicorn.Server(config)
            await self._server.serve(sockets=[sock])
        finally:
            await client.close()


__all__ = ["AgentOSServer", "build_agentos", "check_agentos_settings", "start_agentos", "team_factory"]
