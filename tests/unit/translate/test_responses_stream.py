"""Chat-completion chunks -> Responses stream events: golden files and the official SDK.

Each ``tests/golden/responses/<case>.chat.sse`` is an upstream chat stream in the real wire
format; ``<case>.responses.sse`` is what the client must receive, byte for byte. Regenerate
with ``GATEWAYZ_UPDATE_GOLDEN=1`` after a deliberate change, and review the diff.
"""

import json
import os
from pathlib import Path

import httpx2
import openai
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from application.translate.common import sse_event
from application.translate.responses.response import open_reasoning
from application.translate.responses.stream import ChatToResponsesStream
from application.translate.sse import SseParser

GOLDEN = Path(__file__).parents[2] / "golden" / "responses"
CREATED = 1751898000
WEATHER = {"type": "function", "name": "get_weather", "description": "Current weather for a city",
           "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                          "required": ["location"], "additionalProperties": False},
           "strict": True}
# case -> (the client's Responses request, the response id, the model served)
CASES = {
    "text": ({"model": "openai/gpt-4o-mini", "input": "Say hello in French, then wave.",
              "stream": True}, "resp_01JZ8X3Q4T6V9B2N5M7K0P1R3S", "openai/gpt-4o-mini"),
    "parallel_tools": ({"model": "openai/gpt-4o", "input": "Weather in Paris and Tokyo?",
                        "tools": [WEATHER], "stream": True},
                       "resp_01JZ8X4A7C2E5G8J1L4N7Q0S3U", "openai/gpt-4o"),
    "length": ({"model": "openai/gpt-4o-mini", "input": "What is the capital of France?",
                "max_output_tokens": 5, "stream": True},
               "resp_01JZ8X5B8D3F6H9K2M5P8R1T4V", "openai/gpt-4o-mini"),
    "reasoning": ({"model": "deepseek/deepseek-reasoner", "instructions": "Answer briefly.",
                   "input": "Which is larger, 9.11 or 9.9?",
                   "reasoning": {"effort": "high", "summary": "auto"}, "stream": True},
                  "resp_01JZ8X6C9E4G7J0L3N6Q9S2U5W", "deepseek/deepseek-reasoner"),
}
EVENTS = TypeAdapter(ResponseStreamEvent)


def _chunks(raw: bytes) -> list:
    """The chat stream's data payloads, ``"[DONE]"`` included."""
    parser = SseParser()
    events = parser.feed(raw) + parser.flush()
    return [e.data if e.data == "[DONE]" else json.loads(e.data) for e in events]


def _run(request: dict, response_id: str, model: str, chunks: list) -> list[tuple[str, dict]]:
    stream = ChatToResponsesStream(request, response_id, CREATED, model)
    events = []
    for chunk in chunks:
        events += stream.close() if chunk == "[DONE]" else stream.feed(chunk)
    return events


def _translate(case: str) -> bytes:
    request, response_id, model = CASES[case]
    chunks = _chunks((GOLDEN / f"{case}.chat.sse").read_bytes())
    return b"".join(sse_event(name, payload)
                    for name, payload in _run(request, response_id, model, chunks))


