"""Rate-limit rules (spec 1.9-1.12): profiles, GCRA, UTC windows, verdicts; no I/O.

Both limiters (Redis Lua and in-process) decide with these numbers: the in-process one calls
``decide_key`` directly and the Lua script mirrors it line by line, and both render their
answer through ``key_verdict``/``window_verdict`` so headers never differ by backend. Time is
integer microseconds since the epoch, so GCRA sums are exact (no float drift in the bound).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from domain.rate_limit_headers import (
    Window,
    ceil_div,
    rate_limit_headers,
    refusal_headers,
    retry_after_seconds,
)

US = 1_000_000
MINUTE, HOUR, DAY = 60, 3600, 86400
RATE_LIMITED = "rate_limit_exceeded"
CONCURRENCY_LIMITED = "concurrency_limit_exceeded"

# Layer 1 (1.9) and layer 3 (1.11) defaults.
IP_PER_MINUTE = 300
DATACENTER_ANONYMOUS_PER_MINUTE = 60
ANONYMOUS_PER_DAY = 3
LEASE_TTL_S = 600  # a worker that dies mid-stream leaks its concurrency slot no longer


@dataclass(frozen=True, slots=True)
class LimitProfile:
    """Per-key limits (1.10). Field names are also the keys of an API key's ``rate_limits``."""

    requests_per_minute: int
    requests_per_hour: int
    requests_per_day: int
    tokens_per_minute: int
    tokens_per_hour: int
    tokens_per_day: int
    burst: int
    concurrency: int
    name: str = "default"

    def scaled(self, factor: int, name: str) -> LimitProfile:
        return replace(self, name=name, **{f: getattr(self, f) * factor for f in LIMIT_FIELDS})

    def divided(self, workers: int) -> LimitProfile:
        """Each worker's share when workers cannot see each other (the Redis fallback)."""
        return replace(self, **{f: share(getattr(self, f), workers) for f in LIMIT_FIELDS})

    def lowered(self, limits: Mapping[str, int]) -> LimitProfile:
        """A key's own limits, which may only lower the plan's values (1.1)."""
        clean = validate_limits(limits)
        return replace(self, **{f: min(v, getattr(self, f)) for f, v in clean.items()})

    def with_values(self, limits: Mapping[str, int], name: str | None = None) -> LimitProfile:
        """Explicit values an admin set (enterprise terms, admin-set key limits)."""
        return replace(self, name=name or self.name, **validate_limits(limits))


LIMIT_FIELDS = tuple(f.name for f in fields(LimitProfile) if f.name != "name")

DEFAULT_PROFILE = LimitProfile(250, 1_000, 10_000, 10_000, 100_000, 1_000_000, 100, 50)
TEAM_PROFILE = DEFAULT_PROFILE.scaled(3, "team")
RESTRICTED_PROFILE = LimitProfile(5, 20, 50, 500, 2_000, 5_000, 3, 1, name="restricted")


