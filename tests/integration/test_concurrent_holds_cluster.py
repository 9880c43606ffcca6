"""64 concurrent requests against a balance for exactly 10 holds, on PostgreSQL + Redis (6.4).

The served cluster is the multi-worker shape: events and read models in PostgreSQL, holds
in Redis, the gateway behind a real uvicorn server. The fake upstream waits 0.3 s before
answering so every admitted hold is still open while the rest of the burst arrives.
"""

from __future__ import annotations

import asyncio
import time

import httpx
from fakes.openai_upstream import Behaviour

from adapters.holds_redis import RedisHoldStore
from domain.pricing import Prices, estimate_input_tokens, hold_micros
from domain.wallet import Wallet
from integration.support import TERMINAL_TYPES, fold_pools, request_streams, stream_events

MODEL = "acme/chat-1"
MESSAGES = [{"role": "user", "content": "Count the holds, then say how many there were."}]
MAX_TOKENS = 64
ADMITTED = 10
BURST = 64
ROUNDS = 15


def worst_case_hold() -> int:
    prices = Prices.from_json({"input": "1", "output": "2"})
    return hold_micros(prices, estimate_input_tokens(MESSAGES), MAX_TOKENS)


async def burst(url: str, key: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=BURST)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        body = {"model": MODEL, "messages": MESSAGES, "max_tokens": MAX_TOKENS}
        headers = {"Authorization": f"Bearer {key}"}
        return await asyncio.gather(*(client.post("/v1/chat/completions", json=body,
                                                  headers=headers) for _ in range(BURST)))


def settled_state(gateway, account_id: str, expected_requests: int,
                  timeout: float = 15.0) -> dict:
    """Wait until every admitted request is projected with its terminal event, then return
    the balance. The balance is read after that check: the projector writes request
    records and balances in one transaction, so a later read includes them all."""
    deadline = time.monotonic() + timeout
    while True:
        with gateway.db.transaction() as cur:
            cur.execute("SELECT COUNT(*), SUM(CASE WHEN status = 'open' THEN 1 ELSE 0 END) "
                        "FROM requests WHERE account_id = %s", (account_id,))
            total, still_open = cur.fetchone()
        if total == expected_requests and not still_open:
            view = gateway.balances.balance(account_id, int(time.time()))
            assert view["open_holds"] == 0, view
            return view
        assert time.monotonic() < deadline, f"{total} of {expected_requests} projected"
        time.sleep(0.05)


def hold_store_available(gateway, account_id: str, expected: int, timeout: float = 5.0) -> int:
    """What Redis says is available, once the projector's publication (which follows its
    commit by a moment) has landed; returns the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = gateway.holds.available(account_id, int(time.time()))
        if value is None:  # not loaded yet: the first request loads it from durable facts
            gateway.reconciler.load_account(account_id)
            value = gateway.holds.available(account_id, int(time.time()))
        if value == expected or time.monotonic() > deadline:
            return value
        time.sleep(0.01)


def granted(gateway, account_id: str) -> int:
    """Every credit granted to the account, summed from its stored wallet events."""
    return sum(e.data["amount"] for e in stream_events(gateway.stores.accounts,
                                                       Wallet.create_id(account_id))
               if e.type == "Wallet.AdminCreditGranted")


def charged_records(gateway, account_id: str) -> dict[str, tuple[str, int]]:
    with gateway.db.transaction() as cur:
        cur.execute("SELECT request_id, status, charged_micros FROM requests "
                    "WHERE account_id = %s", (account_id,))
        return {r[0]: (r[1], int(r[2] or 0)) for r in cur.fetchall()}


def test_a_burst_of_64_requests_admits_exactly_the_10_the_balance_covers(
        served_cluster, fake_openai):
    served = served_cluster
    gateway = served.gateway
    assert isinstance(gateway.holds, RedisHoldStore)
    assert gateway.config.kind == "postgres"
    fake_openai.default = Behaviour(delay_before_headers=0.3)
    served.register_provider("fakeup", fake_openai.base_url)
    served.set_price(MODEL, "fakeup", input_price="1", output_price="2")
    hold = worst_case_hold()
    account_id = served.open_account(credit_micros=ADMITTED * hold)
    # An admin-raised concurrency limit (1.10's default is 50): this test is about money.
    key = served.issue_key(account_id, rate_limits={"concurrency": 1000, "burst": 1000})["key"]
    upstream_seen = 0
    admitted_ids: set[str] = set()

    for round_number in range(ROUNDS):
        before = settled_state(gateway, account_id, len(admitted_ids))
        assert before["balance_micros"] == ADMITTED * hold
        assert hold_store_available(gateway, account_id, ADMITTED * hold) == ADMITTED * hold

        responses = asyncio.run(burst(served.url, key))

        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] * ADMITTED + [402] * (BURST - ADMITTED), round_number
        refused = [r.json()["error"] for r in responses if r.status_code == 402]
        assert {e["code"] for e in refused} == {"insufficient_credits"}
        assert all(e["details"]["required_micros"] == hold for e in refused)
        assert all(0 <= e["details"]["available_micros"] < hold for e in refused)
        upstream_now = len(fake_openai.chat_requests())
        assert upstream_now - upstream_seen == ADMITTED
        upstream_seen = upstream_now
        admitted_ids |= {r.headers["x-request-id"] for r in responses if r.status_code == 200}

        after = settled_state(gateway, account_id, len(admitted_ids))
        records = charged_records(gateway, account_id)
        assert set(records) == admitted_ids  # a refused request leaves no record
        assert {status for status, _ in records.values()} == {"settled"}
        charged = sum(amount for _, amount in records.values())
        assert 0 < charged <= len(admitted_ids) * hold
        assert after["balance_micros"] == granted(gateway, account_id) - charged
        assert after["balance_micros"] == sum(fold_pools(gateway, account_id).values())
        assert after["available_micros"] == after["balance_micros"]
        assert hold_store_available(gateway, account_id, after["balance_micros"]) == \
            after["balance_micros"]

        streams = request_streams(gateway, account_id)
        assert len(streams) == len(admitted_ids)
        for events in streams.values():
            assert [e.type for e in events][0] == "InferenceRequest.HoldPlaced"
            assert len(events) == 2 and events[1].type in TERMINAL_TYPES
            assert events[1].type == "InferenceRequest.HoldSettled"
        if round_number + 1 < ROUNDS:
            served.grant(account_id, ADMITTED * hold - after["balance_micros"])
