"""Per-request plumbing: request ids, credentials, bounded body reads, idempotent replays."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from application import envelope
from application.principals import KeyPrincipal, StaffPrincipal
from domain.errors import DomainError
from domain.ids import new_id

BODY_LIMIT = 10 * 1024 * 1024
READ_SLACK = 64 * 1024
MAX_JSON_DEPTH = 64
CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_decoder = msgspec.json.Decoder()


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Give every request ``req_<ULID>`` and return it as X-Request-ID and request-id."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        request_id = new_id("req")
        scope.setdefault("state", {})["request_id"] = request_id
        envelope.begin(request_id)  # events this request saves carry it (11.1)
        client_id = None
        for name, value in scope["headers"]:
            if name == b"x-client-request-id":
                text = value.decode("latin-1")
                client_id = text if CLIENT_REQUEST_ID.match(text) else None

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                # The handler may have renamed the request (an Idempotency-Key names it
                # after its command), so read it back rather than use the one made here.
                rid = scope["state"]["request_id"].encode()
                headers.append((b"x-request-id", rid))
                headers.append((b"request-id", rid))
                if client_id:
                    headers.append((b"x-client-request-id", client_id.encode()))
                message["headers"] = headers
            await send(message)

        await app(scope, receive, send_with_id)

    return middleware


def request_id(request: Request) -> str:
    return request.scope["state"]["request_id"]


def credential(request: Request, allow_x_api_key: bool) -> str | None:
    """The presented credential, refusing ambiguous or URL-borne ones (1.2)."""
    query = request.query_params
    if "key" in query or "api_key" in query:
        raise DomainError("credentials_in_url",
                          "credentials must be sent in a header, never in the URL")
    bearer = bearer_of(request.headers.get("authorization"))
    api_key = request.headers.get("x-api-key") if allow_x_api_key else None
    if bearer and api_key and bearer != api_key:
        raise DomainError("ambiguous_credentials",
                          "Authorization and x-api-key carry different credentials")
    return bearer or api_key


def bearer_of(authorization: str | None) -> str | None:
    """The credential of an Authorization header (``Bearer <key>``, or the bare value)."""
    if authorization is None:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else authorization.strip()


async def read_body(request: Request, limit: int = BODY_LIMIT) -> bytes:
    """Read at most limit + 64 KiB; anything larger is refused without reading on.

    The body is kept on the request so a second reader (a guard, then the handler) sees it.
    """
    state = request.scope.setdefault("state", {})
    if "raw_body" in state:
        return state["raw_body"]
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise DomainError("request_too_large",
                              f"the request body is larger than {limit} bytes")
        chunks.append(chunk)
    state["raw_body"] = b"".join(chunks)
    return state["raw_body"]


def parse_json(raw: bytes) -> Any:
    too_deep = DomainError("invalid_request",
                           f"the request body is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = _decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):  # msgspec raises the latter for bad UTF-8
        raise DomainError("invalid_json", "the request body is not valid UTF-8 JSON") from None
    except RecursionError:  # msgspec's own limit, far above ours
        raise too_deep from None
    if _deeper_than(value, MAX_JSON_DEPTH):
        raise too_deep
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """True when objects and arrays nest more than ``limit`` levels (1.8)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item \
            if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, dict | list))
    return False


def json_object(raw: bytes) -> dict:
    body = parse_json(raw) if raw else {}
    if not isinstance(body, dict):
        raise DomainError("invalid_request", "the request body must be a JSON object")
    return body


def json_response(payload: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    return Response(content=msgspec.json.encode(payload), status_code=status,
                    media_type="application/json", headers=headers or {})


def key_scope(principal: KeyPrincipal) -> str:
    return f"account:{principal.account_id}"


def staff_scope(principal: StaffPrincipal) -> str:
    return f"staff:{principal.user_id}"
