"""Spec 11.8 acceptance: single tampers of a 3,000-entry bundle, each found at its seq and check.

The truncated and the rewritten tail are caught only with checkpoints; these tests also
assert that they pass the chain alone, so nobody mistakes the chain for protection.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from audit.bundle_maker import (
    Bundle,
    Expected,
    change_time,
    checkpoint_seqs,
    delete_entry,
    delete_event,
    edit_event,
    flip_payload,
    insert_copy,
    insert_forged,
    make_bundle,
    rewrite_tail,
    swap,
    truncate,
    wrong_key,
)
from entrypoints.audit_verifier import verify_bundle

Tamper = Callable[[Bundle, int, random.Random], Expected]


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    made = make_bundle(3000, rotate_at=1500)
    assert made.verify().valid
    return made


def found(report: object) -> tuple[int, str]:
    assert report.exit_code == 1, report  # type: ignore[attr-defined]
    first = report.first_failure  # type: ignore[attr-defined]
    return first.seq, first.check


@pytest.mark.parametrize("tamper, seq", [
    (flip_payload, 1), (flip_payload, 1234), (flip_payload, 3000),
    (change_time, 17), (change_time, 2999),
    (delete_entry, 1), (delete_entry, 1500), (delete_entry, 2999),
    (insert_copy, 1), (insert_copy, 777), (insert_copy, 3000),
    (insert_forged, 350), (insert_forged, 400),
    (swap, 1), (swap, 2000), (swap, 2999),
    (edit_event, 5), (edit_event, 2500),
    (delete_event, 9), (delete_event, 3000),
], ids=lambda v: getattr(v, "__name__", str(v)))
def test_single_tamper_is_found_where_it_is(bundle: Bundle, tamper: Tamper, seq: int) -> None:
    tampered, expected_seq, expected_check = tamper(bundle, seq, random.Random(seq))
    report = tampered.verify()
    assert found(report) == (expected_seq, expected_check), report.first_failure
    # The chain alone finds these too (checks 1, 2 and 6 need no checkpoint).
    if expected_check != "checkpoint_link":
        assert found(tampered.verify(chain_only=True)) == (expected_seq, expected_check)


@pytest.mark.parametrize("tamper, seq", [(truncate, 2950), (truncate, 2901), (truncate, 101),
                                         (rewrite_tail, 2950), (rewrite_tail, 1),
                                         (rewrite_tail, 2901)])
def test_tail_tampers_need_checkpoints(bundle: Bundle, tamper: Tamper, seq: int) -> None:
    tampered, expected_seq, expected_check = tamper(bundle, seq, random.Random(seq))
    chain_only = tampered.verify(chain_only=True)
    assert chain_only.valid and chain_only.exit_code == 0
    assert any("cannot be detected" in w for w in chain_only.warnings)
    assert found(tampered.verify()) == (expected_seq, expected_check)


def test_truncated_tail_on_disk_with_the_cli_checks(bundle: Bundle, tmp_path: Path) -> None:
    tampered, seq, check = truncate(bundle, 2222, random.Random(1))
    folder = tampered.write(tmp_path / "bundle")
    assert verify_bundle(folder, chain_only=True).exit_code == 0
    assert found(verify_bundle(folder)) == (seq, check) == (2222, "checkpoint_extends")


def test_rewritten_tail_on_disk(bundle: Bundle, tmp_path: Path) -> None:
    tampered, seq, check = rewrite_tail(bundle, 2222, random.Random(1))
    folder = tampered.write(tmp_path / "bundle")
    assert verify_bundle(folder, chain_only=True).exit_code == 0
    assert found(verify_bundle(folder)) == (seq, check) == (2300, "checkpoint_link")


def test_flipped_byte_on_disk(bundle: Bundle, tmp_path: Path) -> None:
    folder = bundle.write(tmp_path / "bundle")
    lines = (folder / "entries.jsonl").read_bytes().split(b"\n")
    line = bytearray(lines[1499])
    at = line.index(b'"event_digest":"') + 20
    line[at] = ord("0") if line[at] != ord("0") else ord("1")
    lines[1499] = bytes(line)
    (folder / "entries.jsonl").write_bytes(b"\n".join(lines))
    assert found(verify_bundle(folder)) == (1500, "entry_hash")


def test_checkpoint_signed_by_a_wrong_key(bundle: Bundle) -> None:
    for index in (0, 13, 14, 29):
        tampered, seq, check = wrong_key(bundle, index, random.Random(index))
        assert found(tampered.verify()) == (seq, check)
        assert seq == checkpoint_seqs(bundle)[index]
        assert tampered.verify(chain_only=True).valid


def test_truncation_after_the_last_checkpoint_is_beyond_reach() -> None:
    """Documented limit: an open tail (here 50 entries) is protected by the chain alone."""
    made = make_bundle(250, checkpoint_every=100)
    tampered, _, _ = truncate(made, 220, random.Random(0))
    report = tampered.verify()
    assert report.valid
    assert any("after the last checkpoint" in w for w in report.warnings)
