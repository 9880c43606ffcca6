"""Provider credit monitoring (spec 3.6): read the operator's balance at each provider with a
balance API every 15 minutes, keep its level in memory for selection (2.6), and record each
threshold crossing once as `ProviderCredit.LevelChanged` (the alert, with a WARNING log line).

Only the scheduler calls a billing API here, never a request: ``level()`` is a dict lookup.
A read that fails keeps the last known value (routing unaffected); a level that could not
be recorded (event store away) is retried on the next pass. The balance API path comes from
the shipped defaults (catalog_data/providers.json ``balance_api``), by slug: an admin-added
provider has none. The network part is async; the event store is blocking, so it runs in a
thread.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import random
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from application import envelope
from application.catalog_seed import load_providers
from application.feed import recorded_at
from application.retry import with_retry
from domain.ids import new_id
from domain.provider_credit import (
    DEFAULT_THRESHOLDS,
    ProviderCredit,
    Thresholds,
    format_usd,
    is_worse,
    thresholds_of,
    usd_to_micros,
)

log = logging.getLogger("gatewayz.credit")
BALANCE_INTERVAL_S = 900.0  # 3.6: every 15 minutes
READ_TIMEOUT_S = 10.0
CONCURRENCY = 4
MAX_ERROR = 300


def balance_apis() -> dict[str, str]:
    """slug -> balance path of the shipped defaults that have one."""
    return {p["slug"]: p["balance_api"] for p in load_providers() if p["balance_api"]}


def thresholds_from_env(env: Mapping[str, str] = os.environ) -> dict[str, Thresholds]:
    """``GATEWAYZ_CREDIT_THRESHOLDS``: JSON, e.g. ``{"openrouter": {"warning": "250"}}`` (USD).
    Broken JSON or values raise, so a typo fails the start instead of silencing alerts."""
    text = env.get("GATEWAYZ_CREDIT_THRESHOLDS", "").strip()
    return thresholds_of(json.loads(text)) if text else {}


class _UtcClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Reading:
    """What this worker knows of one provider's balance."""

    balance_micros: int | None = None
    read_at: str | None = None  # the last successful read
    last_error: str | None = None  # the last failed read's reason, cleared by a success
    failed_at: str | None = None