def share(limit: int, workers: int) -> int:
    # Never 0: a worker's share of a tiny limit (3 anonymous a day) still admits one.
    return max(1, limit // max(1, workers))


def validate_limits(limits: Mapping[str, int]) -> dict[str, int]:
    """Positive integers under known names; raises ValueError naming the bad one."""
    clean: dict[str, int] = {}
    for name, value in limits.items():
        if name not in LIMIT_FIELDS:
            raise ValueError(f"unknown rate limit {name!r}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"rate limit {name!r} must be a positive integer")
        clean[name] = value
    return clean


def profile_for(plan: str, *, restricted: bool = False,
                explicit: Mapping[str, int] | None = None,
                key_limits: Mapping[str, int] | None = None,
                key_limits_admin_set: bool = False) -> LimitProfile:
    """The limits a key runs under (see _profile); the same few combinations come back on
    every request, so each is worked out once."""
    return _profile(plan, restricted, _frozen(explicit), _frozen(key_limits),
                    key_limits_admin_set)


def _frozen(limits: Mapping[str, int] | None) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(limits.items())) if limits else ()


@functools.lru_cache(maxsize=4096)
def _profile(plan: str, restricted: bool, explicit_items: tuple, key_items: tuple,
             key_limits_admin_set: bool) -> LimitProfile:
    explicit, key_limits = dict(explicit_items), dict(key_items)
    return _uncached_profile(plan, restricted=restricted, explicit=explicit,
                             key_limits=key_limits, key_limits_admin_set=key_limits_admin_set)


def _uncached_profile(plan: str, *, restricted: bool = False,
                      explicit: Mapping[str, int] | None = None,
                      key_limits: Mapping[str, int] | None = None,
                      key_limits_admin_set: bool = False) -> LimitProfile:
    """The limits a key runs under: plan (or restricted), explicit terms, then the key's own.

    ``explicit`` is what an admin set for an enterprise account (fields not set keep the
    default values); a key's ``rate_limits`` only lower those unless an admin set them.
    """
    if restricted:
        profile = RESTRICTED_PROFILE
    elif plan == "team":
        profile = TEAM_PROFILE
    elif plan == "enterprise":
        profile = DEFAULT_PROFILE.with_values(explicit or {}, name="enterprise")
    else:  # trial and dev run on the default values (6.7)
        profile = DEFAULT_PROFILE
    if key_limits:
        profile = (profile.with_values(key_limits) if key_limits_admin_set
                   else profile.lowered(key_limits))
    return profile


# --- GCRA -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Gcra:
    """Cell rate with burst tolerance: ``burst`` at once, then one per ``emission_us``.

    TAT (theoretical arrival time) moves one emission per admission; an arrival is refused
    while TAT - now exceeds ``tau_us`` = (burst - 1) emissions. So n admissions at s1..sn
    need s1 + (n - 1) T - sn <= (burst - 1) T, i.e. n <= burst + rate x (sn - s1).
    """

    emission_us: int
    tau_us: int

    @classmethod
    def per_minute(cls, rate: int, burst: int) -> Gcra:
        # Rounded up: a slightly longer emission keeps the bound exact for any rate.
        emission = ceil_div(MINUTE * US, max(1, rate))
        return cls(emission, (max(1, burst) - 1) * emission)

    def check(self, tat_us: int | None, now_us: int) -> tuple[bool, int, int]:
        """(allowed, TAT after, wait in us until an arrival would be allowed)."""
        tat = now_us if tat_us is None or tat_us < now_us else tat_us
        if tat - now_us > self.tau_us:
            return False, tat, tat - now_us - self.tau_us
        return True, tat + self.emission_us, 0

    def remaining(self, tat_us: int, now_us: int) -> int:
        """How many more arrivals right now would be admitted."""
        ahead = max(0, tat_us - now_us)
        return max(0, (self.tau_us - ahead) // self.emission_us + 1)


# --- UTC windows --------------------------------------------------------------------------


def window_id(now_us: int, seconds: int) -> int:
    """Index of the UTC window holding ``now``: hours turn at :00, days at 00:00 UTC."""
    return now_us // (seconds * US)


def until_window_end(now_us: int, seconds: int) -> int:
    return (window_id(now_us, seconds) + 1) * seconds * US - now_us


@dataclass(frozen=True, slots=True)
class KeyCounts:
    """A key's use in the windows current at one instant (a stale window counts 0)."""

    hour: int = 0
    day: int = 0
    tokens_minute: int = 0
    tokens_hour: int = 0
    tokens_day: int = 0


@dataclass(frozen=True, slots=True)
class KeyDecision:
    code: str | None  # None: admitted
    wait_us: int
    tat_us: int  # after the decision


def decide_key(profile: LimitProfile, now_us: int, tat_us: int | None, counts: KeyCounts,
               concurrent: int) -> KeyDecision:
    """Layer 2: every limit must pass; the wait is the longest of the failing ones (all of
    them must clear). Concurrency is named only when it alone refuses (its wait is unknown)."""
    gcra = Gcra.per_minute(profile.requests_per_minute, profile.burst)
    ok, advanced, wait = gcra.check(tat_us, now_us)
    fixed = ((counts.hour, profile.requests_per_hour, HOUR),
             (counts.day, profile.requests_per_day, DAY),
             (counts.tokens_minute, profile.tokens_per_minute, MINUTE),
             (counts.tokens_hour, profile.tokens_per_hour, HOUR),
             (counts.tokens_day, profile.tokens_per_day, DAY))
    for used, limit, seconds in fixed:
        if used >= limit:  # tokens: admit while the counted tokens are below the limit
            ok, wait = False, max(wait, until_window_end(now_us, seconds))
    # A refusal counts nothing, so TAT stays where it was (never behind now).
    unchanged = now_us if tat_us is None or tat_us < now_us else tat_us
    if not ok:
        return KeyDecision(RATE_LIMITED, wait, unchanged)
    if concurrent >= profile.concurrency:
        return KeyDecision(CONCURRENCY_LIMITED, US, unchanged)
    return KeyDecision(None, 0, advanced)


# --- verdicts -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lease:
    """A concurrency slot; the store that counted it (``backend``) is the one that frees it."""

    key_id: str
    lease_id: str
    backend: str  # "redis" or "memory"


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    scope: str  # ip | key | anonymous | trial
    retry_after_s: int  # 0 when allowed
    headers: list[tuple[str, str]]
    code: str | None = None  # rate_limit_exceeded | concurrency_limit_exceeded when refused
    lease: Lease | None = None
    windows: tuple[Window, ...] = ()


def _verdict(scope: str, code: str | None, wait_us: int, requests: list[Window],
             tokens: list[Window], lease: Lease | None) -> Verdict:
    headers = rate_limit_headers(requests, tokens)
    if code is None:
        return Verdict(True, scope, 0, headers, None, lease, (*requests, *tokens))
    retry = retry_after_seconds(wait_us)
    return Verdict(False, scope, retry, headers + refusal_headers(scope, retry), code, None,
                   (*requests, *tokens))


def key_verdict(profile: LimitProfile, now_us: int, decision: KeyDecision, counts: KeyCounts,
                lease: Lease | None = None) -> Verdict:
    """``counts`` are those after the decision (an admission already counted)."""
    gcra = Gcra.per_minute(profile.requests_per_minute, profile.burst)
    p = profile
    requests = [Window("minute", MINUTE, p.requests_per_minute,
                       gcra.remaining(decision.tat_us, now_us),
                       max(0, decision.tat_us - now_us)),
                *(Window(name, sec, lim, max(0, lim - used), until_window_end(now_us, sec))
                  for name, sec, lim, used in (("hour", HOUR, p.requests_per_hour, counts.hour),
                                               ("day", DAY, p.requests_per_day, counts.day)))]
    tokens = [Window(name, sec, lim, max(0, lim - used), until_window_end(now_us, sec),
                     "tokens")
              for name, sec, lim, used in (
                  ("minute", MINUTE, p.tokens_per_minute, counts.tokens_minute),
                  ("hour", HOUR, p.tokens_per_hour, counts.tokens_hour),
                  ("day", DAY, p.tokens_per_day, counts.tokens_day))]
    return _verdict("key", decision.code, decision.wait_us, requests, tokens, lease)


def window_verdict(scope: str, window: Window, allowed: bool, wait_us: int) -> Verdict:
    """Layers 1 and 3: one request window, no token quota."""
    return _verdict(scope, None if allowed else RATE_LIMITED, wait_us, [window], [], None)


def sliding_window(limit: int, now_us: int, count: int, newest_us: int,
                   freeing_us: int) -> tuple[bool, int, Window]:
    """Layer 1: ``count`` arrivals in the last 60 s, the newest at ``newest_us``.

    ``freeing_us`` is the arrival whose expiry lets one more in (the ``count - limit``-th
    oldest) when ``count >= limit``. Returns (allowed, wait until one fits, window state).
    """
    allowed = count < limit
    wait = 0 if allowed else freeing_us + MINUTE * US - now_us
    reset = newest_us + MINUTE * US - now_us if count else 0
    return allowed, max(0, wait), Window("minute", MINUTE, limit, max(0, limit - count),
                                         max(0, reset))


def anonymous_verdict(limit: int, now_us: int, used: int, allowed: bool) -> Verdict:
    """Layer 3: ``used`` anonymous requests today (after this one when admitted)."""
    reset = until_window_end(now_us, DAY)
    window = Window("day", DAY, limit, max(0, limit - used), reset)
    return window_verdict("anonymous", window, allowed, reset)
