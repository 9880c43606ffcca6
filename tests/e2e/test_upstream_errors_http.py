"""Provider answers as the official OpenAI SDK sees them through the gateway (9.8, 9.9): a
rate-limited provider is a RateLimitError with Retry-After (not a 502 retried at once), the
provider's own 400 code and param, its 404, and only the allowlisted provider headers."""

from __future__ import annotations

import openai
import pytest
from fakes.openai_upstream import Behaviour

from e2e.support import MODEL, balance, customer, request_record, sdk

CREDIT = 5_000_000
MESSAGES = [{"role": "user", "content": "one two three"}]


@pytest.fixture
def two(served, fake_openai):
    for slug, priority in (("first", 10), ("second", 20)):
        served.register_provider(slug, fake_openai.base_url, priority=priority)
        served.set_price(MODEL, slug, input_price="1", output_price="2")
    return served


def test_when_every_provider_rate_limits_the_sdk_raises_rate_limit_error_with_retry_after(
        two, fake_openai):
    who = customer(two, credit_micros=CREDIT)
    fake_openai.script(Behaviour(status=429, retry_after=7), Behaviour(status=429, retry_after=2))

    with pytest.raises(openai.RateLimitError) as raised:
        sdk(two, who.key).chat.completions.create(model=MODEL, messages=MESSAGES)

    error = raised.value
    assert error.code == "rate_limit_exceeded"
    assert error.response.headers["retry-after"] == "7"
    record = request_record(two, error.response.headers["x-request-id"])
    assert record["status"] == "voided" and record["charged_micros"] == 0
    assert [a["status"] for a in record["attempts"]] == [429, 429]
    assert balance(two, who.key)["balance_micros"] == CREDIT


def test_the_providers_400_code_param_and_message_reach_the_sdk(two, fake_openai):
    who = customer(two, credit_micros=CREDIT)
    message = "This model's maximum context length is 128000 tokens."
    fake_openai.script(Behaviour(status=400, error_code="context_length_exceeded",
                                 error_param="messages", error_message=message))

    with pytest.raises(openai.BadRequestError) as raised:
        sdk(two, who.key).chat.completions.create(model=MODEL, messages=MESSAGES)

    error = raised.value
    assert (error.code, error.param, error.body["message"]) == \
        ("context_length_exceeded", "messages", message)
    assert error.body["request_id"] == error.response.headers["x-request-id"]
    assert len(fake_openai.chat_requests()) == 1  # not failed over


def test_a_model_every_provider_says_does_not_exist_is_a_404(two, fake_openai):
    who = customer(two, credit_micros=CREDIT)
    fake_openai.script(Behaviour(status=404), Behaviour(status=404))

    with pytest.raises(openai.NotFoundError) as raised:
        sdk(two, who.key).chat.completions.create(model=MODEL, messages=MESSAGES)

    assert raised.value.code == "model_not_found"


def test_provider_request_ids_come_back_renamed_and_cookies_never(two, fake_openai):
    who = customer(two, credit_micros=CREDIT)
    fake_openai.script(Behaviour(extra_headers=(
        ("set-cookie", "session=upstream"), ("x-request-id", "req_up_42"),
        ("openai-processing-ms", "12"), ("server", "upstream/1"))))

    raw = sdk(two, who.key).chat.completions.with_raw_response.create(model=MODEL,
                                                                      messages=MESSAGES)

    headers = raw.headers
    assert headers["x-upstream-request-id"] == "req_up_42"
    assert headers["x-gatewayz-upstream-request-id"] == "req_up_42"
    assert headers["openai-processing-ms"] == "12"
    assert "set-cookie" not in headers
    assert headers["x-request-id"].startswith("req_") and headers["x-request-id"] != "req_up_42"
    assert headers["x-gatewayz-attempts"] == "1"
    assert int(headers["x-gatewayz-overhead-ms"]) >= 0
    record = request_record(two, headers["x-request-id"])
    assert headers["x-gatewayz-cost-micros"] == str(record["charged_micros"])
