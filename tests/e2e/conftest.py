"""End-to-end fixtures: the shared served gateways, made ready for the owner's staff token.

ServedGateway bootstraps the owner without waiting for the access projection, so the very
first admin call can race it and get 401 (reported; see test_keys_http.py). These overrides
wait until the owner token is accepted, so that race cannot make unrelated tests flaky.
"""

from __future__ import annotations

import time

import pytest


def _owner_token_accepted(served, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status = served.admin("GET", "/admin/requests/req_probe").status_code
        if status != 401:
            assert status == 404, status
            return
        if time.monotonic() > deadline:
            raise AssertionError("the owner's staff token was never accepted")
        time.sleep(0.02)


@pytest.fixture
def served(served):
    _owner_token_accepted(served)
    return served


@pytest.fixture
def served_cluster(served_cluster):
    _owner_token_accepted(served_cluster)
    return served_cluster
