"""Response headers every reply carries, set once at the edge of the ASGI app (issue 9).

- no ``server`` header (the server's own banner is off in its config; this drops any the
  app or a library might add);
- ``x-content-type-options: nosniff`` on every response, so a browser never guesses an
  error body or a JSON reply into something executable;
- ``cache-control: no-store`` on routes whose replies carry a secret or account data, unless
  the route set its own (an SSE stream says ``no-cache``, which already forbids reuse):
  every ``/v1/*`` except the public model list, and ``/admin``, ``/finance``, ``/audit``
  except the public checkpoint keys;
- a JSON 500 in the 9.8 shape if anything below raises before a response started, in place
  of the server's plain-text "Internal Server Error".

It runs on every request, so the work is one pass over a handful of headers and one append.
"""

from __future__ import annotations

import logging

import msgspec
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from application.relay import StreamCut
from domain.ids import new_id

NOSNIFF = (b"x-content-type-options", b"nosniff")
NO_STORE = (b"cache-control", b"no-store")
_PRIVATE_PREFIXES = ("/v1/", "/admin", "/finance", "/audit")
_PUBLIC_PREFIXES = ("/v1/models", "/audit/public-keys")

logger = logging.getLogger("gatewayz.http")


def carries_secrets(path: str) -> bool:
    """Whether replies on this path may show a key, a token or an account's data."""
    return path.startswith(_PRIVATE_PREFIXES) and not path.startswith(_PUBLIC_PREFIXES)


def edge_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        no_store = carries_secrets(scope["path"])
        started = False

        async def send_hardened(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = []
                cache_set = False
                for header in message.get("headers", ()):
                    name = header[0].lower()
                    if name == b"server":
                        continue
                    cache_set = cache_set or name == b"cache-control"
                    headers.append(header)
                headers.append(NOSNIFF)
                if no_store and not cache_set:
                    headers.append(NO_STORE)
                message["headers"] = headers
            await send(message)

        try:
            await app(scope, receive, send_hardened)
        except Exception:
            if started:  # the response is under way: only the server can end it (it closes)
                raise
            logger.exception("unhandled error before a response started")
            await _internal_error(scope, send_hardened)

    return middleware


async def _internal_error(scope: Scope, send: Send) -> None:
    request_id = scope.get("state", {}).get("request_id") or new_id("req")
    body = msgspec.json.encode({"error": {
        "message": "the server failed to handle the request", "type": "server_error",
        "param": None, "code": "internal_error", "request_id": request_id}})
    rid = request_id.encode()
    await send({"type": "http.response.start", "status": 500, "headers": [
        (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
        (b"x-request-id", rid), (b"request-id", rid)]})
    await send({"type": "http.response.body", "body": body})


class QuietStreamCuts(logging.Filter):
    """A stream cut because its provider's was (application.relay.StreamCut) is how such a
    stream ends, not a server fault: the server's "Exception in ASGI application" is not
    logged for it (the request record has the outcome)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _caused_by_cut(record.exc_info[1] if record.exc_info else None, 0)


def _caused_by_cut(error: BaseException | None, depth: int) -> bool:
    """Whether a StreamCut is behind ``error``: Litestar re-raises it from a task group."""
    if error is None or depth > 8:
        return False
    if isinstance(error, StreamCut):
        return True
    if isinstance(error, BaseExceptionGroup):
        return any(_caused_by_cut(e, depth + 1) for e in error.exceptions)
    return _caused_by_cut(error.__cause__ or error.__context__, depth + 1)


def quiet_stream_cuts() -> None:
    for name in ("uvicorn.error", "litestar"):
        target = logging.getLogger(name)
        if not any(isinstance(f, QuietStreamCuts) for f in target.filters):
            target.addFilter(QuietStreamCuts())