class CreditWatch:
    """``reader`` is the balance adapter (adapters.provider_balance, or a test double):
    CheckedSessions, read_balance and BalanceError. ``clock.now()`` gives an aware datetime."""

    def __init__(self, snapshot_fn: Callable[[], Any], credentials_fn: Callable[[str], str],
                 app: Any, reader: Any = None, clock: Any = None, *,
                 thresholds: Mapping[str, Thresholds] | None = None,
                 apis: Mapping[str, str] | None = None,
                 timeout_s: float = READ_TIMEOUT_S) -> None:
        self.snapshot_fn = snapshot_fn
        self.credentials_fn = credentials_fn
        self.app = app  # the catalog context's Application
        # Imported by name so this layer does not depend on adapters at import time.
        self.reader = reader or importlib.import_module("adapters.provider_balance")
        self.clock = clock or _UtcClock()
        self.thresholds = dict(thresholds or {})
        self.apis = dict(balance_apis() if apis is None else apis)
        self.timeout_s = timeout_s
        self._levels: dict[str, str] = {}  # slug -> level, only the non-None ones
        self._readings: dict[str, Reading] = {}
        self._recorded: dict[str, str | None] = {}  # the level the event store holds
        # Crossings this worker recorded, by (provider, level): the alert metric until
        # /metrics exists (8.1).
        self.alerts: Counter[tuple[str, str | None]] = Counter()

    # -- what selection and admins read ------------------------------------------------
    def level(self, slug: str) -> str | None:
        """The provider's credit level for selection: in memory, never a call out."""
        return self._levels.get(slug)

    def thresholds_for(self, slug: str) -> Thresholds:
        return self.thresholds.get(slug, DEFAULT_THRESHOLDS)

    def monitored(self) -> list[Any]:
        """Enabled, registered providers (ProviderInfo) that have a balance API, by slug."""
        providers = self.snapshot_fn().providers
        return [p for slug, p in sorted(providers.items())
                if p.registered and p.enabled and slug in self.apis]

    def balance(self, slug: str) -> dict[str, Any]:
        """The admin view of one provider's balance (GET /admin/providers/{slug}/balance)."""
        reading = self._readings.get(slug) or Reading()
        micros = reading.balance_micros
        return {"provider": slug, "monitored": any(p.slug == slug for p in self.monitored()),
                "balance_api": slug in self.apis,
                "balance_usd": format_usd(micros) if micros is not None else None,
                "balance_micros": micros, "level": self.level(slug),
                "read_at": reading.read_at, "last_error": reading.last_error,
                "failed_at": reading.failed_at,
                "thresholds": self.thresholds_for(slug).as_json()}

    # -- reading ---------------------------------------------------------------------------
    async def refresh(self) -> dict[str, str | None]:
        """One pass over every monitored provider; returns slug -> level after it."""
        providers = self.monitored()
        watched = {p.slug for p in providers}
        for slug in [s for s in self._readings if s not in watched]:
            # Disabled or gone: it routes nowhere, and a re-enabled one is read afresh
            # (its stream reloaded: another worker may have recorded meanwhile).
            for known in (self._readings, self._levels, self._recorded):
                known.pop(slug, None)
        sessions = self.reader.CheckedSessions()
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(provider: Any) -> None:
            async with gate:
                await self._one(provider, sessions)

        try:
            await asyncio.gather(*(one(p) for p in providers))
        finally:
            await sessions.close()
        return {slug: self.level(slug) for slug in sorted(watched)}

    async def _one(self, provider: Any, sessions: Any) -> None:
        slug = provider.slug
        try:
            credential = await asyncio.to_thread(self.credentials_fn, slug)
            usd = await self.reader.read_balance(
                sessions, base_url=provider.base_url, path=self.apis[slug],
                credential=credential, allow_private=provider.allow_private,
                timeout_s=self.timeout_s)
            micros = usd_to_micros(usd)
        except Exception as error:  # every failure keeps the last known value
            if not isinstance(error, self.reader.BalanceError):
                log.exception("reading the balance at %s failed unexpectedly", slug)
            await self._failed(slug, f"{type(error).__name__}: {error}"[:MAX_ERROR])
            return
        level = self.thresholds_for(slug).level(micros)
        self._readings[slug] = Reading(micros, recorded_at(self.clock.now()))
        self._set_level(slug, level)
        if slug not in self._recorded or self._recorded[slug] != level:
            await self._record(slug, level, micros)

    async def _failed(self, slug: str, error: str) -> None:
        log.warning("could not read the balance at %s: %s; keeping the last known value",
                    slug, error)
        reading = self._readings.get(slug)
        if reading is None:
            # Nothing read since this process started: the last recorded crossing is the
            # last known level (a restart during a billing API outage keeps deprioritising).
            reading = self._readings[slug] = Reading()
            recorded = await asyncio.to_thread(self._recall, slug)
            if recorded is not None:
                reading.balance_micros = recorded[1]  # as of that crossing
                self._recorded[slug] = recorded[0]
                self._set_level(slug, recorded[0])
        reading.last_error, reading.failed_at = error, recorded_at(self.clock.now())

    def _set_level(self, slug: str, level: str | None) -> None:
        if level is None:
            self._levels.pop(slug, None)
        else:
            self._levels[slug] = level

    # -- recording (blocking parts in a thread) ----------------------------------------------
    def _load(self, slug: str) -> ProviderCredit | None:
        try:
            return self.app.repository.get(ProviderCredit.create_id(slug))
        except AggregateNotFoundError:
            return None

    def _recall(self, slug: str) -> tuple[str | None, int | None] | None:
        try:
            agg = self._load(slug)
        except Exception:  # the store away too: the level stays unknown (no change)
            log.warning("could not load the recorded credit level of %s", slug)
            return None
        return (agg.level, agg.balance_micros) if agg is not None else None

    async def _record(self, slug: str, level: str | None, micros: int) -> None:
        try:
            previous = await asyncio.to_thread(self._save, slug, level, micros)
        except Exception:  # retried on the next pass: _recorded still differs
            log.exception("could not record the credit level of %s", slug)
            return
        self._recorded[slug] = level
        if previous is False:
            return  # already recorded (by another worker, or before a restart)
        self.alerts[(slug, level)] += 1
        # The alert's log line; getting better is news, not a warning.
        log.log(logging.WARNING if is_worse(level, previous) else logging.INFO,
                "provider %s credit level %s -> %s: balance $%s", slug, previous or "ok",
                level or "ok", format_usd(micros))

    def _save(self, slug: str, level: str | None, micros: int) -> str | None | bool:
        """The previous level when a crossing was recorded, False when none was needed.
        A concurrent writer (another worker's read) makes with_retry reload, and the level
        it recorded then equals ours: nothing is recorded twice."""
        def attempt() -> str | None | bool:
            agg = self._load(slug) or ProviderCredit(provider=slug)
            previous = agg.level
            if not agg.observe(level, micros, "system"):
                return False
            self.app.save(agg)
            return previous

        return with_retry(attempt)


async def run_forever(watch: CreditWatch, interval_s: float = BALANCE_INTERVAL_S) -> None:
    """The maintenance job: a pass now, then every interval (10% jitter so workers started
    together drift apart). Each worker reads for its own routing; the stream dedupes alerts."""
    while True:
        job = envelope.Envelope(envelope.Actor("scheduler", "credit-watch"),
                                correlation_id=new_id("job"))
        with envelope.acting(job):
            try:
                await watch.refresh()
            except Exception:  # logged; the next pass tries again
                log.exception("credit watch pass failed")
        await asyncio.sleep(interval_s * random.uniform(0.9, 1.1))
