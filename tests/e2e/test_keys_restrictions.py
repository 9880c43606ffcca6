"""A key's restrictions over real HTTP (spec 1.2, 1.6, 1.7): IP and referrer allowlists,
the order of the credential checks, the lifetime request quota and the model allowlist."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from adapters.clock import FrozenClock
from e2e.support import (
    assert_error,
    chat_body,
    customer,
    positions,
    post_chat,
    request_events,
    request_record,
)

SPEC_LIST = ["192.168.1.1", "10.0.0.0/24", "2001:db8::/32"]


def _balance(served, key: str, **headers: str) -> httpx.Response:
    return served.http.get("/v1/account/balance",
                           headers={"Authorization": f"Bearer {key}", **headers})


@pytest.fixture
def trusted_loopback(monkeypatch):
    """GATEWAYZ_TRUSTED_PROXIES is read when the app is created: set before `served`."""
    monkeypatch.setenv("GATEWAYZ_TRUSTED_PROXIES", "127.0.0.1/32")


def test_a_key_is_refused_from_an_address_outside_its_allowlist(served):
    elsewhere = customer(served, ip_allowlist=["10.0.0.0/24"])
    here = customer(served, ip_allowlist=["127.0.0.1"])

    assert_error(_balance(served, elsewhere.key), 403, "ip_not_allowed")
    assert _balance(served, here.key).status_code == 200


@pytest.mark.parametrize("forwarded, status", [
    ("10.0.0.7", 200), ("2001:db8::1", 200), ("192.168.1.1", 200),
    ("203.0.113.9, 10.0.0.7", 200), ("10.0.0.7, 10.0.1.7", 403), ("10.0.1.7", 403),
    ("192.168.1.2", 403), ("not-an-address", 403)])
def test_behind_a_trusted_proxy_the_forwarded_address_is_judged(
        trusted_loopback, served, forwarded, status):
    who = customer(served, ip_allowlist=SPEC_LIST)

    answer = _balance(served, who.key, **{"X-Forwarded-For": forwarded})

    if status == 200:
        assert answer.status_code == 200, answer.text
    else:
        assert_error(answer, 403, "ip_not_allowed")


def test_a_mapped_ipv6_forwarded_address_is_matched_as_ipv4(
        trusted_loopback, served):
    who = customer(served, ip_allowlist=["10.0.0.0/24"])

    answer = _balance(served, who.key, **{"X-Forwarded-For": "::ffff:10.0.0.5"})

    assert answer.status_code == 200, answer.text


def test_an_untrusted_peer_is_judged_by_its_own_address(served):
    outside = customer(served, ip_allowlist=["10.0.0.0/24"])
    loopback = customer(served, ip_allowlist=["127.0.0.1"])

    forged = {"X-Forwarded-For": "10.0.0.7"}
    assert_error(_balance(served, outside.key, **forged), 403, "ip_not_allowed")
    assert _balance(served, loopback.key, **forged).status_code == 200


@pytest.mark.parametrize("headers, status", [
    ({"Origin": "https://api.example.com"}, 200),
    ({"Origin": "https://a.b.EXAMPLE.com"}, 200),
    ({"Referer": "https://api.example.com/x"}, 200),
    ({"Origin": "https://example.com"}, 403),
    ({"Origin": "https://evilexample.com"}, 403),
    ({"Origin": "https://api.example.com.evil.net"}, 403),
    ({}, 403)])
def test_a_wildcard_referrer_entry_admits_subdomains_only(served, headers, status):
    who = customer(served, referrer_allowlist=["*.example.com"])

    answer = _balance(served, who.key, **headers)

    if status == 200:
        assert answer.status_code == 200, answer.text
    else:
        assert_error(answer, 403, "referrer_not_allowed")


def test_an_exact_referrer_entry_refuses_a_call_without_origin_or_referer(served):
    exact = customer(served, referrer_allowlist=["example.com"])
    open_key = customer(served, referrer_allowlist=[])

    assert_error(_balance(served, exact.key), 403, "referrer_not_allowed")
    assert _balance(served, exact.key, Origin="https://example.com").status_code == 200
    assert _balance(served, open_key.key).status_code == 200


def test_an_expired_key_from_a_disallowed_address_is_refused_as_expired(served):
    who = customer(served, expires_in_days=1, ip_allowlist=["10.0.0.0/24"])
    assert_error(_balance(served, who.key), 403, "ip_not_allowed")  # not expired yet

    served.gateway.access.clock = FrozenClock(datetime.now(UTC) + timedelta(days=2))

    assert_error(_balance(served, who.key), 401, "api_key_expired")


def test_a_key_at_its_request_quota_is_refused_without_a_hold(priced, fake_openai):
    who = customer(priced, max_requests=2)
    for _ in range(2):
        answer = post_chat(priced, who.key, chat_body())
        assert answer.status_code == 200, answer.text
        request_record(priced, answer.headers["x-request-id"])  # counted once recorded
    holds = request_events(priced).count("HoldPlaced")
    upstream = len(fake_openai.chat_requests())

    third = post_chat(priced, who.key, chat_body())

    assert_error(third, 429, "key_request_quota_exhausted")
    assert request_events(priced).count("HoldPlaced") == holds == 2
    assert len(fake_openai.chat_requests()) == upstream


def test_a_model_outside_the_keys_allowlist_is_refused_without_a_hold(priced, fake_openai):
    who = customer(priced, allowed_models=["openai/*"])
    before = positions(priced)

    answer = post_chat(priced, who.key, chat_body())

    assert_error(answer, 403, "model_not_allowed", param="model")
    assert positions(priced)["requests"] == before["requests"]
    assert fake_openai.chat_requests() == []
