"""Request intake at the ASGI edge (spec 1.8): the per-worker in-flight cap, the body
deadline and CORS for /v1.

- At most ``max_in_flight`` requests run in one worker; the next gets 503 ``overloaded``
  with ``Retry-After: 1`` before anything reads its body or looks up its key, so a flood
  cannot queue unbounded work (and memory) behind the ones being served.
- A body must be complete within ``body_deadline_s`` of the request's head: a client that
  trickles its body is answered 408 and its connection closed; no handler ever sees a
  partial body, so no hold is placed for it. (The head itself has its own 10 s deadline
  in the HTTP protocol, edge_protocol.py.)
- CORS on ``/v1/*`` for any origin without credentials (browser playgrounds call the API
  directly); preflights cached 600 s. Staff routes get no CORS headers at all, so a
  browser never lets another site read them.

Litestar's CORS configuration is app-wide; this one must stop at /v1, hence a small
middleware rather than the framework's.
"""

from __future__ import annotations

import asyncio
import os
import time

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from domain.errors import DomainError
from domain.ids import new_id
from entrypoints.http.errors import error_body

MAX_IN_FLIGHT = 1000
BODY_DEADLINE_S = 30.0
CORS_MAX_AGE = b"600"
_METHODS = b"GET, POST, PUT, PATCH, DELETE, OPTIONS"
_ALLOWED_HEADERS = (b"authorization, x-api-key, content-type, idempotency-key, "
                    b"anthropic-version, anthropic-beta, x-client-request-id, openai-beta")
# Headers a browser script may read from a /v1 reply: ids, limits and the gateway's own.
_EXPOSED = (b"x-request-id, request-id, retry-after, x-ratelimit-limit, x-ratelimit-remaining, "
            b"x-ratelimit-reset, x-ratelimit-limit-requests, x-ratelimit-remaining-requests, "
            b"x-ratelimit-reset-requests, x-ratelimit-limit-tokens, "
            b"x-ratelimit-remaining-tokens, x-ratelimit-reset-tokens, ratelimit, "
            b"ratelimit-policy, x-gatewayz-ratelimit-scope, x-gatewayz-attempts, "
            b"x-gatewayz-overhead-ms, x-gatewayz-cost-micros, x-gatewayz-provider")
_CORS = ((b"access-control-allow-origin", b"*"), (b"access-control-expose-headers", _EXPOSED))


class BodyTimeout(DomainError):
    """The body did not arrive in time: 408, and the connection closed. A DomainError so
    that Litestar's error mapping answers it when a handler was reading the body."""

    def __init__(self, deadline_s: float) -> None:
        super().__init__("request_timeout",
                         f"the request body was not complete within {deadline_s:g} s")


def settings_from_env() -> tuple[int, float]:
    env = os.environ
    return (int(env.get("GATEWAYZ_MAX_IN_FLIGHT", MAX_IN_FLIGHT)),
            float(env.get("GATEWAYZ_BODY_DEADLINE_S", BODY_DEADLINE_S)))


def intake_middleware(app: ASGIApp, max_in_flight: int = MAX_IN_FLIGHT,
                      body_deadline_s: float = BODY_DEADLINE_S) -> ASGIApp:
    in_flight = 0

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal in_flight
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        cors = scope["path"].startswith("/v1/")
        if cors and scope["method"] == "OPTIONS" and _header(scope, b"origin") is not None:
            await _preflight(send)
            return
        if in_flight >= max_in_flight:
            await _refuse(scope, send, 503, "overloaded",
                          "this worker is serving its maximum of requests; retry shortly",
                          [(b"retry-after", b"1")])
            return
        in_flight += 1
        started = False
        deadline = time.monotonic() + body_deadline_s
        body_done = False

        timed_out = False

        async def timed_receive() -> Message:
            nonlocal body_done, timed_out
            if body_done:
                return await receive()  # only a disconnect can come now: no deadline
            try:
                async with asyncio.timeout_at(_loop_deadline(deadline)):
                    message = await receive()
            except TimeoutError:
                timed_out = True
                raise BodyTimeout(body_deadline_s) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def send_with_cors(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                extra = list(_CORS) if cors else []
                if timed_out:  # the rest of a trickled body must not be read as a request
                    extra.append((b"connection", b"close"))
                if extra:
                    message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        try:
            await app(scope, timed_receive, send_with_cors)
        except BodyTimeout as error:  # read outside a handler (no error mapping there)
            if started:
                raise
            await _refuse(scope, send_with_cors, 408, error.code, error.message, [])
        finally:
            in_flight -= 1

    return middleware


def _loop_deadline(monotonic_deadline: float) -> float:
    loop = asyncio.get_running_loop()
    return loop.time() + (monotonic_deadline - time.monotonic())


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


async def _preflight(send: Send) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": [
        (b"access-control-allow-origin", b"*"),
        (b"access-control-allow-methods", _METHODS),
        (b"access-control-allow-headers", _ALLOWED_HEADERS),
        (b"access-control-max-age", CORS_MAX_AGE), (b"vary", b"origin")]})
    await send({"type": "http.response.body", "body": b""})


async def _refuse(scope: Scope, send: Send, status: int, code: str, message: str,
                  extra: list[tuple[bytes, bytes]]) -> None:
    """A JSON error in the 9.8 shape, written here because no handler runs for it."""
    request_id = scope.get("state", {}).get("request_id") or new_id("req")
    path = scope["path"]
    body = error_body(request_id, code, message, status, path,
                      anthropic=path.startswith("/v1/messages"))
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
        *extra]})
    await send({"type": "http.response.body", "body": body})
