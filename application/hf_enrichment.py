"""Hugging Face enrichment (spec 5.6): Hub stats of the listed models that name a Hugging
Face id, refreshed daily in the background and attached to their cards.

Optional by design, so nothing waits on the Hub: the job runs off the request path, a
listing reads ``Enricher.data`` (a dict in memory, swapped whole after each run), and a
failed fetch only stamps ``failed_at`` while the last good values keep serving. Rows live
in an operational table (migrations/021_hf_enrichment.sql), shared by every worker: a
worker fetches only what nobody refreshed within the age, so N workers do not ask the
Hub N times a day, and each picks up the others' results when it reloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from application.feed import recorded_at

log = logging.getLogger("gatewayz.hf_enrichment")
DAY_S = 86_400.0  # 5.6 "refreshed daily"
CHECK_S = 600.0  # how often the job looks for due models (new ones should not wait a day)
# A failed fetch is retried sooner than a day, so a short Hub outage does not cost a
# never-enriched model a day, yet a wrong id does not hit the Hub every check.
RETRY_S = 6 * 3_600.0
MAX_PER_RUN = 2_000  # bounded work per run; the oldest go first, so the rest follow
CONCURRENCY = 4  # Hub requests in flight at once: polite to a free public API
RETENTION_S = 30 * DAY_S  # rows not attempted for this long belong to models gone since
FIELDS = ("id", "downloads", "likes", "parameters", "pipeline_tag", "author", "license")

FetchFn = Callable[[str], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class HfRow:
    """One row of ``hf_enrichment``; ``data`` None while no fetch of ``hf_id`` succeeded."""

    model_id: str
    hf_id: str
    data: dict[str, Any] | None
    fetched_at: str | None
    failed_at: str | None


def clean(data: Any) -> dict[str, Any] | None:
    """The card's ``huggingface`` object: exactly FIELDS, or None for a broken value."""
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        return None
    return {k: data.get(k) for k in FIELDS}


def parse(text: str | None) -> dict[str, Any] | None:
    """Stored JSON -> the object; a row damaged by hand is dropped, never raised on."""
    try:
        return clean(json.loads(text)) if text else None
    except ValueError:
        return None


class HubFetcher:
    """The production ``fetch_fn``: adapters.huggingface.fetch_hf with CheckedSessions
    opened per run (``per_run``), as a session is bound to the event loop running it and
    a test or admin may run the job from another loop than the maintenance one."""

    def __init__(self, base_url: str | None = None, allow_private: bool = False,
                 timeout_s: float = 10.0) -> None:
        # Imported by name so this layer does not depend on adapters at import time.
        self.hub = importlib.import_module("adapters.huggingface")
        self.listing = importlib.import_module("adapters.model_listing")
        self.base_url = base_url or self.hub.HF_BASE_URL
        self.allow_private = allow_private
        self.timeout_s = timeout_s

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> HubFetcher:
        """``GATEWAYZ_HF_BASE_URL`` (default https://huggingface.co, e.g. a mirror) and
        ``GATEWAYZ_HF_ALLOW_PRIVATE=1`` for a mirror on a private address (tests)."""
        return cls(env.get("GATEWAYZ_HF_BASE_URL") or None,
                   env.get("GATEWAYZ_HF_ALLOW_PRIVATE", "0") == "1")

    @contextlib.asynccontextmanager
    async def per_run(self) -> AsyncIterator[FetchFn]:
        sessions = self.listing.CheckedSessions()

        async def fetch(hf_id: str) -> dict[str, Any] | None:
            return await self.hub.fetch_hf(sessions.get(self.allow_private), hf_id,
                                           base_url=self.base_url,
                                           allow_private=self.allow_private,
                                           timeout_s=self.timeout_s)
        try:
            yield fetch
        finally:
            await sessions.close()

    async def __call__(self, hf_id: str) -> dict[str, Any] | None:
        async with self.per_run() as fetch:
            return await fetch(hf_id)


def listed_hf_ids(hf_ids: Callable[[], Mapping[str, str]],
                  listed: Callable[[], Any]) -> Callable[[], dict[str, str]]:
    """``hf_ids_fn`` over the models listed now (``listed()`` is a container of model ids,
    e.g. the snapshot's offers): a delisted model is not fetched for."""
    def current() -> dict[str, str]:
        models = listed()
        return {m: h for m, h in hf_ids().items() if m in models}
    return current


