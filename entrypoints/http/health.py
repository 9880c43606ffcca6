"""Liveness and readiness (8.7): /health is always 200; /health/ready is 503 when billed
traffic cannot be served."""

from __future__ import annotations

import asyncio

from litestar import Request, Response, get

from entrypoints.http.auth import gateway
from entrypoints.http.context import json_response


@get("/health")
async def health(request: Request) -> Response:
    gw = gateway(request)
    ready = await asyncio.to_thread(gw.check_ready)
    # 1.12's gatewayz_rate_limiter_fallback_active, until /metrics exists (issue 12).
    limiter = {"fallback_active": gw.limiter.fallback_active}
    return json_response({"status": "ok" if all(ready.values()) else "degraded",
                          "checks": ready, "rate_limiter": limiter})


@get("/health/ready")
async def health_ready(request: Request) -> Response:
    ready = await asyncio.to_thread(gateway(request).check_ready)
    # Billed traffic needs the event store, a live group-commit writer and a projector that
    # keeps up (else holds are never released); 503 lets a load balancer route around us.
    status = 200 if all(ready.get(k, True) for k in ("event_store", "writer", "projector")) \
        else 503
    return json_response({"status": "ready" if status == 200 else "not_ready",
                          "checks": ready}, status)
