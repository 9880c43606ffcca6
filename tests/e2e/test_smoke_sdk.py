"""The official OpenAI SDK against the served gateway and a fake upstream: the happy path."""

from __future__ import annotations

import openai

from tests.e2e.support import request_record


def test_sdk_chat_through_fake_upstream_is_charged_at_the_listed_price(served, fake_openai):
    served.register_provider("fakeup", fake_openai.base_url)
    served.set_price("acme/chat-1", "fakeup", input_price="1", output_price="2")
    account = served.open_account(credit_micros=5_000_000)
    key = served.issue_key(account)["key"]
    client = openai.OpenAI(base_url=served.url + "/v1", api_key=key, max_retries=0)

    raw = client.chat.completions.with_raw_response.create(
        model="acme/chat-1", messages=[{"role": "user", "content": "one two three"}])
    reply = raw.parse()

    assert reply.choices[0].message.content == "Echo: one two three"
    assert reply.model == "acme/chat-1"
    upstream = fake_openai.chat_requests()[-1]
    assert upstream.json["model"] == "chat-1"
    assert upstream.headers["authorization"] == "Bearer sk-upstream-secret-1234"
    usage = reply.usage
    expected = usage.prompt_tokens * 1 + usage.completion_tokens * 2
    record = request_record(served, raw.headers["x-request-id"])
    assert record["charged_micros"] == expected
    balance = client.get("/account/balance", cast_to=object)
    assert balance["balance_micros"] == 5_000_000 - expected