class Enricher:
    """``store``: adapters.hf_store.SqlHfStore (rows, save, purge); ``hf_ids_fn``: model id
    -> Hugging Face id of the listed models (blocking); ``fetch_fn``: async hf id -> the
    object or None, or an object whose ``per_run()`` opens one per run (HubFetcher);
    ``clock.now()`` gives an aware datetime."""

    def __init__(self, store: Any, hf_ids_fn: Callable[[], Mapping[str, str]],
                 fetch_fn: Any, clock: Any, *, max_per_run: int = MAX_PER_RUN,
                 concurrency: int = CONCURRENCY, max_age_s: float = DAY_S,
                 retry_s: float = RETRY_S) -> None:
        self.store = store
        self.hf_ids_fn = hf_ids_fn
        self.fetch_fn = fetch_fn
        self.clock = clock
        self.max_per_run = max_per_run
        self.concurrency = concurrency
        self.max_age_s = max_age_s
        self.retry_s = retry_s
        self._data: dict[str, dict[str, Any]] = {}

    # -- the request path: memory only ------------------------------------------------
    def data(self, model_id: str) -> dict[str, Any] | None:
        """The model's ``huggingface`` object, or None: never a query, never the Hub."""
        found = self._data.get(model_id)
        return dict(found) if found is not None else None  # callers may not share ours

    # -- loading (blocking) -----------------------------------------------------------------
    def load(self) -> int:
        """Refill the memory from the table (at start, and after each run, so another
        worker's results show here too); a failure keeps what memory has. Returns the
        number of models with enrichment."""
        try:
            self._refresh(self.store.rows(), self._hf_ids_or_none())
        except Exception:
            log.exception("could not load Hugging Face enrichment; keeping what we have")
        return len(self._data)

    def _hf_ids_or_none(self) -> Mapping[str, str] | None:
        try:
            return self.hf_ids_fn()
        except Exception:  # the catalog unreadable: show every row rather than none
            log.warning("could not read the models' Hugging Face ids", exc_info=True)
            return None

    def _refresh(self, rows: list[HfRow], hf_ids: Mapping[str, str] | None) -> None:
        # A row fetched for another hf id than the model names now describes another
        # repository: omitted until the new id is fetched.
        self._data = {r.model_id: r.data for r in rows if r.data is not None
                      and (hf_ids is None or hf_ids.get(r.model_id) == r.hf_id)}

    # -- the job ------------------------------------------------------------------------
    def due(self, rows: list[HfRow], hf_ids: Mapping[str, str], now: datetime,
            max_age_s: float | None = None) -> list[tuple[str, str]]:
        """(model id, hf id) to fetch now, never fetched first, then the oldest attempt,
        at most ``max_per_run``."""
        age = self.max_age_s if max_age_s is None else max_age_s
        fresh_after = recorded_at(now - timedelta(seconds=age))
        retry_after = recorded_at(now - timedelta(seconds=min(age, self.retry_s)))
        by_model = {r.model_id: r for r in rows}
        found = []
        for model_id, hf_id in hf_ids.items():
            row = by_model.get(model_id)
            if row is None or row.hf_id != hf_id:
                found.append(("", model_id, hf_id))
            elif row.failed_at is not None:  # the last attempt failed
                if row.failed_at <= retry_after:
                    found.append((row.failed_at, model_id, hf_id))
            elif row.fetched_at is None or row.fetched_at <= fresh_after:
                found.append((row.fetched_at or "", model_id, hf_id))
        found.sort()
        return [(m, h) for _, m, h in found[:self.max_per_run]]

    async def run_once(self, max_age_s: float | None = None) -> dict[str, int]:
        """Fetch the due models (at most ``concurrency`` at once), save, reload memory.
        ``max_age_s`` overrides the age a value is refreshed at (0: refetch all)."""
        rows, hf_ids = await asyncio.to_thread(lambda: (self.store.rows(), self.hf_ids_fn()))
        self._refresh(rows, hf_ids)
        now = self.clock.now()
        todo = self.due(rows, hf_ids, now, max_age_s)
        results: list[tuple[str, str, dict[str, Any] | None]] = []
        if todo:
            gate = asyncio.Semaphore(self.concurrency)
            opener = getattr(self.fetch_fn, "per_run", None)
            async with opener() if opener else contextlib.nullcontext(self.fetch_fn) as fetch:
                async def one(model_id: str, hf_id: str) -> None:
                    async with gate:
                        try:
                            got = clean(await fetch(hf_id))
                        except Exception:  # a bug in a fetch is that model's failure only
                            log.exception("Hugging Face fetch of %s failed", hf_id)
                            got = None
                        results.append((model_id, hf_id, got))
                await asyncio.gather(*(one(m, h) for m, h in todo))
        at = recorded_at(self.clock.now())
        purge_before = recorded_at(now - timedelta(seconds=RETENTION_S))

        def save() -> list[HfRow]:
            self.store.save(results, at)
            self.store.purge(purge_before)
            return self.store.rows()
        self._refresh(await asyncio.to_thread(save), hf_ids)
        failed = sum(1 for _, _, got in results if got is None)
        counts = {"models": len(hf_ids), "due": len(todo), "fetched": len(results) - failed,
                  "failed": failed, "enriched": len(self._data)}
        if todo:
            log.info("hugging face enrichment: %s", counts)
        return counts


async def run_forever(enricher: Enricher, interval_s: float = DAY_S,
                      check_s: float = CHECK_S) -> None:
    """The maintenance job: every ``check_s`` (10% jitter) fetch what is older than
    ``interval_s`` or never fetched, so a model synced after start is enriched within
    minutes yet each value is refreshed daily. A failed pass is logged and retried."""
    while True:
        try:
            await enricher.run_once(interval_s)
        except Exception:
            log.exception("hugging face enrichment run failed")
        await asyncio.sleep(check_s * random.uniform(0.9, 1.1))
