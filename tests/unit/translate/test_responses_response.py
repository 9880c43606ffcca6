"""A chat completion -> a Response object, checked against the official SDK's model."""

import json

import pytest
from openai.types.responses import Response

from application.translate.responses.response import (
    item_id,
    open_reasoning,
    response_object,
    seal_reasoning,
    usage_of,
)

RID = "resp_01JZ8X7D0F5H8K1M4P7R0T3V6X"
USAGE = {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160,
         "prompt_tokens_details": {"cached_tokens": 100},
         "completion_tokens_details": {"reasoning_tokens": 12}}


def _chat(message, finish="stop", usage=USAGE):
    return {"id": "chatcmpl-abc", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", **message},
                         "logprobs": None, "finish_reason": finish}],
            "usage": usage}


def _response(message, finish="stop", request=None, usage=USAGE):
    body = response_object(_chat(message, finish, usage), request or {"model": "x", "input": "hi"},
                           RID, 1751898000, "openai/gpt-4o")
    return body, Response.model_validate(body)  # strict: the SDK's own model accepts it


def test_text_answer():
    body, parsed = _response({"content": "Hello there.", "refusal": None})
    assert parsed.id == RID and parsed.object == "response" and parsed.status == "completed"
    assert parsed.created_at == 1751898000 and parsed.model == "openai/gpt-4o"
    assert parsed.output_text == "Hello there."
    assert body["output"] == [{"id": "msg_01JZ8X7D0F5H8K1M4P7R0T3V6X_0", "type": "message",
                               "status": "completed", "role": "assistant",
                               "content": [{"type": "output_text", "annotations": [],
                                            "text": "Hello there."}]}]
    assert body["incomplete_details"] is None and body["error"] is None


def test_usage_maps_cached_and_reasoning_tokens():
    _, parsed = _response({"content": "x"})
    usage = parsed.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (120, 40, 160)
    assert usage.input_tokens_details.cached_tokens == 100
    assert usage.output_tokens_details.reasoning_tokens == 12
    assert usage_of(None) is None
    assert usage_of({"prompt_tokens": 2, "completion_tokens": 3})["total_tokens"] == 5


@pytest.mark.parametrize("finish, reason", [("length", "max_output_tokens"),
                                            ("content_filter", "content_filter")])
def test_early_stops_are_incomplete(finish, reason):
    body, parsed = _response({"content": "The capital of"}, finish)
    assert parsed.status == "incomplete"
    assert parsed.incomplete_details.reason == reason
    assert body["output"][0]["status"] == "incomplete"


