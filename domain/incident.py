"""Incidents (spec 3.4): one stream per incident, and the pure rules that open, escalate and
resolve them.

An incident belongs to a pair: (provider, model), or (provider, None) for a provider-wide
or provider-level one. Its id is derived from the pair and the pair's incident number
(``incident_id_for``), so two workers that both decide to open the pair's next incident
collide on version 1 of one stream instead of opening two (application/incidents.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError
from domain.ids import STREAM_NAMESPACE, stream_uuid

SEVERITIES = ("low", "medium", "high", "critical")  # ascending; exactly these four (3.4)
OPEN_CAUSES = ("probes", "passive", "manual", "provider_wide")
RESOLVE_CAUSES = ("recovered", "manual")
OPEN, RESOLVED = "open", "resolved"
MESSAGE_MAX = 2000  # customer-visible text (3.4 default)
SYSTEM = "system"


@dataclass(frozen=True)
class IncidentPolicy:
    probe_failures_to_open: int = 3
    # The passive window itself (5 minutes) is the HealthBoard's: one definition of it.
    window_min_samples: int = 10
    window_failure_pct: int = 50
    successes_to_resolve: int = 3
    provider_wide_pct: int = 50
    # With one monitored model the pair's own incident already says it all; a provider-wide
    # copy of it would only double the status page's entries.
    provider_wide_min_models: int = 2


@dataclass(frozen=True)
class OpenIncident:
    """A pair's open incident, as the tracker indexes it."""

    incident_id: str
    severity: str
    cause: str


class PairCounters:
    """Consecutive outcomes of one pair (real attempts and probes alike), and whether the
    passive rule may open its next incident (``should_open``)."""

    __slots__ = ("failures", "successes", "probe_failures", "armed")

    def __init__(self) -> None:
        self.failures = self.successes = self.probe_failures = 0
        self.armed = True

    def record(self, failed: bool, probe: bool = False) -> None:
        if failed:
            self.failures += 1
            self.probe_failures += probe
            self.successes = 0
        else:
            self.successes += 1
            self.failures = self.probe_failures = 0


def severity_for(consecutive_failures: int) -> str:
    """>= 10 critical, >= 5 high, >= 3 medium, otherwise low (3.4)."""
    if consecutive_failures >= 10:
        return "critical"
    if consecutive_failures >= 5:
        return "high"
    if consecutive_failures >= 3:
        return "medium"
    return "low"


def rank(severity: str) -> int:
    return SEVERITIES.index(severity)


def is_escalation(current: str, proposed: str) -> bool:
    """Severity only ever moves up: a lower reading during an incident changes nothing."""
    return rank(proposed) > rank(current)


def highest(severities) -> str:
    return max(severities, key=rank, default="low")


def passive_breach(samples: int, successes: int, policy: IncidentPolicy) -> bool:
    """Failures >= 50% of at least 10 requests in the window; compared in integers."""
    failures = samples - successes
    return samples >= policy.window_min_samples and \
        failures * 100 >= policy.window_failure_pct * samples


def should_open(probe_failures: int, samples: int, successes: int, armed: bool,
                policy: IncidentPolicy) -> str | None:
    """The cause to open a pair's incident with, or None.

    ``armed``: the passive window has been below the threshold since the pair's last
    incident was resolved. Without it the failures that caused that incident, still in the
    window, would open a new one at the first failure after recovery."""
    if probe_failures >= policy.probe_failures_to_open:
        return "probes"
    if armed and passive_breach(samples, successes, policy):
        return "passive"
    return None


def should_resolve(consecutive_successes: int, policy: IncidentPolicy) -> bool:
    return consecutive_successes >= policy.successes_to_resolve


def provider_wide(open_models: int, monitored_models: int, policy: IncidentPolicy) -> bool:
    return monitored_models >= max(1, policy.provider_wide_min_models) and \
        open_models * 100 >= policy.provider_wide_pct * monitored_models


def incident_id_for(provider: str, model: str | None, number: int) -> str:
    """The id of the pair's ``number``-th incident (1-based): the same on every worker."""
    return "inc_" + uuid5(STREAM_NAMESPACE, f"incident:{provider}|{model or ''}|{number}").hex


def check_severity(severity: object) -> str:
    if severity not in SEVERITIES:
        raise DomainError("invalid_request", f"severity must be one of {', '.join(SEVERITIES)}",
                          param="severity")
    return severity  # type: ignore[return-value]


def check_pair(provider: object, model: object) -> tuple[str, str | None]:
    if not isinstance(provider, str) or not provider.strip() or len(provider) > 100:
        raise DomainError("invalid_request", "provider is required", param="provider")
    if model is not None and (not isinstance(model, str) or not model.strip()
                              or len(model) > 256):
        raise DomainError("invalid_request", "model must be a model id or null", param="model")
    return provider.strip(), model.strip() if model else None


def check_text(text: object, param: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise DomainError("invalid_request", f"{param} is required", param=param)
    if len(text) > MESSAGE_MAX:
        raise DomainError("invalid_request", f"{param} must be at most {MESSAGE_MAX} "
                          "characters", param=param)
    return text.strip()


class Incident(Aggregate):
    class Opened(Aggregate.Created):
        incident_id: str
        provider: str
        model: str | None  # None: the provider as a whole
        severity: str
        cause: str  # probes | passive | manual | provider_wide
        message: str  # customer-visible
        actor: str  # "system", or the admin who opened it

    class Escalated(Aggregate.Event):
        severity: str

    class NoteAdded(Aggregate.Event):
        text: str  # customer-visible
        actor: str

    class Resolved(Aggregate.Event):
        cause: str  # recovered | manual
        actor: str

    @staticmethod
    def create_id(incident_id: str, **_: object):
        return stream_uuid(f"incident:{incident_id}")

    @classmethod
    def open(cls, incident_id: str, provider: str, model: str | None, severity: str,
             cause: str, message: str, actor: str) -> Incident:
        """Validated creation; the event handler below trusts its arguments."""
        check_severity(severity)
        if cause not in OPEN_CAUSES:
            raise ValueError(f"unknown incident cause {cause!r}")
        return cls(incident_id=incident_id, provider=provider, model=model,
                   severity=severity, cause=cause, message=check_text(message, "message"),
                   actor=actor)

    @event(Opened)
    def __init__(self, incident_id: str, provider: str, model: str | None, severity: str,
                 cause: str, message: str, actor: str) -> None:
        self.incident_id = incident_id
        self.provider = provider
        self.model = model
        self.severity = severity
        self.cause = cause
        self.status = OPEN

    @event(Escalated)
    def _escalate(self, severity: str) -> None:
        self.severity = severity

    def escalate(self, severity: str) -> bool:
        """False when resolved, or when ``severity`` is not above the current one."""
        check_severity(severity)
        if self.status != OPEN or not is_escalation(self.severity, severity):
            return False
        self._escalate(severity)
        return True

    @event(NoteAdded)
    def _note(self, text: str, actor: str) -> None:
        pass

    def add_note(self, text: object, actor: str) -> None:
        """Notes are allowed after resolution too: a post-mortem belongs on the incident."""
        self._note(check_text(text, "text"), actor)

    @event(Resolved)
    def _resolve(self, cause: str, actor: str) -> None:
        self.status = RESOLVED

    def resolve(self, cause: str, actor: str) -> bool:
        """False when already resolved (a resolution is recorded once)."""
        if cause not in RESOLVE_CAUSES:
            raise ValueError(f"unknown resolution cause {cause!r}")
        if self.status != OPEN:
            return False
        self._resolve(cause, actor)
        return True
