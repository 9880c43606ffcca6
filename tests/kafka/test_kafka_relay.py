"""Kafka relay (11.11): topics, key and headers, commit-only publication, resuming."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import msgspec
import pytest
from conftest import POSTGRES_URL, close_gateway, make_settings, open_gateway
from kafka_support import by_event, read_topics

import domain
from adapters.kafka_publisher import KafkaPublisher
from application.feed import published_notification, stream_type
from domain.wallet import Wallet
from entrypoints.bootstrap import Gateway
from entrypoints.relay import KafkaRelay
from entrypoints.relay_topics import FALLBACK_TOPIC, topic_for

REPO = Path(__file__).resolve().parents[2]


def prefix() -> str:
    """Topics of one test only: the broker lives for the whole session."""
    return f"t{uuid.uuid4().hex[:10]}"


def relay(gateway, broker: str, topic_prefix: str, batch: int = 500) -> KafkaRelay:
    return KafkaRelay(gateway.stores, gateway.db, lambda: KafkaPublisher(broker),
                      prefix=topic_prefix, batch=batch)


def all_notifications(gateway) -> dict[str, dict]:
    """Every stored event's envelope, by event id."""
    out = {}
    for context, app in gateway.stores.by_context().items():
        for note in app.recorder.select_notifications(start=1, limit=10_000):
            envelope = published_notification(context, app, note)
            out[envelope["event_id"]] = envelope
    return out


@pytest.mark.parametrize(("kind", "topic"), [
    ("account", "accounts"), ("user", "accounts"), ("owner_bootstrap", "accounts"),
    ("key", "keys"), ("wallet", "ledger"), ("grant_log", "ledger"), ("request", "ledger"),
    ("provider", "catalog"), ("model", "catalog"), ("security", "security"),
    ("payment", "billing"), ("coupon", "billing"), ("health", "health"),
    ("incident", "health"), ("audit", "audit"), ("prompt", "platform"), ("eval-suite", "platform"),
    ("config", "platform")])
def test_topic_by_stream_type(kind, topic):
    assert topic_for(kind) == f"gatewayz.{topic}"
    assert topic_for(kind, "acme") == f"acme.{topic}"


