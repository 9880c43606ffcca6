"""Responses request validation, its chat-completions body, and the stored turn."""

import copy

import pytest

from application.chat_request import parse_chat
from application.translate.responses.request import chat_body, parse_responses, turn_messages
from application.translate.responses.response import response_object, seal_reasoning
from domain.errors import DomainError

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
           "strict": True}


def _body(**extra):
    return {"model": "openai/gpt-4o", "input": "hi", **extra}


def _refused(body, param, code="invalid_request"):
    with pytest.raises(DomainError) as info:
        parse_responses(body)
    assert (info.value.code, info.value.param) == (code, param)
    assert info.value.message and len(info.value.message) <= 500


def _chat(body, history=()):
    chat = chat_body(parse_responses(body), list(history))
    parse_chat(chat)  # the chat pipeline accepts what this module produces
    return chat


def test_valid_body_is_returned_unchanged():
    body = _body(instructions="x", max_output_tokens=10, temperature=0, tools=[WEATHER],
                 tool_choice="required", text={"format": {"type": "json_object"}},
                 reasoning={"effort": "low", "summary": "auto"}, stream=True, store=False,
                 previous_response_id="resp_1", metadata={"a": "b"}, top_p=1, user="u",
                 include=["reasoning.encrypted_content"], truncation="disabled",
                 background=False)
    snapshot = copy.deepcopy(body)
    assert parse_responses(body) is body and body == snapshot


@pytest.mark.parametrize("body, param", [
    ([], None), ({"input": "hi"}, "model"), (_body(model=""), "model"),
    ({"model": "m"}, "input"), (_body(input=5), "input"), (_body(input=[1]), "input[0]"),
    (_body(input=[{"role": "robot", "content": "x"}]), "input[0].role"),
    (_body(input=[{"role": "user", "content": 3}]), "input[0].content"),
    (_body(input=[{"role": "user", "content": [{"type": "weird"}]}]), "input[0].content[0]"),
    (_body(input=[{"type": "function_call", "name": "f", "arguments": "{}"}]),
     "input[0].call_id"),
    (_body(input=[{"type": "function_call_output", "call_id": "c", "output": 5}]),
     "input[0].output"),
    (_body(instructions=3), "instructions"),
    (_body(max_output_tokens=0), "max_output_tokens"),
    (_body(max_output_tokens=True), "max_output_tokens"),
    (_body(max_output_tokens=1_000_001), "max_output_tokens"),
    (_body(temperature=2.5), "temperature"), (_body(temperature="1"), "temperature"),
    (_body(top_p=1.5), "top_p"), (_body(stream="yes"), "stream"), (_body(store=1), "store"),
    (_body(previous_response_id=7), "previous_response_id"),
    (_body(metadata={"k": 1}), "metadata"),
    (_body(metadata={str(i): "v" for i in range(17)}), "metadata"),
    (_body(tools="x"), "tools"), (_body(tools=[WEATHER] * 129), "tools"),
    (_body(tools=[{"type": "function"}]), "tools[0].name"),
    (_body(tools=[{**WEATHER, "parameters": "x"}]), "tools[0].parameters"),
    (_body(tool_choice="sometimes"), "tool_choice"),
    (_body(tool_choice={"type": "function"}), "tool_choice.name"),
    (_body(text={"format": {"type": "yaml"}}), "text.format.type"),
    (_body(text={"format": {"type": "json_schema", "schema": {}}}), "text.format.name"),
    (_body(text={"format": {"type": "json_schema", "name": "s"}}), "text.format.schema"),
    (_body(text={"verbosity": "loud"}), "text.verbosity"),
    (_body(reasoning={"effort": "extreme"}), "reasoning.effort"),
    (_body(reasoning={"summary": "long"}), "reasoning.summary"),
    (_body(reasoning="high"), "reasoning"), (_body(include="all"), "include"),
])
def test_invalid_requests_name_the_field(body, param):
    _refused(body, param)


@pytest.mark.parametrize("kind", ["web_search", "web_search_preview", "file_search",
                                  "code_interpreter", "computer_use_preview",
                                  "image_generation", "mcp", "local_shell", "custom"])
def test_hosted_tools_are_refused_by_index(kind):
    _refused(_body(tools=[WEATHER, {"type": kind}]), "tools[1]", "unsupported_parameter")


