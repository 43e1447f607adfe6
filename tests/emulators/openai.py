"""An OpenAI-compatible model server on loopback, answering with scripted replies.

The real ``openai`` SDK and Agno's ``OpenAIChat`` / ``OpenAILike`` talk to it over HTTP exactly as
they would to api.openai.com; only the base URL changes. It serves ``POST /v1/chat/completions``
(plain and streamed as server-sent events), ``POST /v1/embeddings`` and ``GET /v1/models``, and
records every request so a test can assert what the model was shown.

The server runs on its own thread and event loop, so a synchronous ``agent.run()`` and an async
test's ``await agent.arun()`` both reach it, and a scripted delay or hang never blocks the test.

Scripting a typical analyst/writer team exchange (the leader delegates to the analyst, who
searches once, then to the writer; each is told apart by its model id or system prompt)::

    from agno.agent import Agent
    from agno.models.openai import OpenAIChat
    from agno.team import Team

    from tests.emulators.openai import ModelServer, ToolCall

    def search(query: str) -> str:
        return "[1] handbook.md > Remote work: Use the corporate VPN for all remote work."

    with ModelServer() as server:
        # Replies given together are a queue: the leader's first call delegates to the analyst,
        # its second (after the analyst's findings come back) to the writer, its third passes
        # the writer's text on. A callable reply sees the whole request, tool results included.
        server.on(
            ToolCall("delegate_task_to_member", {"member_id": "analyst", "task": "Find the VPN policy"}),
            ToolCall("delegate_task_to_member", {"member_id": "writer", "task": "Answer from the findings"}),
            lambda request: request.tool_results[-1],
            model="leader-model",
        )
        server.on(
            ToolCall("search", {"query": "vpn policy"}),
            lambda request: "Findings: " + request.tool_results[-1],
            system="You find facts",
        )
        server.on("Use the corporate VPN for all remote work [1].", system="You write answers")

        def model(model_id: str) -> OpenAIChat:
            return OpenAIChat(id=model_id, base_url=server.base_url, api_key="test", max_retries=0)

        analyst = Agent(id="analyst", name="Analyst", role="You find facts", model=model("analyst-model"),
                        instructions="You find facts in the documents.", tools=[search])
        writer = Agent(id="writer", name="Writer", role="You write answers", model=model("writer-model"),
                       instructions="You write answers from the findings.")
        team = Team(name="threadwise", members=[analyst, writer], model=model("leader-model"))

        answer = team.run("What is our VPN policy?")
        assert answer.content == "Use the corporate VPN for all remote work [1]."

        # What each model was shown: the analyst saw the search result only as tool output.
        analyst_turns = [r for r in server.chat_requests if r.model == "analyst-model"]
        assert analyst_turns[-1].tool_results == [search("vpn policy")]
        assert "corporate VPN" not in analyst_turns[0].transcript

Replies (:class:`Text`, :class:`ToolCalls`, :class:`Error`, :class:`Hang`) carry timing: ``delay``
before the response starts, ``chunk_delay`` between streamed chunks, and ``stall_after`` /
``drop_after`` to freeze or cut a stream after some chunks. A plain ``str`` is a :class:`Text`, a
:class:`ToolCall` (or a list of them) is one assistant message calling those tools, and a callable
``(ModelRequest) -> reply`` (sync or async) decides at request time.

A request no rule answers gets a 400 naming what arrived, so an unscripted turn fails loudly; set
``server.fallback(...)`` to answer those instead.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import inspect
import json
import math
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, TypeAlias

import numpy as np
from aiohttp import web

FINGERPRINT = "fp_threadwise_emulator"
DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small")
MAX_EMBEDDING_DIM = 8192


# --- Replies -------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Reply:
    """Timing every scripted reply can carry."""

    delay: float = 0.0  # seconds before the response starts (before the status line)
    chunk_delay: float = 0.0  # seconds between streamed chunks
    stall_after: int | None = None  # stream: after this many chunks, send nothing more, never finish
    drop_after: int | None = None  # stream: after this many chunks, close the connection


@dataclass
class Text(Reply):
    """An assistant message with text content."""

    content: str
    finish_reason: Literal["stop", "length", "content_filter"] = "stop"
    chunk_chars: int | None = None  # streamed piece size; by default one word (with its space) per chunk


@dataclass
class ToolCall:
    """One function call the model makes; ``arguments`` is sent as a JSON string."""

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    id: str | None = None  # generated ("call_...") when not given

    @property
    def arguments_json(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass
class ToolCalls(Reply):
    """One assistant message calling one or several tools (finish_reason ``tool_calls``)."""

    calls: Sequence[ToolCall]
    content: str | None = None  # text some models say before calling


@dataclass
class Error(Reply):
    """An HTTP error in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""

    status: int = 500
    message: str = "The server had an error while processing your request. Sorry about that!"
    type: str = "server_error"
    code: str | None = None
    param: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None  # sent as JSON instead of the error object when given


