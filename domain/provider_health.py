"""Passive health of one (provider, model) pair (spec 3.2, status definition atop 03, 2.6/2.7).

Fed one record per real provider attempt, off the request path. Pure: the caller passes the
time. Memory per pair is fixed whatever the traffic: the 5-minute success rate is kept as
counters in 10-second buckets (31 at most), latencies as two EWMAs.

Status: score = success rate % over the window when it holds at least ``min_samples``
records; ``healthy`` >= 80, ``degraded`` 50-79, ``down`` < 50. Fewer samples -> score None,
which every reader treats as healthy (2.7: "missing health data is healthy").
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

SUCCESS, ERROR, TIMEOUT, RATE_LIMITED = "success", "error", "timeout", "rate_limited"
OUTCOMES = (SUCCESS, ERROR, TIMEOUT, RATE_LIMITED)
HEALTHY, DEGRADED, DOWN = "healthy", "degraded", "down"


@dataclass(frozen=True)
class HealthPolicy:
    window_s: float = 300
    # Every bucket overlapping the last window_s counts: the window reaches back 300-310 s.
    bucket_s: float = 10
    min_samples: int = 10
    alpha: float = 0.2  # EWMA smoothing factor (2.6)
    healthy_at: int = 80
    degraded_at: int = 50

    def __post_init__(self) -> None:
        if self.window_s <= 0 or self.bucket_s <= 0 or self.min_samples < 1:
            raise ValueError("health window, bucket and sample floor must be positive")
        if not 0 < self.alpha <= 1:
            raise ValueError("alpha must be in (0, 1]")
        if not 0 <= self.degraded_at <= self.healthy_at <= 100:
            raise ValueError("status thresholds must satisfy 0 <= degraded <= healthy <= 100")

    @property
    def max_buckets(self) -> int:
        return math.ceil(self.window_s / self.bucket_s) + 1


@dataclass(frozen=True)
class HealthView:
    provider: str
    model: str
    samples: int  # records in the window
    successes: int
    success_rate: float | None  # 0..1 whenever the window holds a record (2.7 last resort)
    score: float | None  # 0..100, None below min_samples
    status: str
    ttfb_ewma_ms: float | None
    total_ewma_ms: float | None
    consecutive_failures: int
    consecutive_successes: int
    last_outcome: str | None
    last_status: int | None
    updated_at: float | None


def ewma(previous: float | None, sample: float, alpha: float) -> float:
    """The first sample sets the average; each later one moves it by ``alpha``."""
    if previous is None:
        return float(sample)
    return alpha * sample + (1 - alpha) * previous


def classify(successes: int, samples: int, policy: HealthPolicy) -> tuple[float | None, str]:
    """(score, status). Thresholds compared in integers so 80.0 % is never 79.99999 %."""
    if samples < policy.min_samples:
        return None, HEALTHY
    score = 100 * successes / samples
    if successes * 100 >= policy.healthy_at * samples:
        return score, HEALTHY
    if successes * 100 >= policy.degraded_at * samples:
        return score, DEGRADED
    return score, DOWN


class ProviderHealth:
    __slots__ = ("provider", "model", "policy", "_buckets", "ttfb_ewma_ms", "total_ewma_ms",
                 "consecutive_failures", "consecutive_successes", "last_outcome",
                 "last_status", "updated_at")

    def __init__(self, provider: str, model: str, policy: HealthPolicy | None = None) -> None:
        self.provider = provider
        self.model = model
        self.policy = policy or HealthPolicy()
        # [bucket id, samples, successes], ids strictly increasing; maxlen is a hard backstop.
        self._buckets: deque[list[int]] = deque(maxlen=self.policy.max_buckets)
        self.ttfb_ewma_ms: float | None = None
        self.total_ewma_ms: float | None = None
        self.consecutive_failures = 0
        self.consecutive_successes = 0
        self.last_outcome: str | None = None
        self.last_status: int | None = None
        self.updated_at: float | None = None

    def _lowest(self, now: float) -> int:
        return math.floor((now - self.policy.window_s) / self.policy.bucket_s)

    def bucket_count(self) -> int:
        return len(self._buckets)

    def record(self, outcome: str, status: int | None, ttfb_ms: float | None,
               total_ms: float | None, now: float) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        ok = outcome == SUCCESS
        lowest = self._lowest(now)
        while self._buckets and self._buckets[0][0] < lowest:
            self._buckets.popleft()
        bucket = math.floor(now / self.policy.bucket_s)
        if self._buckets and self._buckets[-1][0] >= bucket:
            # Same bucket, or a clock that stepped back: count it in the newest bucket.
            newest = self._buckets[-1]
        else:
            newest = [bucket, 0, 0]
            self._buckets.append(newest)
        newest[1] += 1
        newest[2] += ok
        if ok:
            self.consecutive_successes += 1
            self.consecutive_failures = 0
            # Latency EWMAs learn from successes only: a fast 503 or a 60 s timeout says
            # nothing about how quickly this pair answers, and would skew lowest-latency.
            if ttfb_ms is not None:
                self.ttfb_ewma_ms = ewma(self.ttfb_ewma_ms, ttfb_ms, self.policy.alpha)
            if total_ms is not None:
                self.total_ewma_ms = ewma(self.total_ewma_ms, total_ms, self.policy.alpha)
        else:
            self.consecutive_failures += 1
            self.consecutive_successes = 0
        self.last_outcome = outcome
        self.last_status = status
        self.updated_at = now

    def window(self, now: float) -> tuple[int, int]:
        """(samples, successes) in the buckets covering the last ``window_s``."""
        lowest = self._lowest(now)
        samples = successes = 0
        for bucket, n, ok in self._buckets:
            if bucket >= lowest:
                samples += n
                successes += ok
        return samples, successes

    def view(self, now: float) -> HealthView:
        samples, successes = self.window(now)
        score, status = classify(successes, samples, self.policy)
        return HealthView(
            self.provider, self.model, samples, successes,
            successes / samples if samples else None, score, status,
            self.ttfb_ewma_ms, self.total_ewma_ms, self.consecutive_failures,
            self.consecutive_successes, self.last_outcome, self.last_status, self.updated_at)
