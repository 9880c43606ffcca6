"""Test-side Kafka reading: every record of some topics, from the beginning, no consumer group."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: dict[str, Any]
    headers: dict[str, bytes]

    @property
    def event_id(self) -> str:
        return self.value["event_id"]


def read_topics(servers: str, topics: Iterable[str], expect_unique: int,
                timeout: float = 30.0, settle: float = 1.0) -> list[Record]:
    """All records of ``topics`` in partition order, once ``expect_unique`` distinct events
    arrived (or ``timeout`` passed) and then ``settle`` seconds brought nothing more."""
    from kafka import KafkaConsumer, TopicPartition

    # Manual assignment, no group: no rebalance waits, and every run reads from offset 0.
    consumer = KafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False,
                             group_id=None, request_timeout_ms=10_000)
    try:
        deadline = time.monotonic() + timeout
        partitions = []
        for topic in topics:
            while not (found := consumer.partitions_for_topic(topic)):
                if time.monotonic() > deadline:
                    raise AssertionError(f"topic {topic} never appeared")
                time.sleep(0.1)
            partitions += [TopicPartition(topic, p) for p in sorted(found)]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        records: list[Record] = []
        unique: set[str] = set()
        quiet_since = None
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=200, max_records=5000)
            for messages in batch.values():
                for m in messages:
                    record = Record(m.topic, m.partition, m.offset, m.key,
                                    json.loads(m.value), dict(m.headers))
                    records.append(record)
                    unique.add(record.event_id)
            if batch:
                quiet_since = None
            elif len(unique) >= expect_unique:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settle:
                    break
        return records
    finally:
        consumer.close()


def by_event(records: list[Record]) -> dict[str, Record]:
    """First delivery of each event (consumers de-duplicate by event_id, spec 11.2)."""
    first: dict[str, Record] = {}
    for record in records:
        first.setdefault(record.event_id, record)
    return first
