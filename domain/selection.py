"""Ordering the providers that serve one model (spec 2.6 strategies, 2.7 health, 3.6 credit).

Pure: the caller reads health, latency, in-flight counts and credit levels beforehand (a store
that fails to answer is passed as ``None``, which means healthy, 2.7) and applies prompt-cache
affinity (4.5) to the result. Randomness comes only from the injected ``random.Random``, so a
seed and an input always give the same order.

Final order: [top band] [degraded band] [credit warning] [credit critical, only when nothing
else is left]; the strategy orders candidates inside each group.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from domain.pricing import Prices, TokenUsage, cost_micros

STRATEGIES = ("lowest-cost", "priority", "weighted", "lowest-latency", "least-busy")
DEFAULT_STRATEGY = "lowest-cost"
MIN_SUCCESS_RATE = 0.5  # below: skipped (2.7)
PREFERRED_SUCCESS_RATE = 0.7  # at or above: top band; between the two: degraded band
# Token mix assumed when the request's is unknown: one of each, so the effective price is
# input + output price.
_DEFAULT_MIX = (1, 1)
# Costs are compared for a million identical requests: a USD/M price has at most 6 decimal
# places, so this makes cost_micros exact and a real price difference is never rounded away.
_MIX_SCALE = 1_000_000

# Need -> capability a provider must list; the reason is "unsupported:<capability>".
_CAPABILITY_NEEDS = ("tools", "vision", "json_schema", "logprobs")


@dataclass(frozen=True)
class Candidate:
    slug: str  # provider slug
    priority: int  # lower = earlier (admin order)
    weight: int  # 0..100 for `weighted`
    prices: Prices  # this provider's prices for the model
    capabilities: frozenset[str]  # empty = unknown (never a reason to skip)
    context_length: int | None
    success_rate: float | None  # 0..1 over the last 5 min; None = under 10 samples or unreadable
    latency_ewma_ms: float | None  # TTFB EWMA (smoothing 0.2, computed by the health layer)
    in_flight: int = 0
    circuit_open: bool = False
    credit_level: str | None = None  # None | "info" | "warning" | "critical" (3.6)
    maintenance: bool = False  # model in maintenance on this provider (2.7): skipped like open


@dataclass(frozen=True)
class Needs:
    """What the request requires of a provider (the 2.6 semantic parameters) and its token mix."""

    tools: bool = False
    vision: bool = False
    json_schema: bool = False
    logprobs: bool = False
    context_tokens: int = 0  # estimated input + output limit
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class Ordering:
    ordered: list[Candidate]
    excluded: dict[str, str]  # slug -> reason
    # True when `ordered` is the single 2.7 last resort chosen among unhealthy candidates.
    last_resort: bool = False


def unmet_need(capabilities: frozenset[str], context_length: int | None,
               needs: Needs) -> str | None:
    """The first need a provider or model certainly cannot honour, as an exclusion reason.

    Unknown is not "cannot": an empty capability set or an unknown context length passes, so
    a provider whose metadata is incomplete still serves (a real refusal then fails over, 2.8).
    """
    if capabilities:
        for need in _CAPABILITY_NEEDS:
            if getattr(needs, need) and need not in capabilities:
                return f"unsupported:{need}"
    if context_length is not None and context_length < needs.context_tokens:
        return "context_length"
    return None


def effective_cost(prices: Prices, needs: Needs) -> int:
    """Cost of a million requests with this token mix, in micro-USD (exact, see _MIX_SCALE)."""
    mix = (needs.input_tokens, needs.output_tokens)
    tokens_in, tokens_out = mix if any(mix) else _DEFAULT_MIX
    usage = TokenUsage(prompt_tokens=tokens_in * _MIX_SCALE,
                       completion_tokens=tokens_out * _MIX_SCALE)
    return cost_micros(prices, usage)


def _latency_key(c: Candidate) -> tuple[bool, float]:
    # Unknown latency sorts after every known one: a provider measured fast is the safer bet,
    # and a new provider still gets a latency figure from the active probes (3.1).
    return (c.latency_ewma_ms is None, c.latency_ewma_ms or 0.0)


def _sorter(strategy: str, needs: Needs) -> Callable[[Candidate], tuple]:
    if strategy == "lowest-cost":
        return lambda c: (effective_cost(c.prices, needs), *_latency_key(c), c.priority, c.slug)
    if strategy == "lowest-latency":
        return lambda c: (*_latency_key(c), c.priority, c.slug)
    if strategy == "least-busy":
        return lambda c: (c.in_flight, c.priority, c.slug)
    # "priority", and the deterministic base order "weighted" draws from.
    return lambda c: (c.priority, c.slug)


def _weighted(group: list[Candidate], rng: random.Random) -> list[Candidate]:
    """Weighted draw without replacement; weight 0 follows every positive weight, by priority."""
    pool = [c for c in group if c.weight > 0]
    zero = [c for c in group if c.weight <= 0]
    out: list[Candidate] = []
    while pool:
        # Integer draw over a list in a fixed order: exact and reproducible for a seed.
        point = rng.randrange(sum(c.weight for c in pool))
        for i, c in enumerate(pool):
            point -= c.weight
            if point < 0:
                out.append(pool.pop(i))
                break
    return out + zero


def _order(group: list[Candidate], strategy: str, needs: Needs,
           rng: random.Random) -> list[Candidate]:
    ordered = sorted(group, key=_sorter(strategy, needs))
    return _weighted(ordered, rng) if strategy == "weighted" else ordered


def _health_reason(c: Candidate) -> str | None:
    if c.circuit_open:
        return "circuit_open"
    if c.maintenance:
        return "maintenance"
    if c.success_rate is not None and c.success_rate < MIN_SUCCESS_RATE:
        return "unhealthy"
    return None


def order_candidates(cands: list[Candidate], needs: Needs, strategy: str,
                     rng: random.Random) -> Ordering:
    """Order the candidates to try, first to last, and say why each of the others is skipped."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; valid: {', '.join(STRATEGIES)}")
    slugs = [c.slug for c in cands]
    if len(set(slugs)) != len(slugs):
        raise ValueError("candidate slugs must be unique")

    excluded: dict[str, str] = {}
    capable: list[Candidate] = []
    for c in cands:
        reason = unmet_need(c.capabilities, c.context_length, needs)
        if reason:
            excluded[c.slug] = reason
        else:
            capable.append(c)

    healthy: list[Candidate] = []
    for c in capable:
        reason = _health_reason(c)
        if reason:
            excluded[c.slug] = reason
        else:
            healthy.append(c)

    if not healthy:
        return _last_resort(capable, excluded)

    critical = [c for c in healthy if c.credit_level == "critical"]
    usable = [c for c in healthy if c.credit_level != "critical"]
    if usable:
        for c in critical:
            excluded[c.slug] = "credit_critical"
        critical = []
    warning = [c for c in usable if c.credit_level == "warning"]
    normal = [c for c in usable if c.credit_level != "warning"]

    def degraded(c: Candidate) -> bool:
        return c.success_rate is not None and c.success_rate < PREFERRED_SUCCESS_RATE

    groups = (
        [c for c in normal if not degraded(c)],
        [c for c in normal if degraded(c)],
        [c for c in warning if not degraded(c)],
        [c for c in warning if degraded(c)],
        # Critical-credit providers only when no other is left; 3.6 says "the only candidate",
        # read here as "only critical ones remain", so two such providers still fail over.
        critical,
    )
    ordered = [c for group in groups for c in _order(group, strategy, needs, rng)]
    return Ordering(ordered=ordered, excluded=excluded)


def _last_resort(capable: list[Candidate], excluded: dict[str, str]) -> Ordering:
    """2.7: nothing healthy is left; try the best success rate once, never an open circuit.

    Providers in maintenance are also out: maintenance is announced, not a guess from a
    success rate. Ties go to a provider without critical credit, then to admin order.
    """
    tried = [c for c in capable if not c.circuit_open and not c.maintenance]
    if not tried:
        return Ordering(ordered=[], excluded=excluded)
    best = min(tried, key=lambda c: (-(c.success_rate if c.success_rate is not None else 1.0),
                                     c.credit_level == "critical", c.priority, c.slug))
    rest = {slug: reason for slug, reason in excluded.items() if slug != best.slug}
    return Ordering(ordered=[best], excluded=rest, last_resort=True)

