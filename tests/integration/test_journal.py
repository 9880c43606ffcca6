"""The journal (11.5): balanced postings per money event, trial balance 0, liabilities = balances.

Expected postings are computed here from the events' stored JSON (integration/support.py
reads raw bytes), independently of projections/journal.py.
"""

from __future__ import annotations

import io
from collections import defaultdict

from domain.pools import POOLS
from integration.support import place_hold, raw_events, settle
from projections.as_of import AsOf
from projections.journal_queries import JournalQueries
from projections.rebuild import rebuild
from projections.verify import dump

STAFF = "usr_journal"


def projected(gw) -> None:
    for context, position in gw.stores.max_positions().items():
        assert gw.projector.wait_for(context, position, timeout=30)


def workload(gw) -> dict[str, str]:
    """Every money event type once or more, plus holds that move no money."""
    trial = gw.accounts.open_account("journal-trial@example.com", "trial", "staff:test")
    gw.accounts.grant_credits(trial, 1_000, "journal test grant", STAFF)
    gw.accounts.credit_purchase(trial, "pi_journal", 7, "starter", "stripe")  # 70,000
    gw.accounts.reset_allowance(trial, "team", "in_1", 40_000, 0)
    gw.accounts.reset_allowance(trial, "team", "in_2", 50_000, 40_000)
    gw.accounts.forfeit(trial, "allowance", 50_000, "cancelled")
    gw.accounts.forfeit(trial, "trial", 1_000_000, "cap_reached")
    projected(gw)
    spanning, _ = place_hold(gw, trial, 4_010_000)  # the rest of the trial, 10,000 purchased
    settle(gw, spanning, 4_020_000)
    dev = gw.accounts.open_account("journal-dev@example.com", "dev", "staff:test")
    gw.accounts.grant_credits(dev, 1_000, "journal test grant", STAFF)
    projected(gw)
    charged, _ = place_hold(gw, dev, 700)
    settle(gw, charged, 730)  # the spec's example: 700 charged, 30 uncollected
    free, _ = place_hold(gw, dev, 0)
    settle(gw, free, 0)
    voided, _ = place_hold(gw, dev, 100)
    voided.void("timeout", [], "no answer")
    gw.stores.requests.save(voided)
    expired, _ = place_hold(gw, dev, 100)
    expired.expire()
    gw.stores.requests.save(expired)
    place_hold(gw, dev, 50)  # left open
    projected(gw)
    return {"trial": trial, "dev": dev}


def expected_lines(kind: str, d: dict) -> list[tuple[str, str, int]]:
    """The posting rules, restated from the chart in projections/journal.py."""
    if kind == "Wallet.TrialCreditGranted":
        lines = [("promotions", "trial_credit", d["amount"]),
                 ("customer:trial", "trial_credit", -d["amount"])]
    elif kind == "Wallet.PurchaseCredited":
        lines = [("cash", "purchase", d["amount"]),
                 ("customer:purchased", "purchase", -d["amount"])]
    elif kind == "Wallet.AdminCreditGranted":
        lines = [("promotions", "admin_grant", d["amount"]),
                 ("customer:purchased", "admin_grant", -d["amount"])]
    elif kind == "Wallet.TrialCreditForfeited":
        lines = [("customer:trial", "trial_forfeit", d["amount"]),
                 ("forfeited", "trial_forfeit", -d["amount"])]
    elif kind == "Wallet.AllowanceForfeited":
        lines = [("customer:allowance", "allowance_forfeit", d["amount"]),
                 ("forfeited", "allowance_forfeit", -d["amount"])]
    elif kind == "Wallet.AllowanceReset":
        lines = [("customer:allowance", "allowance_forfeit", d["forfeited_unused"]),
                 ("forfeited", "allowance_forfeit", -d["forfeited_unused"]),
                 ("subscriptions", "allowance_reset", d["amount"]),
                 ("customer:allowance", "allowance_reset", -d["amount"])]
    elif kind == "InferenceRequest.HoldSettled":
        by_pool = d["charged_by_pool"]
        lines = [(f"customer:{p}", "usage", by_pool.get(p, 0)) for p in POOLS]
        lines += [("revenue", "usage", -sum(by_pool.values())),
                  ("uncollected", "uncollected", d["uncollected_micros"]),
                  ("revenue_uncollected", "uncollected", -d["uncollected_micros"])]
    else:
        lines = []
    return sorted(line for line in lines if line[2])


def postings(gw) -> dict[tuple[str, int], list[tuple]]:
    with gw.db.transaction() as cur:
        cur.execute("SELECT context, position, ledger_account, kind, amount_micros, entry_id, "
                    "account_id FROM journal_postings")
        rows = cur.fetchall()
    by_event: dict[tuple[str, int], list[tuple]] = defaultdict(list)
    for context, position, *rest in rows:
        by_event[(context, int(position))].append(tuple(rest))
    return by_event


def balances_table(gw) -> dict[str, dict[str, int]]:
    with gw.db.transaction() as cur:
        cur.execute("SELECT account_id, trial, allowance, purchased FROM balances")
        return {r[0]: dict(zip(POOLS, map(int, r[1:]), strict=True)) for r in cur.fetchall()}


