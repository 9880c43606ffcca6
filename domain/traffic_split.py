"""Account routes `route:<name>` that split traffic over weighted targets (spec 2.12).

Pure: `parse_route` validates a definition before any event is written (a bad one is a 400
with nothing recorded); `choose_target` picks one target for a request. Which targets are
healthy, and whether the key's `allowed_models` permits them, is the caller's to say.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from domain.errors import DomainError
from domain.model_names import CANONICAL, ROUTE_NAME

MIN_TARGETS = 2
MAX_TARGETS = 10  # default; deployments may pass another bound
MIN_WEIGHT, MAX_WEIGHT = 1, 100
WEIGHT_TOTAL = 100
# Same shape as application.catalog.SLUG (the domain cannot import the application layer);
# whether the provider is registered is checked there.
_SLUG = re.compile(r"^[a-z0-9-]{2,40}$")
_TARGET_KEYS = frozenset({"model", "weight"})
# Distinct personalisations: the fallback draw for a user whose own target is down must be
# independent of the first draw, or it would always land on the first healthy neighbour.
_STICKY = b"gwz-split"
_STICKY_FALLBACK = b"gwz-split-fb"


@dataclass(frozen=True)
class SplitTarget:
    model: str  # canonical id, lower case
    provider: str | None  # pinned provider slug
    weight: int

    @property
    def target(self) -> str:
        """The target as written and reported (`X-Gatewayz-Route-Target`): `model[@provider]`."""
        return f"{self.model}@{self.provider}" if self.provider else self.model


@dataclass(frozen=True)
class SplitRoute:
    name: str
    targets: tuple[SplitTarget, ...]

    def to_json(self) -> list[dict[str, Any]]:
        """The targets in the shape `parse_route` reads, for event payloads and GET answers."""
        return [{"model": t.target, "weight": t.weight} for t in self.targets]


def _invalid(message: str, param: str) -> DomainError:
    return DomainError("invalid_request", message, param=param)


def _shown(value: object) -> str:
    # Echo at most 64 characters of a client value in an error message.
    text = value if isinstance(value, str) else repr(value)
    return repr(text[:64] + ("..." if len(text) > 64 else ""))


def _parse_target(raw: object, i: int) -> SplitTarget:
    param = f"targets[{i}]"
    if not isinstance(raw, dict):
        raise _invalid(f"{param} must be an object with model and weight", param)
    unknown = sorted(str(k) for k in raw if k not in _TARGET_KEYS)
    if unknown:
        raise _invalid(f"{param} has unknown field {_shown(unknown[0])}", param)
    model = raw.get("model")
    if not isinstance(model, str) or len(model) > 256:
        raise _invalid(f"{param}.model must be a model id, optionally `@provider`",
                       f"{param}.model")
    name, at, provider = model.lower().rpartition("@")
    if not at:
        name, provider = provider, ""
    if not CANONICAL.match(name) or (at and not _SLUG.match(provider)):
        raise _invalid(f"{param}.model {_shown(model)} must be a canonical `org/model` id, "
                       "optionally followed by `@provider`", f"{param}.model")
    weight = raw.get("weight")
    # bool is an int subclass and 70.0 is not an integer weight.
    if isinstance(weight, bool) or not isinstance(weight, int) \
            or not MIN_WEIGHT <= weight <= MAX_WEIGHT:
        raise _invalid(f"{param}.weight must be an integer from {MIN_WEIGHT} to {MAX_WEIGHT}",
                       f"{param}.weight")
    return SplitTarget(model=name, provider=provider or None, weight=weight)


def parse_route(name: object, targets: object, *, max_targets: int = MAX_TARGETS) -> SplitRoute:
    """Validate a route definition; raise DomainError("invalid_request") on any fault.

    `targets` is a list of {"model": "org/model[@provider]", "weight": int}; there must be
    MIN_TARGETS..max_targets of them, all different, with weights summing to exactly 100.
    """
    if not isinstance(name, str) or not ROUTE_NAME.match(name.lower()):
        raise _invalid("route name must be 1 to 64 letters, digits, '.', '_' or '-', "
                       "starting with a letter or digit", "name")
    if not isinstance(targets, list) or not MIN_TARGETS <= len(targets) <= max_targets:
        raise _invalid(f"targets must be a list of {MIN_TARGETS} to {max_targets} entries",
                       "targets")
    parsed = tuple(_parse_target(raw, i) for i, raw in enumerate(targets))
    seen: set[str] = set()
    for i, t in enumerate(parsed):
        # A repeated target is one target with a split weight: refuse the ambiguity.
        if t.target in seen:
            raise _invalid(f"targets[{i}] repeats {t.target!r}", f"targets[{i}].model")
        seen.add(t.target)
    total = sum(t.weight for t in parsed)
    if total != WEIGHT_TOTAL:
        raise _invalid(f"target weights must sum to {WEIGHT_TOTAL}, not {total}", "targets")
    return SplitRoute(name=name.lower(), targets=parsed)


def _stable_hash(route: str, user: str, person: bytes) -> int:
    # blake2b, not hash(): Python salts str hashes per process, and stickiness must hold
    # across workers and restarts. The NUL keeps ("ab", "c") and ("a", "bc") apart.
    digest = hashlib.blake2b(f"{route}\x00{user}".encode("utf-8", "surrogatepass"),
                             digest_size=8, person=person).digest()
    return int.from_bytes(digest, "big")


def _walk(targets: list[SplitTarget], point: int) -> SplitTarget:
    """The target whose cumulative weight interval holds `point` (0 <= point < total)."""
    for t in targets:
        point -= t.weight
        if point < 0:
            return t
    raise AssertionError("point beyond the total weight")  # pragma: no cover


def choose_target(route: SplitRoute, *, user: str | None, rng: random.Random,
                  unavailable: Collection[str] = ()) -> SplitTarget | None:
    """The target for one request, or None when every target is unavailable (503).

    `unavailable` holds the `target` strings that are unhealthy or circuit-open; the others'
    weights are renormalised. With a non-empty `user` the choice is a stable hash of route
    and user: a user whose target is available keeps it whatever happens to other targets,
    and only users of an unavailable target are spread, by weight, over the rest.
    """
    live = [t for t in route.targets if t.target not in unavailable]
    if not live:
        return None
    total = sum(t.weight for t in live)
    if not user:
        return _walk(live, rng.randrange(total))
    full = sum(t.weight for t in route.targets)
    first = _walk(list(route.targets), _stable_hash(route.name, user, _STICKY) % full)
    if first.target not in unavailable:
        return first
    # 2**64 % total is at most 99: the modulo bias is below 1e-17.
    return _walk(live, _stable_hash(route.name, user, _STICKY_FALLBACK) % total)
