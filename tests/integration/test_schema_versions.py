"""Golden fixtures of every earlier schema version load, replay and audit today (11.12).

Each fixture under tests/fixtures/schema_versions/ is the events file of a small history
written by an earlier commit's own code (make_fixture.py), with the balances and event
counts that commit's read model reported. A current Gateway opened on a copy projects the
old rows from position 0; every row must load as the current class version, replay to the
recorded balances to the micro, publish with the system envelope, enter an audit trail the
offline verifier accepts, and stay so once new events are written on top.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from application.envelope import Actor, Envelope, acting
from application.feed import published_notification
from domain.inference_request import InferenceRequest
from entrypoints.audit_verifier import verify_bundle
from entrypoints.bootstrap import Gateway, Settings
from projections.audit_export import export_bundle
from projections.verify import verify

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "schema_versions"
NAMES = sorted(p.name for p in FIXTURES.iterdir() if (p / "expected.json").is_file())
SYSTEM = {"kind": "system", "id": "gatewayz"}
STAFF = Actor("staff", "usr_schema_versions")


@dataclasses.dataclass
class Opened:
    name: str
    gateway: Gateway
    expected: dict[str, Any]
    stored: dict[str, list[dict[str, Any]]]  # context -> raw stored states, position order


@pytest.fixture(params=NAMES)
def opened(request, tmp_path: Path):
    source = FIXTURES / request.param
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    shutil.copyfile(source / "gatewayz.sqlite", data / "gatewayz.sqlite")
    secrets = json.loads((source / "secrets.json").read_text())
    settings = Settings(data_dir=data, key_pepper=secrets["key_pepper"].encode(),
                        master_key=bytes.fromhex(secrets["master_key_hex"]),
                        run_projector=False)
    gateway = Gateway(settings)
    try:
        stored = {context: [json.loads(bytes(n.state)) for n in notes(app)]
                  for context, app in gateway.stores.by_context().items()}
        gateway.start()  # projects the old rows from position 0 into new read models
        expected = json.loads((source / "expected.json").read_text())
        yield Opened(request.param, gateway, expected, stored)
    finally:
        gateway.close()


def notes(app: Any, start: int = 1) -> list[Any]:
    return app.recorder.select_notifications(start=start, limit=100_000)


def current_version(event: Any) -> int:
    return getattr(type(event), "class_version", 1)


def pools_by_table(gateway: Gateway) -> dict[str, dict[str, int]]:
    with gateway.db.transaction() as cur:
        cur.execute("SELECT account_id, trial, allowance, purchased FROM balances")
        return {a: {"trial": int(t), "allowance": int(al), "purchased": int(p)}
                for a, t, al, p in cur.fetchall()}


def pools_by_ledger(gateway: Gateway, account_id: str) -> dict[str, int]:
    view = gateway.balances.balance(account_id, int(time.time()))
    assert view is not None, account_id
    return {pool: v["balance_micros"] for pool, v in view["pools"].items()}


def audit_bundle(gateway: Gateway, target: Path):
    """Export and verify offline, with a signed checkpoint over the head as at a stop. The
    first signature records the signing key (an audited event), hence two rounds."""
    for _ in range(2):
        gateway.projector.run_until_idle()
        gateway.audit.shutdown()
    manifest = export_bundle(gateway.stores, gateway.db, gateway.clock, target)
    report = verify_bundle(target)
    # Old history entered the chain when the trail began: said, never an error.
    assert report.valid, report.to_json()
    assert all("before the first signing key" in w for w in report.warnings), report.warnings
    assert manifest["events"] == report.events == sum(gateway.stores.max_positions().values())
    return manifest, report


def assert_tampering_is_caught(bundle: Path, copy: Path) -> None:
    """The verifier checks the legacy rows themselves: one old grant's amount edited in the
    bundle's events makes it fail."""
    shutil.copytree(bundle, copy)
    lines = (copy / "events.jsonl").read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if "Wallet.AdminCreditGranted" in line)
    row = json.loads(lines[index])
    assert "envelope" not in row["state"]
    row["state"]["amount"] += 1
    lines[index] = json.dumps(row, separators=(",", ":"), sort_keys=True)
    (copy / "events.jsonl").write_text("\n".join(lines) + "\n")
    report = verify_bundle(copy)
    assert not report.valid and report.exit_code == 1, report.to_json()


def test_the_fixtures_are_each_an_earlier_format():
    assert set(NAMES) >= {"v0_hold_placed_v1", "v1_pre_envelope"}
    for name in NAMES:
        size = sum(p.stat().st_size for p in (FIXTURES / name).iterdir())
        assert size < 300_000, (name, size)


