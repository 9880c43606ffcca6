"""Incidents from health (3.4): the tracker the health recorder feeds; the admins' commands.

``observe`` is RoutingHealth's observer: it runs on the recorder thread after the board has
recorded the attempt, never on the request path, and never raises. Per pair it keeps four
small counters (at most ``max_pairs`` pairs, least recently updated first out); it writes an
event only when an incident opens, escalates or resolves, which is rare.

Never two open incidents for one pair, across workers: the pair's n-th incident has a fixed
id (domain/incident.py), and opening scans the pair's streams from the last one the read
model knows, adopting an open one and creating the first missing one. Only the newest can be
open (each is created after its predecessor was seen resolved), and two workers creating
the same one collide on its version 1; ``with_retry`` then rescans and adopts it.

Customer ``model.degraded`` webhooks (3.4, 6.17) are not emitted: 6.17 is not built yet.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from eventsourcing.application import AggregateNotFoundError

from application.retry import with_retry
from application.routing_health import FAILED_OUTCOMES
from domain import incident as rules
from domain.errors import DomainError
from domain.incident import SYSTEM, Incident, IncidentPolicy, OpenIncident, PairCounters

log = logging.getLogger("gatewayz.incidents")
Pair = tuple[str, str | None]  # (provider, model); model None: the provider as a whole
MAX_SCAN = 1_000  # streams one open may look at: far more than a read model ever lags


class IncidentReader(Protocol):
    def open_pairs(self) -> dict[Pair, OpenIncident]: ...
    def count_for(self, provider: str, model: str | None) -> int: ...


class IncidentTracker:
    def __init__(self, app: Any, reader: IncidentReader, board: Any,
                 policy: IncidentPolicy | None = None,
                 wait: Callable[[str, int], Any] | None = None, max_pairs: int = 10_000,
                 refresh_s: float = 30.0, pause_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app  # the catalog context's Application
        self.reader = reader
        self.board = board  # HealthBoard: the passive 5-minute window
        self.policy = policy or IncidentPolicy()
        self.wait = wait
        self.max_pairs = max_pairs
        self.refresh_s, self.pause_s, self.clock = refresh_s, pause_s, clock
        self._lock = threading.RLock()
        self._pairs: OrderedDict[Pair, PairCounters] = OrderedDict()
        self._open: dict[Pair, OpenIncident] = {}
        self._loaded_at: float | None = None
        self._paused_until = 0.0  # after a failed write or read: the store may be away

    # -- the health recorder's side --------------------------------------------------------
    def observe(self, provider: str, model: str, outcome: str, status: int | None = None,
                ttfb_ms: float | None = None, total_ms: float | None = None) -> None:
        """One real attempt, already recorded on the board (RoutingHealth's observer)."""
        if outcome == "success" or outcome in FAILED_OUTCOMES:
            self._record(provider, model, outcome != "success", probe=False)

    def probe_result(self, provider: str, model: str, ok: bool) -> None:
        """An active probe's result (3.1): three failed probes in a row open an incident.
        Probes reach the board through RoutingHealth.observe(probe=True), which does not call
        this tracker's observe, so each probe counts here once."""
        self._record(provider, model, not ok, probe=True)

    def _record(self, provider: str, model: str, failed: bool, probe: bool) -> None:
        try:
            with self._lock:
                counters = self._counters((provider, model))
                counters.record(failed, probe)
                self._decide(provider, model, counters)
        except Exception:  # incidents never break capture (3.2)
            log.exception("incident tracking failed for %s %s", provider, model)

    def _counters(self, pair: Pair) -> PairCounters:
        counters = self._pairs.get(pair)
        if counters is None:
            counters = self._pairs[pair] = PairCounters()
            while len(self._pairs) > self.max_pairs:
                self._pairs.popitem(last=False)
        else:
            self._pairs.move_to_end(pair)
        return counters

    def _decide(self, provider: str, model: str, counters: PairCounters) -> None:
        view = self.board.view(provider, model)
        samples, successes = (view.samples, view.successes) if view else (0, 0)
        if not rules.passive_breach(samples, successes, self.policy):
            counters.armed = True
        if not self._ready():
            return
        pair = (provider, model)
        current = self._open.get(pair)
        if current is None:
            cause = rules.should_open(counters.probe_failures, samples, successes,
                                      counters.armed, self.policy)
            if cause is not None:
                message = (f"Elevated error rates for {model} on {provider}; requests may "
                           "be served by other providers or fail.")
                self._open_pair(pair, rules.severity_for(counters.failures), cause, message)
        elif counters.failures:
            self._escalate(pair, current, rules.severity_for(counters.failures))
        elif current.cause != "manual" and rules.should_resolve(counters.successes,
                                                                 self.policy):
            # An admin's incident may be about anything; only an admin closes it.
            if self._resolve(pair, current, "recovered", SYSTEM):
                counters.armed = False

    def _ready(self) -> bool:
        """The open-incident index is loaded and fresh, and the store is not paused."""
        now = self.clock()
        if now < self._paused_until:
            return False
        if self._loaded_at is None or now - self._loaded_at >= self.refresh_s:
            try:
                # Refreshed now and then: another worker may have resolved one of ours.
                self._open = dict(self.reader.open_pairs())
            except Exception:
                log.exception("could not load open incidents; retrying in %.0f s",
                              self.pause_s)
                self._paused_until = now + self.pause_s
                return False
            self._loaded_at = now
        return True

    # -- transitions -------------------------------------------------------------------------
    def _write(self, command: Callable[[], Any]) -> Any:
        """Run one event-store command; on failure log and pause writes (returns None)."""
        try:
            return with_retry(command)
        except DomainError:
            raise
        except Exception:
            log.exception("could not record an incident change; pausing %.0f s",
                          self.pause_s)
            self._paused_until = self.clock() + self.pause_s
            return None

    def _open_pair(self, pair: Pair, severity: str, cause: str, message: str,
                   actor: str = SYSTEM) -> tuple[OpenIncident, bool, int] | None:
        result = self._write(lambda: self._save_open(pair, severity, cause, message, actor))
        if result is None:
            return None
        found, created, _ = result
        self._open[pair] = found
        if not created and cause != "manual" and rules.is_escalation(found.severity, severity):
            self._escalate(pair, found, severity)  # adopted: another worker opened it
        if pair[1] is not None:
            self._provider_wide(pair[0])
        return result

    def _save_open(self, pair: Pair, severity: str, cause: str, message: str,
                   actor: str) -> tuple[OpenIncident, bool, int]:
        provider, model = pair
        number = max(1, self.reader.count_for(provider, model))
        for _ in range(MAX_SCAN):
            incident_id = rules.incident_id_for(provider, model, number)
            try:
                found = self.app.repository.get(Incident.create_id(incident_id))
            except AggregateNotFoundError:
                new = Incident.open(incident_id, provider, model, severity, cause, message,
                                    actor)
                position = self.app.save(new)[-1].notification.id
                return OpenIncident(incident_id, severity, cause), True, position
            if found.status == rules.OPEN:
                return OpenIncident(incident_id, found.severity, found.cause), False, 0
            number += 1
        raise RuntimeError(f"no free incident number for {provider} {model}")

    def _escalate(self, pair: Pair, current: OpenIncident, severity: str) -> None:
        if not rules.is_escalation(current.severity, severity):
            return

        def command() -> bool:
            found = self.app.repository.get(Incident.create_id(current.incident_id))
            if not found.escalate(severity):
                return found.status == rules.OPEN
            self.app.save(found)
            return True

        still_open = self._write(command)
        if still_open is None:
            return
        if still_open:
            self._open[pair] = OpenIncident(current.incident_id, severity, current.cause)
        else:  # resolved elsewhere (another worker, an admin): forget it here
            self._open.pop(pair, None)
        if pair[1] is not None:
            self._provider_wide(pair[0])

    def _resolve(self, pair: Pair, current: OpenIncident, cause: str, actor: str) -> bool:
        def command() -> int:
            found = self.app.repository.get(Incident.create_id(current.incident_id))
            if not found.resolve(cause, actor):
                return 0
            return self.app.save(found)[-1].notification.id

        if self._write(command) is None:
            return False
        if self._open.get(pair) == current:
            del self._open[pair]
        if pair[1] is not None:
            self._provider_wide(pair[0])
        return True

    def _provider_wide(self, provider: str) -> None:
        """Open, escalate or resolve the provider's own incident from its models' ones."""
        open_models = {m: o.severity for (p, m), o in self._open.items()
                       if p == provider and m is not None}
        monitored = {m for p, m in self._pairs if p == provider} | set(open_models)
        pair = (provider, None)
        current = self._open.get(pair)
        if rules.provider_wide(len(open_models), len(monitored), self.policy):
            severity = rules.highest(open_models.values())
            if current is None:
                message = (f"{provider} is failing for {len(open_models)} of "
                           f"{len(monitored)} monitored models.")
                self._open_pair(pair, severity, "provider_wide", message)
            else:
                self._escalate(pair, current, severity)
        elif current is not None and current.cause == "provider_wide":
            self._resolve(pair, current, "recovered", SYSTEM)

    # -- admin commands (3.4) ------------------------------------------------------------
    def open(self, provider: object, model: object, severity: object, message: object,
             actor: str) -> str:
        """Open a manual incident; a pair with one open already answers 409 naming it."""
        pair = rules.check_pair(provider, model)
        rules.check_severity(severity)
        text = rules.check_text(message, "message")
        with self._lock:
            self._ready()  # the index the provider-wide rule reads
            result = self._open_pair(pair, severity, "manual", text, actor)  # type: ignore
        if result is None:
            raise DomainError("service_unavailable", "incidents cannot be recorded now")
        found, created, position = result
        if not created:
            raise DomainError("conflict", "an incident is already open for this pair",
                              details={"incident_id": found.incident_id})
        self._wait(position)
        return found.incident_id

    def add_note(self, incident_id: str, text: object, actor: str) -> None:
        def command() -> int:
            found = self._load(incident_id)
            found.add_note(text, actor)
            return self.app.save(found)[-1].notification.id

        self._wait(with_retry(command))

    def resolve(self, incident_id: str, actor: str) -> bool:
        """Resolve by hand; False when it was resolved already."""
        def command() -> tuple[Incident, int]:
            found = self._load(incident_id)
            if not found.resolve("manual", actor):
                return found, 0
            return found, self.app.save(found)[-1].notification.id

        found, position = with_retry(command)
        pair = (found.provider, found.model)
        with self._lock:
            self._ready()
            current = self._open.get(pair)
            if current is not None and current.incident_id == incident_id:
                del self._open[pair]
                counters = self._pairs.get(pair)
                if counters is not None:
                    counters.armed = False  # not reopened from the window that opened it
                if found.model is not None:
                    self._provider_wide(found.provider)
        self._wait(position)
        return bool(position)

    def _load(self, incident_id: str) -> Incident:
        if not isinstance(incident_id, str) or not incident_id.startswith("inc_"):
            raise DomainError("not_found", "no such incident", param="incident_id")
        try:
            return self.app.repository.get(Incident.create_id(incident_id))
        except AggregateNotFoundError:
            raise DomainError("not_found", "no such incident", param="incident_id") from None

    def _wait(self, position: int) -> None:
        if position and self.wait is not None:
            self.wait("catalog", position)

    def open_pairs(self) -> dict[Pair, OpenIncident]:
        """This worker's index of open incidents (tests, diagnostics)."""
        with self._lock:
            return dict(self._open)
