"""Statement pagination (6.3, 11.10): GET /v1/account/ledger and /finance/.../statement.

An account with 1,539 lines (more than the 1,000 the old statement silently stopped at) is
built from real wallet events, projected by the projector, and walked page by page over HTTP
in both orders on every backend. The expected lines are derived here from the stored events
(sorted by (at, line_id), running balance folded in Python), independently of the SQL.
A Hypothesis property writes random line sets straight into ledger_lines and checks that the
pages of any size, order and filters concatenate to the full ordered list.
"""

from __future__ import annotations

import base64
import itertools
import json
import uuid
from pathlib import Path

import pytest
from conftest import BACKENDS, POSTGRES_URL, ServedGateway, close_gateway, open_gateway
from e2e.support import assert_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.persistence.database import open_database
from adapters.persistence.migrate import migrate
from adapters.persistence.store_config import StoreConfig
from domain.wallet import Wallet
from projections.base import at
from projections.ledger_queries import LedgerQueries, PageRequest, decode_cursor

LINES = 1_539
STAFF = "usr_pagination-admin"


def expected_lines(gateway, account_id: str) -> list[dict]:
    """The account's statement folded from its stored wallet events, oldest first."""
    app = gateway.stores.accounts
    stream = Wallet.create_id(account_id)
    lines = []
    for stored in app.recorder.select_events(stream):
        event = app.mapper.to_domain_event(stored)
        line_id = f"{stream}:{stored.originator_version}"
        kind = type(event).__qualname__
        if kind in ("Wallet.TrialCreditGranted", "Wallet.PurchaseCredited",
                    "Wallet.AdminCreditGranted"):
            lines.append((at(event), line_id, event.amount))
        elif kind == "Wallet.TrialCreditForfeited":
            lines.append((at(event), line_id + ":trial", -event.amount))
        elif kind == "Wallet.AllowanceForfeited":
            lines.append((at(event), line_id + ":allowance", -event.amount))
        elif kind == "Wallet.AllowanceReset":
            if event.forfeited_unused:
                lines.append((at(event), line_id + ":allowance", -event.forfeited_unused))
            lines.append((at(event), line_id, event.amount))
    running, out = 0, []
    for moment, line_id, amount in sorted(lines):
        running += amount
        out.append({"id": line_id, "at": moment, "amount_micros": amount,
                    "balance_micros": running})
    return out


def build_account(gateway) -> str:
    """An account whose wallet makes exactly LINES statement lines, credits and debits."""
    account_id = gateway.accounts.open_account(f"{uuid.uuid4().hex[:8]}@example.com", "dev",
                                               STAFF)
    app = gateway.stores.accounts
    wallet = app.repository.get(Wallet.create_id(account_id))
    made = len(expected_lines(gateway, account_id))
    for i in itertools.count():
        if made >= LINES:
            break
        step = i % 5
        if step == 3 and made + 2 <= LINES:  # two lines from one event, same instant
            wallet.reset_allowance("team", f"in_{i}", 7_000 + i, 1_000)
            made += 2
        elif step == 4:
            wallet.forfeit_trial(1 + i % 97, "expired trial credit")
            made += 1
        elif step == 2:
            wallet.credit_purchase(f"pi_{i}", 1 + i % 9, (1 + i % 9) * 10_000, "custom", STAFF)
            made += 1
        else:
            wallet.grant(1_000 + i, "credit for a pagination test", STAFF, f"gb_{i}")
            made += 1
    recordings = app.save(wallet)
    assert gateway.projector.wait_for("accounts", recordings[-1].notification.id, timeout=60)
    assert len(expected_lines(gateway, account_id)) == LINES
    return account_id


class Setup:
    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.gateway, self.schema = open_gateway(backend, tmp_path)
        self.served = ServedGateway(self.gateway)
        self.account_id = build_account(self.gateway)
        self.key = self.served.issue_key(self.account_id)["key"]
        self.lines = expected_lines(self.gateway, self.account_id)

    def get(self, route: str, **params) -> object:
        if route == "ledger":
            return self.served.http.get("/v1/account/ledger", params=params,
                                        headers={"Authorization": f"Bearer {self.key}"})
        return self.served.admin("GET", f"/finance/accounts/{self.account_id}/statement",
                                 params=params)

    def close(self) -> None:
        self.served.close()
        close_gateway(self.gateway, self.schema)


