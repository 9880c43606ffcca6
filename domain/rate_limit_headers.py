"""Rate-limit response headers (spec 1.12), rendered from window states; no I/O.

Three families on every response of a rate-limited route: the ``X-RateLimit-*`` trio for the
request window closest to exhaustion, OpenAI's ``x-ratelimit-*-requests``/``-tokens`` with
Go-style durations (what the OpenAI SDKs parse), and the IETF ``RateLimit-Policy`` /
``RateLimit`` pair. A refusal adds ``Retry-After`` and ``X-Gatewayz-RateLimit-Scope``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

SCOPES = ("ip", "key", "anonymous", "trial")


@dataclass(frozen=True, slots=True)
class Window:
    """One limit as seen at one instant."""

    name: str  # "minute", "hour" or "day"
    seconds: int  # its length: the IETF ``w``
    limit: int
    remaining: int
    reset_us: int  # until the window is back to its full quota
    unit: str = "requests"  # or "tokens"


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def reset_seconds(us: int) -> int:
    """Whole seconds, rounded up: a client that waits this long finds the quota back."""
    return max(0, ceil_div(us, 1_000_000))


def go_duration(us: int) -> str:
    """A duration as Go prints it (``1s``, ``6m0s``, ``1h0m0s``, ``250ms``), to the ms.

    Rounded up to the millisecond so a client never retries before the reset.
    """
    ms = max(0, ceil_div(us, 1000))
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, frac = divmod(rest, 1000)
    sec = str(seconds) + (f".{frac:03d}".rstrip("0") if frac else "")
    if hours:
        return f"{hours}h{minutes}m{sec}s"
    if minutes:
        return f"{minutes}m{sec}s"
    return f"{sec}s"


def closest_to_exhaustion(windows: Sequence[Window]) -> Window | None:
    """Fewest requests (or tokens) left; on a tie the one that takes longer to come back,
    since that is the one that really binds."""
    if not windows:
        return None
    return min(windows, key=lambda w: (w.remaining, -w.reset_us))


def _policy_name(window: Window) -> str:
    return window.name if window.unit == "requests" else f"{window.name}-tokens"


@functools.lru_cache(maxsize=1024)
def _policy(windows: tuple[tuple[str, int, int, str], ...]) -> str:
    """The RateLimit-Policy value: the same for every request under one profile, so it is
    rendered once per profile, not per request."""
    items = []
    for name, seconds, limit, unit in windows:
        item = f'"{name if unit == "requests" else name + "-tokens"}";q={limit};w={seconds}'
        # ``qu`` defaults to requests in the IETF draft, so only token quotas name their unit.
        items.append(item if unit == "requests" else item + ';qu="tokens"')
    return ", ".join(items)


def rate_limit_headers(requests: Sequence[Window],
                       tokens: Sequence[Window] = ()) -> list[tuple[str, str]]:
    """The three header families for these windows (a family with no window is left out:
    the per-IP and anonymous limits have no token quota)."""
    headers: list[tuple[str, str]] = []
    req = closest_to_exhaustion(requests)
    if req is not None:
        headers += [("X-RateLimit-Limit", str(req.limit)),
                    ("X-RateLimit-Remaining", str(req.remaining)),
                    ("X-RateLimit-Reset", str(reset_seconds(req.reset_us))),
                    ("x-ratelimit-limit-requests", str(req.limit)),
                    ("x-ratelimit-remaining-requests", str(req.remaining)),
                    ("x-ratelimit-reset-requests", go_duration(req.reset_us))]
    tok = closest_to_exhaustion(tokens)
    if tok is not None:
        headers += [("x-ratelimit-limit-tokens", str(tok.limit)),
                    ("x-ratelimit-remaining-tokens", str(tok.remaining)),
                    ("x-ratelimit-reset-tokens", go_duration(tok.reset_us))]
    policy = _policy(tuple((w.name, w.seconds, w.limit, w.unit) for w in (*requests, *tokens)))
    if policy:
        headers.append(("RateLimit-Policy", policy))
    if req is not None:
        headers.append(("RateLimit",
                        f'"{_policy_name(req)}";r={req.remaining};t={reset_seconds(req.reset_us)}'))
    return headers


def retry_after_seconds(wait_us: int) -> int:
    """Integer seconds >= 1, rounded up: never more than 1 s above the true wait."""
    return max(1, ceil_div(wait_us, 1_000_000))


def refusal_headers(scope: str, retry_after_s: int) -> list[tuple[str, str]]:
    """What a 429 adds; also for the HTTP layer's own refusals (e.g. scope ``trial``)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown rate-limit scope {scope!r}")
    return [("Retry-After", str(max(1, retry_after_s))),
            ("X-Gatewayz-RateLimit-Scope", scope)]
