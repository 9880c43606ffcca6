"""Legacy completions <-> chat completions: validation, bodies, answers, golden streams.

``tests/golden/completions/<case>.chat.sse`` is an upstream chat stream in the real wire
format; ``<case>.completions.sse`` is what the client must receive, byte for byte.
Regenerate with ``GATEWAYZ_UPDATE_GOLDEN=1`` after a deliberate change, and review the diff.
"""

import copy
import json
import os
from pathlib import Path

import httpx2
import openai
import pytest
from openai.types import Completion

from application.chat_request import parse_chat
from application.translate.common import sse_data
from application.translate.completions import (
    ChatToCompletionStream,
    chat_bodies,
    completion_response,
    parse_completions,
)
from application.translate.sse import SseParser
from domain.errors import DomainError

GOLDEN = Path(__file__).parents[2] / "golden" / "completions"
CMPL = "cmpl-8Kq2Xw7Rt4Ys1Uv6Zb3Nc9Md5L"
CASES = {"text": 1, "parallel_tools": 1, "length": 1, "reasoning": 1, "two_choices": 2}  # n
USAGE = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


def _body(**extra):
    return {"model": "openai/gpt-4o-mini", "prompt": "Say hi", **extra}


def _refused(body, param, code="invalid_request"):
    with pytest.raises(DomainError) as info:
        parse_completions(body)
    assert (info.value.code, info.value.param) == (code, param)


def test_valid_body_is_returned_unchanged():
    body = _body(prompt=["a", "b"], max_tokens=16, temperature=0.5, top_p=1, n=2,
                 stop=["\n", "END"], logprobs=2, seed=7, user="u", stream=True,
                 stream_options={"include_usage": True}, echo=False, suffix=None, best_of=1)
    snapshot = copy.deepcopy(body)
    assert parse_completions(body) is body and body == snapshot


@pytest.mark.parametrize("body, param", [
    ("text", None), ({"prompt": "x"}, "model"), (_body(model=3), "model"),
    ({"model": "m"}, "prompt"), (_body(prompt=[]), "prompt"), (_body(prompt=["a", 3.5]), "prompt"),
    (_body(prompt=["x"] * 21), "prompt"), (_body(prompt=None), "prompt"),
    (_body(max_tokens=0), "max_tokens"), (_body(max_tokens=1_000_001), "max_tokens"),
    (_body(max_tokens=True), "max_tokens"), (_body(max_tokens=1.5), "max_tokens"),
    (_body(temperature=2.1), "temperature"), (_body(temperature=-0.1), "temperature"),
    (_body(top_p=2), "top_p"), (_body(presence_penalty=3), "presence_penalty"),
    (_body(n=0), "n"), (_body(n=9), "n"), (_body(prompt=["x"] * 20, n=7), "n"),
    (_body(stop=["a"] * 5), "stop"), (_body(stop=5), "stop"), (_body(stop=[1]), "stop"),
    (_body(logprobs=6), "logprobs"), (_body(logprobs=-1), "logprobs"),
    (_body(logprobs=True), "logprobs"), (_body(seed="1"), "seed"), (_body(user=1), "user"),
    (_body(stream="yes"), "stream"), (_body(stream_options=[]), "stream_options"),
    (_body(stream_options={"include_usage": "yes"}), "stream_options.include_usage"),
])
def test_invalid_requests_name_the_field(body, param):
    _refused(body, param)


@pytest.mark.parametrize("body, param", [
    (_body(echo=True), "echo"), (_body(suffix="}"), "suffix"), (_body(best_of=3), "best_of"),
    (_body(prompt=[1, 2, 3]), "prompt"), (_body(prompt=[[1, 2], [3]]), "prompt"),
])
def test_raw_completion_features_are_refused_never_dropped(body, param):
    _refused(body, param, "unsupported_parameter")


def test_one_chat_body_per_prompt_with_parameters_passed_through():
    body = parse_completions(_body(
        prompt=["one", "two"], max_tokens=20, temperature=0.1, top_p=0.9, n=2, stop="\n",
        seed=3, user="u", stream=True, stream_options={"include_usage": True},
        presence_penalty=0.5, frequency_penalty=-0.5, logit_bias={"50256": -100}, logprobs=3,
        echo=False, suffix=None, best_of=1, provider={"order": ["acme"]}, top_k=5))
    bodies = chat_bodies(body)
    assert [b["messages"] for b in bodies] == [[{"role": "user", "content": "one"}],
                                               [{"role": "user", "content": "two"}]]
    for chat in bodies:
        parse_chat(chat)  # the chat pipeline accepts it
        assert chat["model"] == "openai/gpt-4o-mini"
        assert chat["logprobs"] is True and chat["top_logprobs"] == 3
        for name in ("max_tokens", "temperature", "top_p", "n", "stop", "seed", "user",
                     "stream", "stream_options", "presence_penalty", "frequency_penalty",
                     "logit_bias", "provider", "top_k"):
            assert chat[name] == body[name]
        for name in ("prompt", "echo", "suffix", "best_of"):
            assert name not in chat