def test_tool_calls_become_function_call_items_without_an_empty_message():
    calls = [{"id": "call_a", "type": "function",
              "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
             {"id": "call_b", "type": "function",
              "function": {"name": "get_time", "arguments": "{}"}}]
    body, parsed = _response({"content": None, "tool_calls": calls}, "tool_calls")
    assert parsed.status == "completed"
    assert body["output"] == [
        {"id": "fc_01JZ8X7D0F5H8K1M4P7R0T3V6X_0", "type": "function_call",
         "status": "completed", "arguments": '{"city":"Paris"}', "call_id": "call_a",
         "name": "get_weather"},
        {"id": "fc_01JZ8X7D0F5H8K1M4P7R0T3V6X_1", "type": "function_call",
         "status": "completed", "arguments": "{}", "call_id": "call_b", "name": "get_time"}]


def test_text_with_tool_calls_keeps_both_in_order():
    calls = [{"id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    body, _ = _response({"content": "Checking.", "tool_calls": calls}, "tool_calls")
    assert [item["type"] for item in body["output"]] == ["message", "function_call"]


def test_reasoning_content_becomes_a_reasoning_item_first():
    body, parsed = _response({"content": "9.9", "reasoning_content": "0.9 > 0.11"})
    assert body["output"][0] == {"id": "rs_01JZ8X7D0F5H8K1M4P7R0T3V6X_0", "type": "reasoning",
                                 "summary": [{"type": "summary_text", "text": "0.9 > 0.11"}]}
    assert body["output"][1]["id"] == "msg_01JZ8X7D0F5H8K1M4P7R0T3V6X_1"
    assert parsed.output_text == "9.9"


def test_openrouter_reasoning_field_is_read_too():
    body, _ = _response({"content": "ok", "reasoning": "thinking"})
    assert body["output"][0]["summary"][0]["text"] == "thinking"


def test_reasoning_details_are_sealed_for_the_next_turn():
    details = [{"type": "reasoning.text", "text": "t", "signature": "sig",
                "format": "anthropic-claude-v1", "index": 0},
               {"type": "reasoning.encrypted", "data": "opaque",
                "format": "anthropic-claude-v1", "index": 1}]
    body, parsed = _response({"content": "ok", "reasoning_content": "t",
                              "reasoning_details": details})
    sealed = parsed.output[0].encrypted_content
    assert open_reasoning(sealed) == details
    assert "sig" not in json.dumps(body["output"][0]["summary"])


def test_open_reasoning_refuses_what_it_did_not_seal():
    assert open_reasoning(None) is None
    assert open_reasoning("gAAAAABopaque-openai-blob") is None
    assert open_reasoning("gwz1.!!!not-base64") is None
    assert open_reasoning(seal_reasoning([])) == []


def test_refusal_is_a_refusal_part():
    body, parsed = _response({"content": None, "refusal": "I can't help with that."})
    assert body["output"][0]["content"] == [{"type": "refusal",
                                             "refusal": "I can't help with that."}]
    assert parsed.output_text == ""


def test_empty_answer_still_has_a_message():
    body, parsed = _response({"content": None}, usage=None)
    assert parsed.output_text == "" and body["usage"] is None


def test_request_settings_are_echoed_as_the_sdk_expects():
    request = {"model": "x", "input": "hi", "instructions": "Be brief.", "max_output_tokens": 50,
               "metadata": {"k": "v"}, "parallel_tool_calls": False, "temperature": 0.2,
               "top_p": 0.9, "tool_choice": {"type": "function", "name": "f"},
               "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
               "text": {"format": {"type": "json_schema", "name": "s", "strict": True,
                                   "schema": {"type": "object"}}},
               "reasoning": {"effort": "low"}, "store": False,
               "previous_response_id": "resp_prev", "user": "u-1"}
    body, parsed = _response({"content": "{}"}, request=request)
    assert parsed.instructions == "Be brief." and parsed.max_output_tokens == 50
    assert parsed.metadata == {"k": "v"} and parsed.parallel_tool_calls is False
    assert (parsed.temperature, parsed.top_p) == (0.2, 0.9)
    assert parsed.tool_choice.name == "f" and parsed.tools[0].name == "f"
    assert parsed.text.format.type == "json_schema" and parsed.reasoning.effort == "low"
    assert body["store"] is False and parsed.previous_response_id == "resp_prev"
    assert parsed.user == "u-1"


def test_defaults_when_the_request_set_nothing():
    body, _ = _response({"content": "x"})
    assert body["tools"] == [] and body["tool_choice"] == "auto"
    assert body["text"] == {"format": {"type": "text"}} and body["metadata"] == {}
    assert body["store"] is True and body["parallel_tool_calls"] is True


def test_ids_are_deterministic():
    assert item_id("msg", "resp_abc", 0) == "msg_abc_0"
    assert item_id("fc", "other", 2) == "fc_other_2"
    first, _ = _response({"content": "same"})
    again, _ = _response({"content": "same"})
    assert first == again


def test_no_provider_fields_leak():
    chat = _chat({"content": "x"})
    chat["system_fingerprint"] = "fp_123"
    chat["provider"] = "Acme"
    body = response_object(chat, {"model": "x", "input": "hi"}, RID, 1, "m")
    assert "fp_123" not in json.dumps(body) and "Acme" not in json.dumps(body)