def _client(body: bytes) -> openai.OpenAI:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)
    return openai.OpenAI(api_key="gw-test", base_url="http://gateway.test/v1", max_retries=0,
                         http_client=httpx2.Client(transport=httpx2.MockTransport(answer)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_stream_byte_for_byte(case):
    produced = _translate(case)
    expected = GOLDEN / f"{case}.responses.sse"
    if os.environ.get("GATEWAYZ_UPDATE_GOLDEN"):
        expected.write_bytes(produced)
    assert produced == expected.read_bytes()


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_events_validate_against_the_sdk_types(case):
    parser = SseParser()
    events = parser.feed((GOLDEN / f"{case}.responses.sse").read_bytes())
    for number, event in enumerate(events):
        payload = json.loads(event.data)
        assert payload["type"] == event.event
        assert payload["sequence_number"] == number
        EVENTS.validate_python(payload)  # strict: every required field, every literal
    assert [e.event for e in events[:2]] == ["response.created", "response.in_progress"]


@pytest.mark.parametrize("case", ["text", "parallel_tools", "reasoning"])
def test_sdk_stream_accumulates_a_final_response(case):
    request, response_id, _ = CASES[case]
    body = (GOLDEN / f"{case}.responses.sse").read_bytes()
    params = {k: v for k, v in request.items() if k != "stream"}
    with _client(body).responses.stream(**params) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[-1] == "response.completed"
    assert final.id == response_id and final.status == "completed"
    Response.model_validate(final.model_dump())
    if case == "text":
        assert final.output_text == "Hello! Ça va? 👋"
        assert final.usage.input_tokens == 11 and final.usage.output_tokens == 7
    if case == "parallel_tools":
        calls = [(item.call_id, item.name, json.loads(item.arguments)) for item in final.output]
        assert calls == [("call_7Qm2kXb9RtL4vNc1sYp8HdWe", "get_weather",
                          {"location": "Paris, France"}),
                         ("call_Zc5fJw3nGh8TbQ0aVx6LmKr2", "get_weather",
                          {"location": "Tokyo, Japan"})]
        assert final.usage.input_tokens_details.cached_tokens == 64
    if case == "reasoning":
        assert [item.type for item in final.output] == ["reasoning", "message"]
        assert final.output[0].summary[0].text == "Compare 9.11 and 9.9: 0.11 < 0.9."
        assert final.output_text == "9.9 is larger."
        assert final.usage.output_tokens_details.reasoning_tokens == 10
        assert final.instructions == "Answer briefly."


def test_sdk_iterates_the_incomplete_stream():
    body = (GOLDEN / "length.responses.sse").read_bytes()
    events = list(_client(body).responses.create(model="openai/gpt-4o-mini", input="x",
                                                 stream=True))
    last = events[-1]
    assert last.type == "response.incomplete"
    assert last.response.status == "incomplete"
    assert last.response.incomplete_details.reason == "max_output_tokens"
    assert last.response.output[0].status == "incomplete"
    assert last.response.output_text == "The capital of France is"


def _chunk(delta=None, finish=None, usage=None, index=0):
    choices = [] if delta is None and finish is None else [
        {"index": index, "delta": delta or {}, "logprobs": None, "finish_reason": finish}]
    return {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": choices, "usage": usage}


def _events(chunks, request=None):
    return _run(request or {"model": "m", "input": "hi"}, "resp_T", "m", chunks + ["[DONE]"])


def _check_sequence(events):
    for number, (name, payload) in enumerate(events):
        assert payload["type"] == name and payload["sequence_number"] == number
        EVENTS.validate_python(payload)


def test_empty_stream_still_answers_with_an_empty_message():
    events = _events([_chunk({"role": "assistant", "content": ""}), _chunk(finish="stop")])
    _check_sequence(events)
    final = Response.model_validate(events[-1][1]["response"])
    assert final.status == "completed" and final.output_text == ""
    assert final.usage is None  # the upstream reported none


def test_refusal_streams_as_a_refusal_part():
    events = _events([_chunk({"role": "assistant", "refusal": ""}),
                      _chunk({"refusal": "I can't"}), _chunk({"refusal": " help."}),
                      _chunk(finish="stop")])
    _check_sequence(events)
    names = [name for name, _ in events]
    assert "response.refusal.delta" in names and "response.refusal.done" in names
    final = events[-1][1]["response"]
    assert final["output"][0]["content"] == [{"type": "refusal", "refusal": "I can't help."}]


def test_text_then_tool_call_closes_the_message_first():
    events = _events([
        _chunk({"role": "assistant", "content": "Let me check."}),
        _chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                "function": {"name": "f", "arguments": "{}"}}]}),
        _chunk(finish="tool_calls")])
    _check_sequence(events)
    names = [name for name, _ in events]
    assert names.index("response.output_item.done") < names.index(
        "response.function_call_arguments.delta")
    output = events[-1][1]["response"]["output"]
    assert [item["type"] for item in output] == ["message", "function_call"]
    assert [item["id"] for item in output] == ["msg_T_0", "fc_T_1"]


def test_interleaved_parallel_call_fragments_land_in_their_own_items():
    def frag(index, args, **first):
        return _chunk({"tool_calls": [{"index": index, "function": {"arguments": args,
                                                                     **first}}]})
    events = _events([
        _chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f",
                                                                    "arguments": ""}}]}),
        _chunk({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g",
                                                                    "arguments": ""}}]}),
        frag(0, '{"x":'), frag(1, '{"y":'), frag(0, "1}"), frag(1, "2}"),
        _chunk(finish="tool_calls")])
    _check_sequence(events)
    output = events[-1][1]["response"]["output"]
    assert [(i["call_id"], i["name"], i["arguments"]) for i in output] == [
        ("a", "f", '{"x":1}'), ("b", "g", '{"y":2}')]


