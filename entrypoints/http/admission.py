"""Admission of an authenticated key (1.2 check 8, 1.10): its lifetime request quota, then
its rate limits. Runs in the key guard, after the credential, allowlist and scope checks.

The verdict's headers and concurrency slot stay on the request state: the /v1 edge
(limits.py) puts the headers on whatever reply follows and frees the slot when it ends.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from litestar.connection import ASGIConnection

from application.access import check_model_allowed
from application.feed import recorded_at
from application.principals import KeyPrincipal
from domain.errors import DomainError
from domain.rate_limits import profile_for
from entrypoints.http.context import key_scope, parse_json, read_body
from entrypoints.http.idempotent import idempotency_key
from entrypoints.http.limits import RATE_HEADERS, RATE_LEASE

_MESSAGES = {"rate_limit_exceeded": "this key is over its rate limit; retry after the "
                                    "Retry-After interval",
             "concurrency_limit_exceeded": "this key has its maximum of requests in "
                                           "flight; retry when one has ended"}


RATE_VERDICT = "rate_verdict"
USE_NOTE_S = 60.0  # last_used_at is written at most once per 60 s per key (1.2)
_noted: dict[str, float] = {}
_pending: set[asyncio.Task] = set()


def _note_use(gw, key_id: str) -> None:
    """Record the key's last use off the request's path: at most one write per key and
    minute from this worker (the row's own condition holds it across workers)."""
    now = time.monotonic()
    if now - _noted.get(key_id, -USE_NOTE_S) < USE_NOTE_S:
        return
    if len(_noted) > 100_000:  # bounded: forgetting only costs one more write
        _noted.clear()
    _noted[key_id] = now
    moment = gw.clock.now()
    task = asyncio.get_running_loop().create_task(asyncio.to_thread(
        gw.access_queries.note_key_used, key_id, recorded_at(moment),
        recorded_at(moment - timedelta(seconds=USE_NOTE_S))))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def _model_first(connection: ASGIConnection, principal: KeyPrincipal) -> None:
    """1.2's check 7 before 8: a key limited to some models asking for another is refused
    before its quota and rate limits are touched. Only such keys read the body here (it is
    kept for the handler); the model is checked again where it is resolved."""
    if not principal.key.allowed_models or connection.scope["method"] != "POST":
        return
    body = parse_json(await read_body(connection))  # type: ignore[arg-type]
    model = body.get("model") if isinstance(body, dict) else None
    if isinstance(model, str):
        gw = connection.app.state.gateway
        check_model_allowed(principal.key, gw.inference.resolver.canonical(model))


async def admit(connection: ASGIConnection, principal: KeyPrincipal) -> None:
    gw = connection.app.state.gateway
    key = principal.key
    _note_use(gw, key.key_id)
    if key.max_requests is not None:
        # Counted from the request records (durable facts), so it may lag by the requests
        # still in flight; only keys with a quota pay for this read.
        used = await asyncio.to_thread(gw.access_queries.requests_used, key.key_id)
        if used >= key.max_requests:
            raise DomainError("key_request_quota_exhausted",
                              f"this key has used its {key.max_requests} requests")
    # A key's own limits were checked against its plan when they were written (only an
    # admin may raise them), so they apply as stored; on a restricted account they may only
    # lower the restricted profile, else a key set before the restriction would escape it.
    await _model_first(connection, principal)
    idem = idempotency_key(connection)  # type: ignore[arg-type]  # bounded, or 400
    if idem is not None and await asyncio.to_thread(gw.idempotency.counted,
                                                    key_scope(principal), idem):
        return  # a retry of a request already counted: replayed or refused, not re-counted
    profile = profile_for(key.plan, restricted=key.restricted, explicit=key.account_limits,
                          key_limits=key.rate_limits, key_limits_admin_set=not key.restricted)
    verdict = await gw.limiter.admit_key(key.key_id, profile)
    state = connection.scope["state"]
    state[RATE_VERDICT] = (profile, verdict)  # GET /v1/limits shows it
    state[RATE_HEADERS] = verdict.headers
    state[RATE_LEASE] = verdict.lease
    if not verdict.allowed:
        code = verdict.code or "rate_limit_exceeded"
        raise DomainError(code, _MESSAGES.get(code, _MESSAGES["rate_limit_exceeded"]))
