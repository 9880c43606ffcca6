"""The names that choose a model: `router:general|code[:mode]` (2.10, 2.11) and an account's
`route:<name>` (2.12); and the commands that define routes. The choice itself is the pure
functions of domain/routers.py and domain/traffic_split.py; this module feeds them the
catalog snapshot, health and the calling key."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from application.access import model_allowed
from application.catalog_view import Snapshot
from application.principals import KeyPrincipal
from domain.code_tiers import classify
from domain.errors import DomainError
from domain.model_names import ModelRef, parse
from domain.route import Route
from domain.routers import ModelFacts, code_pick, general_pick, parse_router
from domain.selection import Needs
from domain.traffic_split import SplitRoute, choose_target, parse_route

MAX_ROUTES = 100  # per account: a route is configuration, not data


class ModelPicker:
    """Resolver.pick_model: a router or route reference to the model reference it picks."""

    def __init__(self, health: Any, rng: random.Random | None = None) -> None:
        self.health = health  # RoutingHealth: status and latency per (provider, model)
        self.rng = rng or random.Random()

    def __call__(self, snap: Snapshot, ref: ModelRef, principal: KeyPrincipal, needs: Needs,
                 body: dict) -> tuple[ModelRef, str | None, str | None]:
        if ref.kind == "route":
            return self._route(snap, ref, principal, body)
        written = f"router:{ref.name}" + (f":{ref.mode}" if ref.mode else "")
        try:
            parsed = parse_router(written)
        except ValueError as error:
            raise DomainError("invalid_model", str(error), param="model") from None
        if parsed is None:
            raise DomainError("invalid_model", "routers are router:general[:mode] and "
                              "router:code[:mode]", param="model")
        kind, mode = parsed
        facts = self._facts(snap, principal)
        if kind == "general":
            picked = general_pick(facts, mode, needs)
        else:
            picked = code_pick(facts, mode, classify(body), needs)
        if picked is None:
            raise DomainError("no_provider_available",
                              f"no scored model can serve router:{kind}:{mode} now")
        return ModelRef("model", picked), f"router:{kind}:{mode}", None

    def _facts(self, snap: Snapshot, principal: KeyPrincipal) -> list[ModelFacts]:
        """Scored, listed models this key may use (2.10 candidate models)."""
        out = []
        live = getattr(self.health, "live_success", None)  # 3.5: this account's own view
        for model_id, meta in snap.meta.items():
            offers = snap.offers.get(model_id)
            if not meta.scores or not offers or not model_allowed(principal.key, model_id):
                continue
            cheapest = min(offers, key=lambda o: o.prices.input + o.prices.output)
            latencies = [s.latency_ewma_ms for o in offers
                         if (s := self.health.signals(o.provider.slug, model_id))
                         .latency_ewma_ms is not None]
            statuses = {self.health.status(o.provider.slug, model_id) for o in offers}
            health = ("healthy" if "healthy" in statuses else
                      "degraded" if "degraded" in statuses else "down")
            out.append(ModelFacts(model_id, dict(meta.scores), cheapest.prices.input,
                                  cheapest.prices.output, min(latencies) if latencies else None,
                                  meta.capabilities or frozenset(), meta.context_length,
                                  health, live(principal.account_id, model_id) if live
                                  else None))
        return out

    def _route(self, snap: Snapshot, ref: ModelRef, principal: KeyPrincipal,
               body: dict) -> tuple[ModelRef, str | None, str | None]:
        targets = snap.routes.get((principal.account_id, ref.name))
        if targets is None:
            raise DomainError("model_not_found", f"no route named {ref.name!r}",
                              param="model")
        route = parse_route(ref.name, targets)
        for target in route.targets:  # 2.12: refused before any hold, whichever is drawn
            if not model_allowed(principal.key, target.model):
                raise DomainError("model_not_allowed", "this key may not use a target of "
                                  "this route", param="model")
        down = {t.target for t in route.targets if not self._available(snap, t)}
        user = body.get("user") if isinstance(body.get("user"), str) else None
        chosen = choose_target(route, user=user, rng=self.rng, unavailable=down)
        if chosen is None:
            raise DomainError("no_provider_available",
                              f"every target of route:{ref.name} is unavailable")
        return (ModelRef("model", chosen.model, provider=chosen.provider), None,
                chosen.target)

    def _available(self, snap: Snapshot, target: Any) -> bool:
        offers = [o for o in snap.offers.get(target.model, ())
                  if target.provider in (None, o.provider.slug)]
        return any(not self.health.signals(o.provider.slug, target.model).circuit_open
                   and self.health.status(o.provider.slug, target.model) != "down"
                   for o in offers)


class RouteService:
    def __init__(self, app: Any, wait: Callable[[str, int], None], snapshot: Callable[[],
                 Snapshot]) -> None:
        self.app = app
        self.wait = wait
        self.snapshot = snapshot

    def define(self, account_id: str, name: str, body: dict, actor: str) -> SplitRoute:
        name = name.lower()
        route = parse_route(name, body.get("targets"))
        snap = self.snapshot()
        for target in route.targets:
            try:
                ref = parse(target.model, snap.providers)
            except ValueError:
                ref = None
            if ref is None or ref.name not in snap.offers:
                raise DomainError("invalid_request", f"target {target.target} is not a "
                                  "listed model", param="targets")
        targets = route.to_json()
        try:
            entry = self.app.repository.get(Route.create_id(account_id, name))
            entry.replace(targets, actor)
        except AggregateNotFoundError:
            mine = [key for key in snap.routes if key[0] == account_id]
            if len(mine) >= MAX_ROUTES:
                raise DomainError("invalid_request", f"an account has at most {MAX_ROUTES} "
                                  "routes", param="name") from None
            entry = Route(account_id=account_id, name=name, targets=targets, actor=actor)
        self.wait("catalog", self.app.save(entry)[-1].notification.id)
        return route

    def delete(self, account_id: str, name: str, actor: str) -> None:
        name = name.lower()
        try:
            entry = self.app.repository.get(Route.create_id(account_id, name))
        except AggregateNotFoundError:
            entry = None
        if entry is None or entry.targets is None:
            raise DomainError("not_found", "no such route", param="name")
        entry.delete(actor)
        self.wait("catalog", self.app.save(entry)[-1].notification.id)

    def list(self, account_id: str) -> list[dict]:
        snap = self.snapshot()
        return [{"object": "route", "name": name, "targets": targets}
                for (account, name), targets in sorted(snap.routes.items())
                if account == account_id]
