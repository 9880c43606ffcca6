"""Anthropic routes: POST /v1/messages and /v1/messages/count_tokens (9.6).

Same key, same hold and settlement as chat completions; errors in Anthropic's shape
(errors.anthropic_style) so the official SDK raises its own exception types.
"""

from __future__ import annotations

from dataclasses import replace

from litestar import Request, Response, post

from application.messages_request import parse_messages
from entrypoints.http.auth import gateway
from entrypoints.http.context import json_response, parse_json, read_body
from entrypoints.http.guards import key, key_of, key_or_anonymous
from entrypoints.http.inference import serve_parsed


def _with_headers(request: Request, body: object):
    return replace(parse_messages(body), anthropic_version=request.headers.get("anthropic-version", "")[:64],
                   anthropic_beta=request.headers.get("anthropic-beta", "")[:1000])


@post("/v1/messages", guards=[key_or_anonymous("inference:use")])
async def messages(request: Request) -> Response:
    return await serve_parsed(request, lambda body: _with_headers(request, body))


@post("/v1/messages/count_tokens", guards=[key("inference:use")])
async def count_tokens(request: Request) -> Response:
    """Never billed: no hold, no event. Exact when an Anthropic upstream counts it."""
    principal = key_of(request)
    raw = await read_body(request)
    body = parse_json(raw)
    if isinstance(body, dict) and body.get("max_tokens") is None:
        body = {**body, "max_tokens": 1}  # count_tokens takes no max_tokens
    chat = _with_headers(request, body)
    tokens, exact = await gateway(request).inference.count_tokens(chat, principal)
    headers = {} if exact else {"x-gatewayz-token-count": "estimated"}
    return json_response({"input_tokens": tokens}, headers=headers)
