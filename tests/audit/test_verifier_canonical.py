"""The verifier's canonical encoding against the published golden vectors and its own rules."""

from __future__ import annotations

import hashlib
import json
import random
import unicodedata
import uuid
from pathlib import Path
from typing import Any

import pytest

from entrypoints.audit_verifier_canonical import (
    CanonicalError,
    canonical,
    entry_hash,
    event_id,
    event_type,
    is_audited,
    z_time,
)
from entrypoints.audit_verifier_events import actor_bytes
from entrypoints.audit_verifier_lines import BundleJSONError, LineParser, loads

VECTORS = json.loads((Path(__file__).parent / "golden_vectors.json").read_text())["cases"]


def reordered(value: Any, rng: random.Random) -> Any:
    """The same value with every object's keys inserted in a random order."""
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {k: reordered(value[k], rng) for k in keys}
    if isinstance(value, list):
        return [reordered(v, rng) for v in value]
    return value


def renormalised(value: Any, form: str) -> Any:
    """The same value with every string (keys too) in Unicode form ``form``."""
    if isinstance(value, dict):
        return {unicodedata.normalize(form, k): renormalised(v, form) for k, v in value.items()}
    if isinstance(value, list):
        return [renormalised(v, form) for v in value]
    return unicodedata.normalize(form, value) if isinstance(value, str) else value


def test_there_are_enough_golden_vectors() -> None:
    assert len(VECTORS) >= 12
    assert len({case["name"] for case in VECTORS}) == len(VECTORS)


@pytest.mark.parametrize("case", VECTORS, ids=[case["name"] for case in VECTORS])
def test_golden_vector(case: dict[str, Any]) -> None:
    expected = case["canonical"].encode("utf-8")
    assert canonical(case["input"]) == expected
    digest = hashlib.sha256(bytes.fromhex(case["prev_hash"]) + expected).hexdigest()
    assert digest == case["hash"]
    # The same through the entry hash: an entry is hashed without its "hash" field.
    entry = dict(case["input"], prev_hash=case["prev_hash"], hash="ignored")
    if "prev_hash" in case["input"]:
        assert entry_hash(entry) == case["hash"]


@pytest.mark.parametrize("case", VECTORS, ids=[case["name"] for case in VECTORS])
def test_golden_vector_ignores_key_order_and_normalisation_form(case: dict[str, Any]) -> None:
    rng = random.Random(case["name"])
    expected = case["canonical"].encode("utf-8")
    for _ in range(20):
        assert canonical(reordered(case["input"], rng)) == expected
    # Only the canonical equivalents: compatibility forms (NFKC) change the text.
    for form in ("NFC", "NFD"):
        assert canonical(renormalised(case["input"], form)) == expected


def test_nfc_and_nfd_vectors_agree() -> None:
    by_name = {case["name"]: case for case in VECTORS}
    assert by_name["nfc_input"]["canonical"] == by_name["nfd_input"]["canonical"]
    assert by_name["nfc_input"]["input"] != by_name["nfd_input"]["input"]


def random_value(rng: random.Random, depth: int = 0) -> Any:
    alphabet = "abcXYZ_09 \"\\\n\t\x01\x7f/\u00e9\u0301\u2028\uff21\U0001f600"
    kind = rng.randrange(7 if depth < 4 else 4)
    if kind == 0:
        return rng.choice([True, False, None])
    if kind == 1:
        return rng.randint(-(2**63), 2**63)
    if kind in (2, 3):
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(8)))
    if kind in (4, 5):
        return {"".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 5))):
                random_value(rng, depth + 1) for _ in range(rng.randrange(5))}
    return [random_value(rng, depth + 1) for _ in range(rng.randrange(5))]


def test_matches_the_standard_library_on_nfc_data() -> None:
    """An independent cross-check: json.dumps with these options is canonical on NFC data."""
    rng = random.Random(7)
    for _ in range(500):
        value = renormalised(random_value(rng), "NFC")
        reference = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert canonical(value) == reference.encode("utf-8")


def test_rejects_what_has_no_canonical_form() -> None:
    for value in ({"x": 1.5}, {"x": [float("nan")]}, {"\u00e9": 1, "e\u0301": 2},
                  {"x": "\ud800"}, {1: "non-string key"}, {"x": b"bytes"}):
        with pytest.raises(CanonicalError):
            canonical(value)


def test_loads_is_strict() -> None:
    for text in ('{"a":1.0}', '{"a":1e3}', '{"a":NaN}', '{"a":1,"a":2}', '{"a":', "[1,]"):
        with pytest.raises(BundleJSONError):
            loads(text)
    assert loads('{"a": -0, "b": 12345678901234567890}') == {"a": 0, "b": 12345678901234567890}


