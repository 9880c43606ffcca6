"""Tests for domain.key_format: key shape, checksum error detection, hashing and display helpers."""

import hashlib
import hmac
import re
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.key_format import (
    BASE62_ALPHABET,
    base62,
    credential_kind,
    display_prefix,
    generate_api_key,
    generate_staff_token,
    last4,
    secret_hash,
)

KEY_RE = re.compile(r"^gw_(live|test)_[A-Za-z0-9_-]{43}_[0-9A-Za-z]{6}$")
STAFF_RE = re.compile(r"^gw_staff_[A-Za-z0-9_-]{43}_[0-9A-Za-z]{6}$")
BODY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_base62():
    assert (
        BASE62_ALPHABET
        == "0123456789" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "abcdefghijklmnopqrstuvwxyz"
    )
    assert base62(0, 6) == "000000"
    assert base62(61, 2) == "0z"
    assert base62(62, 2) == "10"
    assert base62(2**32 - 1, 6) == "4gfFC3"
    with pytest.raises(ValueError):
        base62(62**2, 2)
    with pytest.raises(ValueError):
        base62(-1, 6)


@given(st.integers(min_value=0, max_value=62**8 - 1))
def test_base62_round_trips(n):
    text = base62(n, 8)
    assert len(text) == 8
    assert sum(BASE62_ALPHABET.index(c) * 62**i for i, c in enumerate(reversed(text))) == n


def test_checksum_matches_spec_computation():
    key = generate_api_key("test")
    assert key[-6:] == base62(zlib.crc32(key[:51].encode()), 6)
    assert key[51] == "_"
    token = generate_staff_token()
    assert token[-6:] == base62(zlib.crc32(token[:52].encode()), 6)


def test_10000_keys_match_pattern_and_are_distinct():
    keys = [generate_api_key("live" if i % 2 else "test") for i in range(10_000)]
    assert len(set(keys)) == len(keys)
    for key in keys:
        assert len(key) == 58
        assert KEY_RE.match(key)
        assert credential_kind(key) == key[3:7]


def test_staff_tokens():
    tokens = {generate_staff_token() for _ in range(1000)}
    assert len(tokens) == 1000
    for token in tokens:
        assert len(token) == 59
        assert STAFF_RE.match(token)
        assert credential_kind(token) == "staff"


def test_generate_rejects_unknown_environment():
    with pytest.raises(ValueError):
        generate_api_key("staff")
    with pytest.raises(ValueError):
        generate_api_key("prod")


def _substitutions(text):
    for i, original in enumerate(text):
        for c in BODY_ALPHABET:
            if c != original:
                yield text[:i] + c + text[i + 1 :]


def _transpositions(text):
    for i in range(len(text) - 1):
        if text[i] != text[i + 1]:
            yield text[:i] + text[i + 1] + text[i] + text[i + 2 :]


@pytest.mark.parametrize(
    "make",
    [lambda: generate_api_key("live"), lambda: generate_api_key("test"), generate_staff_token],
)
def test_every_single_substitution_and_transposition_is_rejected(make):
    for _ in range(5):
        credential = make()
        assert credential_kind(credential) is not None
        changed = 0
        for variant in (*_substitutions(credential), *_transpositions(credential)):
            assert credential_kind(variant) is None, variant
            changed += 1
        assert changed > 3500


@settings(max_examples=500)
@given(data=st.data())
def test_random_multi_character_corruption_is_rejected(data):
    key = generate_api_key("live")
    positions = data.draw(st.sets(st.integers(8, 57), min_size=2, max_size=4))
    chars = list(key)
    for pos in positions:
        chars[pos] = data.draw(st.sampled_from(BODY_ALPHABET))
    corrupted = "".join(chars)
    # CRC32 cannot catch every multi-character change, but it misses one in 2**32.
    if corrupted != key:
        assert credential_kind(corrupted) is None


@pytest.mark.parametrize(
    "text",
    [
        None,
        12,
        b"gw_live_",
        "",
        "gw_live_",
        "gw_prod_" + "A" * 43 + "_000000",
        "GW_LIVE_" + "A" * 43 + "_000000",
        "sk-" + "a" * 48,
    ],
)
def test_credential_kind_rejects_junk(text):
    assert credential_kind(text) is None


def test_credential_kind_rejects_trailing_newline_and_wrong_prefix():
    key = generate_api_key("live")
    assert credential_kind(key + "\n") is None
    assert credential_kind(" " + key[1:]) is None
    # The checksum covers the environment, so flipping it must not yield a valid test key.
    assert credential_kind(key.replace("gw_live_", "gw_test_", 1)) is None
    staff = generate_staff_token()
    assert credential_kind("gw_live_" + staff[9:]) is None


def test_secret_hash_is_hmac_sha256_hex():
    key = generate_api_key("live")
    expected = hmac.new(b"pepper", key.encode(), hashlib.sha256).hexdigest()
    assert secret_hash(b"pepper", key) == expected
    assert secret_hash(b"other", key) != expected
    assert re.fullmatch(r"[0-9a-f]{64}", expected)
    with pytest.raises(ValueError):
        secret_hash(b"", key)


def test_display_prefix_and_last4():
    key = "gw_live_abcdEFGH" + "x" * 35 + "_Zz0123"
    assert display_prefix(key) == "gw_live_abcd"
    assert last4(key) == "0123"
