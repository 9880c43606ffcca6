"""Wiring of routing: the shipped catalog seed, breakers (Redis-shared when configured),
passive health capture and the resolver (spec 2, 3, 5)."""

from __future__ import annotations

import contextvars
import logging
import os
import time

from application.breakers import Breakers, HealthBoard
from application.catalog_view import Seed
from application.health_events import HealthEvents
from application.model_routers import ModelPicker, RouteService
from application.resolve import Resolver
from application.routing_health import RoutingHealth
from domain.circuit_breaker import CLOSED, Transition

log = logging.getLogger("gatewayz")
# Who caused a transition: "system" for traffic, the admin for a reset (3.3 "audited").
_ORDER = {"healthy": 0, "degraded": 1, "down": 2}
_ACTOR: contextvars.ContextVar[str] = contextvars.ContextVar("breaker_actor", default="system")


def catalog_seed(enabled: bool = True) -> Seed:
    """The shipped default providers, aliases and seeded prices, or an empty seed when
    GATEWAYZ_CATALOG_SEED=0 (tests that want a catalog of only their own rows)."""
    if not enabled or os.environ.get("GATEWAYZ_CATALOG_SEED", "1") == "0":
        return Seed()
    from adapters.catalog_seed_loader import load_seed

    return load_seed()


class Routing:
    def __init__(self, catalog_view, catalog_app, redis_url: str | None,
                 redis_prefix: str, wait) -> None:
        self.events = HealthEvents(catalog_app)
        def on_transition(transition) -> None:
            self.events.record(transition, _ACTOR.get())

        self.breakers = (Breakers.with_redis(redis_url, redis_prefix,
                                             on_transition=on_transition)
                         if redis_url else Breakers.embedded(on_transition=on_transition))
        self.board = HealthBoard()
        self.health = RoutingHealth(self.breakers, self.board)
        self.resolver = Resolver(catalog_view, self.health)
        self.resolver.pick_model = ModelPicker(self.health)
        self.routes = RouteService(catalog_app, wait, lambda: catalog_view.snapshot)
        self.catalog_view = catalog_view
        self.credit = None  # the provider credit watch (3.6), made by attach()

    def attach(self, gw, catalog_queries, wait) -> None:
        """Discovery sync (5.2) and incidents (3.4), which need the gateway's vault, clock
        and projector; their results hang on the gateway for the HTTP layer."""
        from adapters import model_listing
        from application.catalog_sync import CatalogSync, Staleness, interval_from_env
        from application.incidents import IncidentTracker
        from projections.incidents import IncidentQueries

        gw.catalog_sync = CatalogSync(gw.stores.catalog, gw.vault, self.catalog_view, wait,
                                      listing=model_listing, clock=gw.clock)
        self.catalog_view.stale_check = Staleness(catalog_queries.sync.stale_providers,
                                                  gw.catalog_sync, interval_from_env(),
                                                  gw.clock)
        from adapters.hf_store import SqlHfStore
        from application.hf_enrichment import Enricher, HubFetcher, listed_hf_ids

        # 5.6: Hub stats of the listed models, fetched by the maintenance job only; the
        # listing reads gw.hf.data (memory), loaded by Gateway.start.
        gw.hf = Enricher(SqlHfStore(gw.db),
                         listed_hf_ids(catalog_queries.sync.hf_ids,
                                       lambda: self.catalog_view.snapshot.offers),
                         HubFetcher.from_env(), gw.clock)
        gw.incident_queries = IncidentQueries(gw.db)
        gw.incidents = IncidentTracker(gw.stores.catalog, gw.incident_queries, self.board,
                                       wait=wait)
        self.health.observer = gw.incidents.observe
        from adapters import provider_balance
        from application.credit_watch import CreditWatch, thresholds_from_env

        # 3.6: the maintenance loop reads balances; selection reads levels from memory.
        self.credit = CreditWatch(lambda: self.catalog_view.snapshot, gw.vault.get,
                                  gw.stores.catalog, provider_balance, gw.clock,
                                  thresholds=thresholds_from_env())
        self.health.credit = self.credit

    def reset(self, key: str, actor: str, always: bool = False):
        """An admin reset (3.3 "audited"): a state change is recorded with the admin as
        actor; with ``always`` a breaker that was closed already is recorded too, so every
        reset command leaves its event."""
        token = _ACTOR.set(actor)
        try:
            transition = self.breakers.reset(key)
        finally:
            _ACTOR.reset(token)
        if transition is None and always:
            self.events.record(Transition(key, CLOSED, CLOSED, time.time(), "reset"), actor)
        return transition

    def model_status(self, model_id: str) -> str:
        """A model's status: that of its best provider (healthy > degraded > down)."""
        pairs = self.health.pairs.get(model_id)
        if not pairs:
            return "healthy"  # no traffic seen: no data is healthy (3.2, 2.7)
        offers = self.catalog_view.snapshot.offers.get(model_id, ())
        statuses = [pairs.get(o.provider.slug, "healthy") for o in offers] or ["healthy"]
        return min(statuses, key=_ORDER.__getitem__)

    def provider_status(self, slug: str) -> str:
        return "down" if not self.breakers.peek(f"p:{slug}").allowed else "healthy"

    def stop(self) -> None:
        self.health.stop()
