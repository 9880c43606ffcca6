"""The pure rules of incidents (spec 3.4): severities, when to open, escalate, resolve, and the
provider-wide rule; and the Incident aggregate's own guards."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import DomainError
from domain.incident import (
    MESSAGE_MAX,
    SEVERITIES,
    Incident,
    IncidentPolicy,
    PairCounters,
    check_pair,
    incident_id_for,
    is_escalation,
    passive_breach,
    provider_wide,
    severity_for,
    should_open,
    should_resolve,
)

POLICY = IncidentPolicy()


def test_exactly_four_severities_exist_in_ascending_order():
    assert SEVERITIES == ("low", "medium", "high", "critical")


@pytest.mark.parametrize(("failures", "severity"), [
    (0, "low"), (2, "low"), (3, "medium"), (4, "medium"), (5, "high"), (9, "high"),
    (10, "critical"), (1_000, "critical")])
def test_severity_from_consecutive_failures(failures, severity):
    assert severity_for(failures) == severity


@given(st.integers(0, 100), st.integers(0, 100))
def test_severity_never_falls_as_failures_grow(a, b):
    low, high = sorted((a, b))
    assert not is_escalation(severity_for(high), severity_for(low))


def test_escalation_only_upward():
    assert is_escalation("medium", "critical")
    assert not is_escalation("critical", "high")
    assert not is_escalation("high", "high")


@pytest.mark.parametrize(("samples", "successes", "breach"), [
    (10, 5, True), (10, 6, False), (9, 0, False), (20, 10, True), (11, 5, True),
    (0, 0, False)])
def test_passive_window_is_half_failures_of_at_least_ten(samples, successes, breach):
    assert passive_breach(samples, successes, POLICY) is breach


def test_three_failed_probes_open_whatever_the_window():
    assert should_open(2, 0, 0, True, POLICY) is None
    assert should_open(3, 0, 0, True, POLICY) == "probes"
    assert should_open(3, 0, 0, False, POLICY) == "probes"


def test_the_passive_rule_opens_only_when_armed():
    assert should_open(0, 10, 0, True, POLICY) == "passive"
    assert should_open(0, 10, 0, False, POLICY) is None


def test_counters_count_consecutive_outcomes_and_probe_failures_apart():
    counters = PairCounters()
    for failed, probe in ((True, True), (True, False), (True, True)):
        counters.record(failed, probe)
    assert (counters.failures, counters.probe_failures, counters.successes) == (3, 2, 0)
    counters.record(False)
    assert (counters.failures, counters.probe_failures, counters.successes) == (0, 0, 1)


def test_three_consecutive_successes_resolve():
    assert [should_resolve(n, POLICY) for n in range(5)] == [False] * 3 + [True] * 2


@pytest.mark.parametrize(("open_models", "monitored", "wide"), [
    (1, 2, True), (1, 3, False), (2, 4, True), (2, 3, True), (0, 4, False),
    (1, 1, False)])  # one model: its own incident suffices (IncidentPolicy)
def test_provider_wide_at_half_of_monitored_models(open_models, monitored, wide):
    assert provider_wide(open_models, monitored, POLICY) is wide


def test_incident_ids_are_fixed_per_pair_and_number():
    first = incident_id_for("acme", "acme/chat-1", 1)
    assert first == incident_id_for("acme", "acme/chat-1", 1)
    assert first.startswith("inc_")
    assert len({first, incident_id_for("acme", "acme/chat-1", 2),
                incident_id_for("acme", None, 1), incident_id_for("acme", "acme/chat-2", 1)}) == 4


def _incident(**overrides) -> Incident:
    fields = {"incident_id": "inc_x", "provider": "acme", "model": "acme/chat-1",
              "severity": "medium", "cause": "passive", "message": "errors", "actor": "system"}
    return Incident.open(**{**fields, **overrides})


def test_an_incident_escalates_only_upward_and_only_while_open():
    incident = _incident()
    assert not incident.escalate("low")
    assert incident.escalate("critical")
    assert incident.severity == "critical"
    assert incident.resolve("recovered", "system")
    assert incident.status == "resolved"
    assert not incident.escalate("critical")
    assert not incident.resolve("manual", "staff:usr_1")  # resolved once
    kinds = [type(e).__name__ for e in incident.collect_events()]
    assert kinds == ["Opened", "Escalated", "Resolved"]


def test_notes_are_bounded_and_allowed_after_resolution():
    incident = _incident()
    incident.resolve("manual", "staff:usr_1")
    incident.add_note("post-mortem: " + "x" * (MESSAGE_MAX - 13), "staff:usr_1")
    with pytest.raises(DomainError) as too_long:
        incident.add_note("x" * (MESSAGE_MAX + 1), "staff:usr_1")
    assert too_long.value.param == "text"
    with pytest.raises(DomainError):
        incident.add_note("   ", "staff:usr_1")


@pytest.mark.parametrize("overrides", [
    {"severity": "severe"}, {"message": ""}, {"message": "x" * (MESSAGE_MAX + 1)}])
def test_opening_validates_severity_and_message(overrides):
    with pytest.raises(DomainError):
        _incident(**overrides)


@pytest.mark.parametrize(("provider", "model"), [(None, None), ("", None), ("acme", ""),
                                                  ("acme", 7), ("x" * 101, None)])
def test_a_manual_pair_needs_a_provider_and_an_optional_model(provider, model):
    with pytest.raises(DomainError):
        check_pair(provider, model)
