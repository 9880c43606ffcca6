"""The chain writer's canonical bytes and hashes match the published golden vectors (11.6)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from projections.audit_canonical import canonical, entry_hash

VECTORS = json.loads((Path(__file__).parents[1] / "audit" / "golden_vectors.json").read_text())


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["name"])
def test_the_writer_reproduces_each_golden_vector(case):
    assert canonical(case["input"]).decode("utf-8") == case["canonical"]
    assert entry_hash(case["prev_hash"], case["input"]) == case["hash"]


def test_the_writer_refuses_floats():
    with pytest.raises(TypeError):
        canonical({"amount": 1.5})
