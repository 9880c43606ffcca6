"""GET /finance/trial-balance and /finance/liabilities (11.5, 11.10) through the served app:
live and as of a point, the same answer later, and only for staff holding finance:read."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from e2e.support import assert_error, chat_body, customer, positions, post_chat
from e2e.test_security_events_http import staff
from projections import as_of
from projections.base import stamp

CREDIT = 5_000_000


@pytest.fixture(autouse=True)
def short_settling(monkeypatch):
    """Everything is committed before each query: an instant needs only a token wait."""
    monkeypatch.setattr(as_of, "SETTLE_S", 0.2)


def projected(served) -> None:
    for context, position in positions(served).items():
        assert served.gateway.projector.wait_for(context, position, timeout=30)


def report(served, name: str, token: str | None = None, **params):
    return served.http.get(f"/finance/{name}", params=params,
                           headers={"Authorization": f"Bearer {token or served.owner_token}"})


def ledger(body: dict) -> dict[str, int]:
    return {a["ledger_account"]: a["balance_micros"] for a in body["accounts"]}


def test_reports_balance_live_and_as_of_a_point_and_never_change(priced):
    served = priced
    buyer = customer(served, credit_micros=CREDIT)
    projected(served)
    time.sleep(0.01)  # an instant strictly after the grant's event and before the request's
    between = stamp(datetime.now(UTC))
    answer = post_chat(served, buyer.key, chat_body("count the journal lines"))
    assert answer.status_code == 200, answer.text
    served.open_account()  # later activity in the accounts context
    projected(served)
    balance = served.gateway.balances.balance(buyer.account_id, int(time.time()))
    spent = CREDIT - balance["balance_micros"]
    assert spent > 0

    live = report(served, "trial-balance")
    assert live.status_code == 200, live.text
    body = live.json()
    assert body["object"] == "trial_balance" and body["balanced"] is True
    assert body["total_micros"] == 0 and "as_of" not in body
    assert body["total_debit_micros"] == body["total_credit_micros"] > 0
    assert ledger(body)["revenue"] == -spent and ledger(body)["promotions"] == CREDIT
    owed = report(served, "liabilities").json()
    assert owed["object"] == "liabilities" and owed["total_micros"] == CREDIT - spent
    assert owed["by_pool"] == {"trial": 0, "allowance": 0, "purchased": CREDIT - spent}
    assert owed["by_source"]["admin_grant"] == CREDIT - spent

    then = report(served, "trial-balance", as_of=between)
    assert then.status_code == 200, then.text
    assert then.json()["as_of"] == between and set(then.json()["as_of_position"]) == \
        {"accounts", "requests"}
    assert ledger(then.json())["revenue"] == 0 and then.json()["total_micros"] == 0
    owed_then = report(served, "liabilities", as_of=between).json()
    assert owed_then["total_micros"] == CREDIT
    point = ",".join(f"{c}:{p}" for c, p in owed_then["as_of_position"].items())

    served.grant(buyer.account_id, 1_000_000)  # more activity changes neither answer
    assert post_chat(served, buyer.key, chat_body("once more")).status_code == 200
    projected(served)
    assert report(served, "trial-balance", as_of=between).json() == then.json()
    assert report(served, "liabilities", as_of=between).json() == owed_then
    by_position = report(served, "liabilities", as_of_position=point)
    assert by_position.status_code == 200, by_position.text
    assert by_position.json()["as_of_position"] == owed_then["as_of_position"]
    assert by_position.json()["by_pool"] == owed_then["by_pool"]


def test_only_staff_with_finance_read_may_read_them_and_bad_points_are_refused(served):
    buyer = customer(served, credit_micros=CREDIT)
    _, admin_token = staff(served, "admin")
    _, finance_token = staff(served, "admin", ("finance:read",))
    future = stamp(datetime.now(UTC) + timedelta(hours=1))
    for name in ("trial-balance", "liabilities"):
        assert_error(report(served, name, admin_token), 403, "forbidden")
        assert_error(report(served, name, buyer.key), 403, "wrong_credential_type")
        assert served.http.get(f"/finance/{name}").status_code == 401
        assert report(served, name, finance_token).status_code == 200
        assert_error(report(served, name, as_of=future), 400, "invalid_request", "as_of")
        assert_error(report(served, name, as_of_position="accounts:1"), 400,
                     "invalid_request", "as_of_position")
        assert_error(report(served, name, as_of_position="accounts:1,requests:999999"), 400,
                     "invalid_request", "as_of_position")
        assert_error(report(served, name, as_of=stamp(datetime.now(UTC)),
                            as_of_position="accounts:1,requests:0"), 400, "invalid_request",
                     "as_of_position")
