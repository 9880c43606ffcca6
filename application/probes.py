"""Active health probes (3.1): a minimal real request to every probed (provider, model)
pair on its tier's schedule (domain/probe_schedule.py), off every request path.

A probe is sent with the platform's own provider credential (the vault's, as discovery
sync uses), never a customer's. It places no hold and writes no request event, so no
account has a record of it at all: it cannot appear in any customer's usage, ledger or
SLA; what it costs the operator is paid upstream on the operator's credential.

Each recorded result goes to the probe store (uptime, 8.7), to routing health (the board,
the breakers and the pair's status: ``observe(..., probe=True)``, which leaves the
in-flight count alone and does not pass it on as traffic) and to the incident tracker as a
probe (3 failed probes open an incident, 3.4). Any of the three failing is logged and
changes nothing else.

Scheduled runs happen on one worker at a time (the store's lease); an admin's probe runs
on the worker that got the request. At most ``max_in_flight`` attempts are on the wire at
once per worker, admin probes included.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

from application.catalog_view import BUILTIN_PROVIDER, Offer
from application.messages_request import DEFAULT_VERSION
from application.ports import ProviderTarget
from domain import probe_schedule as schedule
from domain.errors import DomainError
from domain.probe_schedule import LastResult, Pair, ProbeResult, Tier, Verdict

log = logging.getLogger("gatewayz.probes")
_encode = msgspec.json.encode
_decode = msgspec.json.Decoder().decode
DAY_S = 86_400
WINDOWS = {"24h": DAY_S, "7d": 7 * DAY_S, "30d": 30 * DAY_S}
HISTORY_DAYS = 90  # 8.7: daily history for 90 days
TIER_REFRESH_S = 900  # 7-day usage moves slowly; a newly used pair waits at most this
PURGE_EVERY_S = 3_600
LEASE_TTL_S = 600  # renewed every tick and batch; a dead leader is replaced after this


def probe_request(protocol: str, native: str, max_tokens: int) -> tuple[str, bytes, dict]:
    """The smallest real request a provider serves: one short user turn."""
    messages = [{"role": "user", "content": "ping"}]
    if protocol == "anthropic":
        return "/messages", _encode({"model": native, "max_tokens": max_tokens,
                                     "messages": messages}), \
            {"anthropic-version": DEFAULT_VERSION}
    return "/chat/completions", _encode({"model": native, "messages": messages,
                                         "max_tokens": max_tokens}), {}


def probe_pairs(snapshot: Any) -> dict[Pair, Offer]:
    """Every pair a customer could be routed to: offers of enabled providers an operator
    configured (a shipped default nobody registered has no credential to probe with)."""
    pairs: dict[Pair, Offer] = {}
    for model_id, offers in snapshot.offers.items():
        for offer in offers:
            provider = offer.provider
            if provider.slug != BUILTIN_PROVIDER and provider.registered:
                pairs[(provider.slug, model_id)] = offer
    return pairs


def _pct(probes: int, ok: int) -> float | None:
    return round(100 * ok / probes, 2) if probes else None


def _best(values) -> float | None:
    """A model is as available as its best provider: routing fails over to it (2.7)."""
    return max((v for v in values if v is not None), default=None)


class Prober:
    def __init__(self, snapshot_fn: Callable[[], Any], client: Any,
                 credentials_fn: Callable[[str], str], health: Any, incidents: Any,
                 store: Any, clock: Any, *, worker_id: str | None = None,
                 max_in_flight: int = schedule.MAX_IN_FLIGHT,
                 retry_base_s: float = schedule.RETRY_BASE_S,
                 tier_refresh_s: float = TIER_REFRESH_S) -> None:
        self.snapshot_fn = snapshot_fn  # -> catalog_view.Snapshot
        self.client = client  # a ProviderClient: send(target, path, body, headers)
        self.credentials = credentials_fn  # the platform vault's get(slug), blocking
        self.health = health  # routing_health.RoutingHealth
        self.incidents = incidents  # incidents.IncidentTracker
        self.store = store  # adapters/probe_store.SqlProbeStore
        self.clock = clock  # now() -> aware datetime
        self.worker_id = worker_id or f"prober-{uuid.uuid4().hex[:12]}"
        self.retry_base_s = retry_base_s
        self.tier_refresh_s = tier_refresh_s
        self._gate = asyncio.Semaphore(max_in_flight)
        self._tiers: dict[Pair, Tier] = {}
        self._usage: dict[Pair, int] = {}
        self._usage_at: float | None = None
        self._purged_at: float | None = None
        self._leading = False
        self.next_due_at: float | None = None  # after a run: when the next pair falls due

    def now(self) -> float:
        return self.clock.now().timestamp()

    # -- scheduling ----------------------------------------------------------------------
    async def lead(self) -> bool:
        """Take or keep the scheduled-run lease (one worker probes on schedule)."""
        try:
            self._leading = await asyncio.to_thread(self.store.lead, self.worker_id,
                                                    self.now(), LEASE_TTL_S)
        except Exception:  # the database away: nobody probes on schedule meanwhile
            log.exception("could not take the probe lease")
            self._leading = False
        return self._leading

    async def tiers(self, pairs, now: float) -> dict[Pair, Tier]:
        if self._usage_at is None or now - self._usage_at >= self.tier_refresh_s:
            self._usage = await asyncio.to_thread(self.store.requests_by_pair,
                                                  now - schedule.USAGE_WINDOW_S)
            self._usage_at = now
        self._tiers = schedule.assign_tiers(pairs, self._usage)
        return self._tiers

    async def run_due(self, now: float | None = None) -> list[ProbeResult]:
        """Probe every pair due now, batch by batch; returns the results recorded."""
        now = self.now() if now is None else now
        offers = probe_pairs(self.snapshot_fn())
        tiers = await self.tiers(offers, now)
        last = await asyncio.to_thread(self.store.last_results)
        results: list[ProbeResult] = []
        for n, batch in enumerate(schedule.batches(schedule.due(tiers, last, now))):
            if n and self._leading and not await self.lead():
                break  # another worker took over (we were too slow): it goes on from here
            done = await asyncio.gather(*(self.probe(offers[d.pair], d.tier) for d in batch))
            results += [r for r in done if r is not None]
        last.update({(r.provider, r.model_id): LastResult(r.at, r.ok) for r in results})
        self.next_due_at = schedule.next_wake(tiers, last)
        if self._purged_at is None or now - self._purged_at >= PURGE_EVERY_S:
            self._purged_at = now
            try:
                await asyncio.to_thread(self.store.purge, now)
            except Exception:
                log.exception("probe retention purge failed; retrying in an hour")
        return results

    async def probe_now(self, provider: str, model_id: str) -> ProbeResult:
        """An admin's probe of one pair, whatever its schedule (3.1)."""
        snapshot = self.snapshot_fn()
        info = snapshot.providers.get(provider)
        if info is None or not info.registered or not info.enabled \
                or provider == BUILTIN_PROVIDER:
            raise DomainError("not_found", "no such configured and enabled provider",
                              param="provider")
        offer = probe_pairs(snapshot).get((provider, model_id))
        if offer is None:
            raise DomainError("not_found", "the provider does not serve this model",
                              param="model")
        tier = self._tiers.get((provider, model_id), schedule.ON_DEMAND)
        result = await self.probe(offer, tier)
        if result is None:
            raise DomainError("service_unavailable", "the provider credential could not be "
                              "read; try again")
        return result

    # -- one probe -------------------------------------------------------------------------
    async def probe(self, offer: Offer, tier: Tier) -> ProbeResult | None:
        """Up to 1 + RETRIES attempts; the last one is recorded. None: not probed (our
        credential store failed, which says nothing about the provider)."""
        p = offer.provider
        try:
            credential = await asyncio.to_thread(self.credentials, p.slug)
        except Exception:
            log.exception("no credential for probing %s", p.slug)
            return None
        target = ProviderTarget(p.slug, p.base_url, p.protocol, p.allow_private,
                                tier.timeout_s * 1000, credential, offer.native_model_id,
                                total_timeout_s=tier.timeout_s)
        path, body, headers = probe_request(p.protocol, offer.native_model_id,
                                            tier.max_tokens)
        attempt = 0
        while True:
            attempt += 1
            async with self._gate:  # 3.1: at most 20 on the wire; backoff waits outside
                verdict, status, ttfb_ms, total_ms = await self._attempt(
                    target, path, body, headers, tier.timeout_s)
            if not schedule.should_retry(attempt, verdict):
                break
            await asyncio.sleep(schedule.retry_delay(attempt, self.retry_base_s))
        result = ProbeResult(p.slug, offer.model_id, self.now(), verdict.ok, status,
                             round(total_ms, 1), verdict.error_class, attempt, tier.name,
                             verdict.outcome)
        await asyncio.to_thread(self._report, result, ttfb_ms)
        return result

    async def _attempt(self, target: ProviderTarget, path: str, body: bytes, headers: dict,
                       timeout_s: float) -> tuple[Verdict, int | None, float | None, float]:
        began = time.monotonic()
        status, ttfb_ms = None, None
        try:
            async with asyncio.timeout(timeout_s):  # the body read included
                upstream = await self.client.send(target, path, body, headers)
                try:
                    status, ttfb_ms = upstream.status, _ms(began)
                    raw = await upstream.read()
                finally:
                    upstream.close()
        except TimeoutError:
            return schedule.judge(None, "timeout"), status, ttfb_ms, _ms(began)
        except Exception:  # refused, reset, unresolvable, a private address refused
            return schedule.judge(None, "connection"), status, ttfb_ms, _ms(began)
        if status == 200:
            try:
                if not isinstance(_decode(raw), dict):
                    raise ValueError("not an object")
            except Exception:
                return schedule.judge(None, "bad_response"), status, ttfb_ms, _ms(began)
        return schedule.judge(status), status, ttfb_ms, _ms(began)

    def _report(self, result: ProbeResult, ttfb_ms: float | None) -> None:
        """Blocking: store, routing health, incidents; each on its own (a failure in one
        is logged and the others still hear of the probe)."""
        steps = (
            ("store", lambda: self.store.record(result)),
            ("health", lambda: self.health.observe(
                result.provider, result.model_id, result.outcome, result.status or 0,
                ttfb_ms if result.ok else None, result.latency_ms, probe=True)),
            ("incidents", lambda: self.incidents.probe_result(
                result.provider, result.model_id, result.ok)),
        )
        for name, step in steps:
            try:
                step()
            except Exception:
                log.exception("probe result not passed to %s", name)

    # -- uptime (8.7) ----------------------------------------------------------------------
    def uptime(self, model_id: str, now: float | None = None) -> dict[str, Any]:
        """Blocking. Uptime % of probes over 24 h, 7 d and 30 d and per UTC day for 90
        days, per provider serving the model now and for the model (its best provider).
        None: no probe in that span."""
        now = self.now() if now is None else now
        providers = [o.provider.slug for o in self.snapshot_fn().offers.get(model_id, ())
                     if o.provider.slug != BUILTIN_PROVIDER and o.provider.registered]
        windows = {name: self.store.window(model_id, now - span)
                   for name, span in WINDOWS.items()}
        daily = self.store.daily(model_id, now - (HISTORY_DAYS - 1) * DAY_S)
        today = int(now // DAY_S)
        days = range(today - HISTORY_DAYS + 1, today + 1)
        rows = []
        for slug in providers:
            counts = {name: found.get(slug, (0, 0)) for name, found in windows.items()}
            history = daily.get(slug, {})
            rows.append({
                "provider": slug,
                "uptime": {name: _pct(*c) for name, c in counts.items()},
                "probes": {name: c[0] for name, c in counts.items()},
                "daily": [{"date": _date(day), "probes": history.get(day, (0, 0))[0],
                           "uptime": _pct(*history.get(day, (0, 0)))} for day in days]})
        return {
            "object": "model_uptime", "id": model_id,
            "uptime": {name: _best(r["uptime"][name] for r in rows) for name in WINDOWS},
            "daily": [{"date": _date(day),
                       "uptime": _best(r["daily"][i]["uptime"] for r in rows)}
                      for i, day in enumerate(days)],
            "providers": rows}


def _ms(began: float) -> float:
    return (time.monotonic() - began) * 1000


def _date(day: int) -> str:
    return datetime.fromtimestamp(day * DAY_S, UTC).date().isoformat()


async def run_forever(prober: Prober, tick_s: float = 30.0) -> None:
    """The maintenance job: every tick, the worker holding the lease probes what is due,
    waking earlier when a pair falls due sooner (so a failing pair is re-checked 300 s
    after its failure, not up to a tick later). A failed run is logged and retried."""
    while True:
        wait = tick_s
        try:
            if await prober.lead():
                await prober.run_due()
                if prober.next_due_at is not None:
                    wait = min(tick_s, max(1.0, prober.next_due_at - prober.now()))
        except Exception:
            log.exception("probe run failed")
        await asyncio.sleep(wait)