def test_logprobs_zero_asks_for_the_sampled_token_only():
    chat = chat_bodies(parse_completions(_body(logprobs=0)))[0]
    assert chat["logprobs"] is True and "top_logprobs" not in chat
    assert "logprobs" not in chat_bodies(parse_completions(_body()))[0]


def _chat(texts, finish="stop", usage=USAGE, logprobs=None):
    return {"id": "chatcmpl-x", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": i, "message": {"role": "assistant", "content": text},
                         "logprobs": logprobs, "finish_reason": finish}
                        for i, text in enumerate(texts)],
            "usage": usage}


def test_three_prompts_yield_indexes_0_1_2_and_summed_usage():
    answer = completion_response([_chat(["a"]), _chat(["b"]), _chat(["c"], "length")],
                                 "openai/gpt-4o-mini", CMPL, 1751898000)
    parsed = Completion.model_validate(answer)
    assert [(c.index, c.text, c.finish_reason) for c in parsed.choices] == [
        (0, "a", "stop"), (1, "b", "stop"), (2, "c", "length")]
    assert (parsed.id, parsed.object, parsed.created) == (CMPL, "text_completion", 1751898000)
    assert parsed.usage.prompt_tokens == 15 and parsed.usage.total_tokens == 24
    assert all(c.logprobs is None for c in parsed.choices)


def test_n_choices_per_prompt_are_flattened_prompt_major():
    answer = completion_response([_chat(["a0", "a1"]), _chat(["b0", "b1"])], "m", CMPL, 1)
    assert [(c["index"], c["text"]) for c in answer["choices"]] == [
        (0, "a0"), (1, "a1"), (2, "b0"), (3, "b1")]


def test_usage_details_are_summed_when_present():
    usage = {**USAGE, "prompt_tokens_details": {"cached_tokens": 2},
             "completion_tokens_details": {"reasoning_tokens": 1}}
    answer = completion_response([_chat(["a"], usage=usage), _chat(["b"], usage=usage)],
                                 "m", CMPL, 1)
    assert answer["usage"]["prompt_tokens_details"] == {"cached_tokens": 4}
    assert answer["usage"]["completion_tokens_details"] == {"reasoning_tokens": 2}
    Completion.model_validate(answer)


def test_chat_logprobs_become_the_legacy_arrays():
    logprobs = {"content": [
        {"token": "Hi", "logprob": -0.1, "bytes": [72, 105],
         "top_logprobs": [{"token": "Hi", "logprob": -0.1, "bytes": None},
                          {"token": "Hey", "logprob": -2.5, "bytes": None}]},
        {"token": "!", "logprob": -0.3, "bytes": [33], "top_logprobs": []}]}
    answer = completion_response([_chat(["Hi!"], logprobs=logprobs)], "m", CMPL, 1)
    assert answer["choices"][0]["logprobs"] == {
        "tokens": ["Hi", "!"], "token_logprobs": [-0.1, -0.3],
        "top_logprobs": [{"Hi": -0.1, "Hey": -2.5}, {}], "text_offset": [0, 2]}
    Completion.model_validate(answer)


@pytest.mark.parametrize("finish, legacy", [("tool_calls", "stop"), ("function_call", "stop"),
                                            ("content_filter", "content_filter")])
def test_finish_reasons_the_legacy_api_lacks_become_stop(finish, legacy):
    answer = completion_response([_chat([None], finish)], "m", CMPL, 1)
    assert answer["choices"][0]["finish_reason"] == legacy
    assert answer["choices"][0]["text"] == ""
    Completion.model_validate(answer)


