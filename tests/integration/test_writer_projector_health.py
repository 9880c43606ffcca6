"""Billing never wedges silently (issue 5, findings 5 and 9): the group-commit writer survives a
waiter cancelling its future at the worst moment, one absurd event cannot stop projection for
everyone, and readiness says 503 when the writer or the projector is dead or stuck."""

from __future__ import annotations

import time
from concurrent.futures import Future

import pytest

import application.group_commit as group_commit
import projections.runner as runner
from domain.inference_request import InferenceRequest
from domain.wallet import Wallet
from integration.support import place_hold
from projections.verify import verify


class _CancelledBetweenCheckAndSet(Future):
    """The event loop cancels the waiter's future right after the writer saw it pending."""

    def done(self) -> bool:
        pending = super().done()
        self.cancel()
        return pending


def test_a_future_cancelled_while_its_batch_commits_does_not_kill_the_writer(gateway,
                                                                              monkeypatch):
    account_id = gateway.accounts.open_account("w@example.com", "dev", "staff:test")
    monkeypatch.setattr(group_commit, "Future", _CancelledBetweenCheckAndSet)
    doomed = Wallet(account_id=f"{account_id}-x")  # any aggregate: a fresh stream
    gateway.writer.submit(doomed)
    monkeypatch.undo()

    later = Wallet(account_id=f"{account_id}-y")
    assert gateway.writer.submit(later).result(timeout=5) > 0
    assert gateway.writer.health() is None
    assert gateway.check_ready()["writer"] is True


def test_readiness_reports_a_dead_writer(gateway):
    gateway.writer.close()  # the thread ends, as if it had died

    assert "not running" in gateway.writer.health()
    assert gateway.check_ready()["writer"] is False


def test_readiness_reports_a_projector_that_applies_nothing_while_events_wait(gateway,
                                                                              monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("database hangs")

    monkeypatch.setattr(runner, "STUCK_AFTER_S", 0.3)
    monkeypatch.setattr(gateway.projector, "_apply_batch", broken)
    gateway.stores.accounts.save(Wallet(account_id="acct_stuck"))  # an event waits

    deadline = time.monotonic() + 5
    while gateway.projector.health() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "applied nothing" in (gateway.projector.health() or "")
    assert gateway.check_ready()["projector"] is False


@pytest.mark.parametrize("absurd", [10**20, 2**63])
def test_one_absurd_event_is_recorded_and_skipped_and_billing_goes_on(gateway, absurd):
    """The event store may already hold an event no read model can store (an upstream once
    reported prompt_tokens 1e20): projection records it in projection_failures and moves
    on, every other account's balance keeps moving, and a replay agrees with the live
    read models."""
    poor = gateway.accounts.open_account("poor@example.com", "dev", "staff:test")
    gateway.accounts.grant_credits(poor, 1_000, "credit before the bad event", "usr_admin")
    bad = InferenceRequest(
        request_id="req_absurd", account_id=poor, key_id="key_x", endpoint="chat.completions",
        requested_model="m", candidate_models=["m"], price_snapshot={},
        estimated_input_tokens=1, output_limit=1, hold_micros=absurd,
        reserved_by_pool={"trial": 0, "allowance": 0, "purchased": absurd}, stream=False)
    gateway.stores.requests.save(bad)
    other = gateway.accounts.open_account("other@example.com", "dev", "staff:test")
    gateway.accounts.grant_credits(other, 5_000, "credit after the bad event", "usr_admin")
    good, _ = place_hold(gateway, other, 2_000)

    for context, position in gateway.stores.max_positions().items():
        assert gateway.projector.wait_for(context, position, timeout=10)

    view = gateway.balances.balance(other, int(time.time()))
    assert (view["balance_micros"], view["available_micros"]) == (5_000, 3_000)
    with gateway.db.transaction() as cur:
        cur.execute("SELECT context, projection, event_type FROM projection_failures")
        failures = cur.fetchall()
    assert failures and all(row[0] == "requests" for row in failures)
    assert any("HoldPlaced" in row[2] for row in failures)
    assert gateway.projector.health() is None
    assert all(report.match for report in verify(gateway.config, gateway.stores, gateway.db))
