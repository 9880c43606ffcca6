"""FakeOpenAI's HTTP plumbing: recording, models, the behaviour wrapper and the SSE writer.

``_OpenAIServer`` wraps each generating endpoint with the scripted status, delay, drop
and cancellation handling; FakeOpenAI (tests/fakes/openai_upstream.py) adds the answers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .background_server import _CALL, ReceivedRequest, _BackgroundServer, _Progress
from .openai_behaviour import Behaviour, _error, _error_body, _scripted_error

DEFAULT_MODELS = ("gpt-4o-mini",)


@dataclass(frozen=True)
class Cancellation:
    """A stream whose client went away before [DONE] was written."""

    request_index: int
    at: float
    chunks_sent: int
    completion_tokens_sent: int


class _OpenAIServer(_BackgroundServer):
    """What every FakeOpenAI endpoint shares; the endpoints themselves are subclass methods."""

    def __init__(self, *, name: str = "fake") -> None:
        super().__init__(name=name)
        self.models: list[str] = list(DEFAULT_MODELS)
        self.default = Behaviour()

    def _reset_settings(self) -> None:
        self.default = Behaviour()
        self.models = list(DEFAULT_MODELS)

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
