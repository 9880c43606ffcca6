"""Model choice for `router:general:*` (spec 2.10) and `router:code:*` (2.11), from scores (3.5).

Pure and deterministic: the same facts and needs always give the same model, and every tie
goes to the lexically smallest model id. Arithmetic is exact (Fraction) so that a tie is a
real tie, not an accident of float rounding.

Scores: each model's static catalog score (0-100) is blended with its live success rate,
composite = 0.7 x static + 0.3 x (live_success x 100) (3.5), or the static score alone when
there is no live figure. Rankings use the composite. Thresholds (cost's 60, latency's 50 and
the code tier floors) use min(static, composite): live signals can push a model below a
floor but never lift it above the catalog score the floor is defined on (2.11 "must not").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from domain.selection import MIN_SUCCESS_RATE, Needs, unmet_need

GENERAL_MODES = ("quality", "cost", "latency", "balanced")
CODE_MODES = ("auto", "price", "quality")
DEFAULT_MODES = {"general": "balanced", "code": "auto"}
_MODES = {"general": GENERAL_MODES, "code": CODE_MODES}

STATIC_WEIGHT = Fraction(7, 10)
LIVE_WEIGHT = Fraction(3, 10)
COST_MIN_GENERAL = 60
LATENCY_MIN_GENERAL = 50
# balanced = quality/100, (1 - normalised cost), (1 - normalised latency), weighted:
BALANCED_WEIGHTS = (Fraction(1, 2), Fraction(1, 4), Fraction(1, 4))
CODE_TIER_FLOORS = {1: 40, 2: 55, 3: 70, 4: 80}


@dataclass(frozen=True)
class ModelFacts:
    model_id: str
    scores: dict[str, int] = field(hash=False)  # "general", "code", ... 0-100 (3.5)
    price_in: Decimal  # USD per million tokens (cheapest serving provider, caller's choice)
    price_out: Decimal
    ttft_p50_ms: float | None
    capabilities: frozenset[str]  # empty = unknown
    context_length: int | None
    health: str | None  # "healthy" | "degraded" | "down" | None (no data)
    live_success: float | None  # 0..1, this account's view (3.5); None = no data


def parse_router(model: str) -> tuple[str, str] | None:
    """`router:<kind>[:<mode>]` -> (kind, mode); None for a string that is not a router.

    Matching is case-insensitive (2.1). An unknown kind or mode raises ValueError whose
    message lists the valid choices; the caller answers 400 invalid_model.
    """
    name = model.lower()
    if not name.startswith("router:"):
        return None
    kind, sep, mode = name[len("router:"):].partition(":")
    if kind not in _MODES:
        raise ValueError(f"unknown router {model[:64]!r}; valid routers: "
                         + ", ".join(f"router:{k}" for k in _MODES))
    if not sep:
        return kind, DEFAULT_MODES[kind]
    if mode not in _MODES[kind]:
        raise ValueError(f"unknown mode {mode[:32]!r} for router:{kind}; valid modes: "
                         + ", ".join(_MODES[kind]))
    return kind, mode


def composite(facts: ModelFacts, dimension: str) -> Fraction | None:
    """The blended score of one dimension, or None when the model has no static score."""
    static = facts.scores.get(dimension)
    if static is None:
        return None
    if facts.live_success is None:
        return Fraction(static)
    return STATIC_WEIGHT * static + LIVE_WEIGHT * 100 * Fraction(facts.live_success)


def _floor_score(facts: ModelFacts, dimension: str) -> Fraction:
    score = composite(facts, dimension)
    assert score is not None  # only called on eligible models
    return min(Fraction(facts.scores[dimension]), score)


def _price(facts: ModelFacts) -> Fraction:
    return Fraction(facts.price_in + facts.price_out)


def eligible(models: Iterable[ModelFacts], dimension: str, needs: Needs) -> list[ModelFacts]:
    """Models that have a score in `dimension`, can honour the needs and are not down.

    A live success rate under 50% excludes too: a high static score must not hide it (3.5).
    """
    return sorted(
        (m for m in models
         if m.scores.get(dimension) is not None
         and m.health != "down"
         and not (m.live_success is not None and m.live_success < MIN_SUCCESS_RATE)
         and unmet_need(m.capabilities, m.context_length, needs) is None),
        key=lambda m: m.model_id)


def _best(models: list[ModelFacts], key) -> str | None:
    # Sorting by (key, id) makes every tie go to the lexically smallest id.
    if not models:
        return None
    return min(models, key=lambda m: (key(m), m.model_id)).model_id


def _normalised(values: dict[str, Fraction | None]) -> dict[str, Fraction]:
    """Min-max over the known values; unknown counts as the worst (1); one value counts 0."""
    known = [v for v in values.values() if v is not None]
    low, high = (min(known), max(known)) if known else (Fraction(0), Fraction(0))
    span = high - low
    return {k: Fraction(1) if v is None else (v - low) / span if span else Fraction(0)
            for k, v in values.items()}


def _latency(m: ModelFacts) -> Fraction | None:
    return None if m.ttft_p50_ms is None else Fraction(m.ttft_p50_ms)


def general_pick(models: Iterable[ModelFacts], mode: str, needs: Needs) -> str | None:
    """The model `router:general:<mode>` serves, or None (the caller answers 503)."""
    if mode not in GENERAL_MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(GENERAL_MODES)}")
    pool = eligible(models, "general", needs)
    if mode == "quality":
        return _best(pool, lambda m: -composite(m, "general"))
    if mode == "cost":
        return _best([m for m in pool if _floor_score(m, "general") >= COST_MIN_GENERAL],
                     _price)
    if mode == "latency":
        fast = [m for m in pool if _floor_score(m, "general") >= LATENCY_MIN_GENERAL]
        # Unknown latency ranks after every known one.
        return _best(fast, lambda m: (m.ttft_p50_ms is None, _latency(m) or 0))
    cost = _normalised({m.model_id: _price(m) for m in pool})
    latency = _normalised({m.model_id: _latency(m) for m in pool})
    wq, wc, wl = BALANCED_WEIGHTS

    def balanced(m: ModelFacts) -> Fraction:
        quality = composite(m, "general") / 100
        return wq * quality + wc * (1 - cost[m.model_id]) + wl * (1 - latency[m.model_id])

    return _best(pool, lambda m: -balanced(m))


def code_pick(models: Iterable[ModelFacts], mode: str, tier: int, needs: Needs) -> str | None:
    """The model `router:code:<mode>` serves for a request of `tier` (1-4), or None."""
    if mode not in CODE_MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(CODE_MODES)}")
    if tier not in CODE_TIER_FLOORS:
        raise ValueError(f"tier must be one of {sorted(CODE_TIER_FLOORS)}")
    pool = eligible(models, "code", needs)
    if mode == "quality":
        return _best(pool, lambda m: -composite(m, "code"))
    # price mode accepts the floor of the tier below, never lower than tier 1's.
    floor = CODE_TIER_FLOORS[tier if mode == "auto" else max(tier - 1, 1)]
    return _best([m for m in pool if _floor_score(m, "code") >= floor], _price)
