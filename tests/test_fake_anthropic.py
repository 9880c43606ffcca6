"""Proves FakeAnthropic speaks the real Messages API wire format, using the real anthropic SDK."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import anthropic
import httpx
import httpx2
import pytest
from fakes.anthropic_fixtures import fake_anthropic, fake_anthropic_server  # noqa: F401
from fakes.anthropic_reply import thinking_signature
from fakes.anthropic_upstream import Behaviour, FakeAnthropic

MODEL = "claude-sonnet-4-5-20250929"
USER = [{"role": "user", "content": "hello there world"}]
TOOLS = [{"name": name, "description": "d", "input_schema": {"type": "object"}}
         for name in ("get_weather", "get_time")]
THINKING = {"type": "enabled", "budget_tokens": 1024}
PNG = "iVBORw0KGgo="


@pytest.fixture
def fake(fake_anthropic: FakeAnthropic) -> FakeAnthropic:  # noqa: F811
    return fake_anthropic


@pytest.fixture
def client(fake: FakeAnthropic) -> Iterator[anthropic.Anthropic]:
    # No retries: a retried request would hide which behaviour answered it.
    with anthropic.Anthropic(base_url=fake.root_url, api_key=fake.api_key, max_retries=0,
                             timeout=5) as sdk:
        yield sdk


def raw_post(fake: FakeAnthropic, body: object, **headers: str) -> httpx.Response:
    sent = {"x-api-key": fake.api_key, "anthropic-version": "2023-06-01", **headers}
    return httpx.post(f"{fake.base_url}/messages", json=body,
                      headers={k: v for k, v in sent.items() if v})


def test_create_returns_a_message_the_sdk_parses(fake: FakeAnthropic,
                                                 client: anthropic.Anthropic) -> None:
    raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=100, messages=USER,
                                                   system="be brief")
    message = raw.parse()
    assert re.fullmatch(r"req_\w+", raw.headers["request-id"])
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_") and message.model == MODEL
    assert [(b.type, b.text) for b in message.content] == [("text", "Echo: hello there world")]
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens) == (5, 4)
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (0, 0)

    [received] = fake.message_requests()
    assert received.headers["authorization"] == f"Bearer {fake.api_key}"
    assert received.headers["anthropic-version"]
    assert received.json["max_tokens"] == 100


def test_stream_events_and_final_message(fake: FakeAnthropic,
                                         client: anthropic.Anthropic) -> None:
    fake.script(Behaviour(text="one two three four five", chunk_words=2, input_tokens=11,
                          cache_read=7, cache_creation=3))
    with client.messages.stream(model=MODEL, max_tokens=100, messages=USER) as stream:
        events = list(stream)
        final = stream.get_final_message()
    raw = [e for e in events if e.type not in ("text",)]
    assert [e.type for e in raw] == [
        "message_start", "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    start = raw[0].message
    assert start.content == [] and start.stop_reason is None
    assert (start.usage.input_tokens, start.usage.output_tokens) == (11, 1)
    assert (start.usage.cache_read_input_tokens, start.usage.cache_creation_input_tokens) \
        == (7, 3)
    assert [e.delta.text for e in raw if e.type == "content_block_delta"] \
        == ["one two", " three four", " five"]
    assert all(e.index == 0 for e in raw[1:6])
    assert raw[6].delta.stop_reason == "end_turn" and raw[6].usage.output_tokens == 5
    assert final.content[0].text == "one two three four five"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (11, 5)


def test_raw_sse_has_event_lines_ping_and_headers(fake: FakeAnthropic) -> None:
    response = raw_post(fake, {"model": MODEL, "max_tokens": 10, "messages": USER,
                               "stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["request-id"].startswith("req_")
    frames = response.text.strip().split("\n\n")
    names = [f.split("\n")[0] for f in frames]
    assert names[:2] == ["event: message_start", "event: ping"]
    assert names[-2:] == ["event: message_delta", "event: message_stop"]
    assert all(f.split("\n")[1].startswith("data: {") for f in frames)


def test_parallel_tool_uses_create_and_stream(fake: FakeAnthropic,
                                              client: anthropic.Anthropic) -> None:
    calls = (("get_weather", {"city": "Paris", "unit": "celsius"}), ("get_time", {"tz": "CET"}))
    fake.script(Behaviour(tool_uses=calls), Behaviour(tool_uses=calls))
    message = client.messages.create(model=MODEL, max_tokens=100, messages=USER, tools=TOOLS)
    assert message.stop_reason == "tool_use"
    assert [(b.type, b.name, b.input) for b in message.content] \
        == [("tool_use", name, arguments) for name, arguments in calls]
    assert all(re.fullmatch(r"toolu_[0-9a-f]{24}", b.id) for b in message.content)
    assert message.usage.output_tokens == 2

    with client.messages.stream(model=MODEL, max_tokens=100, messages=USER,
                                tools=TOOLS) as stream:
        events = list(stream)
        final = stream.get_final_message()
    fragments = [e.delta.partial_json for e in events
                 if e.type == "content_block_delta" and e.index == 0]
    assert fragments[0] == "" and len(fragments) >= 3
    starts = [e.content_block for e in events if e.type == "content_block_start"]
    assert [(b.name, b.input) for b in starts] == [("get_weather", {}), ("get_time", {})]
    assert [b.input for b in final.content] == [arguments for _, arguments in calls]
    assert final.stop_reason == "tool_use"


def test_default_tool_round_trip_and_pairing_checks(fake: FakeAnthropic,
                                                    client: anthropic.Anthropic) -> None:
    first = client.messages.create(model=MODEL, max_tokens=100, messages=USER, tools=TOOLS)
    [call] = first.content
    assert (call.name, call.input, first.stop_reason) == ("get_weather", {}, "tool_use")
    result = {"type": "tool_result", "tool_use_id": call.id, "content": "sunny 21C"}
    turns = [*USER, {"role": "assistant", "content": first.content},
             {"role": "user", "content": [result]}]
    second = client.messages.create(model=MODEL, max_tokens=100, messages=turns, tools=TOOLS)
    assert second.stop_reason == "end_turn"
    assert second.content[0].text == "Echo: sunny 21C"

    stray = {**result, "tool_use_id": "toolu_x"}
    wrong = [*turns[:2], {"role": "user", "content": [result, stray]}]
    with pytest.raises(anthropic.BadRequestError, match="unexpected `tool_use_id`"):
        client.messages.create(model=MODEL, max_tokens=100, messages=wrong, tools=TOOLS)
    unanswered = [*turns[:2], {"role": "user", "content": "and?"}]
    with pytest.raises(anthropic.BadRequestError, match="without `tool_result`"):
        client.messages.create(model=MODEL, max_tokens=100, messages=unanswered, tools=TOOLS)
    chosen = client.messages.create(model=MODEL, max_tokens=100, messages=USER, tools=TOOLS,
                                    tool_choice={"type": "tool", "name": "get_time"})
    assert chosen.content[0].name == "get_time"


def test_thinking_across_two_tool_turns_must_be_sent_back(
    fake: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    def ask(messages: list[dict[str, object]]) -> anthropic.types.Message:
        return client.messages.create(model=MODEL, max_tokens=2048, thinking=THINKING,
                                      messages=messages, tools=TOOLS)

    first = ask(USER)
    thinking, call = first.content
    assert thinking.type == "thinking" and thinking.signature == \
        thinking_signature(thinking.thinking)
    assert first.usage.output_tokens == len(thinking.thinking.split()) + 1
    assert first.usage.output_tokens_details.thinking_tokens == len(thinking.thinking.split())

    fake.script(Behaviour(tool_uses=(("get_time", {}),)))
    turns = [*USER, {"role": "assistant", "content": first.content},
             {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                           "content": "sunny"}]}]
    second = ask(turns)
    # No interleaved-thinking beta: no new thinking after a tool result.
    [second_call] = second.content
    turns += [{"role": "assistant", "content": second.content},
              {"role": "user", "content": [{"type": "tool_result",
                                            "tool_use_id": second_call.id, "content": "noon"}]}]
    assert ask(turns).content[0].text == "Echo: noon"

    dropped = [*turns[:1], {"role": "assistant", "content": [call]}, *turns[2:]]
    with pytest.raises(anthropic.BadRequestError, match="Expected `thinking` or "
                                                        "`redacted_thinking`, but found "
                                                        "`tool_use`"):
        ask(dropped)
    forged = {"type": "thinking", "thinking": "edited", "signature": thinking.signature}
    with pytest.raises(anthropic.BadRequestError, match="Invalid `signature`"):
        ask([*turns[:1], {"role": "assistant", "content": [forged, call]}, turns[2]])
    redacted = {"type": "redacted_thinking", "data": "opaque"}
    assert ask([*turns[:1], {"role": "assistant", "content": [redacted, call]}, turns[2]])

    betas = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=2048, thinking=THINKING, messages=turns[:3], tools=TOOLS,
        extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"}).parse()
    assert [b.type for b in betas.content] == ["thinking", "text"]
    assert fake.message_requests()[-1].headers["anthropic-beta"].startswith("interleaved")


def test_thinking_and_redacted_thinking_stream(fake: FakeAnthropic,
                                               client: anthropic.Anthropic) -> None:
    fake.script(Behaviour(thinking="a b c", redacted_thinking="ZW5j", text="done"))
    with client.messages.stream(model=MODEL, max_tokens=2048, thinking=THINKING,
                                messages=USER) as stream:
        events = list(stream)
        final = stream.get_final_message()
    deltas = [e.delta.type for e in events if e.type == "content_block_delta"]
    assert deltas == ["thinking_delta"] * 3 + ["signature_delta", "text_delta"]
    assert [b.type for b in final.content] == ["thinking", "redacted_thinking", "text"]
    assert final.content[0].signature == thinking_signature("a b c")
    assert final.content[1].data == "ZW5j"
    assert final.usage.output_tokens == 4


@pytest.mark.parametrize(("change", "message"), [
    ({"max_tokens": None}, "max_tokens: Field required"),
    ({"temperature": 1.5}, "temperature"),
    ({"thinking": {"type": "enabled", "budget_tokens": 512}}, "greater than or equal to 1024"),
    ({"thinking": {"type": "enabled", "budget_tokens": 2000}, "max_tokens": 1500},
     "`max_tokens` must be greater than `thinking.budget_tokens`"),
    ({"messages": [{"role": "assistant", "content": "hi"}]}, 'first message must use the "user"'),
    ({"messages": [*USER, *USER]}, "roles must alternate"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/bmp",
                                     "data": PNG}}]}]}, "media_type"),
])
def test_invalid_requests_get_the_real_400(fake: FakeAnthropic, change: dict[str, object],
                                           message: str) -> None:
    body = {"model": MODEL, "max_tokens": 100, "messages": USER, **change}
    response = raw_post(fake, {k: v for k, v in body.items() if v is not None})
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert message in error["error"]["message"]
    assert error["request_id"] == response.headers["request-id"]


def test_headers_are_checked(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    body = {"model": MODEL, "max_tokens": 10, "messages": USER}
    missing = raw_post(fake, body, **{"x-api-key": ""})
    assert missing.status_code == 401
    assert missing.json()["error"] == {"type": "authentication_error",
                                       "message": "x-api-key header is required"}
    assert raw_post(fake, body, **{"anthropic-version": ""}).status_code == 400
    assert raw_post(fake, body).status_code == 200
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client.with_options(api_key="sk-ant-wrong").messages.create(
            model=MODEL, max_tokens=10, messages=USER)
    assert caught.value.type == "authentication_error"
    assert caught.value.request_id.startswith("req_")


@pytest.mark.parametrize(("status", "error", "kind"), [
    (400, anthropic.BadRequestError, "invalid_request_error"),
    (403, anthropic.PermissionDeniedError, "permission_error"),
    (404, anthropic.NotFoundError, "not_found_error"),
    (413, anthropic.ContentTooLargeError, "request_too_large"),
    (429, anthropic.RateLimitError, "rate_limit_error"),
    (500, anthropic.InternalServerError, "api_error"),
    (529, anthropic.OverloadedError, "overloaded_error"),
])
def test_error_statuses_become_sdk_exceptions(fake: FakeAnthropic, client: anthropic.Anthropic,
                                              status: int, error: type[Exception],
                                              kind: str) -> None:
    fake.script(Behaviour(status=status, error_message="scripted"))
    with pytest.raises(error) as caught:
        client.messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert (caught.value.status_code, caught.value.type) == (status, kind)
    assert caught.value.api_message == "scripted"
    headers = caught.value.response.headers
    assert headers.get("retry-after") == ("0" if status == 429 else None)


def test_retry_after_is_scripted(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.script(Behaviour(status=529, retry_after=3))
    with pytest.raises(anthropic.OverloadedError) as caught:
        client.messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert caught.value.response.headers["retry-after"] == "3"


def test_mid_stream_error_event_and_drop(fake: FakeAnthropic,
                                         client: anthropic.Anthropic) -> None:
    fake.script(Behaviour(text="a b c d", error_event_after=4),
                Behaviour(text="a b c d", fail_mid_stream_after=4))
    seen: list[str] = []
    # The error event arrives on a 200 stream, so it is the base APIStatusError.
    with pytest.raises(anthropic.APIStatusError) as caught:
        with client.messages.stream(model=MODEL, max_tokens=10, messages=USER) as stream:
            seen.extend(e.type for e in stream if e.type != "text")
    assert caught.value.type == "overloaded_error"
    assert seen == ["message_start", "content_block_start", "content_block_delta"]
    seen.clear()
    # This SDK lets the transport's error through unwrapped when a stream breaks.
    with pytest.raises((anthropic.APIConnectionError, httpx2.RemoteProtocolError)):
        with client.messages.stream(model=MODEL, max_tokens=10, messages=USER) as stream:
            seen.extend(e.type for e in stream if e.type != "text")
    assert seen == ["message_start", "content_block_start", "content_block_delta"]
    assert fake.cancellations == []


def test_client_closing_a_stream_is_a_cancellation(fake: FakeAnthropic,
                                                   client: anthropic.Anthropic) -> None:
    fake.script(Behaviour(text=" ".join(["word"] * 500), chunk_interval=0.01))
    stream = client.messages.create(model=MODEL, max_tokens=1000, messages=USER, stream=True)
    iterator = iter(stream)
    for _ in range(6):
        next(iterator)
    stream.close()
    closed_at = time.monotonic()
    [cancellation] = fake.wait_for_cancellations(timeout=1.0)
    assert cancellation.at - closed_at < 1.0
    assert 6 <= cancellation.events_sent < 500
    assert cancellation.output_tokens_sent == cancellation.events_sent - 3


def test_max_tokens_stop_sequences_and_stop_reason(fake: FakeAnthropic,
                                                   client: anthropic.Anthropic) -> None:
    fake.default = Behaviour(text="one two three four")
    cut = client.messages.create(model=MODEL, max_tokens=2, messages=USER)
    assert (cut.content[0].text, cut.stop_reason, cut.usage.output_tokens) \
        == ("one two", "max_tokens", 2)
    stopped = client.messages.create(model=MODEL, max_tokens=10, messages=USER,
                                     stop_sequences=[" three"])
    assert (stopped.content[0].text, stopped.stop_reason, stopped.stop_sequence) \
        == ("one two", "stop_sequence", " three")
    fake.script(Behaviour(stop_reason="refusal"))
    assert client.messages.create(model=MODEL, max_tokens=10,
                                  messages=USER).stop_reason == "refusal"


def test_images_are_recorded_as_received(fake: FakeAnthropic,
                                         client: anthropic.Anthropic) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": PNG}}
    client.messages.create(model=MODEL, max_tokens=10, messages=[
        {"role": "user", "content": [image, {"type": "text", "text": "what is it"}]}])
    assert fake.image_blocks() == [image]
    assert fake.image_blocks()[0]["source"]["media_type"] == "image/png"


def test_count_tokens_and_models(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    counted = client.messages.count_tokens(model=MODEL, messages=USER, system="be brief")
    assert counted.input_tokens == 5
    assert fake.count_tokens_requests()[0].json["model"] == MODEL
    message = client.messages.create(model=MODEL, max_tokens=10, messages=USER,
                                     system="be brief")
    assert message.usage.input_tokens == counted.input_tokens

    models = list(client.models.list())
    assert [m.id for m in models] == fake.models
    assert all(m.type == "model" and m.display_name for m in models)
    assert client.models.retrieve(fake.models[0]).id == fake.models[0]
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("claude-nope")
    page = httpx.get(f"{fake.base_url}/models", params={"limit": 1},
                     headers={"x-api-key": fake.api_key, "anthropic-version": "2023-06-01"})
    assert page.json()["has_more"] is True
    assert page.json()["first_id"] == page.json()["last_id"] == fake.models[0]


def test_unknown_path_script_order_and_reset(fake: FakeAnthropic,
                                             client: anthropic.Anthropic) -> None:
    response = httpx.get(f"{fake.base_url}/nope",
                         headers={"x-api-key": fake.api_key, "anthropic-version": "2023-06-01"})
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"
    fake.script(Behaviour(text="first"), Behaviour(text="second"))
    answers = [client.messages.create(model=MODEL, max_tokens=10, messages=USER).content[0].text
               for _ in range(3)]
    assert answers == ["first", "second", "Echo: hello there world"]
    assert len(fake.wait_for_requests(4)) == 4
    fake.script(Behaviour(text="queued"))
    fake.reset()
    assert fake.requests == []
    assert client.messages.create(model=MODEL, max_tokens=10,
                                  messages=USER).content[0].text == "Echo: hello there world"


def test_custom_api_key_and_lifecycle() -> None:
    fake = FakeAnthropic(name="lifecycle", api_key="sk-ant-other")
    assert fake.start() is fake.start()
    assert fake.base_url.endswith("/v1")
    with anthropic.Anthropic(base_url=fake.root_url, api_key="sk-ant-other",
                             max_retries=0) as sdk:
        assert sdk.messages.create(model=MODEL, max_tokens=10, messages=USER).content
    url = fake.base_url
    fake.stop()
    fake.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/models")