@pytest.fixture(scope="module", params=BACKENDS)
def setup(request, tmp_path_factory):
    built = Setup(request.param, tmp_path_factory.mktemp(request.param))
    yield built
    built.close()


def walk(setup: Setup, route: str, **params) -> list[dict]:
    """Every page of a statement, following next_cursor; checks each page's envelope."""
    pages, cursor = [], None
    for _ in range(LINES + 2):
        response = setup.get(route, **params, **({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["object"] == "list"
        assert body["has_more"] is (body["next_cursor"] is not None)
        pages.append(body)
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("the cursor never ended")


def essentials(lines: list[dict]) -> list[tuple]:
    return [(x["id"], x["at"], x["amount_micros"], x["balance_micros"]) for x in lines]


@pytest.mark.parametrize("route", ["ledger", "statement"])
@pytest.mark.parametrize("order", ["desc", "asc"])
def test_every_page_of_a_long_statement_in_either_order_shows_each_line_once(setup, route,
                                                                              order):
    pages = walk(setup, route, order=order, limit=100)
    seen = [line for page in pages for line in page["data"]]

    assert [len(p["data"]) for p in pages] == [100] * 15 + [39]
    assert [p["has_more"] for p in pages] == [True] * 15 + [False]
    assert len({line["id"] for line in seen}) == LINES
    wanted = setup.lines if order == "asc" else setup.lines[::-1]
    assert essentials(seen) == essentials(wanted)
    # Across each page boundary the running balance carries on exactly.
    for before, after in itertools.pairwise(pages):
        last, first = before["data"][-1], after["data"][0]
        if order == "asc":
            assert (last["at"], last["id"]) < (first["at"], first["id"])
            assert first["balance_micros"] == last["balance_micros"] + first["amount_micros"]
        else:
            assert (last["at"], last["id"]) > (first["at"], first["id"])
            assert first["balance_micros"] == last["balance_micros"] - last["amount_micros"]
    newest = seen[0] if order == "desc" else seen[-1]
    balance = setup.gateway.balances.balance(setup.account_id, 0)["balance_micros"]
    assert newest["balance_micros"] == balance == sum(x["amount_micros"] for x in seen)
    if route == "statement":
        assert {p["balance_micros"] for p in pages} == {balance}
        assert {p["account_id"] for p in pages} == {setup.account_id}


@pytest.mark.parametrize("route", ["ledger", "statement"])
def test_by_default_a_statement_is_the_newest_hundred_lines(setup, route):
    body = setup.get(route).json()

    assert essentials(body["data"]) == essentials(setup.lines[::-1][:100])
    assert body["has_more"] is True
    assert decode_cursor(body["next_cursor"])[0] == "desc"
    assert {"id", "at", "kind", "pool", "amount_micros", "balance_micros", "reference",
            "description"} == set(body["data"][0])


def test_as_of_from_and_to_hold_on_every_page_of_a_finance_statement(setup):
    lines = setup.lines
    start, end, as_of = lines[300]["at"], lines[1_250]["at"], lines[1_100]["at"]
    wanted = [x for x in lines if start <= x["at"] < end and x["at"] <= as_of]
    assert 700 < len(wanted) < 900

    for order in ("desc", "asc"):
        pages = walk(setup, "statement", order=order, limit=37, **{"from": start, "to": end},
                     as_of=as_of)
        seen = [line for page in pages for line in page["data"]]
        assert essentials(seen) == essentials(wanted if order == "asc" else wanted[::-1])
        assert {p["as_of"] for p in pages} == {as_of}
        assert {p["balance_micros"] for p in pages} == \
            {sum(x["amount_micros"] for x in lines if x["at"] <= as_of)}

    pages = walk(setup, "ledger", limit=1000, **{"from": start, "to": end})
    assert [len(p["data"]) for p in pages] == [len([x for x in lines
                                                    if start <= x["at"] < end])]


def _b64(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


BAD = [
    ({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"), ({"limit": "-5"}, "limit"),
    ({"limit": "ten"}, "limit"), ({"limit": "1.5"}, "limit"), ({"limit": ""}, "limit"),
    ({"order": "sideways"}, "order"), ({"cursor": "not a cursor!"}, "cursor"),
    ({"cursor": ""}, "cursor"), ({"cursor": "bnVsbA"}, "cursor"),
    ({"cursor": _b64({"v": 1, "o": "desc", "at": "yesterday", "id": "x"})}, "cursor"),
    ({"cursor": _b64({"v": 1, "o": "up", "at": "2030-01-01T00:00:00.000000Z", "id": "x"})},
     "cursor"),
    ({"cursor": _b64({"v": 1, "o": "asc", "at": "2030-01-01T00:00:00.000000Z", "id": "x"}),
      "order": "desc"}, "cursor"),
]


@pytest.mark.parametrize("route", ["ledger", "statement"])
def test_a_bad_limit_order_or_cursor_is_refused_with_the_standard_error(setup, route):
    first = setup.get(route, limit=5).json()
    good = first["next_cursor"]
    tampered = good[:-3] + ("AAA" if good[-3:] != "AAA" else "BBB")
    for params, param in [*BAD, ({"cursor": tampered}, "cursor"),
                          ({"cursor": good + "%%"}, "cursor")]:
        error = assert_error(setup.get(route, **params), 400, "invalid_request")
        assert error["param"] == param, (params, error)


# -- property: pages concatenate to the full ordered list ----------------------------------

@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def read_model_db(request, tmp_path_factory):
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("ledger-property") / "read-models.sqlite"
        db = open_database(StoreConfig.sqlite(str(path)))
        schema = None
    else:
        from conftest import _create_schema, _drop_schema, require_postgres

        require_postgres()
        schema = f"t_{uuid.uuid4().hex[:12]}"
        _create_schema(schema)
        db = open_database(StoreConfig.from_url(POSTGRES_URL, schema))
    migrate(db)
    yield db
    db.close()
    if schema:
        _drop_schema(schema)


STAMPS = [f"2030-01-0{d}T00:00:00.00000{u}Z" for d in (1, 2, 3) for u in (0, 1)]
line_sets = st.lists(
    st.tuples(st.text("ab:9", min_size=1, max_size=4), st.sampled_from(STAMPS),
              st.integers(-10**9, 10**9)),
    max_size=40, unique_by=lambda line: line[0])
bound = st.none() | st.sampled_from(STAMPS)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=line_sets, size=st.integers(1, 12), order=st.sampled_from(["desc", "asc"]),
       start=bound, end=bound, as_of=bound)
def test_pages_of_any_size_concatenate_to_the_full_ordered_statement(
        read_model_db, lines, size, order, start, end, as_of):
    account, other = f"acct_{uuid.uuid4().hex}", f"acct_{uuid.uuid4().hex}"
    with read_model_db.transaction() as cur:
        for line_id, moment, amount in lines:
            for owner in (account, other):  # a second account's lines must never leak in
                cur.execute("INSERT INTO ledger_lines (line_id, account_id, at, kind, pool, "
                            "amount_micros, reference, description) "
                            "VALUES (%s, %s, %s, 'admin_grant', 'purchased', %s, '', '')",
                            (f"{owner}:{line_id}", owner, moment, amount))
    running, full = 0, []
    for line_id, moment, amount in sorted(lines, key=lambda line: (line[1], line[0])):
        running += amount
        if ((start is None or moment >= start) and (end is None or moment < end)
                and (as_of is None or moment <= as_of)):
            full.append((f"{account}:{line_id}", moment, amount, running))
    if order == "desc":
        full.reverse()

    queries, request, seen, pages = LedgerQueries(read_model_db), PageRequest(size, order), [], 0
    while True:
        page = queries.page(account, request, as_of=as_of, start=start, end=end)
        pages += 1
        assert len(page["data"]) <= size
        seen += essentials(page["data"])
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        assert len(page["data"]) == size
        cursor_order, moment, line_id = decode_cursor(page["next_cursor"])
        request = PageRequest(size, cursor_order, (moment, line_id))

    assert seen == full
    assert pages == max(1, -(-len(full) // size))