def test_every_money_event_posts_one_balanced_entry_by_its_rule(gateway):
    ids = workload(gateway)
    journal = postings(gateway)
    requests_of: dict = {}
    seen_types = set()
    for context in ("accounts", "requests"):
        for event in raw_events(getattr(gateway.stores, context)):
            if event.type == "InferenceRequest.HoldPlaced":
                requests_of[event.stream] = event.data["account_id"]
            lines = journal.get((context, event.position), [])
            assert sorted(line[:3] for line in lines) == expected_lines(event.type, event.data), \
                (context, event.position, event.type)
            if lines:
                seen_types.add(event.type)
                assert sum(line[2] for line in lines) == 0
                assert len({line[3] for line in lines}) == 1  # one entry per event
                owner = requests_of.get(event.stream)
                assert {line[4] for line in lines} <= set(ids.values())
                assert owner is None or {line[4] for line in lines} == {owner}
    assert seen_types == {"Wallet.TrialCreditGranted", "Wallet.PurchaseCredited",
                          "Wallet.AdminCreditGranted", "Wallet.AllowanceReset",
                          "Wallet.AllowanceForfeited", "Wallet.TrialCreditForfeited",
                          "InferenceRequest.HoldSettled"}
    # The spec's example, posting by posting.
    dev_settlements = [sorted(line[:3] for line in lines) for lines in journal.values()
                       if {line[4] for line in lines} == {ids["dev"]}
                       and any(line[1] == "usage" for line in lines)]
    assert dev_settlements == [[("customer:purchased", "usage", 700),
                                ("revenue", "usage", -700),
                                ("revenue_uncollected", "uncollected", -30),
                                ("uncollected", "uncollected", 30)]]


def test_the_trial_balance_is_zero_and_liabilities_equal_the_balances_pools(gateway):
    ids = workload(gateway)
    queries = JournalQueries(gateway.db)

    trial_balance = queries.trial_balance()
    liabilities = queries.liabilities()

    assert trial_balance["balanced"] and trial_balance["total_micros"] == 0
    by_name = {a["ledger_account"]: a["balance_micros"] for a in trial_balance["accounts"]}
    assert by_name == {"customer:trial": 0, "customer:allowance": 0,
                       "customer:purchased": -61_300, "cash": 70_000, "promotions": 5_002_000,
                       "subscriptions": 90_000, "revenue": -4_010_700, "forfeited": -1_090_000,
                       "uncollected": 10_030, "revenue_uncollected": -10_030}
    balances = balances_table(gateway)
    assert liabilities["by_pool"] == {p: sum(b[p] for b in balances.values()) for p in POOLS}
    assert liabilities["total_micros"] == 61_300
    pools = queries.customer_pools()
    for account_id in ids.values():
        assert {p: pools[account_id].get(p, 0) for p in POOLS} == balances[account_id]
    # Promotional credit is deemed spent first: the trial account's 10,000 of purchased
    # spending takes its 1,000 grant and 9,000 of its 70,000 payment; dev spent 700 of 1,000.
    assert liabilities["by_source"] == {"trial_credit": 0, "subscription": 0,
                                        "admin_grant": 300, "payment": 61_000}


def test_the_journal_rebuilds_alone_to_the_same_rows(gateway):
    workload(gateway)
    with gateway.db.transaction() as cur:
        live = {t: dump(cur, t) for t in ("journal_postings", "journal_requests")}
        cur.execute("UPDATE journal_postings SET amount_micros = amount_micros + 1 "
                    "WHERE ledger_account = 'cash'")

    rebuild(gateway.config, gateway.stores, gateway.db, "journal", io.StringIO())

    with gateway.db.transaction() as cur:
        assert {t: dump(cur, t) for t in live} == live
    assert JournalQueries(gateway.db).trial_balance()["balanced"]


def test_an_as_of_point_folds_only_the_postings_up_to_it(gateway):
    ids = workload(gateway)
    with gateway.db.transaction() as cur:
        cur.execute("SELECT MIN(position) FROM journal_postings WHERE context = 'requests'")
        first_charge = int(cur.fetchone()[0])
    tops = gateway.stores.max_positions()
    queries = JournalQueries(gateway.db)
    before = AsOf(None, {"accounts": tops["accounts"], "requests": first_charge - 1})
    nothing = AsOf(None, {"accounts": 0, "requests": 0})

    assert queries.trial_balance(nothing)["accounts"][0]["debit_micros"] == 0
    assert queries.liabilities(nothing)["total_micros"] == 0
    for point in (before, nothing):
        assert queries.trial_balance(point)["balanced"]
        pools = queries.customer_pools(point)
        for account_id in ids.values():
            view = gateway.balances.balance(account_id, 0, point)
            journal = {p: pools.get(account_id, {}).get(p, 0) for p in POOLS}
            assert view is None or journal == {p: view["pools"][p]["balance_micros"]
                                               for p in POOLS}
    assert queries.liabilities(before)["by_pool"]["trial"] == 4_000_000
