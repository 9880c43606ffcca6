"""Rate limits at the edge of /v1 (spec 1.9-1.12): layer 1 before any key lookup, the
headers of every limited reply, the concurrency slot freed when the reply ends.

Layer 2 (per key) is admitted by the key guard (guards.py) once the key is known; its
verdict and slot are left on the request state, and this middleware puts the verdict's
headers on the response, whatever produced it (handler, error mapping), and frees the slot
when the body or stream has ended. The limiter never touches money.
"""

from __future__ import annotations

import os
from ipaddress import ip_network

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from application.rate_limiting import RateLimiter
from application.security_events import Origin, SecurityRecorder
from domain.client_address import client_ip
from domain.ids import new_id
from domain.key_format import credential_kind
from domain.rate_limit_clients import in_networks, parse_networks
from entrypoints.http.context import bearer_of
from entrypoints.http.errors import error_body

RATE_HEADERS = "rate_headers"
RATE_LEASE = "rate_lease"
AUTHENTICATED = "authenticated"
CLIENT_IP = "client_ip"


def trusted_proxies() -> tuple:
    """GATEWAYZ_TRUSTED_PROXIES: CIDRs whose X-Forwarded-For is believed (1.6)."""
    raw = os.environ.get("GATEWAYZ_TRUSTED_PROXIES", "")
    return tuple(ip_network(part.strip(), strict=False) for part in raw.split(",")
                 if part.strip())


def datacenter_ranges():
    """GATEWAYZ_DATACENTER_RANGES: CIDRs whose anonymous callers get 60/min (1.9)."""
    raw = os.environ.get("GATEWAYZ_DATACENTER_RANGES", "")
    return parse_networks(part for part in raw.split(",") if part.strip())


def _presented(scope: Scope) -> str | None:
    """The credential as the guard will read it (Bearer, else x-api-key), without checks."""
    authorization = api_key = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value.decode("latin-1")
        elif name == b"x-api-key":
            api_key = value.decode("latin-1")
    return bearer_of(authorization) or api_key


def limits_middleware(app: ASGIApp, limiter: RateLimiter, security: SecurityRecorder) -> ASGIApp:
    trusted = trusted_proxies()
    datacenters = datacenter_ranges()

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        forwarded = next((v.decode("latin-1") for n, v in scope["headers"]
                          if n == b"x-forwarded-for"), None)
        peer = scope.get("client")
        ip = client_ip(peer[0] if peer else None, forwarded, trusted) or "unknown"
        state[CLIENT_IP] = ip
        presented = _presented(scope)
        anonymous = presented is None
        datacenter = bool(datacenters) and in_networks(ip, datacenters)
        # A well-formed key is authenticated whatever its address's budget (1.9), so only
        # requests without one ask the limiter before the guard runs.
        if anonymous or credential_kind(presented) is None:
            verdict = await limiter.check_ip(ip, anonymous, datacenter)
        else:
            verdict = None
        if verdict is not None and not verdict.allowed:
            # Over its budget and nothing worth a lookup: refused before any key lookup. A
            # well-formed key still goes on, and is served when it is valid (1.9).
            await _refuse(scope, send, verdict.headers)
            limiter.note_status(429)
            # Still a failed authentication (missing or malformed), counted per address and
            # minute (11.3): a lockout shows in the security events, not as a flood of them.
            security.refused("missing_api_key" if anonymous else "invalid_api_key", presented,
                             "*", Origin(f"{scope['method']} {scope['path'][:200]}", ip))
            return
        status = 500

        async def send_limited(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = state.get(RATE_HEADERS)
                if extra:
                    message["headers"] = _merged(message.get("headers", ()), extra)
            await send(message)

        try:
            await app(scope, receive, send_limited)
        finally:
            await limiter.release(state.pop(RATE_LEASE, None))
            if not state.get(AUTHENTICATED):
                await limiter.count_unauthenticated(ip, anonymous, datacenter)
            limiter.note_status(status)

    return middleware


def _merged(headers, extra: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """The response's headers with the limiter's; the limiter's win (Retry-After is its)."""
    names = {name.lower().encode() for name, _ in extra}
    kept = [h for h in headers if h[0].lower() not in names]
    return kept + [(name.lower().encode(), value.encode()) for name, value in extra]


async def _refuse(scope: Scope, send: Send, headers: list[tuple[str, str]]) -> None:
    request_id = scope.get("state", {}).get("request_id") or new_id("req")
    path = scope["path"]
    body = error_body(request_id, "rate_limit_exceeded",
                      "too many unauthenticated requests from this address; retry later",
                      429, path, anthropic=path.startswith("/v1/messages"))
    await send({"type": "http.response.start", "status": 429, "headers": [
        (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
        *[(n.lower().encode(), v.encode()) for n, v in headers]]})
    await send({"type": "http.response.body", "body": body})
