"""Discovery sync (spec 5.2): list each provider's models in the background and record what
changed as catalog events, so the synced layer of the catalog follows the providers.

Only the scheduler and the admin trigger call providers here, never a client request: the
routing view reads the projected rows. A listing that fails, or that comes back empty, is
recorded as a failure and changes no row (the last good data keeps serving). The network
part is async; loading, diffing and saving run in a thread, as the event store is blocking.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from ulid import ULID

from application import envelope
from application.catalog_view import BUILTIN_PROVIDER, CatalogView
from application.feed import recorded_at
from domain.catalog import Model
from domain.catalog_sync import Entry, ProviderListing, entries_of
from domain.errors import DomainError
from domain.ids import new_id
from domain.model_names import quoted

log = logging.getLogger("gatewayz.catalog_sync")
SYNC_INTERVAL_S = 1800.0
LISTING_TIMEOUT_S = 30.0
CONCURRENCY = 4  # providers listed at once: a few slow providers must not hold up the rest
SAVE_ATTEMPTS = 3


def interval_from_env(env: Any = os.environ) -> float:
    """``GATEWAYZ_SYNC_INTERVAL_S``; at least a minute, so a typo cannot loop on providers."""
    return max(float(env.get("GATEWAYZ_SYNC_INTERVAL_S") or SYNC_INTERVAL_S), 60.0)


def excluded_from_env(env: Any = os.environ) -> frozenset[str]:
    """``GATEWAYZ_SYNC_EXCLUDE=slug,slug``: providers the sync never lists."""
    return frozenset(s.strip() for s in env.get("GATEWAYZ_SYNC_EXCLUDE", "").split(",")
                     if s.strip())


def parse_at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class Target:
    slug: str
    dialect: str
    base_url: str
    allow_private: bool
    family: str | None  # the org of a provider's own models (openai -> "openai")


class _UtcClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class CatalogSync:
    """``listing`` is the listing adapter (adapters.model_listing, or a test double):
    CheckedSessions, list_models, dialect_for and ListingError."""

    def __init__(self, app: Any, vault: Any, view: CatalogView,
                 wait: Callable[[str, int], Any], *, listing: Any = None, clock: Any = None,
                 exclude: frozenset[str] | None = None,
                 timeout_s: float = LISTING_TIMEOUT_S) -> None:
        self.app = app
        self.vault = vault
        self.view = view
        self.wait = wait
        # Imported by name so this layer does not depend on adapters at import time.
        self.listing = listing or importlib.import_module("adapters.model_listing")
        self.clock = clock or _UtcClock()
        self.exclude = excluded_from_env() if exclude is None else exclude
        self.timeout_s = timeout_s

    # -- which providers ---------------------------------------------------------------
    def _why_not(self, slug: str) -> tuple[Target | None, str]:
        info = self.view.snapshot.providers.get(slug)
        if info is None or not info.registered:
            return None, "is not registered"
        if not info.enabled:
            return None, "is disabled"
        if slug in self.exclude or slug == BUILTIN_PROVIDER:
            return None, "is excluded from sync"
        seed = next((p for p in self.view.seed.providers if p.slug == slug), None)
        # A shipped default keeps its declared dialect (OpenRouter's carries prices, a
        # templated host has none); a provider an admin added speaks what its protocol says.
        dialect = seed.listing if seed is not None else (
            info.listing or self.listing.dialect_for(info.protocol, info.base_url))
        if dialect is None:
            return None, "has no model listing"
        family = seed.family if seed is not None else info.family
        return Target(slug, dialect, info.base_url, info.allow_private, family), ""

    def targets(self) -> list[Target]:
        """Enabled, registered providers with a listing dialect and not excluded."""
        found = (self._why_not(slug)[0] for slug in sorted(self.view.snapshot.providers))
        return [t for t in found if t is not None]

    # -- running ------------------------------------------------------------------------
    async def sync(self, provider: str | None = None, *,
                   min_age_s: float = 0.0) -> dict[str, dict]:
        """List every target (or one) and record each outcome; returns counts per provider.
        ``min_age_s`` skips a provider whose last run is younger (another worker's)."""
        if provider is not None:
            target, why = self._why_not(provider)
            if target is None:
                code = "not_found" if why == "is not registered" else "invalid_request"
                raise DomainError(code, f"provider {quoted(provider)} {why}", param="provider")
            targets = [target]
        else:
            targets = self.targets()
        run_id = str(ULID())
        sessions = self.listing.CheckedSessions()
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(target: Target) -> tuple[str, dict | None]:
            async with gate:
                return target.slug, await self._one(target, sessions, run_id, min_age_s)

        try:
            results = await asyncio.gather(*(one(t) for t in targets))
        finally:
            await sessions.close()
        return {slug: counts for slug, counts in results if counts is not None}

    def sync_now(self, provider: str | None = None) -> dict[str, dict]:
        """``sync`` from a thread without an event loop (the admin command's)."""
        return asyncio.run(self.sync(provider))

    async def _one(self, target: Target, sessions: Any, run_id: str,
                   min_age_s: float) -> dict | None:
        if min_age_s and await asyncio.to_thread(self._recent, target.slug, min_age_s):
            return None
        try:
            credential = await asyncio.to_thread(self.vault.get, target.slug)
            outcome: Any = await self.listing.list_models(
                sessions, dialect=target.dialect, base_url=target.base_url,
                credential=credential, allow_private=target.allow_private,
                timeout_s=self.timeout_s)
        except self.listing.ListingError as error:
            outcome = str(error)
        except Exception as error:  # a bug or an odd body: this provider fails, not the run
            log.exception("listing %s failed unexpectedly", target.slug)
            outcome = f"{type(error).__name__}: {error}"
        try:
            return await asyncio.to_thread(self._record, target, run_id, outcome, min_age_s)
        except Exception as error:  # the event store away: nothing recorded, retried later
            log.exception("could not record the sync of %s", target.slug)
            return _counts(run_id, error=f"not recorded: {type(error).__name__}")

    # -- recording (blocking) -----------------------------------------------------------
    def _load(self, slug: str) -> ProviderListing | None:
        try:
            return self.app.repository.get(ProviderListing.create_id(slug))
        except AggregateNotFoundError:
            return None

    def _recent(self, slug: str, min_age_s: float) -> bool:
        agg = self._load(slug)
        return _younger(agg, self.clock.now(), min_age_s)

    def _known(self, slug: str) -> dict[str, str]:
        rows = [*self.view.seed.offers, *self.view.reader.offers()]  # admin rows last win
        return {r.native_id.lower(): r.model_id for r in rows if r.provider == slug}

    def _delisted(self, model_id: str, slug: str, run_id: str) -> Model:
        """5.2 names the removal on the model itself: a `Model.Delisted` saved with the
        listing's events, in one transaction."""
        model = _model(self.app, model_id)
        model.delist(slug, run_id)
        return model

    def _record(self, target: Target, run_id: str, outcome: Any, min_age_s: float) -> dict | None:
        current: dict[str, Entry] = {}
        skipped = 0
        if not isinstance(outcome, str):
            current, skipped = entries_of(outcome.models, target.dialect, target.family,
                                          self._known(target.slug))
            skipped += outcome.dropped
            if not current:  # as an empty listing: never a reason to delist everything
                outcome = f"none of {len(outcome.models)} listed models has a canonical id"
        for _ in range(SAVE_ATTEMPTS):
            agg = self._load(target.slug)
            now = self.clock.now()
            if min_age_s and _younger(agg, now, min_age_s):
                return None  # another worker ran it meanwhile
            agg = agg or ProviderListing(provider=target.slug)
            at = recorded_at(now)
            if isinstance(outcome, str):
                agg.fail(run_id, outcome, at)
                counts = _counts(run_id, error=outcome[:500])
            delisted: list = []
            if not isinstance(outcome, str):
                added, changed, removed = agg.record(run_id, current, at)
                counts = _counts(run_id, len(added), len(changed), len(removed),
                                 len(current), skipped)
                delisted = [self._delisted(m, target.slug, run_id) for m in removed]
            try:
                position = self.app.save(agg, *delisted)[-1].notification.id
            except IntegrityError:
                continue  # a concurrent run saved first: diff against what it recorded
            self.wait("catalog", position)
            log.info("catalog sync %s of %s: %s", run_id, target.slug, counts)
            return counts
        return _counts(run_id, error="a concurrent sync kept winning; retry")


def _model(app: Any, model_id: str) -> Model:
    try:
        return app.repository.get(Model.create_id(model_id))
    except AggregateNotFoundError:
        return Model(model_id=model_id)


def _younger(agg: ProviderListing | None, now: datetime, min_age_s: float) -> bool:
    last = agg.last_run_at if agg is not None else None
    return last is not None and now - parse_at(last) < timedelta(seconds=min_age_s)


def _counts(run_id: str, added: int = 0, changed: int = 0, removed: int = 0,
            listed: int = 0, skipped: int = 0, error: str | None = None) -> dict:
    return {"run_id": run_id, "added": added, "changed": changed, "removed": removed,
            "listed": listed, "skipped": skipped, "failed": error is not None, "error": error}


class Staleness:
    """``CatalogView.stale()``: some provider sync serves went two intervals without a
    successful listing. The answer is kept ``ttl_s`` so a listing request (which asks on
    every call) does not query the database each time."""

    def __init__(self, stale_providers: Callable[[datetime, float], list[str]],
                 sync: CatalogSync, interval_s: float | None = None, clock: Any = None,
                 ttl_s: float = 5.0) -> None:
        self.stale_providers = stale_providers
        self.sync = sync
        self.interval_s = interval_s or interval_from_env()
        self.clock = clock or sync.clock
        self.ttl_s = ttl_s
        self._cached: tuple[datetime, bool] | None = None

    def providers(self) -> list[str]:
        """Stale providers sync still serves (a disabled or excluded one stops counting)."""
        served = {t.slug for t in self.sync.targets()}
        return [p for p in self.stale_providers(self.clock.now(), self.interval_s)
                if p in served]

    def __call__(self) -> bool:
        now = self.clock.now()
        cached = self._cached
        if cached is None or now - cached[0] >= timedelta(seconds=self.ttl_s):
            cached = self._cached = (now, bool(self.providers()))
        return cached[1]


async def run_forever(sync: CatalogSync, interval_s: float | None = None) -> None:
    """The maintenance job: a sync now, then every interval (10% jitter so workers started
    together drift apart). A run younger than half an interval, another worker's, is
    skipped per provider, so N workers do not list every provider N times."""
    interval_s = interval_s or interval_from_env()
    while True:
        job = envelope.Envelope(envelope.Actor("scheduler", "catalog-sync"),
                                correlation_id=new_id("job"))
        with envelope.acting(job):
            try:
                await sync.sync(min_age_s=interval_s / 2)
            except Exception:  # logged; the next pass tries again
                log.exception("catalog sync run failed")
        await asyncio.sleep(interval_s * random.uniform(0.9, 1.1))
