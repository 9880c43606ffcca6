"""Provider registration over HTTP: base-URL rules at save time (spec 5.1)."""

from __future__ import annotations

import pytest

from tests.e2e.support import assert_error, positions


@pytest.mark.parametrize("url", [
    "http://127.0.0.1", "https://169.254.169.254", "https://[::1]", "https://2130706433",
    "https://10.1.2.3", "file://localhost/x", "https://localhost/v1",
])
def test_a_provider_with_a_private_or_non_https_base_url_is_refused_and_records_nothing(
        served, url):
    before = positions(served)
    response = served.admin("POST", "/admin/providers",
                            json={"slug": "bad-one", "base_url": url, "credential": "sk-1"})
    assert_error(response, 400, "invalid_base_url")
    assert positions(served) == before


def test_a_loopback_provider_is_accepted_only_when_explicitly_allowed(served, fake_openai):
    refused = served.admin("POST", "/admin/providers",
                           json={"slug": "local", "base_url": fake_openai.base_url})
    assert_error(refused, 400, "invalid_base_url")
    accepted = served.admin("POST", "/admin/providers",
                            json={"slug": "local", "base_url": fake_openai.base_url,
                                  "allow_private": True, "credential": "sk-abcd1234"})
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["credential_last4"] == "1234"
    assert "sk-abcd1234" not in accepted.text