@dataclass
class Hang(Reply):
    """Never answer: the client's timeout, its disconnecting, or the server stopping ends it."""


ReplyLike: TypeAlias = "str | Reply | ToolCall | Sequence[ToolCall] | Callable[[ModelRequest], Any]"


def rate_limited(retry_after: float = 0.01) -> Error:
    """A 429 as OpenAI sends it; the SDK honours ``retry-after-ms`` before ``retry-after``."""
    return Error(
        status=429,
        message="Rate limit reached for requests. Please try again later.",
        type="requests",
        code="rate_limit_exceeded",
        headers={
            "retry-after": str(math.ceil(retry_after)),
            "retry-after-ms": str(round(retry_after * 1000)),
        },
    )


def _no_retry(
    status: int, message: str, *, type: str = "invalid_request_error", code: str | None = None
) -> Error:
    # x-should-retry stops the SDK retrying a mistake in the test itself
    return Error(status=status, message=message, type=type, code=code, headers={"x-should-retry": "false"})


def _normalise(reply: Any) -> Reply | Callable[..., Any]:
    if isinstance(reply, str):
        return Text(reply)
    if isinstance(reply, ToolCall):
        return ToolCalls([reply])
    if isinstance(reply, Sequence) and reply and all(isinstance(c, ToolCall) for c in reply):
        return ToolCalls(list(reply))
    if isinstance(reply, Reply) or callable(reply):
        return reply
    raise TypeError(
        f"not a scripted reply: {reply!r} (use a str, Text, ToolCall, a list of ToolCall, "
        "ToolCalls, Error, Hang, or a callable taking the request)"
    )


# --- What arrived --------------------------------------------------------------------------------


