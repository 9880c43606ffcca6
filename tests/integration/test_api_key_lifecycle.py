"""API keys over every event-store backend: issue, authenticate, rotate, revoke (1.1-1.3)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.clock import FrozenClock
from application.access import AuthError
from domain.api_key import ApiKey
from domain.errors import DomainError
from domain.key_format import generate_api_key
from integration.support import stream_events


@pytest.fixture
def account_id(gateway) -> str:
    return gateway.accounts.open_account("keys@example.com", "dev", "staff:test")


def issue(gateway, account_id: str, name: str = "ci key", environment: str = "live"):
    return gateway.access.issue_key(account_id, name, environment, None, None, "staff:test")


def refused(gateway, secret: str) -> str:
    with pytest.raises(AuthError) as error:
        gateway.access.authenticate_key(secret)
    return error.value.code


def test_an_issued_key_authenticates_as_its_account(gateway, account_id):
    issued = issue(gateway, account_id, environment="test")

    principal = gateway.access.authenticate_key(issued.secret)

    assert principal.account_id == account_id
    assert principal.key.key_id == issued.key_id
    assert principal.key.environment == "test"
    assert principal.key.status == "active"
    assert issued.secret.endswith(issued.last4)
    events = stream_events(gateway.stores.access, ApiKey.create_id(issued.key_id))
    assert [e.type for e in events] == ["ApiKey.Issued"]
    assert issued.secret not in events[0].raw.decode()


def test_a_key_name_that_differs_only_in_case_is_taken(gateway, account_id):
    issue(gateway, account_id, name="Production")
    before = gateway.stores.max_positions()

    with pytest.raises(DomainError) as error:
        issue(gateway, account_id, name="  pRODUCTION ")

    assert error.value.code == "key_name_taken"
    assert gateway.stores.max_positions() == before
    other = gateway.accounts.open_account("other@example.com", "dev", "staff:test")
    issue(gateway, other, name="production")  # names are unique per account only


def test_rotating_with_no_grace_refuses_the_old_secret_at_once(gateway, account_id):
    issued = issue(gateway, account_id)

    rotated = gateway.access.rotate_key(issued.key_id, 0, "staff:test")

    assert rotated.key_id == issued.key_id
    assert rotated.secret != issued.secret
    assert refused(gateway, issued.secret) == "api_key_revoked"
    assert gateway.access.authenticate_key(rotated.secret).key.key_id == issued.key_id


def test_the_old_secret_works_until_the_grace_period_ends_and_not_a_second_longer(
        gateway, account_id):
    issued = issue(gateway, account_id)
    clock = FrozenClock(datetime.now(UTC))
    gateway.access.clock = clock

    rotated = gateway.access.rotate_key(issued.key_id, 3600, "staff:test")

    assert gateway.access.authenticate_key(rotated.secret).key.key_id == issued.key_id
    clock.advance(3599)
    assert gateway.access.authenticate_key(issued.secret).key.key_id == issued.key_id
    clock.advance(2)
    assert refused(gateway, issued.secret) == "api_key_revoked"
    assert gateway.access.authenticate_key(rotated.secret).key.key_id == issued.key_id


def test_a_second_rotation_ends_the_first_secret_at_once(gateway, account_id):
    issued = issue(gateway, account_id)
    clock = FrozenClock(datetime.now(UTC))
    gateway.access.clock = clock
    first = gateway.access.rotate_key(issued.key_id, 3600, "staff:test")
    clock.advance(10)

    second = gateway.access.rotate_key(issued.key_id, 3600, "staff:test")

    # The spec (1.3) names no code for this case; either refusal keeps two secrets at most.
    assert refused(gateway, issued.secret) in ("api_key_revoked", "invalid_api_key")
    assert gateway.access.authenticate_key(first.secret).key.key_id == issued.key_id
    assert gateway.access.authenticate_key(second.secret).key.key_id == issued.key_id
    clock.advance(3601)
    assert refused(gateway, first.secret) == "api_key_revoked"


def test_a_grace_period_beyond_seven_days_is_refused_without_an_event(gateway, account_id):
    issued = issue(gateway, account_id)
    before = gateway.stores.max_positions()

    with pytest.raises(DomainError) as error:
        gateway.access.rotate_key(issued.key_id, 604_801, "staff:test")

    assert error.value.code == "invalid_request"
    assert gateway.stores.max_positions() == before
    assert gateway.access.authenticate_key(issued.secret).key.key_id == issued.key_id


def test_a_revoked_key_is_refused_and_cannot_be_rotated(gateway, account_id):
    issued = issue(gateway, account_id)
    gateway.access.authenticate_key(issued.secret)  # warm the per-worker cache

    gateway.access.revoke_key(issued.key_id, "leaked in a public repository", "staff:test")

    assert refused(gateway, issued.secret) == "api_key_revoked"
    with pytest.raises(DomainError) as error:
        gateway.access.rotate_key(issued.key_id, 0, "staff:test")
    assert error.value.code == "api_key_revoked"
    gateway.access.revoke_key(issued.key_id, "a second revoke changes nothing", "staff:test")
    events = stream_events(gateway.stores.access, ApiKey.create_id(issued.key_id))
    assert [e.type for e in events] == ["ApiKey.Issued", "ApiKey.Revoked"]


def test_a_revoked_key_frees_its_name(gateway, account_id):
    issued = issue(gateway, account_id, name="rotating")
    gateway.access.revoke_key(issued.key_id, "replaced by a new key", "staff:test")

    again = issue(gateway, account_id, name="Rotating")

    assert gateway.access.authenticate_key(again.secret).key.key_id == again.key_id


def _bad_checksum() -> str:
    key = generate_api_key("live")
    return key[:-1] + ("A" if key[-1] != "A" else "B")


@pytest.mark.parametrize("credential", [
    "", "sk-not-ours", "gw_live_", "gw_live_" + "!" * 50, "x" * 300, _bad_checksum(),
], ids=["empty", "other-vendor", "prefix-only", "bad-characters", "too-long", "bad-checksum"])
def test_a_malformed_key_is_refused_without_a_lookup(gateway, credential):
    lookups = gateway.access.lookups

    assert refused(gateway, credential) == "invalid_api_key"

    assert gateway.access.lookups == lookups


def test_a_well_formed_unknown_key_is_refused_with_the_same_code_after_one_lookup(gateway):
    lookups = gateway.access.lookups

    assert refused(gateway, generate_api_key("live")) == "invalid_api_key"

    assert gateway.access.lookups == lookups + 1


def test_a_staff_token_is_the_wrong_credential_for_a_key_route(gateway):
    _, token = gateway.access.bootstrap_owner("owner@example.com")

    assert refused(gateway, token) == "wrong_credential_type"
