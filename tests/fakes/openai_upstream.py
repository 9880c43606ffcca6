"""FakeOpenAI: an OpenAI-compatible upstream on 127.0.0.1 speaking the real wire format."""

from __future__ import annotations

import asyncio
import json
import re
import socket
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


def _error_body(status: int, message: str | None = None) -> dict[str, Any]:
    kind, code, default_message = _ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None,
                 f"Upstream returned HTTP {status}.")
    )
    return {"error": {"message": message or default_message, "type": kind, "param": None,
                      "code": code}}


def _error(status: int, message: str | None = None) -> web.Response:
    return web.json_response(_error_body(status, message), status=status)


def _dump(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


class FakeOpenAI:
    """OpenAI-compatible server in a background thread; see tests/fakes/fixtures.py."""

    def __init__(self, *, name: str = "fake") -> None:
        self.name = name
        self.models: list[str] = list(DEFAULT_MODELS)
        self.default = Behaviour()
        self.requests: list[ReceivedRequest] = []
        self.cancellations: list[Cancellation] = []
        self._script: deque[Behaviour] = deque()
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
        return f"FakeOpenAI(name={self.name!r}, {where})"

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeOpenAI is not started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAI:
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

        thread = threading.Thread(target=run, name=f"FakeOpenAI-{self.name}", daemon=True)
        thread.start()
        ready.wait()
        if failure:
            sock.close()
            thread.join()
            raise RuntimeError("FakeOpenAI failed to start") from failure[0]
        self._thread = thread
        self._port = port
        return self

    async def _serve(self, sock: socket.socket) -> None:
        app = web.Application(middlewares=[self._record])
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model}", self._get_model)
        # handler_cancellation makes a client disconnect interrupt a handler that is
        # sleeping, so cancellations are seen at once rather than on the next write.
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None,
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

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours, one consumed per chat request; appends to any queued ones."""
        with self._lock:
            self._script.extend(behaviours)

    def reset(self) -> None:
        """Forget requests, cancellations and the script; restore default and models."""
        with self._lock:
            self._generation += 1
            self.requests.clear()
            self.cancellations.clear()
            self._script.clear()
            self.default = Behaviour()
            self.models = list(DEFAULT_MODELS)

    def chat_requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == "/v1/chat/completions"]

    def wait_for_requests(self, count: int = 1, timeout: float = 2.0) -> list[ReceivedRequest]:
        self._wait(lambda: len(self.requests) >= count, timeout, f"{count} request(s)")
        with self._lock:
            return list(self.requests)

    def wait_for_cancellations(self, count: int = 1, timeout: float = 2.0) -> list[Cancellation]:
        self._wait(lambda: len(self.cancellations) >= count, timeout, f"{count} cancellation(s)")
        with self._lock:
            return list(self.cancellations)

    @staticmethod
    def _wait(done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"FakeOpenAI: no {what} within {timeout}s")
            time.sleep(0.005)

    def _next_behaviour(self) -> Behaviour:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
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

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        behaviour = self._next_behaviour()
        body = request[_CALL].body
        streaming = isinstance(body, dict) and body.get("stream") is True
        progress = _Progress()
        try:
            return await self._answer(request, behaviour, body, streaming, progress)
        except asyncio.CancelledError:
            if streaming and not progress.finished:
                self._note_cancellation(request, progress)
            raise
        except ConnectionResetError:
            if streaming and not progress.finished:
                self._note_cancellation(request, progress)
            # The client left; re-raising would only make aiohttp log a traceback.
            return web.Response(status=499)

    def _note_cancellation(self, request: web.Request, progress: _Progress) -> None:
        with self._lock:
            if request[_CALL].generation != self._generation:
                return
            self.cancellations.append(Cancellation(
                request_index=request[_CALL].index,
                at=time.monotonic(),
                chunks_sent=progress.chunks,
                completion_tokens_sent=progress.tokens,
            ))

    async def _answer(self, request: web.Request, behaviour: Behaviour, body: Any,
                      streaming: bool, progress: _Progress) -> web.StreamResponse:
        if behaviour.close_connection:
            return self._drop(request, progress)
        if behaviour.delay_before_headers > 0:
            await asyncio.sleep(behaviour.delay_before_headers)
        if behaviour.status != 200:
            return _error(behaviour.status)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) \
                or not isinstance(body.get("model"), str):
            return _error(400, "Request body must be JSON with 'model' and 'messages'.")

        reply = _Reply.build(body, behaviour)
        if not streaming:
            return web.json_response(reply.completion(body["model"], behaviour.report_usage))
        return await self._stream(request, body, behaviour, reply, progress)

    @staticmethod
    def _drop(request: web.Request, progress: _Progress) -> web.StreamResponse:
        # The drop is ours, not the client's, so it must not be logged as a cancellation.
        progress.finished = True
        # close() rather than abort(): close flushes what was already written, so the
        # client really receives the first N chunks before the connection dies.
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=499)

    async def _stream(self, request: web.Request, body: dict[str, Any], behaviour: Behaviour,
                      reply: _Reply, progress: _Progress) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)

        async def send(payload: str) -> None:
            await response.write(f"data: {payload}\n\n".encode())

        if behaviour.empty_stream:
            await send("[DONE]")
            progress.finished = True
            await response.write_eof()
            return response

        options = body.get("stream_options")
        include_usage = (isinstance(options, dict) and options.get("include_usage") is True
                         and behaviour.report_usage)
        chunk = reply.chunk_factory(body["model"], include_usage)

        await send(_dump(chunk(reply.first_delta())))
        for index, (delta, tokens) in enumerate(reply.deltas(behaviour.words_per_chunk)):
            if behaviour.fail_mid_stream_after is not None \
                    and index >= behaviour.fail_mid_stream_after:
                return self._drop(request, progress)
            if index and behaviour.chunk_interval > 0:
                await asyncio.sleep(behaviour.chunk_interval)
            await send(_dump(chunk(delta)))
            progress.chunks += 1
            progress.tokens += tokens
        if behaviour.fail_mid_stream_after is not None \
                and progress.chunks >= behaviour.fail_mid_stream_after:
            return self._drop(request, progress)
        await send(_dump(chunk({}, finish_reason=reply.finish_reason)))
        if include_usage:
            await send(_dump(chunk(None, usage=reply.usage())))
        await send("[DONE]")
        progress.finished = True
        await response.write_eof()
        return response


@dataclass(frozen=True)
class _Reply:
    """What the assistant says for one request, independent of stream or not."""

    id: str
    created: int
    content: str | None
    tool_name: str | None
    tool_call_id: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int

    @classmethod
    def build(cls, body: dict[str, Any], behaviour: Behaviour) -> _Reply:
        messages = [m for m in body["messages"] if isinstance(m, dict)]
        prompt_tokens = behaviour.prompt_tokens
        if prompt_tokens is None:
            prompt_tokens = max(1, sum(_count_words(_text_of(m.get("content")))
                                       for m in messages))
        common = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()),
                  "tool_call_id": f"call_{uuid.uuid4().hex[:24]}",
                  "prompt_tokens": prompt_tokens}

        tools = body.get("tools")
        if isinstance(tools, list) and tools:
            first = tools[0] if isinstance(tools[0], dict) else {}
            function = first.get("function") if isinstance(first.get("function"), dict) else {}
            return cls(content=None, tool_name=str(function.get("name", "tool")),
                       finish_reason="tool_calls",
                       completion_tokens=TOOL_CALL_COMPLETION_TOKENS, **common)

        content = behaviour.content
        if content is None:
            last_user = next((m for m in reversed(messages) if m.get("role") == "user"), {})
            content = "Echo: " + _text_of(last_user.get("content"))
        finish_reason = "stop"
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        if isinstance(limit, int) and not isinstance(limit, bool) \
                and limit < _count_words(content):
            content = "".join(_pieces(content)[:max(limit, 0)])
            finish_reason = "length"
        return cls(content=content, tool_name=None, finish_reason=finish_reason,
                   completion_tokens=_count_words(content), **common)

    def usage(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }

    def _tool_call(self, arguments: str) -> dict[str, Any]:
        return {"id": self.tool_call_id, "type": "function",
                "function": {"name": self.tool_name, "arguments": arguments}}

    def completion(self, model: str, report_usage: bool) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.content, "refusal": None}
        if self.tool_name is not None:
            message["tool_calls"] = [self._tool_call("{}")]
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
        if self.tool_name is not None:
            return {"role": "assistant", "content": None,
                    "tool_calls": [{"index": 0, **self._tool_call("")}], "refusal": None}
        return {"role": "assistant", "content": "", "refusal": None}

    def deltas(self, words_per_chunk: int) -> list[tuple[dict[str, Any], int]]:
        """Each content delta with the completion tokens it carries."""
        if self.tool_name is not None:
            return [({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]},
                     TOOL_CALL_COMPLETION_TOKENS)]
        pieces = _pieces(self.content or "")
        size = max(1, words_per_chunk)
        out = []
        for start in range(0, len(pieces), size):
            text = "".join(pieces[start:start + size])
            out.append(({"content": text}, _count_words(text)))
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
