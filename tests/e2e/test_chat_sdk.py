"""Chat completions through the official OpenAI SDK (sync, async, streaming) and raw HTTP,
against the served gateway and the fake OpenAI upstream (spec 9.1, 1.2, 6.4)."""

from __future__ import annotations

import asyncio
import json

import openai
from fakes.openai_upstream import Behaviour

from e2e.support import (
    MODEL,
    NATIVE,
    UPSTREAM_CREDENTIAL,
    async_sdk,
    balance,
    chat_body,
    customer,
    post_chat,
    price_model,
    request_record,
    sdk,
)

MESSAGES = [{"role": "user", "content": "one two three"}]


def _sse_events(raw: bytes) -> list[str]:
    """The data payloads of an SSE body, in order; asserts every event is a data line."""
    text = raw.decode()
    assert text.endswith("\n\n"), text[-50:]
    events = []
    for block in text.split("\n\n")[:-1]:
        assert block.startswith("data: "), block
        events.append(block[len("data: "):])
    return events


def test_a_sync_sdk_request_returns_a_parseable_completion_charged_at_the_listed_price(
        served, fake_openai):
    price_model(served, fake_openai, input_price="3", output_price="7")
    who = customer(served, credit_micros=1_000_000)
    client = sdk(served, who.key)

    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
    reply = raw.parse()

    assert reply.object == "chat.completion"
    assert reply.id.startswith("chatcmpl-")
    assert reply.model == MODEL
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content == "Echo: one two three"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.prompt_tokens == 3 and reply.usage.completion_tokens == 4
    assert reply.usage.total_tokens == 7
    request_id = raw.headers["x-request-id"]
    assert request_id.startswith("req_") and len(request_id) == 30
    assert raw.headers["request-id"] == request_id
    record = request_record(served, request_id)
    cost = 3 * 3 + 4 * 7
    assert record["status"] == "settled"
    assert record["provider"] == "fakeup"
    assert record["token_source"] == "provider"
    assert record["charged_micros"] == cost
    assert record["stream"] is False
    assert balance(served, who.key)["balance_micros"] == 1_000_000 - cost


def test_async_sdk_requests_run_concurrently_and_each_is_charged_once(served, fake_openai):
    price_model(served, fake_openai)
    who = customer(served, credit_micros=1_000_000)

    async def run() -> list:
        async with async_sdk(served, who.key) as client:
            return await asyncio.gather(*[
                client.chat.completions.with_raw_response.create(
                    model=MODEL, messages=[{"role": "user", "content": f"word{i} " * (i + 1)}])
                for i in range(5)])

    raws = asyncio.run(run())

    replies = [r.parse() for r in raws]
    assert [r.choices[0].message.content.split()[:2] for r in replies] == \
        [["Echo:", f"word{i}"] for i in range(5)]
    assert len(fake_openai.chat_requests()) == 5
    total = 0
    for raw in raws:
        record = request_record(served, raw.headers["x-request-id"])
        assert record["status"] == "settled"
        total += record["charged_micros"]
    expected = sum(r.usage.prompt_tokens * 1 + r.usage.completion_tokens * 2 for r in replies)
    assert total == expected
    view = balance(served, who.key)
    assert view["balance_micros"] == 1_000_000 - expected
    assert view["open_holds"] == 0


def test_a_stream_without_include_usage_carries_no_usage_but_is_billed_from_provider_usage(
        served, fake_openai):
    """The gateway always asks the provider for usage (issue 5, finding 7) and strips the
    usage chunk from a client that did not ask for it: the client's stream is unchanged,
    the bill is the provider's count, not a text estimate."""
    price_model(served, fake_openai)
    who = customer(served, credit_micros=1_000_000)
    client = sdk(served, who.key)

    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    request_id = stream.response.headers["x-request-id"]
    assert stream.response.headers["content-type"].startswith("text/event-stream")
    chunks = list(stream)

    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)  # no usage-only chunk reached the client
    assert all(c.model == MODEL for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: one two three"
    assert chunks[-1].choices[0].finish_reason == "stop"
    upstream_body = fake_openai.chat_requests()[-1].json
    assert upstream_body["stream_options"] == {"include_usage": True}
    record = request_record(served, request_id)
    assert record["status"] == "settled"
    assert record["stream"] is True
    assert record["token_source"] == "provider"
    assert (record["prompt_tokens"], record["completion_tokens"]) == (3, 4)
    assert record["charged_micros"] == 3 * 1 + 4 * 2
    assert balance(served, who.key)["balance_micros"] == 1_000_000 - record["charged_micros"]


def test_a_stream_with_include_usage_ends_with_a_usage_chunk_that_is_what_gets_billed(
        served, fake_openai):
    price_model(served, fake_openai)
    who = customer(served, credit_micros=1_000_000)
    client = sdk(served, who.key)

    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True,
                                            stream_options={"include_usage": True})
    request_id = stream.response.headers["x-request-id"]
    chunks = list(stream)

    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (3, 4)
    assert all(c.usage is None for c in chunks[:-1])
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: one two three"
    record = request_record(served, request_id)
    assert record["status"] == "settled"
    assert record["token_source"] == "provider"
    assert (record["prompt_tokens"], record["completion_tokens"]) == (3, 4)
    assert record["charged_micros"] == 3 * 1 + 4 * 2
    assert balance(served, who.key)["balance_micros"] == 1_000_000 - 11


