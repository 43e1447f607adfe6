"""Acknowledgements and the first visible sign, threadwise beside a reference built from Agno's own
Slack interface, in one run, under the same loads, no process pinned to a CPU.

    .venv/bin/python bench/bench_slack.py                 # 3 alternating rounds per load
    .venv/bin/python bench/bench_slack.py --rounds 5 --model-latency 2

The two apps do the same job: a search tool over the same fixture corpus (Milvus Lite, local
embedder), an Agno Team (leader, analyst with the search tool, writer), answering Slack mentions in
threads. threadwise runs as ``threadwise serve`` (the front, with its answer worker processes and
the Milvus server it starts for a Lite file). The reference is ``agno.os.interfaces.slack.Slack``
over the same kind of Team, served by uvicorn (``reference`` below). Each talks to its own copy of
the local Slack workspace (``localslack``) and both to one scripted model server.

Loads, each measured for both apps, alternating, in every round:

1. ``idle``: 50 signed channel messages at once that are not for the bot: acknowledgements alone.
2. ``wave``: 50 mentions at once while a first wave of 50 mentions is being answered (the model
   answers the leader after ``--model-latency`` s).
3. ``long``: after a session (mentions, follow-ups), 50 mentions at once while a 60,000-character
   answer streams.

Acknowledgement: from sending a request to the app's HTTP response, timed in a separate sender
process. First visible sign: from sending a mention to the app's first successful Web API call on
it (a reaction, an assistant status, a message or a stream), by the workspace's clock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from knowledge.base import KnowledgeBase
from knowledge.config import KnowledgeConfig
from localslack.emulator import SlackEmulator
from localslack.events import HttpDelivery, app_mention_event, envelope, message_event
from tests.app_fixtures import cite_first, manifest_events, script_team
from tests.corpus import write_corpus
from tests.emulators.openai import ModelRequest, ModelServer
from tests.processes import Serve, bot_process_env, free_port, outside_environ
from tests.team_script import ANALYST, LEADER, WRITER

ACK_TARGET_MS = 50.0
SIGN_TARGET_MS = 300.0
LONG_MARK = "write the long version"
LONG_CHARS = 60_000
SIGN_METHODS = {
    "reactions.add": "timestamp",
    "assistant.threads.setStatus": "thread_ts",
    "chat.postMessage": "thread_ts",
    "chat.startStream": "thread_ts",
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def summary(samples_ms: list[float]) -> str:
    if not samples_ms:
        return "no samples"
    p50, p99 = percentile(samples_ms, 50), percentile(samples_ms, 99)
    return f"n={len(samples_ms):<4} p50 {p50:6.1f}  p99 {p99:6.1f}  max {max(samples_ms):6.1f}  mean {statistics.fmean(samples_ms):6.1f} ms"


# -- the sender: Slack's side of the wire, in its own process ----------------------------------------


async def send_round(
    url: str, secret: str, bodies: list[dict]
) -> tuple[float, list[tuple[int | None, float]]]:
    sender = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "send", url, secret,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await sender.communicate(json.dumps(bodies).encode())
    sent_at, acks = json.loads(out)
    return sent_at, [tuple(item) for item in acks]


async def _send(url: str, secret: str) -> None:
    bodies = json.loads(sys.stdin.read())
    delivery = HttpDelivery(secret, timeout=10)
    try:
        await delivery.send(url, "url_verification", {"type": "url_verification", "challenge": "warm"})
        sent_at = time.time()
        acks = await asyncio.gather(*(delivery.send(url, "events_api", body) for body in bodies))
    finally:
        await delivery.close()
    print(json.dumps([sent_at, [(a.status if a.ok else None, a.elapsed) for a in acks]]))


# -- the reference: Agno's Slack interface over the same job -----------------------------------------


def reference(port: int) -> None:
    """Agno's Slack interface (``agno.os.interfaces.slack``) over a Team with a search tool, on uvicorn."""
    api_url = os.environ["SLACK_API_URL"]
    import slack_sdk.web.async_base_client as async_base
    import slack_sdk.web.base_client as sync_base

    # Agno's interface has no Slack URL setting: its clients take slack_sdk's default, pointed here
    # at the local workspace (production's would be https://slack.com/api/).
    for client in (sync_base.BaseClient, async_base.AsyncBaseClient):
        defaults = list(client.__init__.__defaults__ or ())
        client.__init__.__defaults__ = tuple(api_url if d == client.BASE_URL else d for d in defaults)
    import uvicorn
    from agno.agent import Agent
    from agno.models.openai import OpenAILike
    from agno.os.interfaces.slack import Slack
    from agno.team import Team
    from fastapi import FastAPI

    kb = KnowledgeBase(
        KnowledgeConfig(
            docs=(), milvus_uri=os.environ["MILVUS_URI"], collection=os.environ["MILVUS_COLLECTION"],
            database_url=os.environ["DATABASE_URL"],
        )
    )  # fmt: skip

    def search_documents(query: str) -> str:
        """Search the team's documents; passages with their document names."""
        hits = kb.search(query, k=5)
        return "\n".join(
            f'<passage n="{n}" document="{hit.chunk.doc_path}">{hit.chunk.text}</passage>'
            for n, hit in enumerate(hits, 1)
        )

    def model(model_id: str) -> OpenAILike:
        return OpenAILike(
            id=model_id, base_url=os.environ["OPENAI_BASE_URL"], api_key=os.environ["OPENAI_API_KEY"]
        )

    team = Team(
        name="reference",
        members=[
            Agent(
                id="analyst", name="Analyst", model=model(ANALYST), tools=[search_documents], telemetry=False
            ),
            Agent(id="writer", name="Writer", model=model(WRITER), telemetry=False),
        ],
        model=model(LEADER),
        telemetry=False,
    )
    slack = Slack(
        team=team, token=os.environ["SLACK_BOT_TOKEN"], signing_secret=os.environ["SLACK_SIGNING_SECRET"]
    )
    app = FastAPI()
    app.include_router(slack.get_router())
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