@pytest.mark.parametrize("body, param", [
    (_body(background=True), "background"), (_body(conversation="conv_1"), "conversation"),
    (_body(top_logprobs=3), "top_logprobs"), (_body(max_tool_calls=2), "max_tool_calls"),
    (_body(truncation="auto"), "truncation"),
    (_body(include=["reasoning.encrypted_content", "message.output_text.logprobs"]),
     "include[1]"),
    (_body(tool_choice={"type": "web_search"}), "tool_choice"),
    (_body(input=[{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]),
     "input[0].content[0].file_id"),
    (_body(input=[{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]),
     "input[0].content[0]"),
    (_body(input=[{"type": "item_reference", "id": "msg_1"}]), "input[0]"),
    (_body(input=[{"type": "function_call_output", "call_id": "c",
                   "output": [{"type": "input_image", "image_url": "https://x/y.png"}]}]),
     "input[0].output"),
])
def test_features_the_gateway_cannot_provide_are_refused_by_name(body, param):
    _refused(body, param, "unsupported_parameter")


def test_string_input_and_instructions():
    chat = _chat(_body(instructions="Be brief.", max_output_tokens=64))
    assert chat["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "hi"}]
    assert chat["max_completion_tokens"] == 64 and "max_output_tokens" not in chat


def test_message_items_with_text_and_image_parts():
    image = "data:image/png;base64,iVBORw0KGgo="
    chat = _chat(_body(input=[
        {"role": "developer", "content": "Use French."},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "What is this?"},
            {"type": "input_image", "image_url": image, "detail": "low"}]},
        {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
         "content": [{"type": "output_text", "text": "A dot.", "annotations": []}]},
        {"role": "user", "content": [{"type": "input_image", "image_url": "https://x/y.png"}]}]))
    assert chat["messages"] == [
        {"role": "developer", "content": "Use French."},
        {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                     {"type": "image_url",
                                      "image_url": {"url": image, "detail": "low"}}]},
        {"role": "assistant", "content": "A dot."},
        {"role": "user", "content": [{"type": "image_url",
                                      "image_url": {"url": "https://x/y.png"}}]}]


def test_function_calls_merge_into_one_assistant_turn_and_outputs_become_tool_messages():
    chat = _chat(_body(tools=[WEATHER], input=[
        {"role": "user", "content": "Paris and Oslo?"},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "function_call", "id": "fc_1", "call_id": "call_a", "name": "get_weather",
         "arguments": '{"city":"Paris"}', "status": "completed"},
        {"type": "function_call", "call_id": "call_b", "name": "get_weather",
         "arguments": '{"city":"Oslo"}'},
        {"type": "function_call_output", "call_id": "call_a", "output": "18C"},
        {"type": "function_call_output", "call_id": "call_b",
         "output": [{"type": "input_text", "text": "9"}, {"type": "input_text", "text": "C"}]}]))
    assert chat["messages"][1:] == [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_a", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "call_b", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_b", "content": "9C"}]


def test_sealed_reasoning_goes_back_with_its_assistant_turn():
    details = [{"type": "reasoning.text", "text": "t", "signature": "sig", "index": 0}]
    chat = _chat(_body(input=[
        {"role": "user", "content": "q"},
        {"type": "reasoning", "id": "rs_1", "encrypted_content": seal_reasoning(details),
         "summary": [{"type": "summary_text", "text": "t"}]},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}]))
    assert chat["messages"][1] == {
        "role": "assistant", "content": None,
        "tool_calls": [{"id": "c", "type": "function",
                        "function": {"name": "f", "arguments": "{}"}}],
        "reasoning_content": "t", "reasoning_details": details}


def test_parameters_map_to_their_chat_names():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    chat = _chat(_body(
        tools=[WEATHER], tool_choice={"type": "function", "name": "get_weather"},
        parallel_tool_calls=False, reasoning={"effort": "high", "summary": "auto"},
        text={"format": {"type": "json_schema", "name": "out", "schema": schema,
                         "strict": True}, "verbosity": "low"},
        temperature=0.3, top_p=0.8, user="u-1", stream=True))
    assert chat["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": WEATHER["parameters"], "strict": True}}]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert chat["parallel_tool_calls"] is False
    assert chat["reasoning_effort"] == "high" and chat["verbosity"] == "low"
    assert chat["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "out", "schema": schema, "strict": True}}
    assert (chat["temperature"], chat["top_p"], chat["user"]) == (0.3, 0.8, "u-1")
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}
    for name in ("text", "reasoning", "input", "instructions"):
        assert name not in chat


