"""Statement lines of one account, a page at a time (6.3, 11.10).

Lines are ordered by (at, line_id) (unique: line_id is the table's key). A page is one
keyset query with LIMIT over the index ledger_lines (account_id, at, line_id, amount_micros)
— never a read of the whole account. Each line's ``balance_micros`` is the account's running
balance *after* that line, whatever the page, order or filters: the same statement sums every
line ordered before the page's oldest line (an index-only SUM) and adds a window SUM over the
page, so the page and its opening balance come from one snapshot on PostgreSQL as on SQLite.

The cursor is opaque to clients: urlsafe base64 (unpadded) of JSON naming the order and the
(at, line_id) of the last line returned. It carries no filters: a client repeats ``from``,
``to`` and ``as_of`` (or ``as_of_position``) with it.

As of a point (projections/as_of.py) a statement keeps only the lines whose (context,
position) is at or before it, in its page and in the opening balance alike: a line can sort
before another by ``at`` yet have committed after it. A cursor only positions a read within the caller's own account,
so it needs no signature; anything that does not decode to that shape is a 400.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from domain.errors import DomainError
from projections.as_of import AsOf

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
ORDERS = ("desc", "asc")
_CURSOR_MAX = 1024
_STAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
_INT = re.compile(r"[0-9]{1,7}")


@dataclass(frozen=True)
class PageRequest:
    limit: int = DEFAULT_LIMIT
    order: str = "desc"
    after: tuple[str, str] | None = None  # (at, line_id) of the last line already returned


def encode_cursor(order: str, at: str, line_id: str) -> str:
    raw = json.dumps({"v": 1, "o": order, "at": at, "id": line_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str, str]:
    """(order, at, line_id) of a cursor this module issued; DomainError 400 otherwise."""
    try:
        if not cursor or len(cursor) > _CURSOR_MAX:
            raise ValueError
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_",
                               validate=True)
        data = json.loads(raw)
        if not isinstance(data, dict) or set(data) != {"v", "o", "at", "id"}:
            raise ValueError
        order, at, line_id = data["o"], data["at"], data["id"]
        if (data["v"] != 1 or order not in ORDERS or not isinstance(at, str)
                or not _STAMP.fullmatch(at) or not isinstance(line_id, str)
                or not 0 < len(line_id) <= 300):
            raise ValueError
    except (ValueError, binascii.Error, UnicodeDecodeError):  # json errors are ValueErrors
        raise DomainError("invalid_request", "cursor is not a cursor this API returned",
                          param="cursor") from None
    return order, at, line_id


def page_request(limit: str | None, order: str | None, cursor: str | None) -> PageRequest:
    """Validate the query parameters ``limit``, ``order`` and ``cursor`` of a statement."""
    size = DEFAULT_LIMIT
    if limit is not None:
        if not _INT.fullmatch(limit) or not 1 <= int(limit) <= MAX_LIMIT:
            raise DomainError("invalid_request",
                              f"limit must be an integer from 1 to {MAX_LIMIT}", param="limit")
        size = int(limit)
    if order is not None and order not in ORDERS:
        raise DomainError("invalid_request", "order must be 'desc' or 'asc'", param="order")
    if cursor is None:
        return PageRequest(size, order or "desc")
    cursor_order, at, line_id = decode_cursor(cursor)
    if order is not None and order != cursor_order:
        raise DomainError("invalid_request", "the cursor belongs to the other order",
                          param="cursor")
    return PageRequest(size, cursor_order, (at, line_id))


class LedgerQueries:
    """Paginated reads of ledger_lines."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def page(self, account_id: str, request: PageRequest | None = None, *,
             as_of: str | None = None, start: str | None = None,
             end: str | None = None, point: AsOf | None = None) -> dict[str, Any]:
        """One page of the account's lines with ``at`` <= as_of, >= start and < end, and
        (given ``point``) only those folded into the state as of that point.

        Returns ``{"data", "has_more", "next_cursor"}``; data is newest first for "desc".
        """
        request = request or PageRequest()
        clauses, params = ["account_id = %s"], [account_id]
        for sql, value in (("at <= %s", as_of), ("at >= %s", start), ("at < %s", end)):
            if value is not None:
                clauses.append(sql)
                params.append(value)
        opening_sql, opening_params = "", []
        if point is not None:
            where, params_at = point.lines_sql()
            clauses.append(where)
            params += params_at
            where, opening_params = point.lines_sql("b.")
            opening_sql = " AND " + where
        desc = request.order == "desc"
        if request.after is not None:
            at, line_id = request.after
            # The redundant bound on `at` alone gives both planners an index range.
            clauses.append("at <= %s AND (at < %s OR (at = %s AND line_id < %s))" if desc
                           else "at >= %s AND (at > %s OR (at = %s AND line_id > %s))")
            params += [at, at, at, line_id]
        direction = "DESC" if desc else "ASC"
        sql = (
            "WITH page AS (SELECT line_id, at, kind, pool, amount_micros, reference, "
            "description FROM ledger_lines WHERE " + " AND ".join(clauses)
            + f" ORDER BY at {direction}, line_id {direction} LIMIT %s), "
            "first_line AS (SELECT at, line_id FROM page ORDER BY at, line_id LIMIT 1), "
            "opening AS (SELECT COALESCE(SUM(b.amount_micros), 0) AS total "
            "FROM ledger_lines b, first_line f WHERE b.account_id = %s AND b.at <= f.at "
            "AND (b.at < f.at OR b.line_id < f.line_id)" + opening_sql + ") "
            "SELECT p.line_id, p.at, p.kind, p.pool, p.amount_micros, p.reference, "
            "p.description, o.total + SUM(p.amount_micros) OVER (ORDER BY p.at, p.line_id "
            "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) "
            f"FROM page p CROSS JOIN opening o ORDER BY p.at {direction}, p.line_id {direction}"
        )
        params += [request.limit + 1, account_id, *opening_params]
        with self.db.transaction() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
        has_more = len(rows) > request.limit
        rows = rows[:request.limit]
        lines = [{"id": r[0], "at": r[1], "kind": r[2], "pool": r[3],
                  "amount_micros": int(r[4]), "balance_micros": int(r[7]),
                  "reference": r[5], "description": r[6]} for r in rows]
        next_cursor = (encode_cursor(request.order, rows[-1][1], rows[-1][0])
                       if has_more else None)
        return {"data": lines, "has_more": has_more, "next_cursor": next_cursor}


def ledger_of(gateway: Any) -> LedgerQueries:
    """The gateway's LedgerQueries (``gateway.ledger`` once bootstrap builds one)."""
    return getattr(gateway, "ledger", None) or LedgerQueries(gateway.db)
