"""Inference routes: POST /v1/chat/completions and GET /v1/models (9.1, 9.5)."""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.response import Stream

from application import envelope
from application.catalog import ECHO_MODEL
from application.chat_request import parse_chat
from application.idempotency import request_id_for
from entrypoints.http.auth import gateway, key_principal
from entrypoints.http.context import (
    json_response,
    key_scope,
    parse_json,
    read_body,
    request_id,
)
from entrypoints.http.idempotent import idempotency_key, idempotent, no_effect


@post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    gw = gateway(request)
    principal = key_principal(request, "inference:use")
    key = idempotency_key(request)
    raw = await read_body(request)
    chat = parse_chat(parse_json(raw))

    async def produce(command_id: str | None) -> Response:
        # With a key, the request is named after its command id (derived from the key and
        # attempt), so a duplicate of one attempt cannot place a second hold; that name is
        # the request id of this answer too (X-Request-ID, error bodies).
        if command_id is not None:
            command_id = request.scope["state"]["request_id"] = request_id_for(command_id)
            envelope.update(correlation_id=command_id)
        result = await _unless_client_leaves(request, gw.inference.chat(
            request_id(request), chat, principal, command_id=command_id))
        if result is None:  # 6.5: the client left before the answer; nothing is charged
            return Response(content=b"", status_code=499)
        if result.stream is None:
            return Response(content=result.body, status_code=result.status,
                            media_type="application/json", headers=result.headers)
        # With a key, idempotent() records the stream when it ends (never before).
        return Stream(result.stream, status_code=200, media_type="text/event-stream",
                      headers=result.headers)

    if key is None:
        return await produce(None)
    return await idempotent(gw.idempotency, key_scope(principal), key, raw, produce,
                            stream_succeeded=_stream_succeeded, released_on=_no_charge)


def _stream_succeeded(sent: bytes) -> bool:
    """Only a stream that reached ``[DONE]`` is stored; one ended by an error event was voided
    (no charge), so its key is released for a retry."""
    return sent.rstrip().endswith(b"[DONE]")


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


@get("/v1/models")
async def list_models(request: Request) -> Response:
    gw = gateway(request)
    ids = [ECHO_MODEL, *gw.catalog_view.model_ids()]
    data = [{"id": model_id, "object": "model", "created": 0,
             "owned_by": model_id.split("/", 1)[0]} for model_id in ids]
    return json_response({"object": "list", "data": data})

