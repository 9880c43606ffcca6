"""Spec 11.8 acceptance: 1,000 random single tampers, each detected at its seq and check."""

from __future__ import annotations

import random
from collections import Counter

from audit.bundle_maker import (
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

TAMPERS = 1000


def test_1000_random_single_tampers_are_all_detected() -> None:
    # Small enough that 1,000 verifications stay fast, with every feature of a real bundle:
    # four contexts, unaudited events, NFD text, key rotation, an open tail.
    bundle = make_bundle(165, checkpoint_every=10, rotate_at=80, seed=42)
    assert bundle.verify().valid
    entries, last_checkpoint = len(bundle.entries), checkpoint_seqs(bundle)[-1]
    assert last_checkpoint < entries  # an open tail exists, and is left alone below
    kinds = {  # tamper -> the seqs (or checkpoint indexes) it may hit
        flip_payload: (1, entries), change_time: (1, entries),
        delete_entry: (1, entries - 1), insert_copy: (1, entries),
        insert_forged: (1, entries), swap: (1, entries - 1),
        truncate: (1, last_checkpoint), rewrite_tail: (1, last_checkpoint),
        edit_event: (1, entries), delete_event: (1, entries),
        wrong_key: (0, len(bundle.checkpoints) - 1),
    }
    rng = random.Random(20261202)
    detected: Counter[str] = Counter()
    missed: list[str] = []
    for number in range(TAMPERS):
        tamper = rng.choice(list(kinds))
        where = rng.randint(*kinds[tamper])
        tampered, seq, check = tamper(bundle, where, random.Random(number))
        report = tampered.verify()
        failure = report.first_failure
        if report.exit_code == 1 and failure and (failure.seq, failure.check) == (seq, check):
            detected[tamper.__name__] += 1
        else:
            missed.append(f"{tamper.__name__}({where}): expected {seq} {check}, got "
                          f"{report.exit_code} {failure}")
        if tamper in (truncate, rewrite_tail):
            # Caught only with checkpoints: the chain alone must not be taken for protection.
            assert tampered.verify(chain_only=True).exit_code == 0, tamper.__name__
    assert missed == []
    assert sum(detected.values()) == TAMPERS
    assert set(detected) == {kind.__name__ for kind in kinds}

