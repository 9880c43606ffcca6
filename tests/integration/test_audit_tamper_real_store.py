"""Random single tampers of a bundle exported from a real store are each caught at the first
bad seq (11.8 Accept, issue 10); bench/tamper_proof.py runs the same over 1,000 tampers."""

from __future__ import annotations

import random

import pytest
from audit import bundle_maker as bm

from bench import tamper_proof as tp
from projections import audit_trail

TAMPERS = 112  # eight of each of the fourteen kinds


@pytest.fixture(scope="module")
def real_bundle(tmp_path_factory) -> bm.Bundle:
    """~2,600 events of accounts, grants, purchases and requests, exported for real, with a
    checkpoint every 200 entries so tampers land before, at and between checkpoints."""
    folder = tmp_path_factory.mktemp("tamper")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(audit_trail, "CHECKPOINT_EVERY", 200)
        gw = tp.open_store(folder / "data")
        try:
            events = tp.build_store(gw, accounts=80, requests_per_account=12, seed=7)
            bundle = tp.export(gw, folder / "bundle")
        finally:
            gw.close()
    assert events >= 2_500
    return bundle


def test_the_untouched_export_verifies_with_checkpoints_covering_the_head(real_bundle):
    report = real_bundle.verify()

    assert report.valid and report.exit_code == 0, report
    assert report.warnings == []
    assert report.entries == len(real_bundle.entries) > 1_000
    assert len(real_bundle.checkpoints) >= 5
    assert real_bundle.checkpoints[-1]["checkpoint"]["seq"] == len(real_bundle.entries)
    types = {e["event_type"] for e in real_bundle.entries}
    assert {"Account.Opened", "Wallet.AdminCreditGranted", "Wallet.PurchaseCredited",
            "Request.HoldSettled", "GrantLog.GrantRecorded"} <= types


def test_every_random_single_tamper_is_detected_at_the_first_bad_seq(real_bundle):
    result = tp.run_tampers(real_bundle, TAMPERS, seed=3)

    assert result["misses"] == []
    assert result["detected"] == result["total"] == TAMPERS
    assert set(result["kinds"]) == {name for name, _, _ in tp.KINDS}
    assert result["check_named"] == TAMPERS  # and the check that failed is the expected one


@pytest.mark.parametrize("tamper", [bm.truncate, bm.rewrite_tail])
def test_a_cut_or_rewritten_tail_passes_the_chain_alone(real_bundle, tamper):
    # Spec 11.8: only checkpoints catch these, so nobody mistakes the chain for protection.
    rng = random.Random(5)
    tampered, seq, _ = tamper(real_bundle, len(real_bundle.entries) - 150, rng)

    assert tampered.verify(chain_only=True).valid
    report = tampered.verify()
    assert report.exit_code == 1 and report.first_failure.seq == seq