@pytest.mark.parametrize("choice", ["auto", "none", "required"])
def test_tool_choice_strings_pass(choice):
    assert _chat(_body(tools=[WEATHER], tool_choice=choice))["tool_choice"] == choice


def test_text_formats():
    assert "response_format" not in _chat(_body(text={"format": {"type": "text"}}))
    assert _chat(_body(text={"format": {"type": "json_object"}}))["response_format"] == {
        "type": "json_object"}


def test_gateway_fields_are_consumed_and_unknown_fields_pass_through():
    chat = _chat(_body(store=True, previous_response_id="resp_1", metadata={"a": "b"},
                       include=["reasoning.encrypted_content"], parallel_tool_calls=True,
                       provider={"order": ["acme"]}, top_k=40, prompt_cache_key="k"))
    for name in ("store", "previous_response_id", "metadata", "include",
                 "parallel_tool_calls", "stream", "stream_options"):
        assert name not in chat
    assert chat["provider"] == {"order": ["acme"]} and chat["top_k"] == 40
    assert chat["prompt_cache_key"] == "k"


def test_history_goes_after_instructions_and_before_the_new_input():
    history = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "one"}]
    chat = _chat(_body(instructions="New rules.", input="second"), history)
    assert chat["messages"] == [{"role": "system", "content": "New rules."}, *history,
                                {"role": "user", "content": "second"}]


def test_two_turns_via_previous_response_id_send_the_first_turn_upstream():
    first = parse_responses(_body(instructions="Old rules.", input="My name is Ada."))
    answer = {"choices": [{"index": 0, "finish_reason": "stop",
                           "message": {"role": "assistant", "content": "Hello Ada."}}]}
    stored = turn_messages(first, response_object(answer, first, "resp_1", 1, "m"))
    assert stored == [{"role": "user", "content": "My name is Ada."},
                      {"role": "assistant", "content": "Hello Ada."}]
    second = _chat(_body(input="What is my name?", previous_response_id="resp_1"), stored)
    assert second["messages"] == [*stored, {"role": "user", "content": "What is my name?"}]


def test_a_tool_turn_is_stored_as_tool_calls_with_sealed_reasoning():
    body = parse_responses(_body(tools=[WEATHER], input=[
        {"role": "user", "content": "Weather?"}]))
    details = [{"type": "reasoning.text", "text": "t", "signature": "s", "index": 0}]
    answer = {"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None, "reasoning_content": "t",
        "reasoning_details": details,
        "tool_calls": [{"id": "call_1", "type": "function",
                        "function": {"name": "get_weather", "arguments": "{}"}}]}}]}
    stored = turn_messages(body, response_object(answer, body, "resp_2", 1, "m"))
    assert stored == [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "reasoning_content": "t",
         "reasoning_details": details,
         "tool_calls": [{"id": "call_1", "type": "function",
                         "function": {"name": "get_weather", "arguments": "{}"}}]}]
    follow = _chat(_body(tools=[WEATHER], previous_response_id="resp_2", input=[
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}]), stored)
    assert follow["messages"][-1] == {"role": "tool", "tool_call_id": "call_1",
                                      "content": "sunny"}


def test_unsealed_reasoning_is_not_sent_back():
    body = parse_responses(_body(input="q"))
    answer = {"choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "a", "reasoning_content": "deepseek thoughts"}}]}
    stored = turn_messages(body, response_object(answer, body, "resp_3", 1, "m"))
    assert stored[-1] == {"role": "assistant", "content": "a"}


def test_refusal_output_is_stored_as_a_refusal():
    body = parse_responses(_body())
    answer = {"choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": None, "refusal": "No."}}]}
    stored = turn_messages(body, response_object(answer, body, "resp_4", 1, "m"))
    assert stored[-1] == {"role": "assistant", "content": "", "refusal": "No."}


def test_prompt_template_without_input_is_accepted():
    body = {"model": "m", "prompt": {"id": "pmt_1", "variables": {"name": "Ada"}}}
    assert parse_responses(body) is body
    assert chat_body(body, [])["prompt"] == body["prompt"]


def test_tool_settings_without_tools_are_not_sent():
    chat = _chat(_body(tool_choice="none", parallel_tool_calls=False))
    assert "tool_choice" not in chat and "parallel_tool_calls" not in chat
