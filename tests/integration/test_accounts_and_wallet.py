"""Accounts and wallet commands over every event-store backend (6.1, 6.3, 6.8, 6.13)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from adapters.clock import FrozenClock
from domain.errors import DomainError
from domain.wallet import Wallet
from integration.support import STAFF, fold_pools, stream_events
from projections.ledger_queries import LedgerQueries, PageRequest

DOLLAR = 1_000_000


def balance(gateway, account_id: str) -> dict:
    view = gateway.balances.balance(account_id, int(time.time()))
    assert view is not None
    return view


def pool(gateway, account_id: str, name: str) -> int:
    return balance(gateway, account_id)["pools"][name]["balance_micros"]


def wallet_event_types(gateway, account_id: str) -> list[str]:
    return [e.type for e in stream_events(gateway.stores.accounts, Wallet.create_id(account_id))]


def test_a_dev_account_opens_with_an_empty_balance(gateway):
    account_id = gateway.accounts.open_account("dev@example.com", "dev", "staff:test")

    view = balance(gateway, account_id)

    assert account_id.startswith("acct_")
    assert view["balance_micros"] == 0
    assert view["available_micros"] == 0
    assert view["trial_ends_at"] is None
    assert wallet_event_types(gateway, account_id) == ["Wallet.Opened"]


def test_a_trial_account_gets_five_dollars_of_trial_credit_for_fourteen_days(gateway):
    opened_at = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
    gateway.accounts.clock = FrozenClock(opened_at)

    account_id = gateway.accounts.open_account("trial@example.com", "trial", "staff:test")

    view = gateway.balances.balance(account_id, int(opened_at.timestamp()))
    assert view["pools"]["trial"]["balance_micros"] == 5_000_000
    assert view["pools"]["trial"]["usable"] is True
    assert view["available_micros"] == 5_000_000
    assert datetime.fromisoformat(view["trial_ends_at"]) == opened_at + timedelta(days=14)
    assert wallet_event_types(gateway, account_id) == ["Wallet.Opened",
                                                      "Wallet.TrialCreditGranted"]


def test_an_unknown_plan_or_a_bad_email_is_refused_without_an_event(gateway):
    before = gateway.stores.max_positions()

    with pytest.raises(DomainError) as plan:
        gateway.accounts.open_account("x@example.com", "platinum", "staff:test")
    with pytest.raises(DomainError) as email:
        gateway.accounts.open_account("not-an-email", "dev", "staff:test")

    assert plan.value.code == email.value.code == "invalid_request"
    assert gateway.stores.max_positions() == before


def test_an_admin_grant_is_credited_to_the_purchased_pool(gateway):
    account_id = gateway.accounts.open_account("grant@example.com", "trial", "staff:test")

    gateway.accounts.grant_credits(account_id, 250 * DOLLAR, "goodwill for an outage", STAFF)

    assert pool(gateway, account_id, "purchased") == 250 * DOLLAR
    assert pool(gateway, account_id, "trial") == 5_000_000
    assert balance(gateway, account_id)["balance_micros"] == 255 * DOLLAR
    assert fold_pools(gateway, account_id)["purchased"] == 250 * DOLLAR
    granted = stream_events(gateway.stores.accounts, Wallet.create_id(account_id))[-1]
    assert granted.type == "Wallet.AdminCreditGranted"
    assert granted.data["actor"] == f"staff:{STAFF}"
    assert granted.data["reason"] == "goodwill for an outage"


def test_a_grant_reason_shorter_than_ten_characters_is_an_invalid_request(gateway):
    account_id = gateway.accounts.open_account("short@example.com", "dev", "staff:test")
    before = gateway.stores.max_positions()

    with pytest.raises(DomainError) as refused:
        gateway.accounts.grant_credits(account_id, DOLLAR, "123456789", STAFF)

    assert refused.value.code == "invalid_request"
    assert refused.value.param == "reason"
    assert gateway.stores.max_positions() == before
    gateway.accounts.grant_credits(account_id, DOLLAR, "1234567890", STAFF)
    assert pool(gateway, account_id, "purchased") == DOLLAR


def test_a_grant_above_one_thousand_dollars_exceeds_the_grant_limit(gateway):
    account_id = gateway.accounts.open_account("big@example.com", "dev", "staff:test")
    before = gateway.stores.max_positions()

    with pytest.raises(DomainError) as refused:
        gateway.accounts.grant_credits(account_id, 1_000 * DOLLAR + 10_000,
                                       "a very large goodwill grant", STAFF)

    assert refused.value.code == "grant_limit_exceeded"
    assert gateway.stores.max_positions() == before
    gateway.accounts.grant_credits(account_id, 1_000 * DOLLAR, "exactly the maximum grant",
                                   STAFF)
    assert pool(gateway, account_id, "purchased") == 1_000 * DOLLAR


def test_ten_parallel_600_dollar_grants_by_one_admin_let_exactly_eight_through(gateway):
    account_id = gateway.accounts.open_account("parallel@example.com", "dev", "staff:test")
    barrier = threading.Barrier(10)
    outcomes: list[str] = []
    lock = threading.Lock()

    def grant() -> None:
        barrier.wait()
        try:
            gateway.accounts.grant_credits(account_id, 600 * DOLLAR,
                                           "parallel grant under test", STAFF)
            result = "ok"
        except DomainError as error:
            result = error.code
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=grant) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == ["grant_limit_exceeded"] * 2 + ["ok"] * 8
    assert pool(gateway, account_id, "purchased") == 4_800 * DOLLAR
    assert wallet_event_types(gateway, account_id).count("Wallet.AdminCreditGranted") == 8


def test_the_daily_grant_cap_rolls_over_after_twenty_four_hours(gateway):
    account_id = gateway.accounts.open_account("rolling@example.com", "dev", "staff:test")
    clock = FrozenClock(datetime(2030, 1, 1, tzinfo=UTC))
    gateway.accounts.clock = clock
    for _ in range(5):
        gateway.accounts.grant_credits(account_id, 1_000 * DOLLAR, "fill the daily cap", STAFF)

    clock.advance(24 * 3600 - 1)
    with pytest.raises(DomainError) as refused:
        gateway.accounts.grant_credits(account_id, DOLLAR, "one more within the day", STAFF)
    assert refused.value.code == "grant_limit_exceeded"
    # Another admin has a cap of their own.
    gateway.accounts.grant_credits(account_id, DOLLAR, "from a different admin", "usr_other")

    clock.advance(2)
    gateway.accounts.grant_credits(account_id, 1_000 * DOLLAR, "the next day's grant", STAFF)
    assert pool(gateway, account_id, "purchased") == 6_001 * DOLLAR


def test_an_allowance_reset_applies_once_per_invoice_without_rollover(gateway):
    account_id = gateway.accounts.open_account("plan@example.com", "team", "staff:test")

    assert gateway.accounts.reset_allowance(account_id, "team", "in_1", 20 * DOLLAR, 0) is True
    assert gateway.accounts.reset_allowance(account_id, "team", "in_1", 20 * DOLLAR, 0) is False
    assert pool(gateway, account_id, "allowance") == 20 * DOLLAR
    assert balance(gateway, account_id)["pools"]["allowance"]["usable"] is True

    assert gateway.accounts.reset_allowance(account_id, "team", "in_2", 15 * DOLLAR,
                                            20 * DOLLAR) is True
    assert gateway.accounts.reset_allowance(account_id, "team", "in_1", 99 * DOLLAR, 0) is False

    assert pool(gateway, account_id, "allowance") == 15 * DOLLAR
    assert wallet_event_types(gateway, account_id).count("Wallet.AllowanceReset") == 2
    lines = LedgerQueries(gateway.db).page(account_id, PageRequest(order="asc"))["data"]
    assert sum(line["amount_micros"] for line in lines) == 15 * DOLLAR
    assert lines[-1]["balance_micros"] == 15 * DOLLAR


def test_a_purchase_is_credited_once_per_payment_id_at_ten_thousand_micros_a_cent(gateway):
    account_id = gateway.accounts.open_account("buyer@example.com", "dev", "staff:test")

    first = gateway.accounts.credit_purchase(account_id, "pi_001", 1_234, "custom", "stripe")
    again = gateway.accounts.credit_purchase(account_id, "pi_001", 1_234, "custom", "stripe")
    other = gateway.accounts.credit_purchase(account_id, "pi_002", 1, "custom", "stripe")

    assert (first, again, other) == (True, False, True)
    assert pool(gateway, account_id, "purchased") == 12_340_000 + 10_000
    assert fold_pools(gateway, account_id)["purchased"] == 12_350_000
    credited = [e.data for e in stream_events(gateway.stores.accounts,
                                              Wallet.create_id(account_id))
                if e.type == "Wallet.PurchaseCredited"]
    assert [(c["payment_id"], c["amount_paid_cents"], c["amount"]) for c in credited] == \
        [("pi_001", 1_234, 12_340_000), ("pi_002", 1, 10_000)]


def test_money_commands_on_an_unknown_account_are_not_found(gateway):
    with pytest.raises(DomainError) as grant:
        gateway.accounts.grant_credits("acct_01J00000000000000000000000", DOLLAR,
                                       "credit for nobody at all", STAFF)
    with pytest.raises(DomainError) as purchase:
        gateway.accounts.credit_purchase("acct_01J00000000000000000000000", "pi_x", 100,
                                         "custom", "stripe")

    assert grant.value.code == purchase.value.code == "not_found"


def test_a_grant_repeated_under_one_grant_id_is_applied_once_even_without_its_record(gateway):
    """Issue 5, finding 10: the command id derived from an Idempotency-Key reaches the event
    store, so a repeat collides there even when the idempotency record is gone."""
    account_id = gateway.accounts.open_account("once@example.com", "dev", "staff:test")

    first = gateway.accounts.grant_credits(account_id, 5_000, "grant made exactly once",
                                           "usr_admin", grant_id="cmd_1")
    again = gateway.accounts.grant_credits(account_id, 5_000, "grant made exactly once",
                                           "usr_admin", grant_id="cmd_1")
    other = gateway.accounts.grant_credits(account_id, 5_000, "another grant, other id",
                                           "usr_admin", grant_id="cmd_2")

    assert first > 0 and again == 0 and other > first
    view = gateway.balances.balance(account_id, int(time.time()))
    assert view["balance_micros"] == 10_000
