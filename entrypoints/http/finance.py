"""Finance routes: balances and statements, live or as of a past instant (6.3, 11.10)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import time

from litestar import Request, Response, get

from domain.errors import DomainError
from entrypoints.http.auth import gateway
from entrypoints.http.context import json_response
from entrypoints.http.time_params import as_of_params, optional_time
from projections.as_of import AsOf, AsOfResolver
from projections.ledger_queries import ledger_of, page_request

BALANCES_LIMIT = 50
BALANCES_MAX = 1000
_LIMIT = re.compile(r"[0-9]{1,4}")
_ACCOUNT = re.compile(r"[A-Za-z0-9_-]{1,64}")


async def as_of_point(request: Request) -> AsOf | None:
    """The as-of point a query names, or None for a live answer. Resolving may wait for
    the instant to settle or the projector to catch up (projections/as_of.py)."""
    instant, positions = as_of_params(request)
    if instant is None and positions is None:
        return None
    gw = gateway(request)
    resolver = AsOfResolver(gw.db, gw.stores.max_positions)
    if positions is not None:
        return await asyncio.to_thread(resolver.at_positions, positions)
    return await asyncio.to_thread(resolver.at_time, instant)


# One handler for both paths: the all-accounts list shares the single account's view, and
# the app's route list (entrypoints/http/app.py) then names it once.
@get(["/finance/accounts/{account_id:str}/balance", "/finance/balances"])
async def balance(request: Request, account_id: str | None = None) -> Response:
    if account_id is None:
        return await balances(request)
    point = await as_of_point(request)
    view = await asyncio.to_thread(gateway(request).balances.balance, account_id,
                                   int(time.time()), point)
    if view is None:
        raise DomainError("not_found", "no such account at that time", param="account_id")
    if point is not None:
        view.update(point.public())
    return json_response(view)


async def balances(request: Request) -> Response:
    """GET /finance/balances: every account's balance, by account id, a page at a time."""
    query = request.query_params
    limit, after = _balances_page(query.get("limit"), query.get("cursor"))
    point = await as_of_point(request)
    views, has_more = await asyncio.to_thread(gateway(request).balances.page,
                                              int(time.time()), point, after, limit)
    body = {"object": "list", "data": views, "has_more": has_more,
            "next_cursor": _cursor(views[-1]["account_id"]) if has_more else None}
    if point is not None:
        body.update(point.public())
    return json_response(body)


@get("/finance/accounts/{account_id:str}/statement")
async def statement(request: Request, account_id: str) -> Response:
    start, end = optional_time(request, "from"), optional_time(request, "to")
    query = request.query_params
    page = page_request(query.get("limit"), query.get("order"), query.get("cursor"))
    point = await as_of_point(request)
    gw = gateway(request)
    exists = await asyncio.to_thread(gw.balances.balance, account_id, int(time.time()), point)
    if exists is None:
        raise DomainError("not_found", "no such account at that time", param="account_id")
    result = await asyncio.to_thread(ledger_of(gw).page, account_id, page, start=start,
                                     end=end, point=point)
    where = point.public() if point is not None else {"as_of": None, "as_of_position": None}
    return json_response({"object": "list", "account_id": account_id, **where,
                          "balance_micros": exists["balance_micros"], **result})


def _cursor(account_id: str) -> str:
    raw = json.dumps({"v": 1, "after": account_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _balances_page(limit: str | None, cursor: str | None) -> tuple[int, str | None]:
    size = BALANCES_LIMIT
    if limit is not None:
        if not _LIMIT.fullmatch(limit) or not 1 <= int(limit) <= BALANCES_MAX:
            raise DomainError("invalid_request",
                              f"limit must be an integer from 1 to {BALANCES_MAX}", param="limit")
        size = int(limit)
    if cursor is None:
        return size, None
    try:
        if len(cursor) > 256:
            raise ValueError
        data = json.loads(base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_",
                                           validate=True))
        if (not isinstance(data, dict) or set(data) != {"v", "after"} or data["v"] != 1
                or not isinstance(data["after"], str) or not _ACCOUNT.fullmatch(data["after"])):
            raise ValueError
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise DomainError("invalid_request", "cursor is not a cursor this API returned",
                          param="cursor") from None
    return size, data["after"]