def _text(content: Any) -> str:
    """The text of a message's content, whether a string or a list of parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


@dataclass
class ModelRequest:
    """One HTTP request as the server received it; item access reads the JSON body."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    query: dict[str, str]
    body: Any  # the parsed JSON body, or None
    received_at: float
    rule: Rule | None = None  # the rule that answered, for chat completions

    def __getitem__(self, key: str) -> Any:
        return self.body[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.body.get(key, default) if isinstance(self.body, dict) else default

    @property
    def model(self) -> str:
        return self.get("model") or ""

    @property
    def messages(self) -> list[dict]:
        messages = self.get("messages")
        return messages if isinstance(messages, list) else []

    @property
    def stream(self) -> bool:
        return bool(self.get("stream"))

    @property
    def system(self) -> str:
        """The system prompt (Agno sends it with the ``developer`` role to OpenAI models)."""
        parts = [_text(m.get("content")) for m in self.messages if m.get("role") in ("system", "developer")]
        return "\n\n".join(parts)

    @property
    def last_user(self) -> str:
        users = [m for m in self.messages if m.get("role") == "user"]
        return _text(users[-1].get("content")) if users else ""

    @property
    def tools(self) -> list[str]:
        """Names of the functions offered to the model."""
        return [t["function"]["name"] for t in self.get("tools") or [] if isinstance(t.get("function"), dict)]

    @property
    def tool_results(self) -> list[str]:
        """Contents of the ``tool`` messages, oldest first."""
        return [_text(m.get("content")) for m in self.messages if m.get("role") == "tool"]

    @property
    def after_tool(self) -> bool:
        """Whether the last message is a tool result (the model is to continue after a call)."""
        return bool(self.messages) and self.messages[-1].get("role") == "tool"

    @property
    def transcript(self) -> str:
        """Every message's text and tool-call arguments, one per line, for substring checks."""
        lines = []
        for m in self.messages:
            lines.append(_text(m.get("content")))
            for call in m.get("tool_calls") or []:
                function = call.get("function") or {}
                lines.append(f"{function.get('name', '')}({function.get('arguments', '')})")
        return "\n".join(lines)


class Rule:
    """Scripted replies for the requests that match; see :meth:`ModelServer.on`."""

    def __init__(
        self,
        replies: Sequence[Any],
        *,
        model: str | None,
        system: str | None,
        user: str | None,
        tools: bool | str | None,
        after_tool: bool | None,
        match: str | Callable[[ModelRequest], bool] | None,
        times: int | None,
    ):
        if not replies:
            raise ValueError("a rule needs at least one reply")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1")
        self.replies = [_normalise(r) for r in replies]
        self.model, self.system, self.user = model, system, user
        self.tools, self.after_tool, self.match, self.times = tools, after_tool, match, times
        self.requests: list[ModelRequest] = []  # the requests this rule answered

    @property
    def calls(self) -> int:
        return len(self.requests)

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.calls >= self.times

    def matches(self, request: ModelRequest) -> bool:
        if self.exhausted:
            return False
        if self.model is not None and request.model != self.model:
            return False
        if self.system is not None and self.system not in request.system:
            return False
        if self.user is not None and self.user not in request.last_user:
            return False
        if self.tools is not None:
            offered = request.tools
            if isinstance(self.tools, str) and self.tools not in offered:
                return False
            if isinstance(self.tools, bool) and self.tools != bool(offered):
                return False
        if self.after_tool is not None and self.after_tool != request.after_tool:
            return False
        if isinstance(self.match, str):
            return self.match in request.transcript
        if self.match is not None:
            return bool(self.match(request))
        return True

    def take(self, request: ModelRequest) -> Reply | Callable[..., Any]:
        """The next reply in the queue; the last one keeps answering once the queue is used up."""
        reply = self.replies[min(self.calls, len(self.replies) - 1)]
        self.requests.append(request)
        return reply

    def __repr__(self) -> str:
        conditions = {
            k: v
            for k, v in dict(
                model=self.model,
                system=self.system,
                user=self.user,
                tools=self.tools,
                after_tool=self.after_tool,
                match=self.match,
                times=self.times,
            ).items()
            if v is not None
        }
        return f"Rule({len(self.replies)} replies, {conditions}, calls={self.calls})"


# --- Wire format helpers -------------------------------------------------------------------------


def _tokens(text: str) -> int:
    """A rough token count: about four characters a token, as OpenAI's own rule of thumb."""
    return math.ceil(len(text) / 4) if text else 0


def _prompt_tokens(body: dict) -> int:
    count = 3
    for message in body.get("messages") or []:
        count += 4 + _tokens(_text(message.get("content")))
        if message.get("tool_calls"):
            count += _tokens(json.dumps(message["tool_calls"]))
    if body.get("tools"):
        count += _tokens(json.dumps(body["tools"]))
    return count


def _usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _pieces(text: str, size: int | None) -> list[str]:
    if not text:
        return []
    if size:
        return [text[i : i + size] for i in range(0, len(text), size)]
    return re.findall(r"\s*\S+|\s+$", text)


def _error_body(error: Error) -> Any:
    if error.body is not None:
        return error.body
    return {"error": {"message": error.message, "type": error.type, "param": error.param, "code": error.code}}


def _check_chat_body(body: Any) -> str | None:
    """What OpenAI would reject in a chat completion request, in words close to its own."""
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "Invalid 'messages': empty array. Expected an array with minimum length 1."
    if body.get("n") not in (None, 1):
        return "ModelServer answers n=1 only."
    pending: list[str] = []  # tool_call ids still owed a tool message
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("system", "developer", "user", "assistant", "tool", "function"):
            return f"Invalid value for 'messages[{i}].role': {role!r}."
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in pending:
                return (
                    f"Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                    f"message with 'tool_calls' (messages[{i}].tool_call_id={call_id!r})."
                )
            pending.remove(call_id)
            continue
        if pending:
            return _unanswered(pending)
        if role == "assistant":
            pending = [c.get("id") for c in message.get("tool_calls") or []]
    return _unanswered(pending) if pending else None


def _unanswered(pending: list[str]) -> str:
    return (
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
        f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}"
    )


# --- Embeddings ----------------------------------------------------------------------------------

_WORD = re.compile(r"\w+")


