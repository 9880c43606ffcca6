"""The cluster deployment (PostgreSQL events and read models, Redis holds) behind a real
server: a normal SDK request is charged exactly, and a short balance gets 402 with no call."""

from __future__ import annotations

import openai
import pytest

from e2e.support import (
    MODEL,
    balance,
    customer,
    ledger,
    positions,
    price_model,
    request_events,
    request_record,
    sdk,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
MESSAGES = [{"role": "user", "content": "one two three"}]


def test_on_postgres_and_redis_an_sdk_request_is_served_and_charged_exactly(
        served_cluster, fake_openai):
    price_model(served_cluster, fake_openai, input_price="2", output_price="3")
    who = customer(served_cluster, credit_micros=1_000_000)
    client = sdk(served_cluster, who.key)

    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)

    assert raw.parse().choices[0].message.content == "Echo: one two three"
    assert chunks[-1].usage.completion_tokens == 4
    records = [request_record(served_cluster, raw.headers["x-request-id"]),
               request_record(served_cluster, stream.response.headers["x-request-id"])]
    assert [r["status"] for r in records] == ["settled", "settled"]
    assert [r["charged_micros"] for r in records] == [3 * 2 + 4 * 3] * 2
    view = balance(served_cluster, who.key)
    assert view["balance_micros"] == 1_000_000 - 2 * 18
    assert view["open_holds"] == 0
    assert sum(line["amount_micros"] for line in ledger(served_cluster, who.key)) == \
        view["balance_micros"]
    assert request_events(served_cluster, records[0]["id"]) == ["HoldPlaced", "HoldSettled"]


def test_on_postgres_and_redis_a_short_balance_gets_402_and_the_provider_is_not_called(
        served_cluster, fake_openai):
    price_model(served_cluster, fake_openai)
    who = customer(served_cluster, credit_micros=50)
    before = positions(served_cluster)

    with pytest.raises(openai.APIStatusError) as caught:
        sdk(served_cluster, who.key).chat.completions.create(model=MODEL, messages=MESSAGES)

    error = caught.value
    assert error.status_code == 402
    assert error.code == "insufficient_credits"
    assert error.body["details"] == {"available_micros": 50,
                                     "required_micros": 5 + 8 + 4096 * 2}
    assert fake_openai.chat_requests() == []
    assert positions(served_cluster) == before
    assert balance(served_cluster, who.key)["balance_micros"] == 50
