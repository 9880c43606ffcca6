"""Idempotency-Key on admin commands (spec 11.2): a grant is applied once even when it failed
after its commit, a refusal releases its key, and an issued or rotated key's secret is shown
once and never stored with the idempotency record."""

from __future__ import annotations

import uuid

import pytest

from domain.errors import DomainError
from e2e.support import (
    assert_error,
    balance,
    customer,
    idempotency_row,
)


def _grant(served, account_id: str, key: str, amount: int = 250_000):
    return served.admin("POST", "/admin/credits/grants", headers={"Idempotency-Key": key},
                        json={"account_id": account_id, "amount_micros": amount,
                              "reason": "credit for an idempotency test"})


def test_a_grant_that_failed_after_its_commit_is_never_applied_twice(served, monkeypatch):
    who = customer(served, credit_micros=0)
    key = uuid.uuid4().hex
    commit = served.gateway.accounts.grant_credits

    def commits_then_fails(*args, **kwargs):
        commit(*args, **kwargs)
        raise RuntimeError("connection lost after the commit")

    monkeypatch.setattr(served.gateway.accounts, "grant_credits", commits_then_fails)
    failed = _grant(served, who.account_id, key)
    monkeypatch.undo()
    retried = _grant(served, who.account_id, key)

    assert_error(failed, 500, "internal_error")
    error = assert_error(retried, 409, "conflict")
    assert error["details"] == {"idempotency_state": "unknown"}
    assert balance(served, who.key)["balance_micros"] == 250_000


def test_a_grant_refused_by_the_use_case_releases_its_key(served, monkeypatch):
    who = customer(served, credit_micros=0)
    key = uuid.uuid4().hex
    commit = served.gateway.accounts.grant_credits
    calls = []

    def refuses_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise DomainError("conflict", "too many concurrent changes; retry")
        return commit(*args, **kwargs)

    monkeypatch.setattr(served.gateway.accounts, "grant_credits", refuses_once)
    refused = _grant(served, who.account_id, key)
    retried = _grant(served, who.account_id, key)
    replayed = _grant(served, who.account_id, key)

    assert_error(refused, 409, "conflict")
    assert retried.status_code == 201 and "idempotent-replayed" not in retried.headers
    assert replayed.headers["idempotent-replayed"] == "true"
    assert len(calls) == 2
    assert balance(served, who.key)["balance_micros"] == 250_000


@pytest.mark.parametrize("route", ["issue", "rotate"])
def test_a_key_is_shown_once_and_never_stored_with_its_idempotency_record(served, route):
    who = customer(served, credit_micros=0)
    key = uuid.uuid4().hex
    if route == "issue":
        path, body = f"/admin/accounts/{who.account_id}/keys", {"name": "idem-key"}
    else:
        path, body = f"/admin/keys/{who.key_id}/rotate", {"grace_seconds": 60}

    first = served.admin("POST", path, headers={"Idempotency-Key": key}, json=body)
    replay = served.admin("POST", path, headers={"Idempotency-Key": key}, json=body)

    assert first.status_code == replay.status_code == (201 if route == "issue" else 200)
    secret = first.json()["key"]
    assert secret.startswith("gw_") and "key_redacted" not in first.json()
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == {**first.json(), "key": None, "key_redacted": True}
    stored = idempotency_row(served, key)
    assert stored[0] == "done" and secret not in stored[3] and secret[-12:] not in stored[3]
    assert balance(served, secret)["balance_micros"] == 0  # the key shown once works
