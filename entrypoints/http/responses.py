"""Responses routes (9.4): POST /v1/responses, GET and DELETE /v1/responses/{id}.

Served through chat with the same hold and settlement; a response is stored (unless
``store`` is false) once it has been answered in full, under the caller's account.
"""

from __future__ import annotations

import asyncio

import msgspec
from litestar import Request, Response, delete, get, post

from application.responses_exchange import parse_response_request
from entrypoints.http.auth import gateway
from entrypoints.http.context import json_response, parse_json, read_body
from entrypoints.http.guards import key, key_of
from entrypoints.http.idempotent import idempotency_key
from entrypoints.http.inference import serve

_decode = msgspec.json.Decoder().decode
_FINAL = (b"event: response.completed\ndata: ", b"event: response.incomplete\ndata: ")


def _final_response(sent: bytes) -> dict | None:
    """The Response of a stream's last event, or of a JSON answer."""
    for marker in _FINAL:
        at = sent.rfind(marker)
        if at >= 0:
            end = sent.find(b"\n\n", at)
            payload = _decode(sent[at + len(marker):end if end >= 0 else None])
            return payload.get("response") if isinstance(payload, dict) else None
    payload = _decode(sent)
    return payload if isinstance(payload, dict) and payload.get("object") == "response" \
        else None


@post("/v1/responses", guards=[key("inference:use")])
async def create_response(request: Request) -> Response:
    principal = key_of(request)
    key = idempotency_key(request)
    raw = await read_body(request)
    body = parse_json(raw)
    service = gateway(request).responses
    history: list[dict] = []
    if isinstance(body, dict) and body.get("previous_response_id") is not None:
        history = await asyncio.to_thread(service.history, principal.account_id,
                                          body["previous_response_id"])
    chat = parse_response_request(body, history)

    async def store(sent: bytes) -> None:
        answer = _final_response(sent)
        if answer is not None:
            await asyncio.to_thread(service.remember, principal.account_id, chat.body, answer,
                                    history)

    return await serve(request, principal, key, raw, chat, after=store)


@get("/v1/responses/{response_id:str}", guards=[key("inference:use")])
async def get_response(request: Request, response_id: str) -> Response:
    principal = key_of(request)
    service = gateway(request).responses
    return json_response(await asyncio.to_thread(service.get, principal.account_id,
                                                 response_id))


@delete("/v1/responses/{response_id:str}", status_code=200, guards=[key("inference:use")])
async def delete_response(request: Request, response_id: str) -> Response:
    principal = key_of(request)
    service = gateway(request).responses
    return json_response(await asyncio.to_thread(service.delete, principal.account_id,
                                                 response_id))
