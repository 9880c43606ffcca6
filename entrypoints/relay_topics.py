"""Which Kafka topic each kind of stream goes to, and the record of one event (11.11)."""

from __future__ import annotations

from typing import Any

DEFAULT_PREFIX = "gatewayz"

# Topic (after the prefix) per stream type, the one place this is decided (11.11). Stream
# types are compared without "_" or "-", so `eval_suite`, `eval-suite` and `evalsuite` agree.
TOPICS: dict[str, tuple[str, ...]] = {
    "accounts": ("account", "user", "owner_bootstrap", "owner_roster"),
    "keys": ("key", "apikey"),
    "ledger": ("wallet", "grant_log", "request"),
    "billing": ("payment", "subscription", "plan", "coupon", "referral", "sla"),
    "catalog": ("provider", "model", "alias", "provider_listing"),
    "health": ("health", "incident", "provider_credit"),
    "security": ("security",),
    "audit": ("audit",),  # signing-key rotations (11.7)
    "platform": ("prompt", "batch", "session", "eval_suite", "webhook_endpoint", "route",
                 "config", "guardrail_policy"),
}
# A kind added later without a row here still gets published rather than stalling the relay.
FALLBACK_TOPIC = "platform"


def _normal(stream_type: str) -> str:
    return stream_type.lower().replace("_", "").replace("-", "")


_TOPIC_OF = {_normal(kind): topic for topic, kinds in TOPICS.items() for kind in kinds}


def topic_for(stream_type: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}.{_TOPIC_OF.get(_normal(stream_type), FALLBACK_TOPIC)}"


def message_of(envelope: dict[str, Any], prefix: str = DEFAULT_PREFIX,
               ) -> tuple[str, bytes, bytes, list[tuple[str, bytes]]]:
    """(topic, key, value, headers) of one event envelope from ``application.feed``."""
    from adapters.kafka_publisher import json_value

    headers = [("event_id", envelope["event_id"].encode()),
               ("event_type", envelope["type"].encode()),
               ("schema_version", str(envelope["schema_version"]).encode())]
    return (topic_for(envelope["stream_type"], prefix), envelope["stream_id"].encode(),
            json_value(envelope), headers)


