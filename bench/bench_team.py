"""The answering team's own overhead: everything an answer costs besides the model and the search.

    .venv/bin/python bench/bench_team.py                     # 40 answers, then 5 at 0.5 s a model call
    .venv/bin/python bench/bench_team.py --answers 100 --model-latency 1.0

The real stack answers over the fixture corpus: Agno team, Milvus Lite with the local embedder, the
SQLite session store, and the scripted OpenAI-compatible server on loopback playing the leader
(delegate, delegate, repeat), the analyst (one search, findings) and the writer. Conversations run
six turns, so history is read and written as in a thread.

First with a zero-latency model: ``overhead`` = total - model time - retrieval, per answer (model
time is measured from Agno's request-started to request-completed events, so it includes the HTTP
round trip and Agno's parsing of the stream). Then a few answers with ``--model-latency`` seconds
before every model response, as a stand-in for a typical answer; the overhead's share of that is
the figure to keep under 10%.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.answering import Answerer
from bot.settings import Settings
from bot.team import build_team, model_client
from knowledge.base import KnowledgeBase
from tests.corpus import write_corpus
from tests.emulators.openai import ModelRequest, ModelServer, Text, ToolCall

QUESTIONS = [
    "How do I reset my VPN password?",
    "How many vacation days do we get?",
    "When can we deploy to production?",
    "How much can I spend on meals when travelling?",
    "What do I do if my laptop is stolen?",
    "Which VPN clients are supported?",
]
TURNS_PER_CONVERSATION = 6


def _this_turn(request: ModelRequest) -> list[dict]:
    """The messages after the last user message: what has happened in the current turn."""
    messages = request.messages
    last_user = max(i for i, m in enumerate(messages) if m.get("role") == "user")
    return messages[last_user + 1 :]


def script(server: ModelServer, latency: float) -> None:
    def leader(request: ModelRequest):
        done = sum(1 for m in _this_turn(request) if m.get("role") == "tool")
        if done == 0:
            return ToolCall("delegate_task_to_member", {"member_id": "analyst", "task": request.last_user})
        if done == 1:
            return ToolCall(
                "delegate_task_to_member", {"member_id": "writer", "task": "Answer from the findings"}
            )
        return Text(request.tool_results[-1], delay=latency)

    def analyst(request: ModelRequest):
        if not request.after_tool:
            return ToolCall("search_documents", {"query": request.last_user[-80:]})
        return Text("Findings:\n" + request.tool_results[-1], delay=latency)

    def writer(request: ModelRequest):
        return Text("The documents say so [1], and more precisely this [2].", delay=latency)

    def delayed(reply):
        async def respond(request: ModelRequest):
            produced = reply(request)
            if isinstance(produced, ToolCall) and latency:
                await asyncio.sleep(latency)
            return produced

        return respond

    server.reset()
    server.on(delayed(leader), system="You lead threadwise")
    server.on(delayed(analyst), system="You are the analyst")
    server.on(delayed(writer), system="You are the writer")


async def run(answerer: Answerer, count: int, tag: str) -> list[dict[str, float]]:
    timings = []
    for i in range(count):
        conversation = f"bench:{tag}:{i // TURNS_PER_CONVERSATION}"
        answer = await answerer.answer(QUESTIONS[i % len(QUESTIONS)], conversation=conversation)
        assert answer.outcome == "answered", answer.text
        timings.append(answer.timings)
    return timings


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(name: str, timings: list[dict[str, float]]) -> None:
    for key in ("total", "model", "retrieval", "overhead"):
        values = [t[key] * 1000 for t in timings]
        print(f"  {name:<9} {key:<9} p50 {pct(values, 0.5):8.1f} ms   p95 {pct(values, 0.95):8.1f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--answers", type=int, default=40, help="answers with the zero-latency model")
    parser.add_argument("--typical", type=int, default=5, help="answers with --model-latency")
    parser.add_argument("--model-latency", type=float, default=0.5, help="seconds before each model reply")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, ModelServer() as server:
        root = Path(tmp)
        write_corpus(root / "docs")
        settings = Settings(
            _env_file=None,
            docs=[root / "docs"],
            milvus_uri=str(root / "milvus.db"),
            database_url=f"sqlite:///{root / 'threadwise.db'}",
            openai_base_url=server.base_url,
            model="gpt-4o-mini",
            model_retries=0,
        )
        knowledge = KnowledgeBase(settings.knowledge())
        knowledge.sync()
        answerer = Answerer(settings, knowledge)
        try:
            script(server, latency=0.0)
            started = time.perf_counter()
            await run(answerer, 1, "cold")
            print(
                f"first answer (tables created, connections opened): {(time.perf_counter() - started) * 1000:.0f} ms"
            )
            zero = await run(answerer, args.answers, "zero")
            print(f"{args.answers} answers, zero-latency model server (6 model requests each):")
            report("zero", zero)

            script(server, latency=args.model_latency)
            typical = await run(answerer, args.typical, "typical")
            print(f"{args.typical} answers with {args.model_latency} s before each model reply:")
            report("typical", typical)
        finally:
            await answerer.aclose()
            knowledge.close()

        client = model_client(settings)
        started = time.perf_counter()
        for _ in range(1000):
            build_team(settings, client=client, search_tools=[], db=None)
        print(f"building the team per answer: {(time.perf_counter() - started):.3f} ms each")
        await client.close()

    overhead = [t["overhead"] for t in zero]
    typical_total = statistics.median(t["total"] for t in typical)
    share = statistics.median(overhead) / typical_total
    share95 = pct(overhead, 0.95) / typical_total
    verdict = "OK" if share95 < 0.10 else "OVER TARGET"
    print(
        f"overhead p50 {statistics.median(overhead) * 1000:.1f} ms = {share:.1%} of a typical answer "
        f"({typical_total:.2f} s); p95 {share95:.1%}: {verdict} (target < 10%)"
    )


if __name__ == "__main__":
    asyncio.run(main())
