"""The offline audit-bundle verifier end to end: files, CLI, keys, checkpoint gaps, exit codes."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from audit.bundle_maker import (
    Bundle,
    copy_of,
    dumps,
    entry_hash,
    make_bundle,
    rehash,
    sign,
    signing_key,
    truncate,
    z,
)
from entrypoints.audit_verifier import CHAIN_ONLY_WARNING, Report, main, verify_bundle

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    # 3,000 entries, a checkpoint every 100, checkpoints from seq 1,500 on signed by "k2".
    return make_bundle(3000, rotate_at=1500)


def failure(report: Report) -> tuple[int, str]:
    assert report.exit_code == 1, report
    assert report.first_failure is not None
    return report.first_failure.seq, report.first_failure.check


def test_valid_bundle_from_files_and_cli(bundle: Bundle, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    folder = bundle.write(tmp_path / "bundle")
    report = verify_bundle(folder)
    assert (report.valid, report.exit_code, report.entries, report.checkpoints) == \
        (True, 0, 3000, 30)
    assert report.events == len(bundle.events) and report.first_failure is None
    assert report.warnings == []

    assert main(["verify", str(folder)]) == 0
    assert capsys.readouterr().out.startswith("VALID")
    assert main(["verify", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True

    run = subprocess.run([sys.executable, "-m", "entrypoints.audit_verifier", "verify",
                          str(folder), "--json"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["entries"] == 3000


def test_parsed_objects_and_raw_lines_give_the_same_report(bundle: Bundle) -> None:
    small = make_bundle(300, seed=5)
    from_objects = small.verify()
    from_lines = Bundle(manifest=dumps(small.manifest), events=[dumps(e) for e in small.events],
                        entries=[dumps(e) for e in small.entries],
                        checkpoints=[dumps(c) for c in small.checkpoints],
                        public_keys=small.public_keys).verify()
    assert from_objects == from_lines and from_objects.valid


def test_cli_reports_tampering_and_unreadable_bundles(bundle: Bundle, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    tampered = copy_of(bundle)
    tampered.entries[41] = dict(bundle.entries[41], action="changed")
    folder = tampered.write(tmp_path / "tampered")
    assert main(["verify", str(folder), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["first_failure"]["seq"] == 42
    assert report["first_failure"]["check"] == "entry_hash"
    assert main([str(folder)]) == 1  # the word "verify" may be left out
    assert "TAMPERING FOUND" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "nowhere")]) == 2
    assert "COULD NOT VERIFY" in capsys.readouterr().out
    assert main(["verify"]) == 2  # usage error


def test_key_rotation_old_and_new_checkpoints_verify(bundle: Bundle) -> None:
    key_ids = [c["checkpoint"]["key_id"] for c in bundle.checkpoints]
    assert key_ids[:14] == ["k1"] * 14 and key_ids[14:] == ["k2"] * 16
    assert bundle.verify().valid


def test_checkpoint_signed_by_the_old_key_after_rotation_fails(bundle: Bundle) -> None:
    tampered = copy_of(bundle)
    body = dict(bundle.checkpoints[20]["checkpoint"], key_id="k1")
    tampered.checkpoints[20] = sign(body, signing_key("k1-0"))
    assert failure(tampered.verify()) == (2100, "checkpoint_signature")
    assert "no public key 'k1' valid at" in tampered.verify().first_failure.detail


def test_checkpoint_under_the_new_key_before_rotation_fails(bundle: Bundle) -> None:
    tampered = copy_of(bundle)
    body = dict(bundle.checkpoints[3]["checkpoint"], key_id="k2")
    tampered.checkpoints[3] = sign(body, signing_key("k2-0"))
    assert failure(tampered.verify()) == (400, "checkpoint_signature")


def test_checkpoint_link_and_signature_details(bundle: Bundle) -> None:
    tampered = copy_of(bundle)
    # A validly signed checkpoint that does not name its predecessor (the key is the
    # right one: the link is what fails).
    body = dict(bundle.checkpoints[5]["checkpoint"], previous_checkpoint_seq=400)
    tampered.checkpoints[5] = sign(body, signing_key("k1-0"))
    assert failure(tampered.verify()) == (600, "checkpoint_link")
    tampered.checkpoints[5] = dict(bundle.checkpoints[5], signature="not base64!")
    assert failure(tampered.verify()) == (600, "checkpoint_signature")
    # One checkpoint missing from the set breaks the link of the next one.
    del tampered.checkpoints[5]
    assert failure(tampered.verify()) == (700, "checkpoint_link")


def test_external_checkpoints_and_public_keys_override_the_bundle(bundle: Bundle,
                                                                 tmp_path: Path) -> None:
    sink = tmp_path / "sink"
    sink.mkdir()
    for row in bundle.checkpoints:
        (sink / f"{row['checkpoint']['seq']:012d}.json").write_text(dumps(row) + "\n")
    # The operator truncated the chain and dropped the bundle's checkpoints with it.
    truncated, seq, check = truncate(bundle, 2501, random.Random(0))
    folder = truncated.write(tmp_path / "bundle", checkpoints=False)
    assert verify_bundle(folder, chain_only=True).valid
    report = verify_bundle(folder)
    assert failure(report)[1] == "checkpoint_gap"  # no checkpoints for 2,500 entries
    report = verify_bundle(folder, checkpoints=sink)
    assert failure(report) == (seq, check) == (2501, "checkpoint_extends")

    keys = tmp_path / "keys.json"
    wrong = {"keys": [dict(k, public_key=bundle.public_keys["keys"][1]["public_key"])
                      for k in bundle.public_keys["keys"]]}
    keys.write_text(json.dumps(wrong))
    assert failure(verify_bundle(folder, checkpoints=sink, public_keys=keys)) == \
        (100, "checkpoint_signature")
    assert verify_bundle(folder, public_keys=tmp_path / "absent.json").exit_code == 2
    assert verify_bundle(folder, checkpoints=tmp_path / "absent").exit_code == 2


def test_chain_only_warns_that_the_tail_is_unprotected(bundle: Bundle) -> None:
    report = bundle.verify(chain_only=True)
    assert report.valid and report.checkpoints == 0
    assert report.warnings == [CHAIN_ONLY_WARNING]


@pytest.mark.parametrize("damage", [
    "missing_entries", "bad_json", "float_in_entry", "float_in_event", "repeated_key",
    "bad_manifest", "not_utf8", "no_public_keys", "lone_surrogate", "hmac_key",
    "malformed_checkpoint", "event_without_position",
])
def test_could_not_verify(damage: str, tmp_path: Path) -> None:
    small = make_bundle(120, seed=2)
    folder = small.write(tmp_path / "bundle")
    entries = folder / "entries.jsonl"
    lines = entries.read_text().splitlines()

    def replace_entry_line(index: int, text: str) -> None:
        lines[index] = text
        entries.write_text("\n".join(lines) + "\n")

    if damage == "missing_entries":
        entries.unlink()
    elif damage == "bad_json":
        replace_entry_line(5, lines[5][:-1])
    elif damage == "float_in_entry":
        replace_entry_line(5, lines[5].replace('"seq":6', '"seq":6.0'))
    elif damage == "float_in_event":
        events = (folder / "events.jsonl").read_text().replace('"version":1', '"version":1.0', 1)
        (folder / "events.jsonl").write_text(events)
    elif damage == "repeated_key":
        replace_entry_line(5, lines[5].replace('"seq":6', '"seq":6,"seq":6'))
    elif damage == "bad_manifest":
        (folder / "manifest.json").write_text(json.dumps({"format": "something-else/2"}))
    elif damage == "not_utf8":
        entries.write_bytes(entries.read_bytes() + b'{"seq":\xff}\n')
    elif damage == "no_public_keys":
        (folder / "public-keys.json").unlink()
    elif damage == "lone_surrogate":
        replace_entry_line(5, lines[5].replace('"action":"', '"action":"\\ud800', 1))
    elif damage == "hmac_key":
        keys = json.loads((folder / "public-keys.json").read_text())
        keys["keys"][0]["algorithm"] = "hmac-sha256"
        (folder / "public-keys.json").write_text(json.dumps(keys))
    elif damage == "malformed_checkpoint":
        (folder / "checkpoints.jsonl").write_text('{"checkpoint":{"seq":"100"},"signature":""}\n')
    elif damage == "event_without_position":
        events = (folder / "events.jsonl").read_text().replace('"position":1,', '', 1)
        (folder / "events.jsonl").write_text(events)
    report = verify_bundle(folder)
    assert (report.exit_code, report.valid, report.first_failure) == (2, False, None), report
    assert report.error


def test_more_than_1000_entries_between_checkpoints_is_a_gap() -> None:
    sparse = make_bundle(1600, checkpoint_every=1200)
    assert failure(sparse.verify()) == (1001, "checkpoint_gap")
    assert sparse.verify(chain_only=True).valid


def test_a_checkpoint_more_than_70_minutes_after_an_entry_is_a_gap() -> None:
    # About 1.8 events per entry: 100 entries take about 30 min at 10 s per event, 3 h at
    # 60 s, and then the first entries wait too long for checkpoint 100.
    assert make_bundle(250, step=timedelta(seconds=10), checkpoint_every=100).verify().valid
    slower = make_bundle(250, step=timedelta(seconds=60), checkpoint_every=100)
    assert failure(slower.verify()) == (1, "checkpoint_gap")


def test_open_tail_is_accepted_only_while_young_and_short() -> None:
    tail = make_bundle(150, checkpoint_every=100)  # entries 101-150 await a checkpoint
    report = tail.verify()
    assert report.valid
    assert any("50 entries after the last checkpoint" in w for w in report.warnings)
    late = copy_of(tail)
    oldest = tail.entries[100]["recorded_at"]
    late.manifest["created_at"] = z(_parse(oldest) + timedelta(hours=1, minutes=10))
    assert failure(late.verify()) == (101, "checkpoint_gap")
    late.manifest["created_at"] = z(_parse(oldest) + timedelta(hours=1, minutes=9))
    assert late.verify().valid

    long_tail = make_bundle(1100, checkpoint_every=100)
    long_tail.checkpoints = long_tail.checkpoints[:1]
    assert failure(long_tail.verify()) == (1100, "checkpoint_gap")


def test_no_checkpoints_at_all() -> None:
    young = make_bundle(400, checkpoint_every=10**6)
    report = young.verify()
    assert report.valid and any(w.startswith("no checkpoints") for w in report.warnings)
    old = make_bundle(1000, checkpoint_every=10**6)
    assert failure(old.verify()) == (1000, "checkpoint_gap")


def test_verify_from_a_later_seq(bundle: Bundle) -> None:
    report = bundle.verify(from_seq=1501)
    assert report.valid and report.entries == 1500
    assert any("verified from seq 1501" in w for w in report.warnings)
    tampered = copy_of(bundle)
    tampered.entries[999] = dict(bundle.entries[999], action="changed")
    assert tampered.verify(from_seq=1501).valid  # seq 1000 is out of range
    tampered.entries[1999] = dict(bundle.entries[1999], action="changed")
    assert failure(tampered.verify(from_seq=1501)) == (2000, "entry_hash")
    # A partial bundle holding only the range, anchored by the checkpoint at seq 1500.
    partial = copy_of(bundle)
    partial.entries = bundle.entries[1500:]
    assert partial.verify(from_seq=1501).valid
    forged = copy_of(partial)
    first = forged.entries[0] = dict(partial.entries[0], prev_hash="ab" * 32)
    first["hash"] = entry_hash(first)
    assert failure(forged.verify(from_seq=1501)) == (1501, "chain_link")


def test_manifest_counts_are_only_a_warning(bundle: Bundle) -> None:
    odd = copy_of(bundle)
    odd.manifest["entries"] = 2999
    report = odd.verify()
    assert report.valid
    assert "manifest.json says 2999 entries, the bundle has 3000" in report.warnings


def test_event_checks_in_detail() -> None:
    small = make_bundle(200, seed=9)

    def forged(change: Any) -> Bundle:
        out = copy_of(small)
        out.entries = json.loads(json.dumps(small.entries))
        out.events = json.loads(json.dumps(small.events))
        change(out)
        rehash(out.entries)
        return out

    def verify(out: Bundle) -> tuple[int, str, str]:
        report = out.verify(chain_only=True)  # the chain is forged; check 6 must see it
        assert report.first_failure is not None, report
        return report.first_failure.seq, report.first_failure.check, report.first_failure.detail

    def retime(out: Bundle) -> None:
        out.entries[9]["recorded_at"] = "2026-12-02T01:02:03.000000Z"
    seq, check, detail = verify(forged(retime))
    assert (seq, check) == (10, "event_match") and detail.startswith("recorded_at is")

    def reactor(out: Bundle) -> None:
        out.entries[9]["actor"] = {"kind": "user", "id": "someone else"}
    assert verify(forged(reactor))[2].startswith("actor is")

    # A settlement's entry pointed at the hold placed just before it in the same stream.
    settled = next(i for i, e in enumerate(small.entries) if e["event_type"] ==
                   "Request.HoldSettled")

    def to_unaudited(out: Bundle) -> None:
        out.entries[settled]["position"] -= 1
    seq, check, detail = verify(forged(to_unaudited))
    assert (seq, check) == (settled + 1, "event_match") and "not audited" in detail

    def drop_entry(out: Bundle) -> None:
        del out.entries[9]
        for i, entry in enumerate(out.entries):
            entry["seq"] = i + 1
    seq, check, detail = verify(forged(drop_entry))
    assert check == "event_match" and detail.startswith("no entry for the audited event")
    assert seq >= 10

    def reorder(out: Bundle) -> None:
        same = [i for i, e in enumerate(out.entries) if e["context"] == "requests"]
        a, b = same[3], same[4]
        out.entries[a], out.entries[b] = out.entries[b], out.entries[a]
        out.entries[a]["seq"], out.entries[b]["seq"] = a + 1, b + 1
    assert verify(forged(reorder))[1] == "event_match"

    def twice(out: Bundle) -> None:
        out.entries.insert(10, dict(out.entries[9]))
        for i, entry in enumerate(out.entries):
            entry["seq"] = i + 1
    assert verify(forged(twice))[:2] == (11, "event_match")
    assert "is not after" in verify(forged(twice))[2]

    def duplicate_event(out: Bundle) -> None:
        out.events.append(dict(out.events[0], stream_id="00000000-0000-4000-8000-000000000000"))
    assert "more than one event" in verify(forged(duplicate_event))[2]

    def other_event(out: Bundle) -> None:
        out.entries[9]["context"] = "nowhere"
    assert verify(forged(other_event))[2].startswith("no event at nowhere/")


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def test_verifier_shares_no_code_with_the_writer() -> None:
    """Spec 11.6: only the standard library, cryptography and the verifier's own modules."""
    import ast

    sources = sorted((ROOT / "entrypoints").glob("audit_verifier*.py"))
    assert len(sources) >= 2
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert (top in sys.stdlib_module_names or top == "cryptography"
                        or name.startswith("entrypoints.audit_verifier")), (source.name, name)


def test_nesting_too_deep_cannot_be_verified() -> None:
    small = make_bundle(20, seed=4)
    deep: Any = "bottom"
    for _ in range(5000):
        deep = [deep]
    small.entries[3] = dict(small.entries[3], summary={"deep": deep})
    report = small.verify()
    assert report.exit_code == 2 and "nesting" in (report.error or "")


def test_a_crash_is_never_reported_as_tampering(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    import entrypoints.audit_verifier as verifier

    def broken(*args: Any, **kwargs: Any) -> Report:
        raise RuntimeError("bug")
    monkeypatch.setattr(verifier, "verify_bundle", broken)
    assert main(["verify", str(tmp_path)]) == 2
