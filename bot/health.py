"""What an operator's tools ask the running server: ``/readyz`` and ``/metrics`` (``/healthz`` is in
``bot.server``), and the start-up warning for Milvus Lite under several replicas."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiohttp import web
from sqlalchemy import text

from bot import metrics
from bot.settings import Settings
from knowledge.base import redact_uri
from knowledge.mass_delete import ALLOW_HINT

if TYPE_CHECKING:
    from bot.slack.app import SlackBot

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 5.0


class MassDeleteRefused(Exception):
    """The last sync kept documents gone from their folder (knowledge.mass_delete)."""


async def readiness(bot: SlackBot) -> dict[str, str]:
    """``{"database": "ok", "milvus": "ok", "sync": "ok"}``, or the reason in place of ``ok`` for what does
    not answer, or (``sync``) the last sync's refusal to remove most of a folder's documents."""

    async def database() -> None:
        async with bot.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def milvus() -> None:
        await asyncio.to_thread(bot.knowledge.ping)

    async def sync() -> None:
        # An empty or unmounted docs folder: the index is kept, but the operator has to look.
        refused = await asyncio.to_thread(bot.knowledge.refused_deletions)
        if refused:
            raise MassDeleteRefused("; ".join(refused) + f"; {ALLOW_HINT}")

    checks: dict[str, str] = {}
    for name, probe in (("database", database), ("milvus", milvus), ("sync", sync)):
        if name == "sync" and checks["database"] != "ok":
            checks[name] = "unknown: the database does not answer"  # the manifest lives there
            continue
        try:
            await asyncio.wait_for(probe(), CHECK_TIMEOUT)
            checks[name] = "ok"
        except TimeoutError:
            checks[name] = f"no answer within {CHECK_TIMEOUT:g} s"
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            checks[name] = (
                first if isinstance(exc, MassDeleteRefused) else f"{type(exc).__name__}: {first}".strip()
            )
    return checks


def add_operations_routes(app: web.Application, bot: SlackBot) -> None:
    async def readyz(_request: web.Request) -> web.Response:
        checks = await readiness(bot)
        ready = all(value == "ok" for value in checks.values())
        if not ready:
            log.warning("not ready: %s", "; ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok"))
        return web.json_response({"ready": ready, **checks}, status=200 if ready else 503)

    async def metrics_page(_request: web.Request) -> web.Response:
        try:
            page = await asyncio.to_thread(metrics.exposition, bot.knowledge)
        except Exception as exc:  # the manifest is unreachable: still serve this process's counters
            log.warning("metrics without the manifest's figures: %s", exc)
            page = await asyncio.to_thread(metrics.exposition, None)
        return web.Response(body=page, headers={"Content-Type": metrics.CONTENT_TYPE})

    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_page)


def warn_if_lite(settings: Settings) -> bool:
    """Say at start that a Milvus Lite file serves one process only; True when it is Lite."""
    if not settings.knowledge().is_lite:
        return False
    log.warning(
        "MILVUS_URI %s is a Milvus Lite file: it serves ONE process. Run a single `threadwise serve` "
        "(one worker, one replica); for several replicas point MILVUS_URI (and MILVUS_TOKEN) at a Milvus "
        "standalone/distributed server or Zilliz Cloud (see docs/operations.md)",
        redact_uri(settings.milvus_uri),
    )
    return True


__all__ = ["add_operations_routes", "readiness", "warn_if_lite"]
