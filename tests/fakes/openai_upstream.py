"""FakeOpenAI: an OpenAI-compatible upstream on 127.0.0.1 speaking the real wire format.

Serves POST /v1/chat/completions, /v1/completions (legacy) and /v1/embeddings, and
GET /v1/models[/{id}]. Each POST consumes one scripted ``Behaviour`` (else ``default``).
``_BackgroundServer`` is the thread-and-loop plumbing, shared with FakeAnthropic.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import socket
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

__all__ = ["Behaviour", "Cancellation", "FakeOpenAI", "ReceivedRequest"]

DEFAULT_MODELS = ("gpt-4o-mini",)

# A tool call has no prose to count, but a zero would make it look like an empty
# answer to billing code, so it is charged as one token.
TOOL_CALL_COMPLETION_TOKENS = 1

# The legacy completions endpoint's documented default for max_tokens.
LEGACY_DEFAULT_MAX_TOKENS = 16

EMBEDDING_DIMENSIONS = 8

# (type, code, message) per status, modelled on what api.openai.com returns,
# so that SDKs and the gateway's error mapping see realistic bodies.
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory",
          "Country, region, or territory not supported."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    408: ("timeout", None, "Request timed out."),
    409: ("invalid_request_error", None, "Conflict."),
    422: ("invalid_request_error", None, "Unprocessable entity."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request."),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
    504: ("server_error", None, "Gateway timeout."),
}

_WORD = re.compile(r"\s*\S+")


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    json: Any | None
    received_at: float


@dataclass(frozen=True)
class Behaviour:
    status: int = 200
    delay_before_headers: float = 0.0
    content: str | None = None
    chunk_interval: float = 0.0
    words_per_chunk: int = 1
    prompt_tokens: int | None = None
    report_usage: bool = True
    empty_stream: bool = False
    fail_mid_stream_after: int | None = None
    close_connection: bool = False
    # (name, arguments JSON) per parallel tool call; overrides the default tool choice.
    tool_calls: tuple[tuple[str, str], ...] = ()
    reasoning: str | None = None
    cached_tokens: int = 0
    # Only used on an error status: the retry-after header and the error body's fields.
    retry_after: int | None = None
    error_code: str | None = None
    error_param: str | None = None
    error_message: str | None = None
    # Sent on success responses only, e.g. ("x-request-id", "req_1"), ("set-cookie", "a=b").
    extra_headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Cancellation:
    """A stream whose client went away before [DONE] was written."""

    request_index: int
    at: float
    chunks_sent: int
    completion_tokens_sent: int


@dataclass(frozen=True)
class _Call:
    """What the recording middleware learnt about a request, for the handler."""

    index: int
    generation: int
    body: Any


# RequestKey only exists in newer aiohttp, which warns about plain string keys.
_CALL: Any = web.RequestKey("fake_call", _Call) if hasattr(web, "RequestKey") else "fake_call"


class _Progress:
    """Mutable stream bookkeeping, so the cancellation handler sees how far we got."""

    __slots__ = ("chunks", "tokens", "finished")

    def __init__(self) -> None:
        self.chunks = 0
        self.tokens = 0
        self.finished = False


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def _count_words(text: str) -> int:
    return len(text.split())


def _pieces(text: str) -> list[str]:
    """Split into words that keep their leading whitespace, so ''.join() is lossless."""
    pieces = _WORD.findall(text)
    rest = text[len("".join(pieces)):]
    if rest:
        if pieces:
            pieces[-1] += rest
        else:
            pieces = [rest]
    return pieces


def _groups(text: str, words_per_chunk: int) -> list[str]:
    pieces = _pieces(text)
    size = max(1, words_per_chunk)
    return ["".join(pieces[i:i + size]) for i in range(0, len(pieces), size)]


def _fragments(text: str, parts: int = 3) -> list[str]:
    """Split arguments JSON into up to ``parts`` raw fragments, as a model streams them."""
    size = max(1, -(-len(text) // parts))
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def _limit(body: dict[str, Any], *names: str) -> int | None:
    for name in names:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _error_body(status: int, message: str | None = None, *, code: str | None = None,
                param: str | None = None) -> dict[str, Any]:
    kind, default_code, default_message = _ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None,
                 f"Upstream returned HTTP {status}.")
    )
    return {"error": {"message": message or default_message, "type": kind, "param": param,
                      "code": code or default_code}}


def _error(status: int, message: str | None = None) -> web.Response:
    return web.json_response(_error_body(status, message), status=status)


def _scripted_error(behaviour: Behaviour) -> web.Response:
    headers = {}
    if behaviour.retry_after is not None:
        headers["retry-after"] = str(behaviour.retry_after)
    body = _error_body(behaviour.status, behaviour.error_message, code=behaviour.error_code,
                       param=behaviour.error_param)
    return web.json_response(body, status=behaviour.status, headers=headers)


def _dump(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


class _BackgroundServer:
    """An aiohttp app on 127.0.0.1 run by its own loop in a daemon thread.

    Holds what every fake shares: the recorded requests, the behaviour script, the
    cancellations and the waits on them. Subclasses build the app and set ``default``.
    """

    default: Any

    def __init__(self, *, name: str) -> None:
        self.name = name
        self.requests: list[ReceivedRequest] = []
        self.cancellations: list[Any] = []
        self._script: deque[Any] = deque()
        self._lock = threading.Lock()
        # Bumped by reset() so a stream left over from an earlier test cannot log a
        # cancellation into the next test's list.
        self._generation = 0
        self._port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "stopped"
        return f"{type(self).__name__}(name={self.name!r}, {where})"

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _make_app(self) -> web.Application:
        raise NotImplementedError

    def start(self) -> Any:
        if self._thread is not None:
            return self
        # Binding here, not in the thread, means the port is known and in use before
        # start() returns, so there is no race with anything else picking ports.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self._serve(sock))
            except BaseException as exc:  # handed to start()'s caller to raise
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        label = type(self).__name__
        thread = threading.Thread(target=run, name=f"{label}-{self.name}", daemon=True)
        thread.start()
        ready.wait()
        if failure:
            sock.close()
            thread.join()
            raise RuntimeError(f"{label} failed to start") from failure[0]
        self._thread = thread
        self._port = port
        return self

    async def _serve(self, sock: socket.socket) -> None:
        # handler_cancellation makes a client disconnect interrupt a handler that is
        # sleeping, so cancellations are seen at once rather than on the next write.
        runner = web.AppRunner(self._make_app(), handler_cancellation=True, access_log=None,
                               shutdown_timeout=0.5)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        self._runner = runner

    def stop(self) -> None:
        thread, loop, runner = self._thread, self._loop, self._runner
        if thread is None or loop is None:
            return
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = self._loop = self._runner = None
        self._port = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def script(self, *behaviours: Any) -> None:
        """Queue behaviours, one consumed per generating request; appends to queued ones."""
        with self._lock:
            self._script.extend(behaviours)

    def _reset_settings(self) -> None:
        """Restore ``default`` and the like; called under the lock."""

    def reset(self) -> None:
        """Forget requests, cancellations and the script; restore the default settings."""
        with self._lock:
            self._generation += 1
            self.requests.clear()
            self.cancellations.clear()
            self._script.clear()
            self._reset_settings()

    def wait_for_requests(self, count: int = 1, timeout: float = 2.0) -> list[ReceivedRequest]:
        self._wait(lambda: len(self.requests) >= count, timeout, f"{count} request(s)")
        with self._lock:
            return list(self.requests)

    def wait_for_cancellations(self, count: int = 1, timeout: float = 2.0) -> list[Any]:
        self._wait(lambda: len(self.cancellations) >= count, timeout, f"{count} cancellation(s)")
        with self._lock:
            return list(self.cancellations)

    def _wait(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{type(self).__name__}: no {what} within {timeout}s")
            time.sleep(0.005)

    def _next_behaviour(self) -> Any:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    def _requests_to(self, path: str) -> list[ReceivedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    async def _remember(self, request: web.Request) -> Any:
        """Record the request and tag it for its handler; returns the decoded JSON body."""
        received_at = time.monotonic()
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = ReceivedRequest(
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            json=body,
            received_at=received_at,
        )
        with self._lock:
            self.requests.append(record)
            request[_CALL] = _Call(len(self.requests) - 1, self._generation, body)
        return body

    def _add_cancellation(self, request: web.Request, make: Callable[[int], Any]) -> None:
        with self._lock:
            if request[_CALL].generation != self._generation:
                return
            self.cancellations.append(make(request[_CALL].index))

    @staticmethod
    def _drop(request: web.Request, progress: _Progress) -> web.StreamResponse:
        # The drop is ours, not the client's, so it must not be logged as a cancellation.
        progress.finished = True
        # close() rather than abort(): close flushes what was already written, so the
        # client really receives the first N chunks before the connection dies.
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=499)


class FakeOpenAI(_BackgroundServer):
    """OpenAI-compatible server in a background thread; see tests/fakes/fixtures.py."""

    def __init__(self, *, name: str = "fake") -> None:
        super().__init__(name=name)
        self.models: list[str] = list(DEFAULT_MODELS)
        self.default = Behaviour()

    def _reset_settings(self) -> None:
        self.default = Behaviour()
        self.models = list(DEFAULT_MODELS)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_post("/v1/chat/completions", self._generating(self._answer_chat))
        app.router.add_post("/v1/completions", self._generating(self._answer_legacy))
        app.router.add_post("/v1/embeddings", self._generating(self._answer_embeddings))
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model}", self._get_model)
        return app

    def chat_requests(self) -> list[ReceivedRequest]:
        return self._requests_to("/v1/chat/completions")

    def completion_requests(self) -> list[ReceivedRequest]:
        return self._requests_to("/v1/completions")

    def embedding_requests(self) -> list[ReceivedRequest]:
        return self._requests_to("/v1/embeddings")

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        await self._remember(request)
        try:
            return await handler(request)
        except web.HTTPException as exc:
            # aiohttp's own 404/405 are plain text; OpenAI always answers JSON.
            if exc.status < 400:
                raise
            body = _error_body(exc.status, f"Invalid URL ({request.method} {request.path})")
            body["error"]["code"] = None
            return web.json_response(body, status=exc.status)

    async def _list_models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list",
                                  "data": [self._model_card(m) for m in self.models]})

    async def _get_model(self, request: web.Request) -> web.Response:
        model = request.match_info["model"]
        if model not in self.models:
            return _error(404, f"The model '{model}' does not exist")
        return web.json_response(self._model_card(model))

    @staticmethod
    def _model_card(model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": 0, "owned_by": "fake"}

    def _generating(self, answer: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap an endpoint that consumes a behaviour: errors, delays, cancellations."""

        async def handler(request: web.Request) -> web.StreamResponse:
            behaviour = self._next_behaviour()
            body = request[_CALL].body
            streaming = isinstance(body, dict) and body.get("stream") is True
            progress = _Progress()
            try:
                if behaviour.close_connection:
                    return self._drop(request, progress)
                if behaviour.delay_before_headers > 0:
                    await asyncio.sleep(behaviour.delay_before_headers)
                if behaviour.status != 200:
                    return _scripted_error(behaviour)
                if not isinstance(body, dict) or not isinstance(body.get("model"), str):
                    return _error(400, "Request body must be JSON with a 'model'.")
                return await answer(request, behaviour, body, streaming, progress)
            except asyncio.CancelledError:
                if streaming and not progress.finished:
                    self._note_cancellation(request, progress)
                raise
            except ConnectionResetError:
                if streaming and not progress.finished:
                    self._note_cancellation(request, progress)
                # The client left; re-raising would only make aiohttp log a traceback.
                return web.Response(status=499)

        return handler

    def _note_cancellation(self, request: web.Request, progress: _Progress) -> None:
        self._add_cancellation(request, lambda index: Cancellation(
            request_index=index, at=time.monotonic(), chunks_sent=progress.chunks,
            completion_tokens_sent=progress.tokens))

    async def _answer_chat(self, request: web.Request, behaviour: Behaviour,
                           body: dict[str, Any], streaming: bool,
                           progress: _Progress) -> web.StreamResponse:
        if not isinstance(body.get("messages"), list):
            return _error(400, "Request body must be JSON with 'model' and 'messages'.")
        reply = _Reply.build(body, behaviour)
        if not streaming:
            return web.json_response(reply.completion(body["model"], behaviour.report_usage),
                                     headers=dict(behaviour.extra_headers))
        options = body.get("stream_options")
        include_usage = (isinstance(options, dict) and options.get("include_usage") is True
                         and behaviour.report_usage)
        chunk = reply.chunk_factory(body["model"], include_usage)
        deltas = [(_dump(chunk(delta)), tokens)
                  for delta, tokens in reply.deltas(behaviour.words_per_chunk)]
        return await self._stream(
            request, behaviour, progress, _dump(chunk(reply.first_delta())), deltas,
            _dump(chunk({}, finish_reason=reply.finish_reason)),
            _dump(chunk(None, usage=reply.usage())) if include_usage else None)

    async def _stream(self, request: web.Request, behaviour: Behaviour, progress: _Progress,
                      first: str | None, deltas: list[tuple[str, int]], last: str,
                      usage: str | None) -> web.StreamResponse:
        """Write an SSE stream: first, the counted deltas, last, usage, [DONE]."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                               "Cache-Control": "no-cache",
                                               **dict(behaviour.extra_headers)})
        await response.prepare(request)

        async def send(payload: str) -> None:
            await response.write(f"data: {payload}\n\n".encode())

        if not behaviour.empty_stream:
            if first is not None:
                await send(first)
            fail_after = behaviour.fail_mid_stream_after
            for index, (payload, tokens) in enumerate(deltas):
                if fail_after is not None and index >= fail_after:
                    return self._drop(request, progress)
                if index and behaviour.chunk_interval > 0:
                    await asyncio.sleep(behaviour.chunk_interval)
                await send(payload)
                progress.chunks += 1
                progress.tokens += tokens
            if fail_after is not None and progress.chunks >= fail_after:
                return self._drop(request, progress)
            await send(last)
            if usage is not None:
                await send(usage)
        await send("[DONE]")
        progress.finished = True
        await response.write_eof()
        return response

    async def _answer_legacy(self, request: web.Request, behaviour: Behaviour,
                             body: dict[str, Any], streaming: bool,
                             progress: _Progress) -> web.StreamResponse:
        prompt = body.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not isinstance(prompts, list) or not prompts \
                or not all(isinstance(p, str) for p in prompts):
            return _error(400, "'prompt' must be a string or a list of strings.")
        limit = _limit(body, "max_tokens")
        limit = LEGACY_DEFAULT_MAX_TOKENS if limit is None else limit
        texts, reasons = [], []
        for p in prompts:
            text = behaviour.content if behaviour.content is not None else "Echo: " + p
            texts.append("".join(_pieces(text)[:max(limit, 0)]))
            reasons.append("length" if _count_words(text) > limit else "stop")
        prompt_tokens = behaviour.prompt_tokens
        if prompt_tokens is None:
            prompt_tokens = max(1, sum(_count_words(p) for p in prompts))
        completion_tokens = sum(_count_words(t) for t in texts)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        head = {"id": f"cmpl-{uuid.uuid4().hex[:24]}", "object": "text_completion",
                "created": int(time.time()), "model": body["model"]}

        def choice(text: str, index: int, reason: str | None) -> dict[str, Any]:
            return {"text": text, "index": index, "logprobs": None, "finish_reason": reason}

        if not streaming:
            out = {**head, "choices": [choice(t, i, r) for i, (t, r)
                                       in enumerate(zip(texts, reasons, strict=True))]}
            if behaviour.report_usage:
                out["usage"] = usage
            return web.json_response(out, headers=dict(behaviour.extra_headers))
        deltas = []
        for i, (text, reason) in enumerate(zip(texts, reasons, strict=True)):
            deltas += [(_dump({**head, "choices": [choice(g, i, None)]}), _count_words(g))
                       for g in _groups(text, behaviour.words_per_chunk)]
            # Each prompt's choice ends with its own finish_reason chunk.
            deltas.append((_dump({**head, "choices": [choice("", i, reason)]}), 0))
        options = body.get("stream_options")
        include_usage = (isinstance(options, dict) and options.get("include_usage") is True
                         and behaviour.report_usage)
        usage_chunk = _dump({**head, "choices": [], "usage": usage}) if include_usage else None
        *middle, (last, _) = deltas
        return await self._stream(request, behaviour, progress, None, middle, last, usage_chunk)

    async def _answer_embeddings(self, request: web.Request, behaviour: Behaviour,
                                 body: dict[str, Any], streaming: bool,
                                 progress: _Progress) -> web.StreamResponse:
        inputs = _embedding_inputs(body.get("input"))
        if inputs is None:
            return _error(400, "'input' must be a non-empty string, list of strings, "
                               "list of tokens or list of token lists.")
        dimensions = body.get("dimensions", EMBEDDING_DIMENSIONS)
        if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1:
            return _error(400, "'dimensions' must be a positive integer.")
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, (text, _) in enumerate(inputs):
            vector = embedding_vector(text, dimensions)
            encoded: Any = vector
            if as_base64:
                encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = behaviour.prompt_tokens
        if tokens is None:
            tokens = sum(count for _, count in inputs)
        return web.json_response(
            {"object": "list", "data": data, "model": body["model"],
             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}},
            headers=dict(behaviour.extra_headers))


def embedding_vector(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """The fake's embedding of ``text``: deterministic, in [-1, 1), exact as float32.

    Each 16-bit slice of a SHA-256 stream becomes k/32768, a value float32 holds exactly,
    so base64 and float answers decode to the same numbers.
    """
    values: list[float] = []
    block = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{block}:{text}".encode()).digest()
        values += [(v - 32768) / 32768 for v in struct.unpack(">16H", digest)]
        block += 1
    return values[:dimensions]


def _embedding_inputs(raw: Any) -> list[tuple[str, int]] | None:
    """(text to hash, token count) per input; None when the input is not valid."""
    def tokens(value: Any) -> bool:
        return isinstance(value, list) and bool(value) and all(
            isinstance(t, int) and not isinstance(t, bool) for t in value)

    if isinstance(raw, str):
        raw = [raw]
    if tokens(raw):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        return None
    out = []
    for item in raw:
        if isinstance(item, str) and item:
            out.append((item, _count_words(item)))
        elif tokens(item):
            out.append((" ".join(map(str, item)), len(item)))
        else:
            return None
    return out


@dataclass(frozen=True)
class _Reply:
    """What the assistant says for one chat request, independent of stream or not."""

    id: str
    created: int
    content: str | None
    reasoning: str | None
    # (id, name, arguments JSON) per tool call.
    tool_calls: tuple[tuple[str, str, str], ...]
    finish_reason: str
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    reasoning_tokens: int

    @classmethod
    def build(cls, body: dict[str, Any], behaviour: Behaviour) -> _Reply:
        messages = [m for m in body["messages"] if isinstance(m, dict)]
        prompt_tokens = behaviour.prompt_tokens
        if prompt_tokens is None:
            prompt_tokens = max(1, sum(_count_words(_text_of(m.get("content")))
                                       for m in messages))
        reasoning = behaviour.reasoning
        reasoning_tokens = _count_words(reasoning or "")
        common = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()),
                  "prompt_tokens": prompt_tokens, "cached_tokens": behaviour.cached_tokens,
                  "reasoning": reasoning, "reasoning_tokens": reasoning_tokens}

        calls = behaviour.tool_calls or _default_tool_call(body, messages)
        if calls:
            return cls(content=None, finish_reason="tool_calls",
                       tool_calls=tuple((f"call_{uuid.uuid4().hex[:24]}", name, arguments)
                                        for name, arguments in calls),
                       completion_tokens=TOOL_CALL_COMPLETION_TOKENS * len(calls)
                       + reasoning_tokens, **common)

        content = behaviour.content
        if content is None:
            # After a tool result, answer from it, so a tool round trip terminates.
            last = messages[-1] if messages else {}
            source = last if last.get("role") == "tool" else next(
                (m for m in reversed(messages) if m.get("role") == "user"), {})
            content = "Echo: " + _text_of(source.get("content"))
        finish_reason = "stop"
        limit = _limit(body, "max_completion_tokens", "max_tokens")
        # Reasoning tokens count against the same budget, as with OpenAI's o-series.
        if limit is not None and limit - reasoning_tokens < _count_words(content):
            content = "".join(_pieces(content)[:max(limit - reasoning_tokens, 0)])
            finish_reason = "length"
        return cls(content=content, tool_calls=(), finish_reason=finish_reason,
                   completion_tokens=_count_words(content) + reasoning_tokens, **common)

    def usage(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }

    @staticmethod
    def _tool_call(call: tuple[str, str, str], arguments: str) -> dict[str, Any]:
        call_id, name, _ = call
        return {"id": call_id, "type": "function",
                "function": {"name": name, "arguments": arguments}}

    def completion(self, model: str, report_usage: bool) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.content, "refusal": None}
        if self.reasoning is not None:
            message["reasoning_content"] = self.reasoning
        if self.tool_calls:
            message["tool_calls"] = [self._tool_call(c, c[2]) for c in self.tool_calls]
        out: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": self.finish_reason}],
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }
        if report_usage:
            out["usage"] = self.usage()
        return out

    def first_delta(self) -> dict[str, Any]:
        if self.tool_calls:
            return {"role": "assistant", "content": None, "refusal": None,
                    "tool_calls": [{"index": 0, **self._tool_call(self.tool_calls[0], "")}]}
        return {"role": "assistant", "content": "", "refusal": None}

    def deltas(self, words_per_chunk: int) -> list[tuple[dict[str, Any], int]]:
        """Each delta after the first with the completion tokens it carries."""
        out = [({"reasoning_content": text}, _count_words(text))
               for text in _groups(self.reasoning or "", words_per_chunk)]
        for index, call in enumerate(self.tool_calls):
            if index:
                # Every later call opens with its own id/name chunk, arguments "".
                out.append(({"tool_calls": [{"index": index, **self._tool_call(call, "")}]}, 0))
            for number, fragment in enumerate(_fragments(call[2])):
                out.append(({"tool_calls": [{"index": index,
                                             "function": {"arguments": fragment}}]},
                            0 if number else TOOL_CALL_COMPLETION_TOKENS))
        if not self.tool_calls:
            out += [({"content": text}, _count_words(text))
                    for text in _groups(self.content or "", words_per_chunk)]
        return out

    def chunk_factory(self, model: str, include_usage: bool) -> Callable[..., dict[str, Any]]:
        def chunk(delta: dict[str, Any] | None, *, finish_reason: str | None = None,
                  usage: dict[str, Any] | None = None) -> dict[str, Any]:
            out: dict[str, Any] = {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": "fp_fake",
                # The usage chunk is the one chunk with no choices at all.
                "choices": [] if delta is None else [
                    {"index": 0, "delta": delta, "logprobs": None,
                     "finish_reason": finish_reason}],
            }
            if include_usage:
                out["usage"] = usage
            return out

        return chunk


def _default_tool_call(body: dict[str, Any],
                       messages: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    """With tools on offer, call the chosen (else first) one, unless a result just came in."""
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not isinstance(tools, list) or not tools or choice == "none":
        return ()
    if messages and messages[-1].get("role") == "tool":
        return ()
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return ((str(choice["function"].get("name", "tool")), "{}"),)
    first = tools[0] if isinstance(tools[0], dict) else {}
    function = first.get("function") if isinstance(first.get("function"), dict) else {}
    return ((str(function.get("name", "tool")), "{}"),)
