"""Kafka publisher: kafka-python's producer behind a two-call port (publish, flush)."""

from __future__ import annotations

import logging
from typing import Any

import msgspec

log = logging.getLogger("gatewayz.kafka")

_encoder = msgspec.json.Encoder()

# Bounded so a broker outage surfaces as an error the relay retries, never as a hang:
# a send blocks at most MAX_BLOCK_MS for metadata or buffer space, and a record is failed
# after DELIVERY_TIMEOUT_MS however many retries were left.
MAX_BLOCK_MS = 10_000
REQUEST_TIMEOUT_MS = 10_000
DELIVERY_TIMEOUT_MS = 30_000
FLUSH_TIMEOUT_S = 35.0


def json_value(obj: Any) -> bytes:
    """A message value: compact UTF-8 JSON (msgspec, so ints stay ints)."""
    return _encoder.encode(obj)


class PublishFailed(Exception):
    """At least one record of the batch was not acknowledged; the batch must be re-sent."""


class KafkaPublisher:
    """One producer; ``flush`` returns only when every record since the last flush is
    acknowledged by all in-sync replicas, else raises ``PublishFailed``."""

    def __init__(self, bootstrap_servers: str, client_id: str = "gatewayz-relay",
                 **overrides: Any) -> None:
        from kafka import KafkaProducer

        config: dict[str, Any] = {
            "bootstrap_servers": [s.strip() for s in bootstrap_servers.split(",") if s.strip()],
            "client_id": client_id,
            "acks": "all",
            # One request in flight per connection plus retries: a retried batch can never
            # land after a later one, so records of one key (one stream) keep their order.
            "max_in_flight_requests_per_connection": 1,
            "retries": 2_147_483_647,
            "retry_backoff_ms": 100,
            "linger_ms": 5,
            "batch_size": 256 * 1024,
            "max_block_ms": MAX_BLOCK_MS,
            "request_timeout_ms": REQUEST_TIMEOUT_MS,
            "delivery_timeout_ms": DELIVERY_TIMEOUT_MS,
            "bootstrap_timeout_ms": REQUEST_TIMEOUT_MS,
            "reconnect_backoff_max_ms": 2_000,
        }
        config.update(overrides)
        self._producer = KafkaProducer(**config)
        self._pending: list[Any] = []

    def publish(self, topic: str, key: bytes, value: bytes,
                headers: list[tuple[str, bytes]]) -> None:
        self._pending.append(self._producer.send(topic, key=key, value=value,
                                                 headers=headers))

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        try:
            self._producer.flush(timeout=FLUSH_TIMEOUT_S)
        except Exception as error:
            raise PublishFailed(f"flush did not complete: {error}") from error
        failed = [f for f in pending if not f.succeeded()]
        if failed:
            error = failed[0].exception if failed[0].is_done else "not acknowledged"
            raise PublishFailed(f"{len(failed)} of {len(pending)} records failed: {error}")

    def close(self, timeout: float = 5.0) -> None:
        self._pending = []
        try:
            self._producer.close(timeout=timeout)
        except Exception:  # closing a producer whose broker is gone must not mask the cause
            log.warning("kafka producer did not close cleanly", exc_info=True)
