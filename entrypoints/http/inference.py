"""Inference routes: POST /v1/chat/completions and GET /v1/models (9.1, 9.5)."""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.response import Stream

from application.catalog import ECHO_MODEL
from application.chat_request import parse_chat
from entrypoints.http.auth import gateway, key_principal
from entrypoints.http.context import (
    idempotency_key,
    idempotent,
    json_response,
    key_scope,
    parse_json,
    read_body,
    request_id,
)


@post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    gw = gateway(request)
    principal = key_principal(request, "inference:use")
    key = idempotency_key(request)
    raw = await read_body(request)
    chat = parse_chat(parse_json(raw))

    async def produce() -> Response:
        result = await _unless_client_leaves(
            request, gw.inference.chat(request_id(request), chat, principal))
        if result is None:  # 6.5: the client left before the answer; nothing is charged
            return Response(content=b"", status_code=499)
        if result.stream is None:
            return Response(content=result.body, status_code=result.status,
                            media_type="application/json", headers=result.headers)
        stream = result.stream
        if key is not None:
            stream = _recorded(stream, gw, key_scope(principal), key)
        return Stream(stream, status_code=200, media_type="text/event-stream",
                      headers=result.headers)

    if key is None:
        return await produce()
    return await idempotent(gw.idempotency, key_scope(principal), key, raw, produce)


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


async def _recorded(stream, gw, scope: str, key: str):
    """Keep the assembled stream so a replay of the same key returns what was sent."""
    import asyncio

    sent: list[bytes] = []
    completed = False
    try:
        async for data in stream:
            sent.append(data)
            yield data
        completed = True
    finally:
        if completed:
            await asyncio.to_thread(gw.idempotency.complete, scope, key, 200,
                                    "text/event-stream",
                                    b"".join(sent).decode("utf-8", "replace"))
        else:
            gw.idempotency.release(scope, key)


@get("/v1/models")
async def list_models(request: Request) -> Response:
    gw = gateway(request)
    ids = [ECHO_MODEL, *gw.catalog_view.model_ids()]
    data = [{"id": model_id, "object": "model", "created": 0,
             "owned_by": model_id.split("/", 1)[0]} for model_id in ids]
    return json_response({"object": "list", "data": data})

