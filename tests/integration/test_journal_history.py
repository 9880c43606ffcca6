"""Property (11.5): under any random money history the journal's trial balance is 0 at every
sampled position, and its customer accounts equal the balances read model, live and as of.

A random history of new accounts, grants, purchases, allowance resets, forfeits and holds
(settled above or below their amount, voided, expired or left open) runs through the real
use cases; the projector runs only when asked. Positions are sampled after every step and at
random mixes of the two contexts, and resolved through ``as_of_position`` as the routes do.
One gateway per backend serves every example, so the journal grows across examples.
"""

from __future__ import annotations

import time
import uuid

import pytest
from conftest import BACKENDS
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from domain.pools import POOLS
from integration.support import place_hold, quiet_gateway, settle
from projections.as_of import AsOfResolver
from projections.journal_queries import JournalQueries

EXAMPLES = {"memory": 60, "sqlite": 40, "postgres": 20}
WHO = st.integers(0, 7)
CHARGE = st.tuples(st.just("charge"), WHO, st.integers(0, 300_000), st.integers(0, 400_000),
                   st.sampled_from(["settle", "settle", "void", "expire", "open"]))
ACTIONS = st.one_of(
    st.tuples(st.just("open"), st.sampled_from(["trial", "dev"])),
    st.tuples(st.just("grant"), WHO, st.integers(1, 1_000_000)),
    st.tuples(st.just("purchase"), WHO, st.integers(1, 500)),
    st.tuples(st.just("reset"), WHO, st.integers(0, 400_000)),
    st.tuples(st.just("forfeit"), WHO, st.sampled_from(["trial", "allowance"])),
    CHARGE, CHARGE, CHARGE,  # settlements are most of the journal in production
)


@pytest.fixture(scope="module", params=BACKENDS)
def gw(request, tmp_path_factory):
    with quiet_gateway(request.param, tmp_path_factory.mktemp(request.param)) as gateway:
        yield gateway


def unreserved(gw, account_id: str, pool: str) -> int:
    view = gw.balances.balance(account_id, int(time.time()), None)
    return view["pools"][pool]["balance_micros"] - view["pools"][pool]["reserved_micros"]


def step(gw, accounts: list[str], action: tuple) -> None:
    kind, rest = action[0], action[1:]
    if kind == "open":
        accounts.append(gw.accounts.open_account(f"{uuid.uuid4().hex[:10]}@example.com",
                                                 rest[0], "staff:test"))
        return
    account_id, tag = accounts[rest[0] % len(accounts)], uuid.uuid4().hex[:12]
    if kind == "grant":
        gw.accounts.grant_credits(account_id, rest[1], "journal property grant",
                                  f"usr_{tag}")
    elif kind == "purchase":
        gw.accounts.credit_purchase(account_id, f"pi_{tag}", rest[1], "starter", "stripe")
    elif kind == "reset":
        unused = max(unreserved(gw, account_id, "allowance"), 0)
        gw.accounts.reset_allowance(account_id, "team", f"in_{tag}", rest[1], unused)
    elif kind == "forfeit":
        gw.accounts.forfeit(account_id, rest[1], unreserved(gw, account_id, rest[1]), "ended")
    else:
        gw.projector.run_until_idle()  # holds are checked against the projected balance
        hold, cost, end = rest[1:]
        aggregate, _ = place_hold(gw, account_id, hold)
        if aggregate is None or end == "open":
            return  # refused (not enough credit), or left open
        if end == "settle":
            settle(gw, aggregate, cost)  # cost above the hold: the rest is uncollected
            return
        if end == "void":
            aggregate.void("timeout", [], "")
        else:
            aggregate.expire()
        gw.stores.requests.save(aggregate)


def check_point(gw, accounts: list[str], text: str) -> None:
    """At ``accounts:N,requests:M``: balanced, and journal pools = balances pools."""
    point = AsOfResolver(gw.db, gw.stores.max_positions, projection="journal").at_positions(text)
    queries = JournalQueries(gw.db)
    trial_balance = queries.trial_balance(point)
    assert trial_balance["balanced"] and trial_balance["total_micros"] == 0, text
    pools = queries.customer_pools(point)
    for account_id in accounts:
        view = gw.balances.balance(account_id, 0, point)
        if view is None:  # not opened yet at this point
            continue
        journal = {p: pools.get(account_id, {}).get(p, 0) for p in POOLS}
        assert journal == {p: view["pools"][p]["balance_micros"] for p in POOLS}, \
            (text, account_id)


def check_live(gw) -> None:
    queries = JournalQueries(gw.db)
    assert queries.trial_balance()["total_micros"] == 0
    with gw.db.transaction() as cur:
        cur.execute("SELECT account_id, trial, allowance, purchased FROM balances")
        balances = {r[0]: dict(zip(POOLS, map(int, r[1:]), strict=True))
                    for r in cur.fetchall()}
    liabilities = queries.liabilities()
    assert liabilities["by_pool"] == {p: sum(b[p] for b in balances.values()) for p in POOLS}
    assert sum(liabilities["by_source"].values()) == liabilities["total_micros"]
    pools = queries.customer_pools()
    for account_id, expected in balances.items():
        assert {p: pools.get(account_id, {}).get(p, 0) for p in POOLS} == expected, account_id


def test_the_journal_balances_at_every_sampled_position_and_matches_balances(gw):
    backend = gw.config.kind

    @settings(max_examples=EXAMPLES.get(backend, 10), deadline=None, database=None,
              phases=[p for p in Phase if p is not Phase.shrink],
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(first=st.sampled_from(["trial", "dev"]),
           actions=st.lists(ACTIONS, min_size=1, max_size=12), data=st.data())
    def history_balances(first, actions, data) -> None:
        accounts = [gw.accounts.open_account(f"{uuid.uuid4().hex[:10]}@example.com", first,
                                             "staff:test")]
        marks = []
        for action in actions:
            step(gw, accounts, action)
            marks.append(dict(gw.stores.max_positions()))
        gw.projector.run_until_idle()
        check_live(gw)
        tops = gw.stores.max_positions()
        # Fractions of the current tops: the tops grow across examples, and a strategy's
        # bounds must not depend on state outside the example.
        mixed = [{c: tops[c] * data.draw(st.integers(0, 1000), label=c) // 1000
                  for c in ("accounts", "requests")}
                 for _ in range(data.draw(st.integers(1, 3), label="mixed points"))]
        for mark in marks + mixed:
            check_point(gw, accounts, f"accounts:{mark['accounts']},requests:{mark['requests']}")

    history_balances()
