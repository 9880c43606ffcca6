"""Admin probe of one (provider, model) pair now (3.1): ``POST /admin/health/probes`` with
``{"provider": slug, "model": id}`` answers the probe's result, recorded like a scheduled
one (uptime, routing health, incidents). It sits in the /admin group (admin guard).

Not an idempotent command: a probe changes no account's state, and a repeated one is just
another measurement, so no Idempotency-Key is needed. The probe runs on this event loop,
on the gateway's pooled provider client, within the prober's in-flight limit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, post

from application.feed import recorded_at
from domain.errors import DomainError
from domain.probe_schedule import ProbeResult
from entrypoints.http.auth import gateway
from entrypoints.http.context import json_object, json_response, read_body

BODY_LIMIT = 16 * 1024  # two names


def result_json(result: ProbeResult) -> dict[str, Any]:
    return {"object": "probe_result", "provider": result.provider, "model": result.model_id,
            "ok": result.ok, "status": result.status, "latency_ms": result.latency_ms,
            "error_class": result.error_class, "attempts": result.attempts,
            "tier": result.tier, "at": recorded_at(datetime.fromtimestamp(result.at, UTC))}


def _name(body: dict, field: str, limit: int) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise DomainError("invalid_request", f"{field} is required (at most {limit} "
                          "characters)", param=field)
    return value.strip()


@post("/admin/health/probes", status_code=200)
async def probe_pair(request: Request) -> Response:
    gw = gateway(request)
    body = json_object(await read_body(request, limit=BODY_LIMIT))
    provider = _name(body, "provider", 100)
    # An alias or a native id names the catalog model it stands for, as on /v1.
    model = gw.inference.resolver.canonical(_name(body, "model", 256))
    result = await gw.prober.probe_now(provider, model)
    return json_response(result_json(result))


ROUTES = [probe_pair]