def test_an_async_sdk_stream_delivers_every_word_in_order(served, fake_openai):
    price_model(served, fake_openai)
    fake_openai.default = Behaviour(content=" ".join(f"w{i}" for i in range(30)))
    who = customer(served, credit_micros=1_000_000)

    async def run() -> list[str]:
        async with async_sdk(served, who.key) as client:
            stream = await client.chat.completions.create(
                model=MODEL, messages=MESSAGES, stream=True,
                stream_options={"include_usage": True})
            pieces = []
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    pieces.append(chunk.choices[0].delta.content)
            return pieces

    pieces = asyncio.run(run())

    assert "".join(pieces).split() == [f"w{i}" for i in range(30)]


def test_a_raw_stream_is_server_sent_events_ending_with_data_done(served, fake_openai):
    price_model(served, fake_openai)
    who = customer(served, credit_micros=1_000_000)

    with served.http.stream("POST", "/v1/chat/completions",
                            headers={"Authorization": f"Bearer {who.key}"},
                            json=chat_body(stream=True,
                                           stream_options={"include_usage": True})) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-request-id"].startswith("req_")
        raw = b"".join(response.iter_raw())

    events = _sse_events(raw)
    assert events[-1] == "[DONE]"
    assert events.count("[DONE]") == 1
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[-1]["usage"]["completion_tokens"] == 4
    assert {c["model"] for c in chunks} == {MODEL}


def test_every_field_the_client_sent_is_forwarded_and_only_the_model_is_rewritten(
        served, fake_openai):
    price_model(served, fake_openai)
    who = customer(served, credit_micros=1_000_000)
    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}]
    body = chat_body(tools=tools, tool_choice="auto", parallel_tool_calls=False,
                     response_format={"type": "json_object"}, temperature=0.2, top_p=0.9,
                     seed=7, stop=["\n\n"], max_tokens=50, user="end-user-1",
                     metadata={"team": "a"}, logit_bias={"50256": -100}, top_k=5,
                     vendor_flag={"nested": [1, 2, {"deep": True}]})

    response = post_chat(served, who.key, body)

    assert response.status_code == 200, response.text
    upstream = fake_openai.chat_requests()[-1]
    assert upstream.json == {**body, "model": NATIVE}
    assert response.json()["choices"][0]["finish_reason"] == "tool_calls"


def test_the_sdk_tool_call_and_extra_body_fields_reach_the_provider(served, fake_openai):
    price_model(served, fake_openai)
    who = customer(served, credit_micros=1_000_000)
    client = sdk(served, who.key)
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {"q": {"type": "string"}}}}}]

    reply = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, tools=tools,
        response_format={"type": "json_object"}, extra_body={"top_k": 5})

    call = reply.choices[0].message.tool_calls[0]
    assert call.function.name == "lookup"
    assert reply.choices[0].finish_reason == "tool_calls"
    sent = fake_openai.chat_requests()[-1].json
    assert sent["model"] == NATIVE
    assert sent["top_k"] == 5
    assert sent["tools"] == tools
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["messages"] == MESSAGES


def test_the_client_credentials_never_reach_the_provider_which_gets_its_own_credential(
        served, fake_openai):
    price_model(served, fake_openai)
    who = customer(served, credit_micros=1_000_000)

    by_both = post_chat(served, None, chat_body(),
                        headers={"Authorization": f"Bearer {who.key}", "x-api-key": who.key})
    by_x_api_key = post_chat(served, None, chat_body(), headers={"x-api-key": who.key})
    reply = sdk(served, who.key).chat.completions.create(model=MODEL, messages=MESSAGES)

    assert by_both.status_code == 200, by_both.text
    assert by_x_api_key.status_code == 200, by_x_api_key.text
    assert reply.choices[0].message.content
    received = fake_openai.chat_requests()
    assert len(received) == 3
    for upstream in received:
        assert upstream.headers["authorization"] == f"Bearer {UPSTREAM_CREDENTIAL}"
        assert "x-api-key" not in upstream.headers
        assert all(who.key not in value for value in upstream.headers.values())
        assert all(who.key[:20] not in value for value in upstream.headers.values())


def test_a_client_request_id_is_echoed_and_the_gateway_id_is_fresh_per_request(
        served, fake_openai):
    price_model(served, fake_openai)
    who = customer(served, credit_micros=1_000_000)

    first = post_chat(served, who.key, chat_body(), headers={"X-Client-Request-Id": "abc.1:2-3"})
    second = post_chat(served, who.key, chat_body())

    assert first.headers["x-client-request-id"] == "abc.1:2-3"
    assert "x-client-request-id" not in second.headers
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


def test_the_model_list_served_to_the_sdk_contains_the_priced_model(served, fake_openai):
    price_model(served, fake_openai)
    who = customer(served, credit_micros=1_000_000)

    ids = [m.id for m in sdk(served, who.key).models.list()]

    assert MODEL in ids


def test_an_sdk_error_from_the_gateway_is_an_openai_exception_not_a_parse_failure(
        served, fake_openai):
    price_model(served, fake_openai)
    who = customer(served, credit_micros=1_000_000)

    try:
        sdk(served, who.key).chat.completions.create(model="acme/missing-x", messages=MESSAGES)
    except openai.NotFoundError as error:
        assert error.status_code == 404
        assert error.code == "model_not_found"
        assert error.param == "model"
        assert error.request_id and error.request_id.startswith("req_")
    else:
        raise AssertionError("expected NotFoundError")
