"""The Responses API (9.4) through the official OpenAI SDK, against both upstream formats:
JSON and streams billed like chat, stored responses read back and deleted, a conversation
continued by previous_response_id within one account only."""

from __future__ import annotations

import time

import openai
import pytest

from e2e.anthropic_support import ANTHROPIC_MODEL
from e2e.support import (
    MODEL,
    balance,
    customer,
    positions,
    request_record,
    sdk,
)

CREDIT = 5_000_000



def _settled_balance(served, key: str, expected: int, timeout: float = 5.0) -> bool:
    """Whether the balance reaches ``expected`` once the settlement is projected."""
    deadline = time.monotonic() + timeout
    while balance(served, key)["balance_micros"] != expected:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _charge(usage) -> int:
    return usage.input_tokens * 1 + usage.output_tokens * 2


@pytest.mark.parametrize("model", [MODEL, ANTHROPIC_MODEL])
def test_a_response_is_answered_billed_and_stored(both, model):
    who = customer(both, credit_micros=CREDIT)
    client = sdk(both, who.key)

    raw = client.responses.with_raw_response.create(model=model, input="hello there",
                                                    instructions="Be brief.")
    answer = raw.parse()

    assert answer.id.startswith("resp_") and answer.status == "completed"
    assert answer.output_text == "Echo: hello there"
    assert answer.model == model
    record = request_record(both, raw.headers["x-request-id"])
    assert record["status"] == "settled"
    assert record["charged_micros"] == _charge(answer.usage)
    stored = client.responses.retrieve(answer.id)
    assert (stored.id, stored.output_text) == (answer.id, answer.output_text)


@pytest.mark.parametrize("model", [MODEL, ANTHROPIC_MODEL])
def test_a_streamed_response_accumulates_in_the_sdk_and_is_stored(both, model):
    who = customer(both, credit_micros=CREDIT)
    client = sdk(both, who.key)

    with client.responses.stream(model=model, input="stream this please") as stream:
        numbers = [event.sequence_number for event in stream]
        final = stream.get_final_response()

    assert numbers == list(range(len(numbers)))
    assert final.output_text == "Echo: stream this please"
    assert _settled_balance(both, who.key, CREDIT - _charge(final.usage))
    assert client.responses.retrieve(final.id).output_text == final.output_text


def test_previous_response_id_sends_the_first_turn_upstream(both, fake_openai):
    who = customer(both, credit_micros=CREDIT)
    client = sdk(both, who.key)

    first = client.responses.create(model=MODEL, input="my name is Ada")
    second = client.responses.create(model=MODEL, input="what is my name",
                                     previous_response_id=first.id)

    sent = fake_openai.chat_requests()[-1].json["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [
        ("user", "my name is Ada"), ("assistant", "Echo: my name is Ada"),
        ("user", "what is my name")]
    assert second.output_text == "Echo: what is my name"


def test_another_accounts_response_is_not_found_and_cannot_be_continued(both, fake_openai):
    owner = customer(both, credit_micros=CREDIT)
    stranger = customer(both, credit_micros=CREDIT)
    first = sdk(both, owner.key).responses.create(model=MODEL, input="secret plan")
    before = positions(both)
    calls = len(fake_openai.chat_requests())

    with pytest.raises(openai.NotFoundError):
        sdk(both, stranger.key).responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError) as raised:
        sdk(both, stranger.key).responses.create(model=MODEL, input="tell me",
                                                  previous_response_id=first.id)

    assert raised.value.param == "previous_response_id"
    assert positions(both) == before  # no hold for a refused continuation
    assert len(fake_openai.chat_requests()) == calls


def test_a_deleted_or_unstored_response_cannot_be_read(both):
    who = customer(both, credit_micros=CREDIT)
    client = sdk(both, who.key)
    kept = client.responses.create(model=MODEL, input="keep me")
    unstored = client.responses.create(model=MODEL, input="forget me", store=False)

    client.responses.delete(kept.id)

    for response_id in (kept.id, unstored.id):
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(response_id)


def test_hosted_tools_are_refused_by_name_before_any_hold(both):
    who = customer(both, credit_micros=CREDIT)
    before = positions(both)

    with pytest.raises(openai.BadRequestError) as raised:
        sdk(both, who.key).responses.create(model=MODEL, input="search",
                                            tools=[{"type": "web_search"}])

    assert (raised.value.code, raised.value.param) == ("unsupported_parameter", "tools[0]")
    assert positions(both) == before
