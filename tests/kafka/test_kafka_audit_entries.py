"""Audit entries reach ``<prefix>.audit`` with their hashes, in chain order (11.11)."""

from __future__ import annotations

import dataclasses
import hashlib
import uuid

from conftest import make_settings
from kafka_support import read_topics

from entrypoints.bootstrap import Gateway
from projections.audit_canonical import GENESIS, canonical


def test_chained_entries_are_published_in_seq_order_and_the_chain_checks_out(
        kafka_broker, tmp_path, monkeypatch):
    topics = f"t{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("GATEWAYZ_KAFKA_TOPIC_PREFIX", topics)
    gateway = Gateway(dataclasses.replace(make_settings("memory", tmp_path / "data"),
                                          kafka_bootstrap_servers=kafka_broker))
    gateway.start()
    try:
        account = gateway.accounts.open_account("k@example.com", "dev", "staff:test")
        gateway.accounts.grant_credits(account, 1_000, "kafka audit grant", "usr_k")
        gateway.projector.run_until_idle()
        with gateway.db.transaction() as cur:
            cur.execute("SELECT COUNT(*) FROM audit_entries")
            chained = cur.fetchone()[0]
        records = read_topics(kafka_broker, [f"{topics}.audit"], expect_unique=chained,
                              settle=0.5)
    finally:
        gateway.close()

    entries = [r.value for r in records]
    assert chained >= 4 and [e["seq"] for e in entries] == list(range(1, chained + 1))
    assert {r.key for r in records} == {b"audit"}
    prev = GENESIS
    for entry in entries:
        body = {k: v for k, v in entry.items() if k != "hash"}
        assert entry["prev_hash"] == prev
        assert entry["hash"] == hashlib.sha256(bytes.fromhex(prev) + canonical(body)).hexdigest()
        prev = entry["hash"]