def test_every_old_event_loads_as_the_current_class_version(opened: Opened):
    gateway, expected = opened.gateway, opened.expected
    counted: dict[str, int] = {}
    types: Counter[str] = Counter()
    streams: dict[str, set] = {}
    for context, app in gateway.stores.by_context().items():
        rows = notes(app)
        counted[context] = len(rows)
        streams[context] = {row.originator_id for row in rows}
        for row, state in zip(rows, opened.stored[context], strict=True):
            assert "envelope" not in state, "the fixture predates the envelope"
            event = app.mapper.to_domain_event(row)
            cls = type(event)
            types[cls.__qualname__] += 1
            assert state.get("class_version", 1) <= current_version(event)
            missing = [f.name for f in dataclasses.fields(cls) if f.name not in event.__dict__]
            assert missing == [], (cls.__qualname__, missing)
            if isinstance(event, InferenceRequest.HoldPlaced):
                assert current_version(event) == 2
                if "worker_id" not in state:  # v1 row: upcast to an unknown worker
                    assert state.get("class_version", 1) == 1 and event.worker_id == ""
                else:
                    assert state["class_version"] == 2 and event.worker_id
    assert counted == expected["events"]
    assert dict(types) == expected["event_types"]
    for context, app in gateway.stores.by_context().items():
        for stream in streams[context]:  # every aggregate folds from its old events
            assert app.repository.get(stream).version >= 1
    placed = [s for s in opened.stored["requests"] if "request_id" in s]
    assert len(placed) == expected["event_types"]["InferenceRequest.HoldPlaced"]
    if opened.name == "v0_hold_placed_v1":  # the fixture really is of the older format
        assert all("worker_id" not in s and "class_version" not in s for s in placed)
    else:
        assert all(s["class_version"] == 2 and s["worker_id"] for s in placed)


def test_old_rows_replay_to_the_recorded_balances_to_the_micro(opened: Opened):
    gateway, expected = opened.gateway, opened.expected

    assert pools_by_table(gateway) == expected["balances"]
    for account_id, pools in expected["balances"].items():
        assert pools_by_ledger(gateway, account_id) == pools
    reports = verify(gateway.config, gateway.stores, gateway.db)
    assert [(r.table, r.first_difference) for r in reports if not r.match] == []
    assert {r.table for r in reports} >= {"balances", "ledger_lines", "holds", "requests"}


def test_the_feed_gives_old_events_the_system_envelope_and_current_schema(opened: Opened):
    gateway = opened.gateway
    seen = 0
    for context, app in gateway.stores.by_context().items():
        for row in notes(app):
            published = published_notification(context, app, row)
            event = app.mapper.to_domain_event(row)
            assert published["actor"] == SYSTEM
            assert published["schema_version"] == current_version(event)
            assert (published["command_id"], published["correlation_id"],
                    published["causation_id"]) == (None, None, None)
            assert published["context"] == context and published["position"] == row.id
            if published["type"] == "Request.HoldPlaced":
                assert published["schema_version"] == 2 and "worker_id" in published["data"]
            seen += 1
    assert seen == sum(opened.expected["events"].values())


def test_the_audit_trail_over_old_events_verifies_offline_then_with_new_events_on_top(
        opened: Opened, tmp_path: Path):
    gateway, expected = opened.gateway, opened.expected
    total = sum(expected["events"].values())

    manifest, report = audit_bundle(gateway, tmp_path / "old")
    assert report.events >= total and report.checkpoints >= 1
    with gateway.db.transaction() as cur:
        cur.execute("SELECT context, position, actor_kind, actor_id FROM audit_entries")
        old = [row for row in cur.fetchall()
               if row[1] <= expected["events"][row[0]]]
    assert old and {(kind, who) for _, _, kind, who in old} == {("system", "gatewayz")}
    assert_tampering_is_caught(tmp_path / "old", tmp_path / "tampered")

    dev = expected["accounts"]["dev"]
    with acting(Envelope(STAFF, correlation_id="req_schema_mixed", command_id="cmd_mixed")):
        gateway.accounts.grant_credits(dev, 1_000_000, "grant on top of old rows", STAFF.id)
    gateway.projector.run_until_idle()

    app = gateway.stores.accounts
    new = [published_notification("accounts", app, row)
           for row in notes(app, expected["events"]["accounts"] + 1)]
    assert new and all(e["actor"] == STAFF.stored() for e in new)
    assert {e["command_id"] for e in new} == {"cmd_mixed"}
    old = published_notification("accounts", app, notes(app)[0])
    assert old["actor"] == SYSTEM
    pools = dict(expected["balances"][dev])
    pools["purchased"] += 1_000_000
    assert pools_by_table(gateway)[dev] == pools_by_ledger(gateway, dev) == pools
    reports = verify(gateway.config, gateway.stores, gateway.db)
    assert [(r.table, r.first_difference) for r in reports if not r.match] == []

    mixed, report = audit_bundle(gateway, tmp_path / "mixed")
    assert mixed["events"] == manifest["events"] + len(new)
    assert mixed["entries"] > manifest["entries"]
    with gateway.db.transaction() as cur:
        cur.execute("SELECT actor_kind, actor_id FROM audit_entries WHERE seq > %s",
                    (manifest["entries"],))
        assert set(cur.fetchall()) == {("staff", STAFF.id)}
