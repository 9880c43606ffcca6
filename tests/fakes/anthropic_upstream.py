"""FakeAnthropic: an Anthropic Messages API upstream on 127.0.0.1 speaking the real wire format.

Serves POST /v1/messages (JSON or SSE), POST /v1/messages/count_tokens and
GET /v1/models[/{id}], behind the real API's key (x-api-key, or Authorization: Bearer as
anthropic>=2 sends it) and anthropic-version checks.
What a message request gets is scripted with ``Behaviour`` (tests/fakes/anthropic_reply.py);
requests are validated as the real API does, so a gateway that, say, drops thinking
blocks from a tool loop is refused with the real 400.

    with FakeAnthropic() as fake:
        fake.script(Behaviour(tool_uses=(("get_weather", {"city": "Paris"}),)))
        client = anthropic.Anthropic(base_url=fake.root_url, api_key=fake.api_key)
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .anthropic_reply import Behaviour, Reply, input_tokens, new_id, validate
from .openai_upstream import _CALL, ReceivedRequest, _BackgroundServer, _dump, _Progress

__all__ = ["Behaviour", "Cancellation", "FakeAnthropic", "ReceivedRequest"]

DEFAULT_API_KEY = "sk-ant-upstream-secret-1234"
DEFAULT_MODELS = ("claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001")
# 2026-10-21 is what the installed official SDK (anthropic 2.15) sends.
API_VERSIONS = ("2023-06-01", "2023-01-01", "2026-10-21")

# (error.type, default message) per status, as listed in the API's errors reference.
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: ("permission_error", "Your API key does not have permission to use the specified "
                              "resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate "
                              "limit."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}

_REQUEST_ID: Any = web.RequestKey("request_id", str) if hasattr(web, "RequestKey") \
    else "request_id"


@dataclass(frozen=True)
class Cancellation:
    """A stream whose client went away before message_stop was written."""

    request_index: int
    at: float
    events_sent: int
    output_tokens_sent: int


def _error_type(status: int) -> tuple[str, str]:
    return _ERRORS.get(status, ("api_error" if status >= 500 else "invalid_request_error",
                                f"Upstream returned HTTP {status}."))


def _error(request: web.Request, status: int, message: str | None = None,
           headers: dict[str, str] | None = None) -> web.Response:
    kind, default = _error_type(status)
    body = {"type": "error", "error": {"type": kind, "message": message or default},
            "request_id": request[_REQUEST_ID]}
    return web.json_response(body, status=status, headers=headers)


class FakeAnthropic(_BackgroundServer):
    """Anthropic Messages API in a background thread; see tests/fakes/anthropic_fixtures.py."""

    def __init__(self, *, name: str = "fake-anthropic", api_key: str = DEFAULT_API_KEY) -> None:
        super().__init__(name=name)
        self.api_key = api_key
        self.models: list[str] = list(DEFAULT_MODELS)
        self.default = Behaviour()

    def _reset_settings(self) -> None:
        self.default = Behaviour()
        self.models = list(DEFAULT_MODELS)

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    @property
    def root_url(self) -> str:
        """base_url without /v1: what the official SDK takes as its base_url."""
        return f"http://127.0.0.1:{self.port}"

    def message_requests(self) -> list[ReceivedRequest]:
        return self._requests_to("/v1/messages")

    def count_tokens_requests(self) -> list[ReceivedRequest]:
        return self._requests_to("/v1/messages/count_tokens")

    def image_blocks(self) -> list[dict[str, Any]]:
        """Every image block the message requests carried, as received, in order."""
        return [block for r in self.message_requests() if isinstance(r.json, dict)
                for m in r.json.get("messages") or () if isinstance(m, dict)
                for block in (m.get("content") if isinstance(m.get("content"), list) else ())
                if isinstance(block, dict) and block.get("type") == "image"]

    def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        app.on_response_prepare.append(self._stamp)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model}", self._get_model)
        return app

    @staticmethod
    async def _stamp(request: web.Request, response: web.StreamResponse) -> None:
        # Every answer, errors and streams included, names its request like the real API.
        if _REQUEST_ID in request:
            response.headers["request-id"] = request[_REQUEST_ID]

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Record the request, then the real API's header checks, then the handler."""
        request[_REQUEST_ID] = new_id("req_011C", 20)
        await self._remember(request)
        key = request.headers.get("x-api-key")
        if key is None and request.headers.get("authorization", "").startswith("Bearer "):
            # anthropic>=2 sends an API key as a bearer token, so the API takes both.
            key = request.headers["authorization"].removeprefix("Bearer ")
        if key is None:
            return _error(request, 401, "x-api-key header is required")
        if key != self.api_key:
            return _error(request, 401, "invalid x-api-key")
        version = request.headers.get("anthropic-version")
        if version is None:
            return _error(request, 400, "anthropic-version: header is required")
        if version not in API_VERSIONS:
            return _error(request, 400, f"anthropic-version: invalid version {version!r}")
        try:
            return await handler(request)
        except web.HTTPException as exc:
            # aiohttp's own 404/405 are plain text; the API always answers JSON.
            if exc.status < 400:
                raise
            return _error(request, exc.status, "Not found" if exc.status == 404 else None)

    def _model_card(self, model: str) -> dict[str, Any]:
        return {"type": "model", "id": model, "display_name": model.replace("-", " ").title(),
                "created_at": "2025-01-01T00:00:00Z", "lifecycle": "active"}

    async def _list_models(self, request: web.Request) -> web.Response:
        models = list(self.models)
        after = request.query.get("after_id")
        if after in models:
            models = models[models.index(after) + 1:]
        limit = int(request.query.get("limit", "20"))
        page = models[:limit]
        return web.json_response({"data": [self._model_card(m) for m in page],
                                  "has_more": len(models) > limit,
                                  "first_id": page[0] if page else None,
                                  "last_id": page[-1] if page else None})

    async def _get_model(self, request: web.Request) -> web.Response:
        model = request.match_info["model"]
        if model not in self.models:
            return _error(request, 404, f"model: {model}")
        return web.json_response(self._model_card(model))

    async def _count_tokens(self, request: web.Request) -> web.Response:
        body = request[_CALL].body
        problem = validate(body, counting=True)
        if problem:
            return _error(request, 400, problem)
        override = self.default.input_tokens
        return web.json_response({"input_tokens": override if override is not None
                                  else input_tokens(body)})

    async def _messages(self, request: web.Request) -> web.StreamResponse:
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
        self._add_cancellation(request, lambda index: Cancellation(
            request_index=index, at=time.monotonic(), events_sent=progress.chunks,
            output_tokens_sent=progress.tokens))

    async def _answer(self, request: web.Request, behaviour: Behaviour, body: Any,
                      streaming: bool, progress: _Progress) -> web.StreamResponse:
        if behaviour.close_connection:
            return self._drop(request, progress)
        if behaviour.delay_before_headers > 0:
            await asyncio.sleep(behaviour.delay_before_headers)
        problem = validate(body)
        if problem:
            return _error(request, 400, problem)
        if behaviour.status != 200:
            headers = {}
            # The real API always says when to come back after a 429.
            if behaviour.retry_after is not None or behaviour.status == 429:
                headers["retry-after"] = str(behaviour.retry_after or 0)
            return _error(request, behaviour.status, behaviour.error_message, headers)
        reply = Reply.build(body, behaviour, request.headers.get("anthropic-beta", ""))
        if not streaming:
            return web.json_response(reply.message())
        return await self._stream(request, behaviour, reply, progress)

    async def _stream(self, request: web.Request, behaviour: Behaviour, reply: Reply,
                      progress: _Progress) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)

        async def send(event: str, data: dict[str, Any]) -> None:
            await response.write(f"event: {event}\ndata: {_dump(data)}\n\n".encode())

        for event, data, tokens in reply.events(behaviour.chunk_words, behaviour.ping):
            if progress.chunks == behaviour.fail_mid_stream_after:
                return self._drop(request, progress)
            if progress.chunks == behaviour.error_event_after:
                kind, message = _error_type(529)
                await send("error", {"type": "error",
                                     "error": {"type": kind, "message": message},
                                     "request_id": request[_REQUEST_ID]})
                break
            if event == "content_block_delta" and behaviour.chunk_interval > 0:
                await asyncio.sleep(behaviour.chunk_interval)
            await send(event, data)
            progress.chunks += 1
            progress.tokens += tokens
        progress.finished = True
        await response.write_eof()
        return response