@pytest.mark.parametrize("line", [
    '{"b":1,"a":2}',                      # keys out of order
    '{"a":{"d":1,"c":2}}',                # nested keys out of order
    '{"a": 1}',                           # whitespace
    '{"a":1} ',                           # trailing whitespace
    '{"a":[1,\t2]}',                      # tab
    '{"a":-0}',                           # negative zero
    '{"a":[5,-0]}',
    '{"a":"\\u00e9"}',                    # an escape that canonical form writes literally
    '{"a":"\\/"}',                        # an escape canonical form does not use
    '{"a":"caf\u00e9"}',                  # non-ASCII: not plain
    '{"a":1,"a":1}',                      # repeated key
    '{"a":{"b":1,"b":1}}',
])
def test_parser_never_trusts_a_non_canonical_line(line: str) -> None:
    parser = LineParser()
    try:
        value, proven, _ = parser.parse(line)
    except BundleJSONError:
        return  # repeated keys are refused outright
    assert proven is None
    assert value == json.loads(line)


def test_parser_proof_is_sound_on_random_lines() -> None:
    """Whenever a line is taken as canonical text, it is exactly the canonical bytes."""
    rng = random.Random(11)
    parser = LineParser()
    proven_count = 0
    for _ in range(2000):
        value = {"k": random_value(rng), "a": random_value(rng)}
        style = rng.randrange(3)
        line = json.dumps(value, sort_keys=style != 0, separators=(",", ":") if style else None,
                          ensure_ascii=rng.random() < 0.5)
        try:
            parsed, proven, _ = parser.parse(line)
        except BundleJSONError:
            continue
        if proven is not None:
            proven_count += 1
            assert proven.encode("utf-8") == canonical(parsed)
    assert proven_count > 200


def test_event_id_is_uuid5_of_stream_and_version() -> None:
    namespace = uuid.UUID("0b6f3c1e-8d2a-4e57-9c40-7a1d5e2b9f63")
    rng = random.Random(3)
    for _ in range(200):
        stream = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        version = rng.randrange(1, 10**6)
        assert event_id(stream, version) == str(uuid.uuid5(namespace, f"{stream}:{version}"))


def test_event_type_and_audited() -> None:
    assert event_type("domain.inference_request:InferenceRequest.HoldSettled") == \
        "Request.HoldSettled"
    assert event_type("domain.wallet:Wallet.PurchaseCredited") == "Wallet.PurchaseCredited"
    assert event_type("no-colon") is None
    assert event_type("m:NoDot") is None
    for kind in ("Request.HoldPlaced", "Request.HoldVoided", "Request.HoldExpired"):
        assert not is_audited(kind, {})
    assert not is_audited("Request.HoldSettled", {"charged_micros": 0})
    assert is_audited("Request.HoldSettled", {"charged_micros": 1})
    assert is_audited("Request.HoldSettled", {"charged_micros": False})  # not the integer 0
    assert is_audited("Request.GuardrailTriggered", {})


@pytest.mark.parametrize("stamp, expected", [
    ("2026-12-02T01:02:03.123456+00:00", "2026-12-02T01:02:03.123456Z"),
    ("2026-12-02T01:02:03.123456Z", "2026-12-02T01:02:03.123456Z"),
    ("2026-12-02T01:02:03+00:00", "2026-12-02T01:02:03.000000Z"),
    ("2026-12-02T01:02:03Z", "2026-12-02T01:02:03.000000Z"),
    ("2026-12-02T03:02:03.000005+02:00", "2026-12-02T01:02:03.000005Z"),
    ("2026-12-01T23:02:03.5-02:00", "2026-12-02T01:02:03.500000Z"),
    ("2026-12-02T01:02:03.123456", None),  # no offset: not a point in time
    ("yesterday", None),
    (1700000000, None),
])
def test_recorded_at_from_event_timestamp(stamp: Any, expected: str | None) -> None:
    assert z_time(stamp) == expected


@pytest.mark.parametrize("actor", [
    {"id": "usr_1", "kind": "user"},
    {"id": "a}b", "kind": "user"},                 # a brace inside a string
    {"id": "x{y}", "kind": "user"},
    {"id": "u", "kind": "staff", "roles": ["a", "b}"]},
    {"id": "n", "kind": "k", "meta": {"z": 1}},      # nested: encoded instead
])
def test_actor_cut_from_a_canonical_line_is_its_canonical_bytes(actor: dict[str, Any]) -> None:
    line = canonical({"action": "x", "actor": actor, "z": {"k": "}"}}).decode()
    parsed, proven, plain = LineParser().parse(line)
    assert proven == line
    assert actor_bytes(parsed["actor"], proven, plain) == canonical(actor)
