"""Resolve: the `model` string to the ordered (model, provider) offers a request may try.

Pipeline (spec 2): grammar (2.1) -> alias (2.2) -> explicit provider (2.3) -> candidates
(2.4) -> native id (2.5) -> health and strategy order (2.6, 2.7), at most MAX_ATTEMPTS per
model (2.8), then the client's fallback models in turn (2.9). Everything here reads the
in-memory catalog snapshot; nothing queries a database or a provider.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field

from application import security_events
from application.access import check_model_allowed
from application.catalog_view import (
    BUILTIN_PROVIDER,
    ECHO_MODEL,
    CatalogView,
    Offer,
    ProviderInfo,
    Snapshot,
)
from application.principals import KeyPrincipal
from application.routing_request import NO_PREFERENCES, Preferences
from application.selection_inputs import HealthSource, NoHealth, candidates_of
from domain.errors import DomainError
from domain.model_names import ModelNameError, ModelRef, not_found, parse, quoted
from domain.pricing import Prices, fallback_prices, is_premium_model
from domain.selection import Needs, order_candidates

MAX_ATTEMPTS = 3  # per model (2.8 default)
NO_NEEDS = Needs()
ECHO = ProviderInfo(BUILTIN_PROVIDER, "Gatewayz", "echo", "", False, True, 0, 60_000, "")
ECHO_OFFER = Offer(ECHO_MODEL, ECHO, ECHO_MODEL, Prices.from_json({"input": "0", "output": "0"}),
                   None, "free")


@dataclass
class Resolution:
    offers: list[Offer]  # in the order to try; models follow each other (2.9)
    requested: str  # the client's `model`, at most 256 characters
    models: list[str] = field(default_factory=list)  # canonical ids, in order
    router: str | None = None  # X-Gatewayz-Router
    route_target: str | None = None  # X-Gatewayz-Route-Target


class Resolver:
    def __init__(self, catalog: CatalogView, health: HealthSource | None = None,
                 rng: random.Random | None = None) -> None:
        self.catalog = catalog
        self.health = health or NoHealth()
        self.rng = rng or random.Random()
        self.default_strategy = "lowest-cost"
        self.pick_model = None  # routers and routes (application/model_routers.py) plug in

    def resolve(self, model: object, principal: KeyPrincipal, needs: Needs = NO_NEEDS,
                preferences: Preferences = NO_PREFERENCES,
                fallbacks: list[str] | None = None, body: dict | None = None) -> Resolution:
        snap = self.catalog.snapshot
        body = body or {}
        # With fallbacks, a first model with no candidate now is passed over, not refused.
        first = self._one(snap, model, principal, needs, preferences, body,
                          optional=bool(fallbacks))
        for alternative in fallbacks or ():
            more = self._one(snap, alternative, principal, needs, preferences, body,
                             optional=True)
            first.offers.extend(o for o in more.offers if o not in first.offers)
            first.models.extend(m for m in more.models if m not in first.models)
        if not first.offers:
            raise DomainError("no_provider_available",
                              f"no provider can serve {quoted(str(model))} now")
        return first

    def canonical(self, model: str) -> str:
        """The canonical id a plain model string names (alias or native id read), else the
        string itself lower-cased: for checks that run before resolution (1.2's check 7)."""
        snap = self.catalog.snapshot
        try:
            ref = parse(model, snap.providers)
        except ModelNameError:
            return model
        if ref.kind != "model":
            return ref.name
        name = snap.aliases.get(ref.name, ref.name)
        mapped = snap.native.get(name)
        return mapped[0] if mapped and name not in snap.offers else name

    def _one(self, snap: Snapshot, model: object, principal: KeyPrincipal, needs: Needs,
             preferences: Preferences, body: dict, optional: bool = False) -> Resolution:
        try:
            ref = parse(model, snap.providers)
        except ModelNameError as error:
            raise DomainError(error.code, str(error), param="model") from None
        assert isinstance(model, str)
        resolution = Resolution([], model)
        if ref.kind != "model":
            if self.pick_model is None:
                raise not_found_error(model)
            ref, resolution.router, resolution.route_target = self.pick_model(
                snap, ref, principal, needs, body)
        if ref.name == ECHO_MODEL:
            return self._echo(principal, resolution)
        canonical, pinned, offers = self._lookup(snap, ref)
        if canonical is None:
            raise not_found_error(model)
        check_model_allowed(principal.key, canonical)
        resolution.models.append(canonical)
        offers = self._candidates(snap, canonical, pinned, offers, preferences)
        ordered = self._order(offers, canonical, needs, preferences,
                              snap.routing.get(canonical))
        if not ordered and not optional:
            refusal = DomainError("no_provider_available",
                                  f"no provider can serve {canonical} now: "
                                  f"{self._why(snap, canonical, pinned, offers)}")
            wait = self._half_open_in(offers, canonical)
            if wait is not None:  # 2.7: every circuit open -> retry at the soonest half-open
                refusal.retry_after = wait  # type: ignore[attr-defined]
            raise refusal
        resolution.offers = ordered
        return resolution

    def _echo(self, principal: KeyPrincipal, resolution: Resolution) -> Resolution:
        if principal.key.environment != "test":
            security_events.report_misuse(principal.key, "model_not_allowed")
            raise DomainError("model_not_allowed",
                              "gatewayz/echo is served to test keys only", param="model")
        resolution.offers, resolution.models = [ECHO_OFFER], [ECHO_MODEL]
        return resolution

    def _lookup(self, snap: Snapshot, ref: ModelRef
                ) -> tuple[str | None, str | None, list[Offer]]:
        """(canonical id, pinned provider, its offers) of a model reference."""
        name, pinned = ref.name, ref.provider
        target = snap.aliases.get(name)
        if target is not None and name not in snap.offers:
            name = target
        if name in snap.offers:
            return name, pinned, list(snap.offers[name])
        mapped = snap.native.get(name)
        if mapped is not None:  # a native id reads as its model pinned to that provider
            model_id, slug = mapped
            return model_id, pinned or slug, list(snap.offers.get(model_id, ()))
        org, _, rest = name.partition("/")
        provider = snap.providers.get(pinned or org)
        if provider is not None and provider.enabled and provider.passthrough and rest:
            _check_priced(name)
            native = rest if pinned is None else name
            return name, provider.slug, [Offer(name, provider, native, fallback_prices(),
                                               None, "fallback")]
        if name in snap.meta:  # known, but no enabled provider serves it with a price
            if pinned is not None:
                return name, pinned, []  # 2.3: 503 naming why the pin has no candidate
            _check_priced(name)
        return None, None, []

    def _candidates(self, snap: Snapshot, model_id: str, pinned: str | None,
                    offers: list[Offer], prefs: Preferences) -> list[Offer]:
        """2.3/2.4: pin or `only` first, then the admin override, then the catalog."""
        if pinned is not None:
            return [o for o in offers if o.provider.slug == pinned][:1]
        override = snap.routing.get(model_id, {}).get("providers")
        if override:
            rank = {slug: i for i, slug in enumerate(override)}
            offers = sorted((o for o in offers if o.provider.slug in rank),
                            key=lambda o: rank[o.provider.slug])
        if prefs.only is not None:
            offers = [o for o in offers if o.provider.slug in prefs.only]
        return [o for o in offers if o.provider.slug not in prefs.ignore]

    def _order(self, offers: list[Offer], model_id: str, needs: Needs,
               prefs: Preferences, routing: dict | None) -> list[Offer]:
        routing = routing or {}
        if routing.get("maintenance"):  # 2.7: no candidate while in maintenance
            return []
        # One candidate needs no strategy; its health and capability checks still apply.
        strategy = "priority" if len(offers) <= 1 else (
            prefs.strategy or routing.get("strategy") or self.default_strategy)
        ordering = order_candidates(candidates_of(offers, model_id, self.health), needs,
                                    strategy, self.rng)
        by_slug = {o.provider.slug: o for o in offers}
        ordered = [by_slug[c.slug] for c in ordering.ordered]
        if prefs.order:  # the client's own order goes first, the strategy's after
            rank = {slug: i for i, slug in enumerate(prefs.order)}
            ordered.sort(key=lambda o: rank.get(o.provider.slug, len(rank)))
        if not prefs.allow_fallbacks:
            ordered = ordered[:1]
        return ordered[:MAX_ATTEMPTS]

    def _half_open_in(self, offers: list[Offer], model_id: str) -> int | None:
        """Seconds until the soonest breaker of these offers half-opens, when all are open."""
        signals = [self.health.signals(o.provider.slug, model_id) for o in offers]
        if not signals or not all(s.circuit_open for s in signals):
            return None
        soonest = min((s.retry_at for s in signals if s.retry_at is not None), default=None)
        return max(1, math.ceil(soonest - time.time())) if soonest is not None else 1

    def _why(self, snap: Snapshot, model_id: str, pinned: str | None,
             offers: list[Offer]) -> str:
        if pinned is not None:
            provider = snap.providers.get(pinned)
            if provider is None or not provider.enabled:
                return f"the provider {pinned} is disabled"
            if not offers:
                return f"the provider {pinned} does not serve this model"
            return f"the provider {pinned} is unavailable (circuit open or unsupported)"
        if snap.routing.get(model_id, {}).get("maintenance"):
            return "the model is in maintenance"
        if not offers:
            return "no enabled provider serves it within the request's provider limits"
        return "every provider is unavailable (circuit open) or cannot honour the request"


def _check_priced(model_id: str) -> None:
    if is_premium_model(model_id):  # 5.4, 6.2: never a guessed premium price
        raise DomainError("model_pricing_missing",
                          f"{model_id} has no price set; refusing to guess a premium price",
                          param="model")


def not_found_error(model: object) -> DomainError:
    error = not_found(model if isinstance(model, str) else "")
    return DomainError(error.code, str(error), param="model")