@lru_cache(maxsize=65536)
def _word_vector(word: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
    vector = np.random.default_rng(seed).standard_normal(dim)
    vector.setflags(write=False)
    return vector


def embedding_for(text: str, dim: int = 256) -> list[float]:
    """The emulator's vector for ``text``: a normalised sum of hash-seeded word vectors.

    Deterministic across runs and processes; texts sharing words lie close together, so dense
    retrieval over these vectors ranks plausibly. A smaller ``dim`` gives the same vector cut short
    and renormalised, as OpenAI's ``dimensions`` parameter does.
    """
    words = _WORD.findall(text.lower()) or [text]
    vector = np.sum([_word_vector(w, dim) for w in words], axis=0)
    norm = float(np.linalg.norm(vector))
    return (vector / norm).tolist() if norm else [1.0] + [0.0] * (dim - 1)


# --- The server ----------------------------------------------------------------------------------


class ModelServer:
    """An OpenAI-compatible HTTP server on 127.0.0.1 with scripted chat replies.

    Use as ``with ModelServer() as server:`` (or ``async with``) and point a client at
    ``server.base_url``.
    """

    def __init__(
        self,
        *,
        embedding_dim: int = 256,
        api_key: str | None = None,
        models: Sequence[str] = DEFAULT_MODELS,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.embedding_dim = embedding_dim
        self.api_key = api_key  # when set, requests must carry "Authorization: Bearer <api_key>"
        self.models = tuple(models)
        self.host, self.port = host, port
        self.errors: list[str] = []  # scripted callables that raised (the client got a 500)
        self._rules: list[Rule] = []
        self._fallback: Reply | Callable[..., Any] = self._unscripted
        self._requests: list[ModelRequest] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None

    # -- scripting

    def on(
        self,
        *replies: ReplyLike,
        model: str | None = None,
        system: str | None = None,
        user: str | None = None,
        tools: bool | str | None = None,
        after_tool: bool | None = None,
        match: str | Callable[[ModelRequest], bool] | None = None,
        times: int | None = None,
    ) -> Rule:
        """Answer matching chat requests with ``replies``, in order; the last one repeats.

        A request matches when every condition given holds: ``model`` equals the model id;
        ``system`` / ``user`` is a substring of the system prompt / the last user message;
        ``tools`` is True (some tools offered), False (none) or a tool name that is offered;
        ``after_tool`` says whether the last message is a tool result; ``match`` is a substring of
        any message (see :attr:`ModelRequest.transcript`) or a predicate on the request. Rules are
        tried in the order they were added; after ``times`` answers a rule stops matching.
        """
        rule = Rule(
            replies,
            model=model,
            system=system,
            user=user,
            tools=tools,
            after_tool=after_tool,
            match=match,
            times=times,
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def fallback(self, reply: ReplyLike) -> None:
        """Answer requests no rule matches (by default a 400 describing the request)."""
        normalised = _normalise(reply)
        with self._lock:
            self._fallback = normalised

    def reset(self) -> None:
        """Forget rules, the fallback, recorded requests and errors."""
        with self._lock:
            self._rules.clear()
            self._fallback = self._unscripted
            self._requests.clear()
            self.errors.clear()

    @property
    def requests(self) -> list[ModelRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[ModelRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def url(self) -> str:
        if self._thread is None:
            raise RuntimeError("ModelServer is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as ``base_url``."""
        return f"{self.url}/v1"

    # -- lifecycle

    def start(self) -> ModelServer:
        if self._thread is not None:
            raise RuntimeError("ModelServer is already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._open(sock))
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=serve, name=f"ModelServer:{self.port}", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = self._loop = None
            raise RuntimeError(f"ModelServer could not start: {failure[0]!r}") from failure[0]
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._thread = self._loop = None

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> ModelServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.to_thread(self.stop)

    async def _open(self, sock: socket.socket) -> None:
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model}", self._get_model)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        # handler_cancellation: a client that gives up on a hang frees its handler at once
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def _close(self) -> None:
        assert self._stopping is not None and self._runner is not None
        self._stopping.set()
        await self._runner.cleanup()

    # -- handlers

    async def _record(self, request: web.Request) -> ModelRequest:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        recorded = ModelRequest(
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            query=dict(request.query),
            body=body,
            received_at=time.time(),
        )
        with self._lock:
            self._requests.append(recorded)
        return recorded

    def _refuse(self, recorded: ModelRequest, raw_body_expected: bool = True) -> web.Response | None:
        if self.api_key is not None:
            expected = f"Bearer {self.api_key}"
            if recorded.headers.get("authorization") != expected:
                return _json_error(
                    _no_retry(
                        401,
                        "Incorrect API key provided.",
                        type="invalid_request_error",
                        code="invalid_api_key",
                    )
                )
        if raw_body_expected and recorded.body is None:
            return _json_error(_no_retry(400, "We could not parse the JSON body of your request."))
        return None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        if (refusal := self._refuse(recorded)) is not None:
            return refusal
        if (problem := _check_chat_body(recorded.body)) is not None:
            return _json_error(_no_retry(400, problem))

        reply = await self._resolve(self._choose(recorded), recorded)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if isinstance(reply, Error):
            return _json_error(reply)
        if isinstance(reply, Hang):
            await self._hang()
            return _json_error(_no_retry(503, "ModelServer stopped", type="server_error"))
        assert isinstance(reply, Text | ToolCalls)
        if recorded.stream:
            return await self._stream(request, recorded, reply)
        if reply.stall_after is not None:
            await self._hang()
            return _json_error(_no_retry(503, "ModelServer stopped", type="server_error"))
        if reply.drop_after is not None:
            _drop(request)
            return web.Response()
        return web.json_response(_completion(recorded, reply))

    def _choose(self, recorded: ModelRequest) -> Reply | Callable[..., Any]:
        with self._lock:
            for rule in self._rules:
                try:
                    matched = rule.matches(recorded)
                except Exception as exc:
                    self.errors.append(f"{rule!r} match raised {exc!r}")
                    return _no_retry(500, f"ModelServer: a rule's match raised {exc!r}", type="server_error")
                if matched:
                    recorded.rule = rule
                    return rule.take(recorded)
            return self._fallback

    async def _resolve(self, reply: Reply | Callable[..., Any], recorded: ModelRequest) -> Reply:
        """Call dynamic replies until a concrete one comes back."""
        for _ in range(10):
            if isinstance(reply, Reply):
                return reply
            try:
                produced = reply(recorded)
                if inspect.isawaitable(produced):
                    produced = await produced
                reply = _normalise(produced)
            except Exception as exc:
                self.errors.append(f"scripted reply {reply!r} raised {exc!r}")
                return _no_retry(500, f"ModelServer: a scripted reply raised {exc!r}", type="server_error")
        return _no_retry(500, "ModelServer: callable replies nested too deep", type="server_error")

    @staticmethod
    def _unscripted(request: ModelRequest) -> Error:
        return _no_retry(
            400,
            f"ModelServer: no scripted reply for this request (model={request.model!r}, "
            f"system={request.system[:80]!r}, last user={request.last_user[:80]!r}, tools={request.tools}, "
            f"after_tool={request.after_tool}); add server.on(...) or server.fallback(...)",
            code="unscripted",
        )

    async def _hang(self) -> None:
        """Wait until the server stops (a client giving up cancels the handler before that)."""
        assert self._stopping is not None
        await self._stopping.wait()

    async def _stream(
        self, request: web.Request, recorded: ModelRequest, reply: Text | ToolCalls
    ) -> web.StreamResponse:
        include_usage = bool((recorded.get("stream_options") or {}).get("include_usage"))
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        for sent, chunk in enumerate(_chunks(recorded, reply, include_usage)):
            if sent == reply.stall_after:
                await self._hang()
                return response
            if sent == reply.drop_after:
                _drop(request)
                return response
            if sent and reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _embeddings(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        if (refusal := self._refuse(recorded)) is not None:
            return refusal
        body = recorded.body
        if not isinstance(body, dict) or not isinstance(body.get("model"), str) or not body["model"]:
            return _json_error(_no_retry(400, "you must provide a model parameter"))
        texts = _embedding_inputs(body.get("input"))
        if isinstance(texts, str):
            return _json_error(_no_retry(400, texts))
        dim = body.get("dimensions", self.embedding_dim)
        if not isinstance(dim, int) or isinstance(dim, bool) or not 1 <= dim <= MAX_EMBEDDING_DIM:
            return _json_error(
                _no_retry(400, f"Invalid 'dimensions': {dim!r}; expected 1 to {MAX_EMBEDDING_DIM}.")
            )
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            return _json_error(
                _no_retry(400, f"Invalid 'encoding_format': {encoding!r}; use 'float' or 'base64'.")
            )
        data = []
        for index, text in enumerate(texts):
            vector = embedding_for(text, dim)
            if encoding == "base64":
                encoded: Any = base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
            else:
                encoded = vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(_tokens(t) for t in texts)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    def _model_entry(self, model: str) -> dict:
        return {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": "threadwise-emulator"}

    async def _list_models(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        if (refusal := self._refuse(recorded, raw_body_expected=False)) is not None:
            return refusal
        return web.json_response({"object": "list", "data": [self._model_entry(m) for m in self.models]})

    async def _get_model(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        if (refusal := self._refuse(recorded, raw_body_expected=False)) is not None:
            return refusal
        model = request.match_info["model"]
        if model not in self.models:
            return _json_error(_no_retry(404, f"The model '{model}' does not exist", code="model_not_found"))
        return web.json_response(self._model_entry(model))

    async def _not_found(self, request: web.Request) -> web.Response:
        await self._record(request)
        return _json_error(_no_retry(404, f"Invalid URL ({request.method} {request.path})"))


def _json_error(error: Error) -> web.Response:
    return web.json_response(_error_body(error), status=error.status, headers=dict(error.headers))


def _drop(request: web.Request) -> None:
    """Cut the connection without finishing the response, as a failing proxy would."""
    if request.transport is not None:
        request.transport.abort()


def _embedding_inputs(value: Any) -> list[str] | str:
    """The texts to embed, or what is wrong with ``input``."""
    if isinstance(value, str):
        value = [value]
    elif isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        value = [" ".join(map(str, value))]  # one pre-tokenised input
    if not isinstance(value, list) or not value:
        return "'input' must be a non-empty string or a non-empty array of strings or token arrays."
    texts = []
    for i, item in enumerate(value):
        if isinstance(item, list) and item and all(isinstance(v, int) for v in item):
            item = " ".join(map(str, item))
        if not isinstance(item, str) or not item:
            return f"Invalid 'input[{i}]': expected a non-empty string, got {item!r}."
        texts.append(item)
    return texts


def _completion(recorded: ModelRequest, reply: Text | ToolCalls) -> dict:
    content, calls, finish = _parts(reply)
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None, "annotations": []}
    if calls:
        message["tool_calls"] = [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json},
            }
            for call_id, call in calls
        ]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": recorded.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": _usage(_prompt_tokens(recorded.body), _completion_tokens(content, calls)),
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }


def _parts(reply: Text | ToolCalls) -> tuple[str | None, list[tuple[str, ToolCall]], str]:
    if isinstance(reply, Text):
        return reply.content, [], reply.finish_reason
    calls = [(c.id or f"call_{uuid.uuid4().hex[:24]}", c) for c in reply.calls]
    return reply.content, calls, "tool_calls"


def _completion_tokens(content: str | None, calls: list[tuple[str, ToolCall]]) -> int:
    return max(1, _tokens(content or "") + sum(_tokens(c.name + c.arguments_json) for _, c in calls))


def _chunks(recorded: ModelRequest, reply: Text | ToolCalls, include_usage: bool) -> list[dict]:
    """The SSE payloads OpenAI streams for this reply: role, content pieces, tool-call deltas, finish."""
    content, calls, finish = _parts(reply)
    base: dict[str, Any] = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": recorded.model,
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }
    if include_usage:
        base["usage"] = None  # OpenAI sends null on every chunk but the last

    def chunk(delta: dict, finish_reason: str | None = None) -> dict:
        return {
            **base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }

    chunk_chars = reply.chunk_chars if isinstance(reply, Text) else None
    pieces = _pieces(content or "", chunk_chars)
    deltas: list[dict] = []
    # The first delta carries the role; a text reply starts with empty content, a call with null.
    first: dict[str, Any] = {
        "role": "assistant",
        "content": "" if content is not None else None,
        "refusal": None,
    }
    deltas.extend({"content": piece} for piece in pieces)
    for index, (call_id, call) in enumerate(calls):
        deltas.append(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call_id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": ""},
                    }
                ]
            }
        )
        deltas.extend(
            {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
            for piece in _pieces(call.arguments_json, 8)
        )
    if deltas and "tool_calls" in deltas[0] and not pieces:
        first.update(deltas.pop(0))  # OpenAI folds the first call's header into the role chunk
    payloads = [chunk(first), *(chunk(d) for d in deltas), chunk({}, finish)]
    if include_usage:
        usage = _usage(_prompt_tokens(recorded.body), _completion_tokens(content, calls))
        payloads.append({**base, "choices": [], "usage": usage})
    return payloads
