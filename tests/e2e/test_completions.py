"""Legacy completions (9.2) through the official OpenAI SDK: each prompt goes upstream as one
chat request (to either upstream format), the answers come back as one text_completion,
and one hold and settlement covers every prompt."""

from __future__ import annotations

import openai
import pytest

from e2e.anthropic_support import ANTHROPIC_MODEL
from e2e.support import (
    MODEL,
    assert_error,
    balance,
    customer,
    positions,
    request_events,
    request_record,
    sdk,
)

CREDIT = 5_000_000



def _charge(usage) -> int:
    return usage.prompt_tokens * 1 + usage.completion_tokens * 2


@pytest.mark.parametrize("model", [MODEL, ANTHROPIC_MODEL])
def test_one_prompt_is_one_chat_request_and_the_answer_is_a_text_completion(both, model):
    who = customer(both, credit_micros=CREDIT)

    raw = sdk(both, who.key).completions.with_raw_response.create(
        model=model, prompt="say one two", max_tokens=20)
    answer = raw.parse()

    assert answer.object == "text_completion" and answer.id.startswith("cmpl-")
    assert [(c.index, c.text, c.finish_reason) for c in answer.choices] == \
        [(0, "Echo: say one two", "stop")]
    assert answer.model == model
    record = request_record(both, raw.headers["x-request-id"])
    assert record["status"] == "settled"
    assert record["charged_micros"] == _charge(answer.usage)


def test_three_prompts_yield_choices_0_1_2_in_order_under_one_hold(both, fake_openai):
    who = customer(both, credit_micros=CREDIT)
    prompts = ["first one", "second two", "third three"]

    raw = sdk(both, who.key).completions.with_raw_response.create(
        model=MODEL, prompt=prompts, max_tokens=20)
    answer = raw.parse()

    assert [(c.index, c.text) for c in answer.choices] == \
        [(i, f"Echo: {p}") for i, p in enumerate(prompts)]
    sent = [r.json["messages"] for r in fake_openai.chat_requests()]
    assert sorted(m[0]["content"] for m in sent) == sorted(prompts)
    request_id = raw.headers["x-request-id"]
    record = request_record(both, request_id)  # waits for the settlement
    assert request_events(both, request_id) == ["HoldPlaced", "HoldSettled"]
    assert record["charged_micros"] == _charge(answer.usage)
    assert balance(both, who.key)["balance_micros"] == CREDIT - record["charged_micros"]


@pytest.mark.parametrize("prompt", ["just one", ["first one", "second two"]])
def test_a_stream_ends_with_done_and_is_charged_its_usage(both, prompt):
    who = customer(both, credit_micros=CREDIT)

    stream = sdk(both, who.key).completions.create(
        model=MODEL, prompt=prompt, max_tokens=20, stream=True,
        stream_options={"include_usage": True})
    texts: dict[int, str] = {}
    usage = None
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
        usage = chunk.usage or usage

    prompts = [prompt] if isinstance(prompt, str) else prompt
    assert texts == {i: f"Echo: {p}" for i, p in enumerate(prompts)}
    record = request_record(both, stream.response.headers["x-request-id"])
    assert record["status"] == "settled"
    assert record["charged_micros"] == _charge(usage)


@pytest.mark.parametrize(("extra", "param"), [({"echo": True}, "echo"),
                                              ({"suffix": "end"}, "suffix")])
def test_echo_and_suffix_are_refused_by_name_never_dropped(both, fake_openai, extra, param):
    who = customer(both, credit_micros=CREDIT)
    before = positions(both)

    with pytest.raises(openai.BadRequestError) as raised:
        sdk(both, who.key).completions.create(model=MODEL, prompt="x", **extra)

    assert (raised.value.code, raised.value.param) == ("unsupported_parameter", param)
    assert positions(both) == before
    assert fake_openai.chat_requests() == []


def test_more_than_twenty_prompts_are_refused(both):
    who = customer(both, credit_micros=CREDIT)

    response = both.http.post("/v1/completions", json={"model": MODEL, "prompt": ["x"] * 21},
                              headers={"Authorization": f"Bearer {who.key}"})

    assert_error(response, 400, "invalid_request", "prompt")
