"""Events as the outside world sees them: the full 11.1 envelope of one stored event.

The auditors' feed, the Kafka relay and the audit trail all read events through
``published``, so there is one answer to "what does event X look like". Positions are per
bounded context: Gatewayz keeps one events table per context (accounts, access, requests,
catalog) for write capacity, each with its own commit-ordered notification ids (on PostgreSQL
a rolled-back insert may leave an unused id; readers lose nothing), so an event's place in
history is the pair (``context``, ``position``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid5

from application import envelope

# Fixed so an event's id is the same on every node and in every replay: uuid5 of the
# stream and version, which the store already keeps unique.
EVENT_NAMESPACE = UUID("0b6f3c1e-8d2a-4e57-9c40-7a1d5e2b9f63")
CONTEXTS = ("accounts", "access", "requests", "catalog")

# Catalogue names (11, "Event catalogue") where the class name differs.
_AGGREGATE_NAMES = {"InferenceRequest": "Request"}
_STREAM_TYPES = {"InferenceRequest": "request", "ApiKey": "key", "GrantLog": "grant_log",
                 "OwnerBootstrap": "owner_bootstrap", "OwnerRoster": "owner_roster",
                 "ProviderListing": "provider_listing", "ProviderCredit": "provider_credit"}
# The library's own bookkeeping (originator_topic names the aggregate class on creation)
# is not event data.
_SKIP = ("originator_id", "originator_version", "timestamp", "class_version",
         "originator_topic", envelope.ATTRIBUTE)


def event_id(stream: UUID | str, version: int) -> str:
    return str(uuid5(EVENT_NAMESPACE, f"{stream}:{version}"))


def type_name(event: Any) -> str:
    """``Aggregate.EventName`` as the catalogue spells it, e.g. ``Request.HoldPlaced``."""
    aggregate, _, name = type(event).__qualname__.partition(".")
    return f"{_AGGREGATE_NAMES.get(aggregate, aggregate)}.{name}"


def stream_type(event: Any) -> str:
    aggregate = type(event).__qualname__.partition(".")[0]
    return _STREAM_TYPES.get(aggregate, aggregate.lower())


def recorded_at(moment: datetime) -> str:
    """UTC with microseconds, the one time format of events and audit entries."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def data_of(event: Any) -> dict[str, Any]:
    """The event-specific fields, after upcasting to the current schema version."""
    return {k: v for k, v in event.__dict__.items() if k not in _SKIP}


def published(context: str, position: int, event: Any) -> dict[str, Any]:
    """The full envelope of an event loaded (and upcast) by its application's mapper."""
    stored = envelope.of(event)
    out: dict[str, Any] = {
        "event_id": event_id(event.originator_id, event.originator_version),
        "stream_id": str(event.originator_id),
        "stream_type": stream_type(event),
        "version": event.originator_version,
        "context": context,
        "position": position,
        "type": type_name(event),
        "schema_version": getattr(type(event), "class_version", 1),
        "recorded_at": recorded_at(event.timestamp),
        "actor": stored["actor"],
        "command_id": stored.get("command_id"),
        "correlation_id": stored.get("correlation_id"),
        "causation_id": stored.get("causation_id"),
        "data": data_of(event),
    }
    return out


def published_notification(context: str, app: Any, notification: Any) -> dict[str, Any]:
    """``published`` for a raw notification row of ``app``'s recorder."""
    return published(context, notification.id, app.mapper.to_domain_event(notification))
