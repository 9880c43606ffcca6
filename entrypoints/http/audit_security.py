"""GET /audit/security-events: security events by time, account and kind (11.3, 12)."""

from __future__ import annotations

import asyncio

from litestar import Request, Response, get

from domain.errors import DomainError
from entrypoints.http.auth import gateway
from entrypoints.http.context import json_response
from entrypoints.http.guards import staff
from entrypoints.http.time_params import optional_time
from projections.ledger_queries import page_request
from projections.security import KINDS, SecurityQueries


@get("/audit/security-events", guards=[staff("audit:read")])
async def list_security_events(request: Request) -> Response:
    query = request.query_params
    start, end = optional_time(request, "from"), optional_time(request, "to")
    kind = query.get("kind")
    if kind is not None and kind not in KINDS.values():
        raise DomainError("invalid_request",
                          f"kind must be one of {', '.join(sorted(KINDS.values()))}",
                          param="kind")
    account_id = query.get("account_id") or None
    page = page_request(query.get("limit"), query.get("order"), query.get("cursor"))
    result = await asyncio.to_thread(SecurityQueries(gateway(request).db).page, page,
                                     start=start, end=end, account_id=account_id, kind=kind)
    return json_response({"object": "list", **result})