class Reference:
    def __init__(self, env: dict[str, str], log: Path):
        self.env, self.log = env, log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, port: int) -> None:
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "reference", str(port), env=self.env, stdout=out, stderr=out
            )
        for _ in range(1200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                return
            except OSError:
                if self.process.returncode is not None:
                    raise RuntimeError(f"the reference exited:\n{self.log.read_text()}") from None
                await asyncio.sleep(0.1)
        raise RuntimeError("the reference did not come up")


# -- one app under test ------------------------------------------------------------------------------


class App:
    def __init__(self, name: str, slack: SlackEmulator, url: str, process):
        self.name, self.slack, self.url, self.process = name, slack, url, process
        self.acks: dict[str, list[float]] = {}
        self.signs: dict[str, list[float]] = {}

    async def burst(
        self, load: str, texts: list[str], *, mention: bool, thread_ts: str | None = None
    ) -> list[str]:
        """Post ``texts`` at once and deliver their events at once; the acknowledgements are recorded."""
        ws = self.slack.workspace
        messages = [
            ws.post(
                "C_GENERAL",
                text=f"<@{ws.bot_user_id}> {t}" if mention else t,
                user="U_ALICE",
                thread_ts=thread_ts,
            )
            for t in texts
        ]
        make = app_mention_event if mention else message_event
        bodies = [envelope(ws, make(ws, m)) for m in messages]
        sent_at, acks = await send_round(self.url, self.slack.signing_secret, bodies)
        assert all(status == 200 for status, _ in acks), acks
        self.acks.setdefault(load, []).extend(elapsed * 1000 for _, elapsed in acks)
        if mention:
            await self._signs(load, [m.ts for m in messages], sent_at)
        return [m.ts for m in messages]

    async def _signs(self, load: str, stamps: list[str], sent_at: float) -> None:
        wanted = set(stamps)
        first: dict[str, float] = {}
        deadline = time.monotonic() + 10
        while len(first) < len(wanted) and time.monotonic() < deadline:
            for call in self.slack.calls():
                key = SIGN_METHODS.get(call.method)
                ts = call.params.get(key) if key else None
                if ts in wanted and call.ok and ts not in first:
                    first[ts] = call.time
            await asyncio.sleep(0.05)
        self.signs.setdefault(load, []).extend((first.get(ts, deadline) - sent_at) * 1000 for ts in stamps)

    async def answered(self, stamps: list[str], timeout: float) -> None:
        def done() -> bool:
            return all(
                (replies := self.slack.bot_messages("C_GENERAL", ts))
                and not any(r.streaming for r in replies)
                and any(r.text for r in replies)
                for ts in stamps
            )

        await self.slack.wait_for(done, timeout, interval=0.2)


def long_writer(request: ModelRequest) -> str:
    if LONG_MARK not in request.transcript:
        return cite_first(request)
    line = "The VPN client reconnects on its own after a network change; see the guide [1]. "
    return (line * (LONG_CHARS // len(line) + 1))[:LONG_CHARS]


async def run(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-slack-"))
    docs = root / "docs"
    write_corpus(docs)
    config = KnowledgeConfig(
        docs=(docs,), milvus_uri=str(root / "tw" / "milvus.db"), collection="bench_slack",
        database_url=args.database_url or f"sqlite:///{root / 'tw' / 'threadwise.db'}",
    )  # fmt: skip
    (root / "tw").mkdir()
    kb = KnowledgeBase(config)
    kb.sync()
    kb.close()
    shutil.copytree(root / "tw", root / "ref")  # the reference's own copy of the same index
    with ModelServer() as model:
        script_team(
            model, writer=long_writer, leader_delay=args.model_latency, echo_chunk=400, echo_delay=0.02
        )
        async with (
            SlackEmulator(subscriptions=manifest_events(), ack_timeout=10) as tw_slack,
            SlackEmulator(subscriptions=manifest_events(), ack_timeout=10) as ref_slack,
        ):
            tw_env = bot_process_env(
                tw_slack, model, docs=docs, milvus_uri=config.milvus_uri, database_url=config.database_url,
                MILVUS_COLLECTION=config.collection, THREADWISE_SYNC_MINUTES="0",
                THREADWISE_MAX_CONCURRENT_ANSWERS="32", THREADWISE_LOG_LEVEL="WARNING", THREADWISE_AUTO_MIGRATE="1",
            )  # fmt: skip
            ref_env = {
                **outside_environ(),
                "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
                "SLACK_API_URL": ref_slack.api_url,
                "SLACK_BOT_TOKEN": ref_slack.bot_token,
                "SLACK_SIGNING_SECRET": ref_slack.signing_secret,
                "OPENAI_BASE_URL": model.base_url,
                "OPENAI_API_KEY": "sk-bench-0123456789",
                "MILVUS_URI": str(root / "ref" / "milvus.db"),
                "MILVUS_COLLECTION": config.collection,
                "DATABASE_URL": f"sqlite:///{root / 'ref' / 'threadwise.db'}",
            }
            tw_port, ref_port = free_port(), free_port()
            tw_slack.request_url = f"http://127.0.0.1:{tw_port}/slack/events"
            ref_slack.request_url = f"http://127.0.0.1:{ref_port}/slack/events"
            tw_server, ref_server = (
                Serve(tw_env, root / "serve.log"),
                Reference(ref_env, root / "reference.log"),
            )
            await tw_server.start(tw_port)
            await ref_server.start(ref_port)
            apps = [
                App("threadwise", tw_slack, tw_slack.request_url, tw_server),
                App("agno.os slack", ref_slack, ref_slack.request_url, ref_server),
            ]
            try:
                for app in apps:  # warm up: one answer each
                    (ts,) = await app.burst("warm-up", ["how do I reset my VPN password?"], mention=True)
                    await app.answered([ts], 120)
                for r in range(args.rounds):
                    for app in apps if r % 2 == 0 else apps[::-1]:
                        await app.burst(
                            "idle", [f"round {r} chat {i}" for i in range(args.batch)], mention=False
                        )
                        first = await app.burst(
                            "wave-1", [f"r{r} q{i}: VPN?" for i in range(args.batch)], mention=True
                        )
                        await asyncio.sleep(0.2)
                        second = await app.burst(
                            "wave", [f"r{r} w{i}: VPN?" for i in range(args.batch)], mention=True
                        )
                        await app.answered(first + second, 600)
                        # A session: follow-ups in a thread, then a 60,000-character answer streaming.
                        (thread,) = await app.burst("session", [f"r{r}: which VPN clients?"], mention=True)
                        await app.answered([thread], 120)
                        for i in range(3):
                            await app.burst(
                                "session", [f"r{r} follow-up {i}"], mention=True, thread_ts=thread
                            )
                            await app.slack.wait_for(  # the replies go to the thread
                                lambda app=app, thread=thread, i=i: (
                                    len(
                                        [
                                            m
                                            for m in app.slack.bot_messages("C_GENERAL", thread)
                                            if m.text and not m.streaming
                                        ]
                                    )
                                    >= i + 2
                                ),
                                120,
                            )
                        (long,) = await app.burst("session", [f"r{r}: {LONG_MARK}, please"], mention=True)
                        await asyncio.sleep(args.model_latency + 1.0)  # the long answer is streaming now
                        during = await app.burst(
                            "long", [f"r{r} l{i}: VPN?" for i in range(args.batch)], mention=True
                        )
                        await app.answered([long, *during], 900)
            finally:
                for server in (tw_server, ref_server):
                    if server.process is not None and server.process.returncode is None:
                        server.process.send_signal(signal.SIGTERM)
                        await asyncio.wait_for(server.process.wait(), 60)
    print(
        f"\n{args.rounds} rounds, {args.batch} events at once, model {args.model_latency:g} s, no CPU pinning"
    )
    for load in ("idle", "wave", "long"):
        for app in apps:
            print(f"ack   {load:<5} {app.name:<14} {summary(app.acks.get(load, []))}")
    for load in ("wave", "long"):
        for app in apps:
            print(f"sign  {load:<5} {app.name:<14} {summary(app.signs.get(load, []))}")
    tw, ref = apps
    for load in ("idle", "wave", "long"):
        ours, theirs = percentile(tw.acks[load], 99), percentile(ref.acks[load], 99)
        print(
            f"ack p99 {load}: {ours:.1f} ms (target < {ACK_TARGET_MS:g}: {'met' if ours < ACK_TARGET_MS else 'MISSED'}), "
            f"reference {theirs:.1f} ms, ratio {ours / theirs:.2f}"
        )
    for load in ("wave", "long"):
        ours = percentile(tw.signs[load], 99)
        print(
            f"first sign p99 {load}: {ours:.1f} ms (target < {SIGN_TARGET_MS:g}: {'met' if ours < SIGN_TARGET_MS else 'MISSED'})"
        )


def main() -> int:
    if sys.argv[1:2] == ["send"]:
        asyncio.run(_send(sys.argv[2], sys.argv[3]))
        return 0
    if sys.argv[1:2] == ["reference"]:
        reference(int(sys.argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per load (default 3)")
    parser.add_argument("--batch", type=int, default=50, help="events sent at once (default 50)")
    parser.add_argument("--model-latency", type=float, default=2.0, help="seconds before the leader answers")
    parser.add_argument(
        "--database-url",
        help="threadwise's DATABASE_URL (default: SQLite in a temporary folder; an empty PostgreSQL "
        "database is what production runs on)",
    )
    asyncio.run(run(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