def test_a_call_without_an_id_keeps_one_call_id_from_added_to_done():
    events = _events([_chunk({"tool_calls": [{"index": 0, "function": {"name": "f",
                                                                       "arguments": "{}"}}]}),
                      _chunk(finish="tool_calls")])
    added = next(p for n, p in events if n == "response.output_item.added")
    done = next(p for n, p in events if n == "response.output_item.done")
    assert added["item"]["call_id"] == done["item"]["call_id"] == "fc_T_0"


def test_usage_on_the_finish_chunk_and_other_choices_are_ignored():
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    events = _events([_chunk({"content": "a"}), _chunk({"content": "zzz"}, index=1),
                      _chunk({}, "stop", usage)])
    final = events[-1][1]["response"]
    assert final["output"][0]["content"][0]["text"] == "a"
    assert final["usage"]["total_tokens"] == 5
    assert final["usage"]["input_tokens_details"] == {"cached_tokens": 0,
                                                      "cache_write_tokens": 0}


def test_content_filter_is_incomplete():
    events = _events([_chunk({"content": "Part"}), _chunk(finish="content_filter")])
    assert events[-1][0] == "response.incomplete"
    assert events[-1][1]["response"]["incomplete_details"] == {"reason": "content_filter"}


def test_reasoning_details_fragments_are_joined_and_sealed():
    details = [{"type": "reasoning.text", "text": "I should", "format": "anthropic-claude-v1",
                "index": 0}]
    events = _events([
        _chunk({"role": "assistant", "reasoning": "I should", "reasoning_details": details}),
        _chunk({"reasoning": " look.", "reasoning_details": [
            {"type": "reasoning.text", "text": " look.", "index": 0}]}),
        _chunk({"reasoning_details": [{"type": "reasoning.text", "signature": "c2ln",
                                       "index": 0}]}),
        _chunk({"content": "Done."}), _chunk(finish="stop")])
    _check_sequence(events)
    reasoning = events[-1][1]["response"]["output"][0]
    assert reasoning["summary"] == [{"type": "summary_text", "text": "I should look."}]
    assert open_reasoning(reasoning["encrypted_content"]) == [
        {"type": "reasoning.text", "text": "I should look.", "format": "anthropic-claude-v1",
         "index": 0, "signature": "c2ln"}]


def test_failure_mid_stream_sends_failed_then_error_and_nothing_after():
    stream = ChatToResponsesStream({"model": "m", "input": "hi"}, "resp_F", CREATED, "m")
    events = stream.feed(_chunk({"content": "Hal"}))
    events += stream.fail("The provider failed to answer.", "provider_error")
    _check_sequence(events)
    failed, error = events[-2][1], events[-1][1]
    assert events[-2][0] == "response.failed" and events[-1][0] == "error"
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"] == {"code": "server_error",
                                           "message": "The provider failed to answer."}
    assert failed["response"]["output"][0]["status"] == "incomplete"
    assert error["code"] == "provider_error" and error["param"] is None
    assert stream.feed(_chunk({"content": "x"})) == [] and stream.close() == []
    assert stream.fail("again", "provider_error") == []


def test_failure_before_any_chunk_still_starts_the_response():
    stream = ChatToResponsesStream({"model": "m", "input": "hi"}, "resp_F", CREATED, "m")
    events = stream.fail("Too many requests.", "rate_limit_exceeded")
    assert [name for name, _ in events] == ["response.created", "response.in_progress",
                                            "response.failed", "error"]
    assert events[2][1]["response"]["error"]["code"] == "rate_limit_exceeded"


def test_sdk_surfaces_the_failure():
    stream = ChatToResponsesStream({"model": "m", "input": "hi"}, "resp_F", CREATED, "m")
    events = stream.feed(_chunk({"content": "Hal"})) + stream.fail("Upstream failed.",
                                                                   "provider_error")
    body = b"".join(sse_event(name, payload) for name, payload in events)
    received = list(_client(body).responses.create(model="m", input="hi", stream=True))
    assert [e.type for e in received][-2:] == ["response.failed", "error"]
    assert received[-1].message == "Upstream failed."


def test_payloads_are_never_mutated_after_they_are_returned():
    stream = ChatToResponsesStream({"model": "m", "input": "hi"}, "resp_M", CREATED, "m")
    first = stream.feed(_chunk({"content": "a"}))
    snapshot = json.dumps(first)
    stream.feed(_chunk({"content": "b"}))
    stream.close()
    assert json.dumps(first) == snapshot