def test_every_aggregate_of_the_domain_has_a_named_topic():
    import importlib
    import pkgutil

    from eventsourcing.domain import Aggregate

    from entrypoints.relay_topics import _TOPIC_OF, _normal

    kinds = set()
    for info in pkgutil.iter_modules(domain.__path__):
        module = importlib.import_module(f"domain.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Aggregate) and value is not Aggregate:
                # stream_type names an event by its class's qualname, `Aggregate.Event`.
                event = type("Event", (), {"__qualname__": f"{value.__name__}.Event"})()
                kinds.add(stream_type(event))
    missing = {k for k in kinds if _normal(k) not in _TOPIC_OF}
    assert kinds and not missing, f"add these stream types to relay.TOPICS: {missing}"
    assert topic_for("something_new") == f"gatewayz.{FALLBACK_TOPIC}"


def test_key_value_and_headers_of_each_published_event(kafka_broker, tmp_path):
    gateway, schema = open_gateway("sqlite", tmp_path)
    try:
        owner, _ = gateway.access.bootstrap_owner("owner@example.com")
        account_id = gateway.accounts.open_account("dev@example.com", "trial", "staff:test")
        gateway.access.issue_key(account_id, "ci", "test", None, None, "staff:test")
        topics = prefix()
        sent = relay(gateway, kafka_broker, topics).run_until_idle()
        stored = all_notifications(gateway)
        records = read_topics(kafka_broker, [f"{topics}.accounts", f"{topics}.keys",
                                             f"{topics}.ledger"], expect_unique=len(stored))
    finally:
        close_gateway(gateway, schema)

    assert sent == len(stored) == len(records)
    assert set(by_event(records)) == set(stored)
    for record in records:
        envelope = stored[record.event_id]
        # The value is the 11.1 envelope exactly as the auditors' feed shows it.
        assert record.value == msgspec.json.decode(msgspec.json.encode(envelope))
        assert record.key == envelope["stream_id"].encode()
        assert record.headers == {"event_id": envelope["event_id"].encode(),
                                  "event_type": envelope["type"].encode(),
                                  "schema_version": str(envelope["schema_version"]).encode()}
        assert record.topic == topic_for(envelope["stream_type"], topics)
    types = {(r.topic.split(".")[1], r.value["type"]) for r in records}
    assert {("accounts", "Account.Opened"), ("ledger", "Wallet.Opened"),
            ("ledger", "Wallet.TrialCreditGranted"), ("keys", "ApiKey.Issued"),
            ("accounts", "User.Added")} <= types
    wallet = [r.value for r in records if r.value["stream_id"] ==
              str(Wallet.create_id(account_id))]
    assert [e["version"] for e in wallet] == list(range(1, len(wallet) + 1))
    assert "owner@example.com" not in str(records) and "dev@example.com" not in str(records)


def test_an_event_is_published_only_after_its_transaction_commits(kafka_broker, pg_schema,
                                                                   tmp_path):
    import psycopg

    gateway = Gateway(make_settings("postgres", tmp_path / "data", schema=pg_schema))
    try:
        account_id = gateway.accounts.open_account("a@example.com", "dev", "staff:test")
        topics = prefix()
        relay_ = relay(gateway, kafka_broker, topics)
        assert relay_.run_until_idle() == 2  # Account.Opened, Wallet.Opened
        table = f'"{pg_schema}".{gateway.stores.accounts.recorder.events_table_name}'
        stream = uuid.uuid4()
        with psycopg.connect(POSTGRES_URL) as conn:
            # A writer mid-transaction, as the recorder writes: table lock, then the row
            # (a copy of the account's Wallet.Opened under a new stream id).
            conn.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
            conn.execute(f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
                         f"SELECT %s, 1, topic, state FROM {table} WHERE originator_id = %s",
                         (stream, Wallet.create_id(account_id)))
            assert relay_.run_until_idle() == 0
            assert relay_.positions()["accounts"] == 2
            conn.commit()
        assert relay_.run_until_idle() == 1
        records = read_topics(kafka_broker, [f"{topics}.accounts", f"{topics}.ledger"],
                              expect_unique=3)
    finally:
        gateway.close()
    assert [r.value["stream_id"] for r in records].count(str(stream)) == 1
    assert len(records) == 3


class FailingPublisher:
    def __init__(self) -> None:
        self.sent = 0

    def publish(self, topic, key, value, headers) -> None:
        self.sent += 1

    def flush(self) -> None:
        raise RuntimeError("broker unavailable")

    def close(self, timeout: float = 5.0) -> None:
        pass


def test_the_relay_resumes_from_its_committed_position(kafka_broker, tmp_path):
    gateway, schema = open_gateway("sqlite", tmp_path)
    try:
        topics = prefix()
        accounts = [gateway.accounts.open_account(f"u{i}@example.com", "dev", "staff:test")
                    for i in range(3)]
        first = relay(gateway, kafka_broker, topics, batch=4)
        assert first.run_until_idle() == 6
        first.close()
        for account_id in accounts:
            gateway.accounts.grant_credits(account_id, 1_000_000, "support goodwill", "usr_1")
        # A batch Kafka did not acknowledge is never committed: the position stays put.
        failing = KafkaRelay(gateway.stores, gateway.db, FailingPublisher, prefix=topics)
        with pytest.raises(RuntimeError):
            failing.run_until_idle()
        assert failing.positions()["accounts"] == 6
        second = relay(gateway, kafka_broker, topics, batch=4)
        assert second.run_until_idle() == sum(gateway.stores.max_positions().values()) - 6
        assert second.lag() == {"accounts": 0, "access": 0, "requests": 0, "catalog": 0}
        second.close()
        stored = all_notifications(gateway)
        records = read_topics(kafka_broker, [f"{topics}.accounts", f"{topics}.ledger"],
                              expect_unique=len(stored))
    finally:
        close_gateway(gateway, schema)
    assert sorted(r.event_id for r in records) == sorted(stored)  # each exactly once


def test_a_gateway_with_kafka_configured_publishes_as_it_projects(kafka_broker, tmp_path,
                                                                   monkeypatch):
    topics = prefix()
    monkeypatch.setenv("GATEWAYZ_KAFKA_TOPIC_PREFIX", topics)
    settings = make_settings("memory", tmp_path / "data")
    gateway = Gateway(dataclasses.replace(settings, kafka_bootstrap_servers=kafka_broker))
    gateway.start()
    try:
        assert gateway.relay is not None
        gateway.accounts.open_account("b@example.com", "dev", "staff:test")
        records = read_topics(kafka_broker, [f"{topics}.accounts", f"{topics}.ledger"],
                              expect_unique=2, settle=0.3)
        assert gateway.relay.health() is None
    finally:
        gateway.close()
    assert {r.value["type"] for r in records} == {"Account.Opened", "Wallet.Opened"}


def test_relay_command_refuses_to_start_without_kafka(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    done = subprocess.run([sys.executable, "-m", "entrypoints.cli", "relay", "--data-dir",
                           str(tmp_path / "data")], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "KAFKA_BOOTSTRAP_SERVERS" in done.stderr


def test_relay_command_publishes_the_embedded_store_of_a_data_dir(kafka_broker, tmp_path):
    gateway, schema = open_gateway("sqlite", tmp_path)
    try:
        gateway.accounts.open_account("c@example.com", "dev", "staff:test")
    finally:
        close_gateway(gateway, schema)
    topics = prefix()
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_broker,
           "GATEWAYZ_KAFKA_TOPIC_PREFIX": topics}
    env.pop("DATABASE_URL", None)
    relay_ = subprocess.Popen([sys.executable, "-m", "entrypoints.cli", "relay", "--data-dir",
                               str(tmp_path / "data")], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        records = read_topics(kafka_broker, [f"{topics}.accounts", f"{topics}.ledger"],
                              expect_unique=2, settle=0.3)
    finally:
        relay_.send_signal(signal.SIGTERM)
        output = relay_.communicate(timeout=20)[0]
    assert relay_.returncode == 0, output
    assert {r.value["type"] for r in records} == {"Account.Opened", "Wallet.Opened"}
