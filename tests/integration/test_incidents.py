"""Incidents (spec 3.4) at the service level: the tracker fed through RoutingHealth's recorder
thread with synthetic attempts, recording in each real event store and projected into the
read model the status endpoints read; and, over random outcome sequences on two workers
with lagging read models, never two open incidents for one pair."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import close_gateway, open_gateway
from hypothesis import given, settings
from hypothesis import strategies as st

from application.apps import CatalogApp
from application.breakers import Breakers, HealthBoard
from application.incidents import IncidentTracker
from application.routing_health import RoutingHealth
from domain.errors import DomainError
from domain.incident import OpenIncident
from projections.incidents import IncidentQueries, IncidentsProjection
from projections.runner import Projector

A, B, C = "acme/chat-1", "acme/chat-2", "acme/chat-3"


class Env:
    """A tracker as bootstrap wires it: the observer of a RoutingHealth of its own."""

    def __init__(self, gateway) -> None:
        self.gateway = gateway
        self.queries = IncidentQueries(gateway.db)
        # The gateway's own projector once bootstrap lists IncidentsProjection; else one here.
        if any(p.name == "incidents" for p in gateway.projector.projections):
            self.projector = gateway.projector
        else:
            self.projector = Projector(gateway.stores, gateway.db, [IncidentsProjection()])
        self.health = RoutingHealth(Breakers.embedded(), HealthBoard())
        self.tracker = IncidentTracker(gateway.stores.catalog, self.queries,
                                       self.health.board, wait=self.wait)
        self.health.observer = self.tracker.observe

    def wait(self, context: str = "catalog", position: int | None = None) -> None:
        position = position or self.gateway.stores.catalog.recorder.max_notification_id() or 0
        if self.projector is self.gateway.projector:
            assert self.projector.wait_for(context, position)
        else:
            self.projector.run_until_idle()

    def attempts(self, model: str, *outcomes: str, provider: str = "acme") -> None:
        for outcome in outcomes:
            self.health.observe(provider, model, outcome, 200 if outcome == "success" else 503,
                                None, 12.0)
        assert self.health.wait_idle()
        self.wait()

    def incidents(self) -> list[dict]:
        data, _ = self.queries.recent(500)
        return data


@pytest.fixture
def env(backend: str, tmp_path: Path) -> Iterator[Env]:
    gateway, schema = open_gateway(backend, tmp_path)
    environment = Env(gateway)
    yield environment
    environment.health.stop()
    close_gateway(gateway, schema)


def test_ten_consecutive_failures_open_one_critical_incident(env):
    env.attempts(A, *["error"] * 9)
    assert env.incidents() == []  # 9 requests: under the window's 10
    env.attempts(A, "error")

    [incident] = env.incidents()
    assert (incident["provider"], incident["model"], incident["severity"], incident["status"],
            incident["cause"]) == ("acme", A, "critical", "open", "passive")
    detail = env.queries.incident(incident["id"])
    assert [h["severity"] for h in detail["severity_history"]] == ["critical"]
    assert detail["affected_models"] == [A]
    assert detail["started_at"].endswith("Z") and detail["resolved_at"] is None


def test_three_successes_resolve_the_incident_with_an_end_time(env):
    env.attempts(A, *["error"] * 10, "success", "success")
    assert env.queries.open_incidents()[0]["status"] == "open"
    env.attempts(A, "success")

    [incident] = env.incidents()
    assert (incident["status"], incident["resolution"]) == ("resolved", "recovered")
    assert incident["resolved_at"] >= incident["started_at"]
    assert env.queries.open_incidents() == []
    # The failures still in the window do not reopen it at the next failure.
    env.attempts(A, "error")
    assert len(env.incidents()) == 1


def test_twenty_more_failures_escalate_the_one_open_incident(env):
    for _ in range(3):
        env.tracker.probe_result("acme", A, ok=False)
    env.wait()
    [opened] = env.incidents()
    assert (opened["severity"], opened["cause"]) == ("medium", "probes")

    env.attempts(A, *["timeout", "error", "rate_limited", "error"] * 5)

    [incident] = env.incidents()
    assert incident["id"] == opened["id"]
    assert incident["severity"] == "critical"
    history = env.queries.incident(incident["id"])["severity_history"]
    assert [h["severity"] for h in history] == ["medium", "high", "critical"]
    assert env.queries.count_for("acme", A) == 1


def test_half_of_a_providers_models_failing_opens_a_provider_wide_incident(env):
    env.attempts(A, "success")
    env.attempts(B, "success")
    env.attempts(C, "success")
    env.attempts(A, *["error"] * 10)  # 1 of 3 monitored models: under half
    assert [i["model"] for i in env.queries.open_incidents()] == [A]

    env.attempts(B, *["error"] * 10)  # 2 of 3

    wide = [i for i in env.queries.open_incidents() if i["model"] is None]
    assert [(i["provider"], i["cause"], i["severity"]) for i in wide] == \
        [("acme", "provider_wide", "critical")]
    assert env.queries.incident(wide[0]["id"])["affected_models"] == [A, B]
    env.attempts(B, *["success"] * 3)  # back to 1 of 3: the provider-wide one resolves
    assert [i["model"] for i in env.queries.open_incidents()] == [A]
    assert env.queries.incident(wide[0]["id"])["resolution"] == "recovered"


def test_admins_open_annotate_and_resolve_by_hand(env):
    incident_id = env.tracker.open("acme", A, "low", "Slow answers from chat-1.",
                                   "staff:usr_1")
    with pytest.raises(DomainError) as twice:
        env.tracker.open("acme", A, "high", "again", "staff:usr_1")
    assert twice.value.code == "conflict"
    assert twice.value.details == {"incident_id": incident_id}
    env.attempts(A, *["success"] * 5)  # only an admin closes an admin's incident
    env.tracker.add_note(incident_id, "Fixed upstream.", "staff:usr_1")
    assert env.tracker.resolve(incident_id, "staff:usr_1")
    assert not env.tracker.resolve(incident_id, "staff:usr_1")

    detail = env.queries.incident(incident_id, actors=True)
    assert (detail["status"], detail["resolution"], detail["cause"]) == \
        ("resolved", "manual", "manual")
    assert detail["notes"] == [{"text": "Fixed upstream.", "at": detail["notes"][0]["at"],
                                "actor": "staff:usr_1"}]
    assert "actor" not in env.queries.incident(incident_id)["notes"][0]
    with pytest.raises(DomainError) as missing:
        env.tracker.add_note("inc_nope", "x", "staff:usr_1")
    assert missing.value.code == "not_found"
    # The pair's next incident gets a new id, not the resolved one back.
    for _ in range(3):
        env.tracker.probe_result("acme", A, ok=False)
    env.wait()
    assert [i["id"] != incident_id for i in env.queries.open_incidents()] == [True]


def test_a_restarted_tracker_adopts_the_open_incident(env):
    env.attempts(A, *["error"] * 10)
    [before] = env.incidents()
    restarted = IncidentTracker(env.gateway.stores.catalog, env.queries, env.health.board)
    env.health.observer = restarted.observe
    assert restarted.open_pairs() == {}  # loaded on first use
    env.attempts(A, *["error"] * 5)
    assert restarted.open_pairs() == {("acme", A): OpenIncident(before["id"], "critical",
                                                                  "passive")}
    assert env.incidents() == [before]


# -- never two open incidents for one pair ------------------------------------------------

class LaggingReader:
    """A read model that may know nothing of the newest incidents (another worker's)."""

    def __init__(self, app) -> None:
        self.app, self.stale = app, False

    def truth(self) -> tuple[dict, Counter]:
        opened, counts = {}, Counter()
        for note in self.app.recorder.select_notifications(start=1, limit=1_000_000):
            event = self.app.mapper.to_domain_event(note)
            kind = type(event).__name__
            if kind == "Opened":
                pair = (event.provider, event.model)
                counts[pair] += 1
                opened[event.originator_id] = (pair, OpenIncident(event.incident_id,
                                                                  event.severity, event.cause))
            elif kind == "Resolved":
                opened.pop(event.originator_id)
        return opened, counts

    def open_pairs(self):
        return {} if self.stale else dict(self.truth()[0].values())

    def count_for(self, provider, model):
        return 0 if self.stale else self.truth()[1][(provider, model)]


# Weighted towards failures and probes, so that most runs open incidents on both workers.
STEP = st.tuples(st.sampled_from(["attempt"] * 3 + ["probe"] * 3 + ["resolve", "restart",
                                                                     "tick"]),
                 st.integers(0, 1), st.sampled_from([A, A, B]),
                 st.sampled_from(["success", "error", "error", "timeout", "rate_limited"]),
                 st.booleans())


@settings(max_examples=150, deadline=None)
@given(st.lists(STEP, min_size=40, max_size=150))
def test_never_two_open_incidents_for_one_pair(steps):
    app = CatalogApp()
    now = [1_700_000_000.0]
    readers = [LaggingReader(app), LaggingReader(app)]
    boards = [HealthBoard(clock=lambda: now[0]) for _ in readers]

    def worker(i: int) -> IncidentTracker:
        return IncidentTracker(app, readers[i], boards[i], refresh_s=0)

    workers = [worker(0), worker(1)]
    for op, i, model, outcome, stale in steps:
        readers[i].stale = stale
        if op == "attempt":
            boards[i].record("acme", model, outcome, 503, None, 10.0)
            workers[i].observe("acme", model, outcome, 503, None, 10.0)
        elif op == "probe":
            workers[i].probe_result("acme", model, outcome == "success")
        elif op == "resolve":
            opened = readers[i].truth()[0]
            if opened:
                workers[i].resolve(min(o.incident_id for _, o in opened.values()), "staff:x")
        elif op == "restart":
            workers[i] = worker(i)
        else:
            now[0] += 60
        per_pair = Counter(pair for pair, _ in readers[i].truth()[0].values())
        assert all(n == 1 for n in per_pair.values()), per_pair


def test_a_failing_store_never_reaches_the_recorder_and_is_retried_after_a_pause():
    app, board, now = CatalogApp(), HealthBoard(), [0.0]
    tracker = IncidentTracker(app, LaggingReader(app), board, clock=lambda: now[0])

    def away(*_, **__):
        raise OSError("store away")

    save, app.save = app.save, away
    for _ in range(10):
        board.record("acme", A, "error", 503, None, 1.0)
        tracker.observe("acme", A, "error", 503, None, 1.0)  # never raises
    assert tracker.open_pairs() == {}
    app.save = save
    board.record("acme", A, "error", 503, None, 1.0)
    tracker.observe("acme", A, "error", 503, None, 1.0)
    assert tracker.open_pairs() == {}  # paused: the store was away a moment ago
    now[0] += 5
    tracker.observe("acme", A, "error", 503, None, 1.0)
    assert [o.severity for o in tracker.open_pairs().values()] == ["critical"]
