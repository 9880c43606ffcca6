"""Honest holds through the HTTP path (issue 5, finding 6): the hold covers every choice and
every input the request carries, the output limit it was sized with is the one the provider
receives, and a malformed limit is a 400 that leaves the event store unchanged."""

from __future__ import annotations

import pytest

from e2e.support import (
    assert_error,
    chat_body,
    customer,
    positions,
    post_chat,
    request_record,
)


@pytest.mark.parametrize("bad", ["abc", -5, [1], 0, 1.5, True, 10**7])
def test_a_malformed_output_limit_is_a_400_with_no_event(priced, fake_openai, bad):
    who = customer(priced)
    before = positions(priced)

    response = post_chat(priced, who.key, chat_body(max_output_tokens=bad))

    assert_error(response, 400, "invalid_request", "max_output_tokens")
    assert positions(priced) == before
    assert fake_openai.chat_requests() == []


def test_the_limit_that_sized_the_hold_is_the_limit_the_provider_receives(priced,
                                                                          fake_openai):
    who = customer(priced)

    response = post_chat(priced, who.key, chat_body(max_output_tokens=1))

    assert response.status_code == 200
    sent = fake_openai.chat_requests()[-1].json
    assert sent["max_completion_tokens"] == 1 and "max_output_tokens" not in sent
    record = request_record(priced, response.headers["x-request-id"])
    assert record["charged_micros"] <= record["hold_micros"]


def test_with_no_limit_the_default_is_held_and_sent_upstream(priced, fake_openai):
    who = customer(priced)

    response = post_chat(priced, who.key, chat_body())

    assert response.status_code == 200
    assert fake_openai.chat_requests()[-1].json["max_completion_tokens"] == 4096
    record = request_record(priced, response.headers["x-request-id"])
    assert record["hold_micros"] >= 4096 * 2


def test_n_choices_and_tools_make_the_hold_larger(priced, fake_openai):
    who = customer(priced, credit_micros=10_000_000)
    tool = {"type": "function", "function": {"name": "lookup", "description": "x" * 3000,
                                             "parameters": {"type": "object"}}}

    one = post_chat(priced, who.key, chat_body(max_tokens=100))
    eight = post_chat(priced, who.key, chat_body(max_tokens=100, n=8))
    tooled = post_chat(priced, who.key, chat_body(max_tokens=100, tools=[tool]))

    holds = [request_record(priced, r.headers["x-request-id"])["hold_micros"]
             for r in (one, eight, tooled)]
    assert holds[1] - holds[0] == 7 * 100 * 2  # seven more choices of 100 output tokens
    assert holds[2] - holds[0] >= 1000  # 3,000+ bytes of tool schema / 3, at 1 micro each
    assert fake_openai.chat_requests()[-1].json["max_tokens"] == 100
