"""Health as routing sees it: breakers and passive capture, kept off the request path (3.2, 3.3).

Routing reads breaker state from a local copy refreshed at most every ``cache_s`` (a closed
breaker admits everyone, so only a breaker the copy shows open or half-open is asked again
before an attempt). Every outcome is recorded by one background thread: the request never
waits on Redis, and a failing store changes nothing but the copy's freshness (3.2 "must not
add latency"). State changes reach the event store through ``on_transition``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from application.breakers import Breakers, HealthBoard
from application.selection_inputs import Signals
from domain.circuit_breaker import CLOSED, Admission, model_key, provider_key

log = logging.getLogger("gatewayz.health")
FAILED_OUTCOMES = ("error", "timeout", "rate_limited")
QUEUE_MAX = 10_000  # outcomes waiting to be recorded; beyond it capture drops, never blocks


class RoutingHealth:
    def __init__(self, breakers: Breakers, board: HealthBoard, cache_s: float = 0.25,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.breakers = breakers
        self.board = board
        self.cache_s = cache_s
        self.clock = clock
        self._copy: dict[str, tuple[float, Admission]] = {}
        self._in_flight: dict[str, int] = {}
        self._queue: queue.Queue = queue.Queue(QUEUE_MAX)
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.credit = None  # application.credit_watch.CreditWatch, set by Routing.attach (3.6)
        # 3.5: each account's own success rate per model (its window keyed by account in
        # place of provider), read only for that account's router decisions. Bounded LRU.
        self.accounts = HealthBoard(max_keys=10_000)
        # model -> provider -> status, for pairs this worker has seen traffic of: a listing
        # of 10,000 models reads a dict, not 10,000 health windows (5.5, 8.7).
        self.pairs: dict[str, dict[str, str]] = {}
        self.observer: Callable[[str, str, str, int, float | None, float], None] | None = None

    # -- reading (selection) -----------------------------------------------------------------
    def _peek(self, key: str) -> Admission:
        now = self.clock()
        cached = self._copy.get(key)
        if cached is not None and now - cached[0] < self.cache_s:
            return cached[1]
        seen = self.breakers.peek(key)
        if len(self._copy) > 20_000:
            self._copy.clear()  # bounded: keys of pairs nobody asks for go
        self._copy[key] = (now, seen)
        return seen

    def signals(self, provider: str, model_id: str) -> Signals:
        view = self.board.view(provider, model_id)
        refusals = [seen for seen in (self._peek(provider_key(provider)),
                                      self._peek(model_key(provider, model_id)))
                    if not seen.allowed]
        return Signals(success_rate=view.score / 100 if view and view.score is not None
                       else None,
                       latency_ewma_ms=view.ttfb_ewma_ms if view else None,
                       in_flight=self._in_flight.get(provider, 0),
                       circuit_open=bool(refusals),
                       credit_level=self.credit.level(provider) if self.credit else None,
                       retry_at=max((r.retry_at for r in refusals if r.retry_at), default=None))

    def live_success(self, account: str, model_id: str) -> float | None:
        """This account's success rate with a model over 5 minutes (10+ attempts), else None."""
        view = self.accounts.view(account, model_id)
        return view.score / 100 if view is not None and view.score is not None else None

    def status(self, provider: str, model_id: str) -> str:
        if not self._peek(model_key(provider, model_id)).allowed:
            return "down"
        view = self.board.view(provider, model_id)
        return view.status if view is not None and view.score is not None else "healthy"

    # -- an attempt --------------------------------------------------------------------------
    def admit(self, provider: str, model_id: str) -> Admission:
        """Before an attempt. A breaker the copy shows closed admits at once; otherwise the
        store decides (it hands out the one half-open probe slot, 3.3)."""
        keys = (provider_key(provider), model_key(provider, model_id))
        if all(self._peek(k).state == CLOSED for k in keys):
            admission = Admission(True, CLOSED, None)
        else:
            admission = self.breakers.admit_all(keys)
            for key in keys:
                self._copy.pop(key, None)
        if admission.allowed:
            self._in_flight[provider] = self._in_flight.get(provider, 0) + 1
        return admission

    def observe(self, provider: str, model_id: str, outcome: str, status: int,
                ttfb_ms: float | None, total_ms: float, probe: bool = False,
                account: str | None = None) -> None:
        """After an attempt, success or failure; queued for the recorder thread. ``account``
        (the caller's) feeds that account's own live view for its router choices. An active
        probe (3.1, ``probe``) was never admitted, so it leaves the in-flight count alone,
        and it is not passed to the observer: the prober reports it to incidents as a probe
        (IncidentTracker.probe_result), which must not count it twice."""
        if not probe:
            count = self._in_flight.get(provider, 1) - 1
            if count > 0:
                self._in_flight[provider] = count
            else:
                self._in_flight.pop(provider, None)
        try:
            self._queue.put_nowait((provider, model_id, outcome, status, ttfb_ms, total_ms,
                                    probe, account))
        except queue.Full:
            self.dropped += 1
            return
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="health-recorder",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self._record(*item)
            except Exception:  # capture never fails anything (3.2)
                log.exception("health capture failed")
            finally:
                self._queue.task_done()

    def _record(self, provider: str, model_id: str, outcome: str, status: int,
                ttfb_ms: float | None, total_ms: float, probe: bool = False,
                account: str | None = None) -> None:
        if account is not None:
            self.accounts.record(account, model_id, outcome, status or None, ttfb_ms, total_ms)
        view = self.board.record(provider, model_id, outcome, status or None, ttfb_ms,
                                 total_ms)
        failed = outcome in FAILED_OUTCOMES
        pair = model_key(provider, model_id)
        opened = False
        for key in (provider_key(provider), pair):
            transition = self.breakers.record(key, not failed)
            if transition is not None:
                self._copy.pop(key, None)
            opened = opened or (key == pair and transition is not None
                                and transition.to_state != CLOSED)
        if len(self.pairs) > 20_000:
            self.pairs.clear()  # bounded; the next outcome of each pair sets it again
        self.pairs.setdefault(model_id, {})[provider] = (
            "down" if opened else view.status if view.score is not None else "healthy")
        if self.observer is not None and not probe:
            self.observer(provider, model_id, outcome, status, ttfb_ms, total_ms)

    def forget(self) -> None:
        """Drop the local copy of breaker states (after an admin reset)."""
        self._copy.clear()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Tests: every queued outcome recorded."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)
        self._copy.clear()
        return not self._queue.unfinished_tasks

    def stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=2)
