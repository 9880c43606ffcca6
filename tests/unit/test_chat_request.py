"""parse_chat validation and the body sent upstream."""

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from application.chat_request import (
    MAX_OUTPUT_LIMIT,
    MAX_TOOLS,
    ChatRequest,
    parse_chat,
    upstream_chat_body,
)
from domain.errors import DomainError
from domain.hold_sizing import requested_output_limit
from domain.pricing import Prices, TokenUsage, cost_micros, hold_micros, output_limit
from entrypoints.http.errors import CODE_STATUS

LIMITS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
MESSAGES = [{"role": "user", "content": "hi"}]


def _body(**extra):
    return {"model": "acme/chat-1", "messages": MESSAGES, **extra}


def _refused(body, param):
    with pytest.raises(DomainError) as info:
        parse_chat(body)
    assert info.value.code == "invalid_request"
    assert CODE_STATUS[info.value.code] == 400
    assert info.value.param == param


@pytest.mark.parametrize("name", LIMITS)
@pytest.mark.parametrize("bad", [True, False, "abc", "10", -5, 0, [1], {}, 1.5, 10.0,
                                 MAX_OUTPUT_LIMIT + 1, 10**30])
def test_every_limit_field_must_be_a_bounded_positive_integer(name, bad):
    _refused(_body(**{name: bad}), name)


@pytest.mark.parametrize("name", LIMITS)
def test_limit_fields_accept_1_to_the_bound_and_null(name):
    assert requested_output_limit(parse_chat(_body(**{name: 1})).body) == 1
    assert requested_output_limit(parse_chat(_body(**{name: MAX_OUTPUT_LIMIT})).body) == \
        MAX_OUTPUT_LIMIT
    assert requested_output_limit(parse_chat(_body(**{name: None})).body) is None


def test_requested_limit_is_the_smallest_limit_sent():
    chat = parse_chat(_body(max_tokens=300, max_completion_tokens=200, max_output_tokens=900))
    assert requested_output_limit(chat.body) == 200
    assert requested_output_limit(parse_chat(_body()).body) is None


def test_n_is_kept_and_defaults_to_1():
    assert parse_chat(_body()).n == 1
    assert parse_chat(_body(n=None)).n == 1
    assert parse_chat(_body(n=8)).n == 8
    for bad in (0, 9, 129, True, "2", 2.0):  # n above 8 is refused (1.8)
        _refused(_body(n=bad), "n")


@pytest.mark.parametrize("name", ["tools", "functions"])
def test_tools_and_functions_are_bounded_arrays_of_objects(name):
    tool = {"type": "function", "function": {"name": "f"}}
    assert parse_chat(_body(**{name: [tool] * MAX_TOOLS})).body[name]
    _refused(_body(**{name: [tool] * (MAX_TOOLS + 1)}), name)
    _refused(_body(**{name: {"a": tool}}), name)
    _refused(_body(**{name: "f"}), name)
    _refused(_body(**{name: [tool, 3]}), f"{name}[1]")


def test_include_usage_must_be_a_boolean():
    assert parse_chat(_body(stream=True, stream_options={"include_usage": True})).include_usage
    assert not parse_chat(_body(stream=True, stream_options={"include_usage": False})
                          ).include_usage
    assert not parse_chat(_body(stream=True, stream_options={})).include_usage
    for bad in ("yes", 1, [], {}):
        _refused(_body(stream=True, stream_options={"include_usage": bad}),
                 "stream_options.include_usage")


def _chat(**extra) -> ChatRequest:
    return parse_chat(_body(**extra))


def test_upstream_body_sends_max_completion_tokens_by_default():
    chat = _chat(temperature=1, max_output_tokens=50)
    before = copy.deepcopy(chat.body)
    sent = upstream_chat_body(chat, "native-1", 50)
    assert sent == {"model": "native-1", "messages": MESSAGES, "temperature": 1,
                    "max_completion_tokens": 50}
    assert chat.body == before


def test_upstream_body_keeps_the_clients_max_tokens_field():
    sent = upstream_chat_body(_chat(max_tokens=300), "native-1", 300)
    assert sent["max_tokens"] == 300 and "max_completion_tokens" not in sent
    both = upstream_chat_body(_chat(max_tokens=300, max_completion_tokens=200), "n", 200)
    assert both["max_completion_tokens"] == 200 and "max_tokens" not in both
    nulls = upstream_chat_body(_chat(max_tokens=None, max_completion_tokens=None), "n", 9)
    assert nulls["max_completion_tokens"] == 9 and "max_tokens" not in nulls


def test_upstream_body_always_asks_for_usage_on_streams_without_touching_the_client_body():
    chat = _chat(stream=True, stream_options={"include_usage": False, "other": 1})
    before = copy.deepcopy(chat.body)
    sent = upstream_chat_body(chat, "native-1", 10)
    assert sent["stream_options"] == {"include_usage": True, "other": 1}
    assert chat.body == before
    assert upstream_chat_body(_chat(stream=True), "n", 10)["stream_options"] == {
        "include_usage": True}
    assert "stream_options" not in upstream_chat_body(_chat(), "n", 10)


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, None])
def test_upstream_body_refuses_a_bad_limit(bad):
    with pytest.raises(ValueError):
        upstream_chat_body(_chat(), "n", bad)


_limit_value = st.none() | st.integers(1, MAX_OUTPUT_LIMIT)
_price = st.decimals(min_value=0, max_value=10000, places=6, allow_nan=False,
                     allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(limits=st.fixed_dictionaries({}, optional={name: _limit_value for name in LIMITS}),
       n=st.integers(1, 8), stream=st.booleans(), model_max=st.none() | st.integers(1, 10**6),
       prices=st.builds(Prices, _price, _price, st.none() | _price, st.none() | _price,
                        st.none() | _price), data=st.data())
def test_the_provider_cannot_produce_more_than_the_hold_covers(limits, n, stream, model_max,
                                                                prices, data):
    chat = parse_chat(_body(n=n, stream=stream, **limits))
    limit = output_limit(chat.body, model_max)
    sent = upstream_chat_body(chat, "native", limit)
    present = [name for name in LIMITS if name in sent]
    assert len(present) == 1 and sent[present[0]] == limit
    assert requested_output_limit(chat.body) in (None, limit)
    # Whatever the provider returns within what it was told, the hold covers it.
    completion = data.draw(st.integers(0, chat.n * sent[present[0]]))
    usage = TokenUsage(prompt_tokens=10, completion_tokens=completion)
    assert hold_micros(prices, 10, limit, chat.n) >= cost_micros(prices, usage)