def _translate(case: str) -> bytes:
    stream = ChatToCompletionStream("openai/gpt-4o-mini", CMPL, 1751898000, CASES[case])
    parser = SseParser()
    out = b""
    for event in parser.feed((GOLDEN / f"{case}.chat.sse").read_bytes()) + parser.flush():
        if event.data == "[DONE]":
            return out + b"data: [DONE]\n\n"
        out += b"".join(sse_data(chunk) for chunk in stream.feed(json.loads(event.data)))
    raise AssertionError("the recorded stream has no [DONE]")


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_stream_byte_for_byte(case):
    produced = _translate(case)
    expected = GOLDEN / f"{case}.completions.sse"
    if os.environ.get("GATEWAYZ_UPDATE_GOLDEN"):
        expected.write_bytes(produced)
    assert produced == expected.read_bytes()


def _client(body: bytes) -> openai.OpenAI:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)
    return openai.OpenAI(api_key="gw-test", base_url="http://gateway.test/v1", max_retries=0,
                         http_client=httpx2.Client(transport=httpx2.MockTransport(answer)))


EXPECTED_TEXT = {"text": ["Hello! Ça va? 👋"], "parallel_tools": [""],
                 "length": ["The capital of France is"], "reasoning": ["9.9 is larger."],
                 "two_choices": ["Red apple.", "Blue sky."]}
EXPECTED_FINISH = {"text": "stop", "parallel_tools": "stop", "length": "length",
                   "reasoning": "stop", "two_choices": "stop"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_sdk_iterates_the_golden_stream(case):
    body = (GOLDEN / f"{case}.completions.sse").read_bytes()
    chunks = list(_client(body).completions.create(model="openai/gpt-4o-mini", prompt="x",
                                                   stream=True))
    assert all(isinstance(c, Completion) and c.id == CMPL for c in chunks)
    texts: dict[int, str] = {}
    finishes: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
            if choice.finish_reason:
                finishes[choice.index] = choice.finish_reason
    assert [texts[i] for i in sorted(texts)] == EXPECTED_TEXT[case]
    assert set(finishes.values()) == {EXPECTED_FINISH[case]}
    assert len(finishes) == CASES[case]
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def _chunk(delta=None, finish=None, usage=None, index=0, logprobs=None):
    choices = [] if delta is None and finish is None else [
        {"index": index, "delta": delta or {}, "logprobs": logprobs, "finish_reason": finish}]
    return {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "up",
            "choices": choices, "usage": usage}


def test_stream_role_only_chunk_produces_nothing_and_chunks_share_the_head():
    stream = ChatToCompletionStream("m", CMPL, 9, n=1)
    assert stream.feed(_chunk({"role": "assistant", "content": ""})) == []
    assert stream.feed(_chunk({"content": "Hi"})) == [
        {"id": CMPL, "object": "text_completion", "created": 9, "model": "m",
         "choices": [{"text": "Hi", "index": 0, "logprobs": None, "finish_reason": None}]}]
    assert stream.feed(_chunk({}, "tool_calls"))[0]["choices"][0]["finish_reason"] == "stop"
    assert stream.feed(_chunk(usage=USAGE)) == [
        {"id": CMPL, "object": "text_completion", "created": 9, "model": "m", "choices": [],
         "usage": USAGE}]


def test_stream_prompt_index_offsets_choice_indexes():
    stream = ChatToCompletionStream("m", CMPL, 9, n=2, prompt_index=2)
    out = stream.feed(_chunk({"content": "x"}, index=1))
    assert out[0]["choices"][0]["index"] == 5


def test_stream_logprobs_keep_running_text_offsets():
    stream = ChatToCompletionStream("m", CMPL, 9, n=1)
    first = {"content": [{"token": "Hi", "logprob": -0.1, "top_logprobs": []}]}
    second = {"content": [{"token": " there", "logprob": -0.2, "top_logprobs": []}]}
    stream.feed(_chunk({"content": "Hi"}, logprobs=first))
    out = stream.feed(_chunk({"content": " there"}, logprobs=second))
    assert out[0]["choices"][0]["logprobs"] == {"tokens": [" there"], "token_logprobs": [-0.2],
                                                "top_logprobs": [{}], "text_offset": [2]}


def test_stream_usage_keeps_only_the_openai_fields():
    usage = {**USAGE, "prompt_tokens_details": {"cached_tokens": 1},
             "prompt_cache_hit_tokens": 1, "prompt_cache_miss_tokens": 4}
    out = ChatToCompletionStream("m", CMPL, 9, n=1).feed(_chunk({}, "stop", usage))
    assert out[0]["usage"] == {**USAGE, "prompt_tokens_details": {"cached_tokens": 1}}
