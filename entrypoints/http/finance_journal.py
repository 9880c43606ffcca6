"""Finance routes over the journal: trial balance and liabilities, live or as of a point (11.5)."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get

from entrypoints.http.auth import gateway
from entrypoints.http.context import json_response
from entrypoints.http.time_params import as_of_params
from projections.as_of import AsOf, AsOfResolver
from projections.journal_queries import JournalQueries


async def journal_point(request: Request) -> AsOf | None:
    """The as-of point a query names (``as_of`` or ``as_of_position``), or None for live.

    As finance.as_of_point, except that the resolver waits for the *journal* to reach the
    point: the journal may lag the balances read model (a journal-only rebuild, or a
    gateway upgraded to a version that adds it and still catching up)."""
    instant, positions = as_of_params(request)
    if instant is None and positions is None:
        return None
    gw = gateway(request)
    resolver = AsOfResolver(gw.db, gw.stores.max_positions, projection="journal")
    if positions is not None:
        return await asyncio.to_thread(resolver.at_positions, positions)
    return await asyncio.to_thread(resolver.at_time, instant)


async def _report(request: Request, name: str) -> Response:
    point = await journal_point(request)
    queries = JournalQueries(gateway(request).db)
    body: dict[str, Any] = await asyncio.to_thread(getattr(queries, name), point)
    if point is not None:
        body.update(point.public())
    return json_response(body)


@get("/finance/trial-balance")
async def trial_balance(request: Request) -> Response:
    """Debit, credit and balance per ledger account; ``total_micros`` is always 0."""
    return await _report(request, "trial_balance")


@get("/finance/liabilities")
async def liabilities(request: Request) -> Response:
    """Outstanding customer credit: total, by pool and by source of the credit."""
    return await _report(request, "liabilities")
