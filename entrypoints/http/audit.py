"""Auditor routes (11.6-11.8, 11.13): the feed, streams, chained entries, checkpoints,
public keys, schemas, projection status and verification; and the owners' audit commands."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

from litestar import Request, Response, get, post

from application.event_schemas import schemas
from application.feed import CONTEXTS
from domain.errors import DomainError
from entrypoints.http.auth import gateway
from entrypoints.http.context import json_response
from entrypoints.http.guards import staff
from entrypoints.http.time_params import optional_time
from projections.audit_export import export_bundle
from projections.audit_keys import AuditKeyQueries
from projections.audit_queries import ENTRY_FILTERS, AuditQueries


def _queries(request: Request) -> AuditQueries:
    gw = gateway(request)
    return AuditQueries(gw.db, gw.stores)


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise DomainError("invalid_request", f"{name} must be an integer", param=name) from None
    if not low <= value <= high:
        raise DomainError("invalid_request", f"{name} must be from {low} to {high}",
                          param=name)
    return value


@get("/audit/events", guards=[staff("audit:read")])
async def events(request: Request) -> Response:
    context = request.query_params.get("context", "accounts")
    if context not in CONTEXTS:
        raise DomainError("invalid_request", f"context must be one of {', '.join(CONTEXTS)}",
                          param="context")
    page = await asyncio.to_thread(
        _queries(request).feed, context, _int(request, "from_position", 1, 0, 2**62),
        _int(request, "limit", 100, 1, 1000), request.query_params.get("stream_type"),
        request.query_params.get("type"))
    return json_response(page)


@get("/audit/streams/{stream_id:str}", guards=[staff("audit:read")])
async def stream(request: Request, stream_id: str) -> Response:
    as_of = optional_time(request, "as_of", allow_future=False)
    found = await asyncio.to_thread(_queries(request).stream, stream_id[:200], as_of)
    if found is None:
        raise DomainError("not_found", "no such stream at that time", param="stream_id")
    return json_response(found)


@get("/audit/entries", guards=[staff("audit:read")])
async def entries(request: Request) -> Response:
    filters = {name: request.query_params.get(name, "")[:200] for name in ENTRY_FILTERS}
    page = await asyncio.to_thread(
        _queries(request).entries, _int(request, "from_seq", 1, 1, 2**62),
        _int(request, "limit", 100, 1, 1000), filters, optional_time(request, "from"),
        optional_time(request, "to"))
    return json_response(page)


@get("/audit/entries/{seq:int}", guards=[staff("audit:read")])
async def entry(request: Request, seq: int) -> Response:
    found = await asyncio.to_thread(_queries(request).entry, seq)
    if found is None:
        raise DomainError("not_found", "no audit entry with that seq", param="seq")
    return json_response(found)


@get("/audit/checkpoints", guards=[staff("audit:read")])
async def checkpoints(request: Request) -> Response:
    data = await asyncio.to_thread(_queries(request).checkpoints)
    return json_response({"object": "list", "data": data})


@get("/audit/checkpoints/{seq:int}", guards=[staff("audit:read")])
async def checkpoint(request: Request, seq: int) -> Response:
    found = await asyncio.to_thread(_queries(request).checkpoints, seq)
    if not found:
        raise DomainError("not_found", "no signed checkpoint at that seq", param="seq")
    return json_response(found[0])


@get("/audit/public-keys")
async def public_keys(request: Request) -> Response:
    keys = await asyncio.to_thread(AuditKeyQueries(gateway(request).db).keys)
    return json_response({"object": "list", "data": keys})


@get("/audit/projections", guards=[staff("audit:read")])
async def projections(request: Request) -> Response:
    data = await asyncio.to_thread(_queries(request).projections)
    return json_response({"object": "list", "data": data})


@get("/audit/schemas", guards=[staff("audit:read")])
async def event_schemas(request: Request) -> Response:
    return json_response({"object": "list", "data": schemas()})


@post("/audit/verify", guards=[staff("audit:verify")])
async def verify(request: Request) -> Response:
    """Export the trail as a bundle and run the offline verifier over it: the same check
    an auditor runs with ``gatewayz audit verify``."""
    gw = gateway(request)
    report = await asyncio.to_thread(_verify_now, gw)
    return json_response(report)


def _verify_now(gw) -> dict:
    from entrypoints.audit_verifier import verify_bundle

    with tempfile.TemporaryDirectory(prefix="gatewayz-audit-") as scratch:
        gw.audit.sign_pending()
        export_bundle(gw.stores, gw.db, gw.clock, Path(scratch))
        return json.loads(verify_bundle(Path(scratch)).to_json())


@post("/admin/audit/checkpoints", guards=[staff("owner")])
async def write_checkpoint(request: Request) -> Response:
    gw = gateway(request)

    def run() -> dict:
        seq = gw.audit.note(force=True)
        gw.audit.sign_pending()
        return {"checkpoint_seq": seq}

    return json_response(await asyncio.to_thread(run), 201)


@post("/admin/audit/signing-keys/rotate", guards=[staff("owner")])
async def rotate_signing_key(request: Request) -> Response:
    key_id = await asyncio.to_thread(gateway(request).audit.rotate)
    return json_response({"key_id": key_id}, 201)
