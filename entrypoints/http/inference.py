"""Inference routes: POST /v1/chat/completions (9.1), and the serving path every inference
route shares: idempotency, cancellation on disconnect, JSON or stream."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from litestar import Request, Response, post
from litestar.response import Stream

from application import envelope
from application.anonymous import ANONYMOUS
from application.chat_request import ChatRequest, parse_chat
from application.completions_request import parse_legacy
from application.embeddings_request import parse_embeddings
from application.idempotency import request_id_for
from application.principals import KeyPrincipal
from entrypoints.http.auth import gateway
from entrypoints.http.context import (
    key_scope,
    parse_json,
    read_body,
    request_id,
)
from entrypoints.http.guards import key, key_of, key_or_anonymous
from entrypoints.http.idempotent import idempotency_key, idempotent, no_effect


async def serve_parsed(request: Request, parse: Callable[[object], ChatRequest]) -> Response:
    """An inference route: authenticate, read, parse in the route's format, serve."""
    principal = key_of(request)
    key = idempotency_key(request)
    raw = await read_body(request)
    return await serve(request, principal, key, raw, parse(parse_json(raw)))


@post("/v1/chat/completions", guards=[key_or_anonymous("inference:use")])
async def chat_completions(request: Request) -> Response:
    return await serve_parsed(request, parse_chat)


async def serve(request: Request, principal: KeyPrincipal, key: str | None, raw: bytes,
                chat: ChatRequest,
                after: Callable[[bytes], Awaitable[None]] | None = None) -> Response:
    """Run one parsed inference request through the use case and answer it. ``after`` sees
    a successful answer's bytes (a whole stream once it ended): Responses stores them."""
    gw = gateway(request)

    async def produce(command_id: str | None) -> Response:
        # With a key, the request is named after its command id (derived from the key and
        # attempt), so a duplicate of one attempt cannot place a second hold; that name is
        # the request id of this answer too (X-Request-ID, error bodies).
        if command_id is not None:
            command_id = request.scope["state"]["request_id"] = request_id_for(command_id)
            envelope.update(correlation_id=command_id)
        work = gw.anonymous.chat(request_id(request), chat) if principal is ANONYMOUS \
            else gw.inference.chat(request_id(request), chat, principal, command_id=command_id)
        result = await _unless_client_leaves(request, work)
        if result is None:  # 6.5: the client left before the answer; nothing is charged
            return Response(content=b"", status_code=499)
        if result.stream is None:
            if after is not None and result.status == 200:
                await after(result.body)
            return Response(content=result.body, status_code=result.status,
                            media_type="application/json", headers=result.headers)
        stream = result.stream if after is None else Tapped(result.stream, after)
        # With a key, idempotent() records the stream when it ends (never before).
        return Stream(stream, status_code=200, media_type="text/event-stream",
                      headers=result.headers)

    if key is None or principal is ANONYMOUS:  # anonymous use keeps no records at all
        return await produce(None)
    return await idempotent(gw.idempotency, key_scope(principal), key, raw, produce,
                            stream_succeeded=_stream_succeeded, released_on=_no_charge)


ENDINGS = (b"event: message_stop", b"event: response.completed", b"event: response.incomplete")


def _stream_succeeded(sent: bytes) -> bool:
    """Only a stream that reached its end (``[DONE]``, Anthropic's ``message_stop``, a
    finished Response) is stored; one ended by an error event was voided (no charge), so its
    key is released."""
    tail = sent.rstrip()
    last = tail[tail.rfind(b"\n\n") + 2:]
    return tail.endswith(b"[DONE]") or last.startswith(ENDINGS)


class Tapped:
    """A relayed stream whose bytes, once it ended as a success, go to ``after``."""

    def __init__(self, stream, after: Callable[[bytes], Awaitable[None]]) -> None:
        self.stream = stream
        self.after = after
        self.sent: list[bytes] = []

    def __aiter__(self) -> Tapped:
        return self

    async def __anext__(self) -> bytes:
        try:
            data = await self.stream.__anext__()
        except StopAsyncIteration:
            whole = b"".join(self.sent)
            if _stream_succeeded(whole):
                await self.after(whole)
            raise
        self.sent.append(data)
        return data

    async def aclose(self) -> None:
        await self.stream.aclose()


def _no_charge(error: BaseException) -> bool:
    """The use case voids its hold (no charge) before any error or cancellation leaves it."""
    import asyncio

    return no_effect(error) or isinstance(error, asyncio.CancelledError)


async def _unless_client_leaves(request: Request, work):
    """Run the use case, cancelling it (and so the upstream call) if the client disconnects
    before it answers; None then. The body has been read, so receive() only reports that.
    One watcher task per request; the work runs in the handler's own task."""
    import asyncio

    handler = asyncio.current_task()
    left = False

    async def watch() -> None:
        nonlocal left
        while (await request.receive())["type"] != "http.disconnect":
            pass
        left = True
        handler.cancel()

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if not left:
            raise
        handler.uncancel()
        return None
    finally:
        watcher.cancel()


@post("/v1/embeddings", guards=[key("inference:use")])
async def embeddings(request: Request) -> Response:
    """9.3: billed for input tokens through the same hold and settlement as chat."""
    return await serve_parsed(request, parse_embeddings)


@post("/v1/completions", guards=[key("inference:use")])
async def completions(request: Request) -> Response:
    """9.2: each prompt is sent as one chat request; one hold covers them all."""
    return await serve_parsed(request, parse_legacy)
