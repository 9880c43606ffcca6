"""Active health probes (spec 3.1): which (provider, model) pairs to probe when, and how a
probe's answer is judged. Pure: no I/O, no clock; times are epoch seconds.

Tiers come from each pair's requests over the last 7 days: the top 5% of used pairs are
critical, the next 20% popular, the rest standard. A pair nobody used in 7 days is
on-demand: it is probed only once someone asked for it (an admin probe, or traffic, which
makes it a used pair), then at most every 4 h. A pair whose last probe failed is due again
300 s after it, whatever its tier.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

Pair = tuple[str, str]  # (provider slug, catalog model id)
T = TypeVar("T")

FAILING_RECHECK_S = 300  # 3.1: a failing pair is re-checked at least every 5 minutes
BATCH_SIZE = 50  # 3.1: probes are started in batches of 50 ...
MAX_IN_FLIGHT = 20  # ... with at most 20 in flight at once
RETRIES = 3  # 3.1: up to 3 retries (4 attempts) before a failure is recorded
RETRY_BASE_S = 1.0  # 1 s, 2 s, 4 s between attempts: a blip passes, an outage does not
USAGE_WINDOW_S = 7 * 86_400
CRITICAL_SHARE, POPULAR_SHARE = 0.05, 0.20


@dataclass(frozen=True)
class Tier:
    name: str
    interval_s: int
    timeout_s: int
    max_tokens: int
    rank: int  # probe order when many pairs are due at once: critical first


CRITICAL = Tier("critical", 300, 30, 10, 0)
POPULAR = Tier("popular", 1_800, 45, 10, 1)
STANDARD = Tier("standard", 7_200, 60, 5, 2)
ON_DEMAND = Tier("on_demand", 14_400, 60, 5, 3)
TIERS = (CRITICAL, POPULAR, STANDARD, ON_DEMAND)


@dataclass(frozen=True)
class LastResult:
    at: float
    ok: bool


@dataclass(frozen=True)
class Due:
    pair: Pair
    tier: Tier
    due_at: float
    failing: bool


@dataclass(frozen=True)
class Verdict:
    """How one attempt went. ``outcome`` is RoutingHealth's vocabulary (success, error,
    timeout, rate_limited); ``error_class`` is what the probe table and admins see."""

    ok: bool
    outcome: str
    error_class: str | None
    retryable: bool


@dataclass(frozen=True)
class ProbeResult:
    provider: str
    model_id: str
    at: float  # when the (last) attempt ended
    ok: bool
    status: int | None  # HTTP status, None when no answer came
    latency_ms: float
    error_class: str | None
    attempts: int
    tier: str
    outcome: str = "success"


def assign_tiers(pairs: Iterable[Pair], requests: Mapping[Pair, int]) -> dict[Pair, Tier]:
    """Every pair's tier. Used pairs are ranked by 7-day requests (ties by name, so every
    worker ranks alike); each share is rounded up, so one used pair is critical."""
    pairs = list(pairs)
    used = sorted((p for p in pairs if requests.get(p, 0) > 0),
                  key=lambda p: (-requests[p], p))
    critical = math.ceil(len(used) * CRITICAL_SHARE)
    popular = critical + math.ceil(len(used) * POPULAR_SHARE)
    tiers = {p: ON_DEMAND for p in pairs}
    for index, pair in enumerate(used):
        tiers[pair] = CRITICAL if index < critical else POPULAR if index < popular \
            else STANDARD
    return tiers


def next_probe_at(tier: Tier, last: LastResult | None) -> float | None:
    """When the pair is due next; None: not at all (an on-demand pair never probed)."""
    if last is None:
        return None if tier is ON_DEMAND else 0.0  # a used pair never probed: at once
    if not last.ok:
        return last.at + min(tier.interval_s, FAILING_RECHECK_S)
    return last.at + tier.interval_s


def due(pairs: Mapping[Pair, Tier], last_results: Mapping[Pair, LastResult],
        now: float) -> list[Due]:
    """The pairs due at ``now``: failing ones first (an outage is what probes are for),
    then by tier, then the longest overdue first."""
    found = []
    for pair, tier in pairs.items():
        last = last_results.get(pair)
        at = next_probe_at(tier, last)
        if at is not None and at <= now:
            found.append(Due(pair, tier, at, last is not None and not last.ok))
    found.sort(key=lambda d: (not d.failing, d.tier.rank, d.due_at, d.pair))
    return found


def next_wake(pairs: Mapping[Pair, Tier], last_results: Mapping[Pair, LastResult]) -> \
        float | None:
    """The earliest time any pair falls due, so the scheduler can wake for it rather than
    up to a tick late (a failing pair's 300 s is a bound, not a mean)."""
    times = (next_probe_at(tier, last_results.get(pair)) for pair, tier in pairs.items())
    return min((t for t in times if t is not None), default=None)


def batches(items: Sequence[T], size: int = BATCH_SIZE) -> list[list[T]]:
    if size < 1:
        raise ValueError("batch size must be positive")
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def judge(status: int | None, error: str | None = None) -> Verdict:
    """One attempt: ``status`` when the provider answered (with a readable body for 200),
    else ``error`` ("timeout", "connection" or "bad_response")."""
    if error is not None:
        outcome = "timeout" if error == "timeout" else "error"
        return Verdict(False, outcome, error, True)
    assert status is not None
    if status == 200:
        return Verdict(True, "success", None, False)
    if status in (400, 413, 422):
        # The provider answered and refused our minimal body: it is up (dispatch counts
        # these as successes too); the class keeps the odd answer visible to admins.
        return Verdict(True, "success", "rejected", False)
    if status in (401, 403):
        return Verdict(False, "error", "auth", False)  # configuration: retrying cannot help
    if status == 404:
        return Verdict(False, "error", "not_found", False)
    if status == 408:
        return Verdict(False, "timeout", "timeout", True)
    if status == 429:
        return Verdict(False, "rate_limited", "rate_limited", True)
    if status >= 500:
        return Verdict(False, "error", "server_error", True)
    return Verdict(False, "error", "http_error", False)


def should_retry(attempt: int, verdict: Verdict, retries: int = RETRIES) -> bool:
    """After attempt number ``attempt`` (1-based): try again?"""
    return not verdict.ok and verdict.retryable and attempt <= retries


def retry_delay(attempt: int, base_s: float = RETRY_BASE_S) -> float:
    return base_s * 2 ** (attempt - 1)
