"""The operator's remaining balance at a provider (spec 3.6), read over HTTP off the request path.

As for listings (adapters/model_listing.py): the base URL is re-checked before every read,
hosts resolve through CheckedResolver, redirects are never followed (the credential only
reaches the checked host) and the body is bounded. Numbers are read exactly (Decimal) and
bounded; anything else is a BalanceError, and the caller keeps its last known value.

Dialect: OpenRouter's ``GET {base_url}/credits`` ->
``{"data": {"total_credits": <USD>, "total_usage": <USD>}}``; remaining = credits - usage.
"""

from __future__ import annotations

from decimal import Decimal, Inexact, localcontext
from typing import Any

from adapters.model_listing import CheckedSessions, ListingError, read_json_capped
from domain.network_rules import BaseUrlError, parse_base_url

__all__ = ["BalanceError", "CheckedSessions", "read_balance", "remaining_of"]

MAX_BODY_BYTES = 64 * 1024  # the real answer is under 100 bytes
MAX_USD = Decimal(10**9)
TIMEOUT_S = 10.0


class BalanceError(Exception):
    """A read that must not change what routing knows: HTTP error, timeout, odd body."""


def _amount(value: Any, name: str) -> Decimal:
    # bool is an int to Python, and a JSON string is not a number: both refused.
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise BalanceError(f"{name} is not a number")
    amount = Decimal(value)
    if not amount.is_finite() or not 0 <= amount <= MAX_USD:
        raise BalanceError(f"{name} is outside 0..{MAX_USD}")
    return amount


def remaining_of(body: Any) -> Decimal:
    """Remaining USD of a parsed /credits body (numbers as Decimal); exact or BalanceError.
    Both totals must be 0..10^9; the difference may be negative (usage past the credits)."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise BalanceError("response is not an object with a data object")
    credits = _amount(data.get("total_credits"), "total_credits")
    usage = _amount(data.get("total_usage"), "total_usage")
    with localcontext() as ctx:
        # A difference that cannot be held exactly (hundreds of digits) is refused, never
        # rounded: a rounded balance could sit on the wrong side of a threshold.
        ctx.prec, ctx.traps[Inexact] = 100, True
        try:
            return credits - usage
        except Inexact:
            raise BalanceError("amounts carry more digits than can be compared") from None


async def read_balance(sessions: CheckedSessions, *, base_url: str, path: str, credential: str,
                       allow_private: bool, timeout_s: float = TIMEOUT_S) -> Decimal:
    """GET base_url + path with the provider's key; the remaining USD, or BalanceError.
    An empty credential sends no auth (a local server)."""
    if not isinstance(path, str) or not path.startswith("/") or "?" in path or "#" in path:
        raise BalanceError(f"balance path {path!r} is not a path under the base URL")
    try:
        url = parse_base_url(base_url, allow_private).url + path
    except BaseUrlError as exc:
        raise BalanceError(f"base URL refused: {exc}") from None
    headers = {"Accept": "application/json", "User-Agent": "gatewayz/0.1"}
    if credential:
        headers["Authorization"] = f"Bearer {credential}"
    try:
        body = await read_json_capped(sessions.get(allow_private), url, headers=headers,
                                      params=None, timeout_s=timeout_s,
                                      max_bytes=MAX_BODY_BYTES)
    except ListingError as exc:  # the shared reader's failures, under our own name
        raise BalanceError(str(exc)) from None
    return remaining_of(body)
