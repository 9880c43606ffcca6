"""As-of queries (11.10) over HTTP on every backend: the answer for an instant never changes.

Each test opens its own accounts on a served gateway per backend (its projector running).
Charges are recorded as the inference path does (hold placed, then settled) with the
helpers of integration/support.py. "Later activity" includes an event of the accounts
context created after the instant, so that every context read has moved past it and no
test waits for an instant to settle, except the one that is about that wait.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from conftest import BACKENDS, ServedGateway, close_gateway, open_gateway
from e2e.support import assert_error

from adapters.persistence.database import open_database
from adapters.persistence.migrate import migrate
from adapters.persistence.store_config import StoreConfig
from domain.errors import DomainError
from domain.wallet import Wallet
from integration.support import place_hold, quiet_gateway, settle
from projections import as_of
from projections.as_of import AsOfResolver
from projections.base import stamp
from projections.runner import Projector
from projections.verify import dump, verify

CREDIT = 5_000_000


@pytest.fixture(autouse=True)
def short_settling(monkeypatch):
    """These tests commit every event before they query, so nothing can commit late: an
    instant with no later event needs only a token wait (the last test is about the wait)."""
    monkeypatch.setattr(as_of, "SETTLE_S", 0.2)


@pytest.fixture(scope="module", params=BACKENDS)
def served(request, tmp_path_factory):
    gateway, schema = open_gateway(request.param, tmp_path_factory.mktemp(request.param))
    served = ServedGateway(gateway)
    yield served
    served.close()
    close_gateway(gateway, schema)


def now() -> str:
    return stamp(datetime.now(UTC))


def projected(gw) -> None:
    """Every committed event applied by the running projector (read-your-writes)."""
    for context, position in gw.stores.max_positions().items():
        assert gw.projector.wait_for(context, position, timeout=30)


def charge(gw, account_id: str, cost: int, hold: int = 2_000_000) -> int:
    aggregate, outcome = place_hold(gw, account_id, hold)
    assert aggregate is not None, outcome
    charged = settle(gw, aggregate, cost)
    projected(gw)
    return charged


def balance(served: ServedGateway, account_id: str, **params):
    return served.admin("GET", f"/finance/accounts/{account_id}/balance", params=params)


def statement(served: ServedGateway, account_id: str, **params):
    return served.admin("GET", f"/finance/accounts/{account_id}/statement", params=params)


def positions(body: dict) -> str:
    return ",".join(f"{c}:{p}" for c, p in body["as_of_position"].items())


def without_as_of(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "as_of"}


def test_a_balance_between_a_top_up_and_a_charge_shows_the_top_up_and_never_changes(served):
    gw = served.gateway
    account = served.open_account(credit_micros=CREDIT)
    between = now()
    charged = charge(gw, account, 1_234_567)
    served.open_account()  # later activity in the accounts context

    first = balance(served, account, as_of=between)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["balance_micros"] == body["pools"]["purchased"]["balance_micros"] == CREDIT
    assert body["open_holds"] == body["open_holds_micros"] == 0
    assert body["as_of"] == between
    assert set(body["as_of_position"]) == {"accounts", "requests"}
    assert balance(served, account).json()["balance_micros"] == CREDIT - charged

    served.grant(account, 1_000_000)
    charge(gw, account, 10_000)
    place_hold(gw, account, 50_000)  # a hold left open
    served.open_account()
    projected(gw)
    again = balance(served, account, as_of=between)
    assert again.status_code == 200 and again.json() == body

    by_position = balance(served, account, as_of_position=positions(body))
    assert by_position.status_code == 200, by_position.text
    assert without_as_of(by_position.json()) == without_as_of(body)
    assert by_position.json()["as_of"] <= between

    lines = statement(served, account, as_of=between)
    assert lines.status_code == 200, lines.text
    assert [(x["kind"], x["amount_micros"], x["balance_micros"]) for x in lines.json()["data"]] \
        == [("admin_grant", CREDIT, CREDIT)]
    assert lines.json()["as_of_position"] == body["as_of_position"]
    assert lines.json()["balance_micros"] == CREDIT
    everyone = served.admin("GET", "/finance/balances", params={"as_of": between, "limit": 1000})
    assert everyone.status_code == 200, everyone.text
    assert everyone.json()["as_of_position"] == body["as_of_position"]
    mine = [v for v in everyone.json()["data"] if v["account_id"] == account]
    assert mine == [{k: v for k, v in body.items() if k not in ("as_of", "as_of_position")}]


def test_a_hold_open_at_the_instant_is_reserved_and_its_charge_is_not_yet_taken(served):
    gw = served.gateway
    account = served.open_account(credit_micros=CREDIT)
    aggregate, _ = place_hold(gw, account, 2_000_000)
    projected(gw)
    during = now()
    settle(gw, aggregate, 700_000)
    served.open_account()
    projected(gw)

    body = balance(served, account, as_of=during).json()
    assert (body["balance_micros"], body["open_holds"], body["open_holds_micros"]) == \
        (CREDIT, 1, 2_000_000)
    assert body["pools"]["purchased"]["available_micros"] == CREDIT - 2_000_000
    live = balance(served, account).json()
    assert (live["balance_micros"], live["open_holds"]) == (CREDIT - 700_000, 0)


def test_an_event_created_before_the_instant_but_committed_after_a_later_one_stays_out(served):
    """The case a filter on event time gets wrong: the late event's time is before the
    instant, so such a filter would change its answer once the event commits."""
    gw = served.gateway
    account, other = served.open_account(credit_micros=CREDIT), served.open_account()
    app = gw.stores.accounts
    wallet = app.repository.get(Wallet.create_id(account))
    wallet.grant(700_000, "a grant that commits late", "staff:as-of-test", "")  # made now
    between = now()
    served.grant(other, 1_000)  # made after `between`, committed first
    first = balance(served, account, as_of=between)
    assert first.status_code == 200 and first.json()["balance_micros"] == CREDIT

    recordings = app.save(wallet)
    assert gw.projector.wait_for("accounts", recordings[-1].notification.id, timeout=30)
    late = [x for x in statement(served, account).json()["data"] if x["amount_micros"] == 700_000]
    assert len(late) == 1 and late[0]["at"] <= between
    assert balance(served, account).json()["balance_micros"] == CREDIT + 700_000
    assert balance(served, account, as_of=between).json() == first.json()
    lines = statement(served, account, as_of=between).json()["data"]
    assert [x["amount_micros"] for x in lines] == [CREDIT]


def test_refusals_future_malformed_and_before_the_account_existed(served):
    before = now()
    account = served.open_account(credit_micros=CREDIT)
    tops = served.gateway.stores.max_positions()
    future = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    for route in (balance, statement):
        error = assert_error(route(served, account, as_of=future), 400, "invalid_request")
        assert error["param"] == "as_of"
        assert_error(route(served, account, as_of=before), 404, "not_found")
        assert_error(route(served, account, as_of_position=f"accounts:0,requests:{tops['requests']}"),
                     404, "not_found")
    bad = ["accounts:1", "requests:1", "accounts:x,requests:1", "accounts:1,requests:1,catalog:1",
           "accounts:1,accounts:2", "accounts:-1,requests:0", "", "accounts:1;requests:1",
           f"accounts:{tops['accounts'] + 1000},requests:0",
           f"accounts:0,requests:{tops['requests'] + 1000}"]
    for text in bad:
        error = assert_error(balance(served, account, as_of_position=text), 400,
                             "invalid_request")
        assert error["param"] == "as_of_position", text
    both = balance(served, account, as_of=before, as_of_position="accounts:1,requests:0")
    assert assert_error(both, 400, "invalid_request")["param"] == "as_of_position"
    error = assert_error(served.admin("GET", "/finance/balances", params={"as_of": future}),
                         400, "invalid_request")
    assert error["param"] == "as_of"


def test_all_balances_come_a_page_at_a_time_live_or_as_of(served):
    before = now()
    accounts = sorted(served.open_account(credit_micros=CREDIT + i) for i in range(3))
    seen, cursor = [], None
    for _ in range(10_000):
        page = served.admin("GET", "/finance/balances",
                            params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["data"]) <= 2 and body["has_more"] is (body["next_cursor"] is not None)
        seen += body["data"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    ids = [v["account_id"] for v in seen]
    assert ids == sorted(set(ids)) and set(accounts) <= set(ids)
    for view in seen:
        if view["account_id"] in accounts:
            assert view == balance(served, view["account_id"]).json()
    then = served.admin("GET", "/finance/balances", params={"as_of": before, "limit": 1000})
    assert not set(accounts) & {v["account_id"] for v in then.json()["data"]}
    for params in ({"limit": "0"}, {"limit": "1001"}, {"cursor": "nope!"}):
        error = assert_error(served.admin("GET", "/finance/balances", params=params), 400,
                             "invalid_request")
        assert error["param"] in params
    key = served.issue_key(accounts[0])["key"]
    refused = served.http.get("/finance/balances", headers={"Authorization": f"Bearer {key}"})
    assert_error(refused, 403, "wrong_credential_type")


def test_an_instant_with_no_later_event_is_answered_once_it_has_settled(served, monkeypatch):
    monkeypatch.setattr(as_of, "SETTLE_S", 1.0)
    account = served.open_account(credit_micros=CREDIT)
    instant = now()  # nothing happens after it: both contexts are at their frontier
    started = time.monotonic()
    body = balance(served, account, as_of=instant).json()
    waited = time.monotonic() - started
    assert body["balance_micros"] == CREDIT
    assert body["as_of_position"] == {c: p for c, p in served.gateway.stores.max_positions()
                                      .items() if c in ("accounts", "requests")}
    assert 0.5 < waited < 8
    started = time.monotonic()
    assert balance(served, account, as_of=instant).json() == body
    assert time.monotonic() - started < 0.5  # settled now: no second wait


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_point_the_read_models_have_not_reached_is_a_503_not_a_guess(backend, tmp_path,
                                                                        monkeypatch):
    monkeypatch.setattr(as_of, "SETTLE_S", 0.0)
    monkeypatch.setattr(as_of, "WAIT_S", 0.3)
    with quiet_gateway(backend, tmp_path) as gw:  # projects only when asked
        account = gw.accounts.open_account("late@example.com", "dev", "staff:as-of-test")
        app = gw.stores.accounts
        wallet = app.repository.get(Wallet.create_id(account))
        wallet.grant(1_000, "not projected yet", "staff:as-of-test", "")
        top = app.save(wallet)[-1].notification.id
        resolver = AsOfResolver(gw.db, gw.stores.max_positions)
        for attempt in (lambda: resolver.at_positions(f"accounts:{top},requests:0"),
                        lambda: resolver.at_time(now())):
            with pytest.raises(DomainError) as refused:
                attempt()
            assert refused.value.code == "service_unavailable"
        gw.projector.run_until_idle()
        point = resolver.at_positions(f"accounts:{top},requests:0")
        assert gw.balances.balance(account, 0, point)["balance_micros"] == 1_000


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_as_of_rows_rebuild_to_the_same_rows_whatever_the_batches(backend, tmp_path):
    """Live, the projector applies a few events per batch; a rebuild, 500. The clock and the
    flag history depend on the events only (replay --verify compares 001's tables, the
    positions on ledger lines, holds and balances included; these two are checked here)."""
    with quiet_gateway(backend, tmp_path / "live") as gw:
        trial = gw.accounts.open_account("trial@example.com", "trial", "staff:as-of-test")
        team = gw.accounts.open_account("team@example.com", "team", "staff:as-of-test")
        gw.accounts.reset_allowance(team, "team", "in_1", 300_000, 0)
        gw.accounts.grant_credits(team, 900_000, "credit for a rebuild test", "usr_as_of")
        aggregate, _ = place_hold(gw, team, 100_000)
        settle(gw, aggregate, 40_000)
        place_hold(gw, trial, 70_000)
        gw.accounts.forfeit(team, "allowance", 10_000, "subscription cancelled")
        gw.projector.run_until_idle()
        assert [r.table for r in verify(gw.config, gw.stores, gw.db) if not r.match] == []
        scratch = open_database(StoreConfig.sqlite(str(tmp_path / "rebuild.sqlite")))
        try:
            migrate(scratch)
            Projector(gw.stores, scratch).run_until_idle()
            tables = ("as_of_clock", "balance_flags", "ledger_lines", "holds", "balances")
            with gw.db.transaction() as live, scratch.transaction() as rebuilt:
                for table in tables:
                    assert dump(live, table) == dump(rebuilt, table), table
                live.execute("SELECT COUNT(*) FROM balance_flags")
                assert live.fetchone()[0] == 3  # trial granted, allowance reset, forfeited
        finally:
            scratch.close()
