"""The 9.8 acceptance fuzz: bad input on every inference endpoint never gets a 5xx, and every
answer has exactly the shape of its route (OpenAI's error object on /v1/*, Anthropic's on
/v1/messages* and on models requests carrying anthropic-version), or is an SSE stream or a
JSON success. Bodies come from a schema of each endpoint (fuzz_strategies.py); one gateway per
test function, as its start costs far more than the requests it answers. A failure prints the
request (every draw) and the answer; FUZZ_EXAMPLES=5000 runs a longer search.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, note, settings
from hypothesis import strategies as st

from e2e import fuzz_strategies as fz
from e2e.anthropic_support import ANTHROPIC_MODEL, price_anthropic
from e2e.support import MODEL, customer, price_model

FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "120")), deadline=None,
                print_blob=True, suppress_health_check=[
                    HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                    HealthCheck.data_too_large, HealthCheck.filter_too_much])
POSTS = {"chat": "/v1/chat/completions", "messages": "/v1/messages",
         "count_tokens": "/v1/messages/count_tokens", "embeddings": "/v1/embeddings",
         "completions": "/v1/completions", "responses": "/v1/responses"}
# 9.8's table: the error type of each status in each shape. A bad key is an invalid request
# on OpenAI's /v1, as api.openai.com answers it (and the SDK shows it).
OPENAI_TYPE = {400: "invalid_request_error", 401: "invalid_request_error",
               402: "billing_error", 403: "permission_error", 404: "not_found_error",
               409: "conflict_error", 413: "invalid_request_error", 422: "invalid_request_error",
               429: "rate_limit_error", 502: "server_error", 503: "server_error",
               504: "server_error"}
ANTHROPIC_TYPE = {400: "invalid_request_error", 401: "authentication_error",
                  402: "billing_error", 403: "permission_error", 404: "not_found_error",
                  409: "invalid_request_error", 413: "request_too_large",
                  422: "invalid_request_error", 429: "rate_limit_error", 502: "api_error",
                  503: "overloaded_error", 504: "api_error"}
# The last event of a stream that ended as a success, per route (9.7).
STREAM_END = {"chat": (b"data: [DONE]",), "completions": (b"data: [DONE]",),
              "messages": (b"event: message_stop",),
              "responses": (b"event: response.completed", b"event: response.incomplete")}
SUCCESS = {"chat": lambda b: b.get("object") == "chat.completion" and "usage" in b,
           "completions": lambda b: b.get("object") == "text_completion" and "usage" in b,
           "embeddings": lambda b: b.get("object") == "list" and "usage" in b,
           "messages": lambda b: b.get("type") == "message" and "usage" in b,
           "count_tokens": lambda b: list(b) == ["input_tokens"],
           "responses": lambda b: b.get("object") == "response",
           "get_response": lambda b: b.get("object") == "response",
           "delete_response": lambda b: b.get("deleted") is True,
           "models": lambda b: b.get("object") == "list" and isinstance(b.get("data"), list),
           "anthropic_models": lambda b: set(b) == {"data", "has_more", "first_id", "last_id"},
           "model": lambda b: b.get("object") == "model",
           "anthropic_model": lambda b: b.get("type") == "model"}


class UpstreamCrashes(logging.Handler):
    """Counts the fakes' own unhandled errors (aiohttp logs each, then answers 500): the only
    upstream failure that may excuse a 502, as the fakes otherwise answer 200."""

    count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


class Target:
    """The served gateway, its funded key, and the ids of responses it stored."""

    def __init__(self, served, key: str, crashes: UpstreamCrashes) -> None:
        self.served, self.key, self.stored, self.crashes = served, key, [], crashes

    def send(self, method: str, path: str, auth: str = "key", content: bytes | None = None,
             headers: dict | None = None, params: dict | None = None) -> httpx.Response:
        sent, query = dict(headers or {}), dict(params or {})
        bearer = {"key": self.key, "bad": "gw_live_not-a-key", "ambiguous": self.key,
                  "in-url": self.key}.get(auth)
        if bearer is not None:
            sent["Authorization"] = f"Bearer {bearer}"
        if auth in ("x-api-key", "ambiguous"):
            sent["x-api-key"] = self.key if auth == "x-api-key" else "gw_live_other"
        if auth == "in-url":
            query["api_key"] = self.key
        before = self.crashes.count
        response = self.served.http.request(method, path, content=content, headers=sent,
                                            params=query)
        response.upstream_crashed = self.crashes.count > before  # type: ignore[attr-defined]
        return response


@pytest.fixture
def target(served, fake_openai, fake_anthropic) -> Iterator[Target]:
    crashes, logger = UpstreamCrashes(logging.ERROR), logging.getLogger("aiohttp.server")
    logger.addHandler(crashes)
    price_model(served, fake_openai)
    price_anthropic(served, fake_anthropic)
    # $1,000 (the largest single grant): far beyond any hold the fuzz can ask for.
    target = Target(served, customer(served, credit_micros=10**9).key, crashes)
    for text in ("first", "second"):
        stored = target.send("POST", "/v1/responses", content=fz.encode(
            {"model": MODEL, "input": text, "store": True}))
        assert stored.status_code == 200, stored.text
        target.stored.append(stored.json()["id"])
    yield target
    logger.removeHandler(crashes)


def _show(response: httpx.Response) -> str:
    return f"{response.request.method} {response.request.url} -> {response.status_code} " \
           f"{dict(response.headers)}\n{response.content[:2000]!r}"


def check(response: httpx.Response, route: str, anthropic: bool = False,
          stream: bool = False) -> None:
    """9.8 on one answer: no 5xx, exactly the route's shape, X-Request-ID, Retry-After."""
    status, why = response.status_code, _show(response)
    if currently_in_test_context():
        note(why)
        event(f"status {status}")  # the spread shows with --hypothesis-show-statistics
    assert status < 500 or (status == 502 and response.upstream_crashed), why
    request_id = response.headers.get("x-request-id", "")
    assert request_id.startswith("req_"), why
    media = response.headers.get("content-type", "")
    if status == 200 and stream:
        tail = response.content.rstrip()
        assert media.startswith("text/event-stream"), why
        assert tail[tail.rfind(b"\n\n") + 2:].startswith(STREAM_END[route]), why
        return
    assert media.startswith("application/json"), why
    body = json.loads(response.content)
    if status == 200:
        assert isinstance(body, dict) and SUCCESS[route](body), why
        return
    # A path no route matches (an id holding an encoded "/") is answered as api.openai.com
    # does: "Invalid URL", an invalid request, 405 when another method has that path.
    unrouted = status in (404, 405) and b'"Invalid URL (' in response.content
    assert (status in OPENAI_TYPE or unrouted) and isinstance(body, dict), why
    if anthropic:
        assert set(body) == {"type", "error", "request_id"} and body["type"] == "error", why
        error = body["error"]
        assert isinstance(error, dict) and set(error) == {"type", "message", "code"}, why
        expected = ANTHROPIC_TYPE.get(status, "invalid_request_error")  # 405: unrouted
        assert body["request_id"] == request_id and error["type"] == expected, why
    else:
        error = body.get("error")
        assert set(body) == {"error"} and isinstance(error, dict), why
        assert {"message", "type", "param", "code", "request_id"} <= set(error) <= \
            {"message", "type", "param", "code", "request_id", "details"}, why
        assert error["param"] is None or isinstance(error["param"], str), why
        expected = "invalid_request_error" if unrouted else OPENAI_TYPE[status]
        assert error["request_id"] == request_id and error["type"] == expected, why
    assert isinstance(error["code"], str) and error["code"], why
    assert isinstance(error["message"], str) and 1 <= len(error["message"]) <= 500, why
    if status in (429, 503):
        assert response.headers.get("retry-after", "").isdigit(), why


def _refused(response: httpx.Response, auth: str) -> None:
    """Credentials are checked before the body is read (on a path some route matches)."""
    expected = {"none": 401, "bad": 401, "ambiguous": 400, "in-url": 400}.get(auth)
    unrouted = response.status_code in (404, 405) and b'"Invalid URL (' in response.content
    if expected is not None and not unrouted:
        assert response.status_code == expected, _show(response)


def _decoded(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


@FUZZ
@given(data=st.data())
@pytest.mark.parametrize("route", list(POSTS))
def test_a_fuzzed_post_is_answered_in_the_shape_of_its_route(target, route, data):
    fields, required = fz.SCHEMAS[route]
    if route == "responses":  # continuing a stored response reaches the history path
        fields = {**fields, "previous_response_id": st.sampled_from(
            [*target.stored, "resp_nope", ""])}
    raw = data.draw(fz.body_bytes((fields, required)), label="body")
    body = _decoded(raw)
    auth = data.draw(fz.auth, label="auth")
    headers = data.draw(fz.headers, label="headers")
    if headers.get("Idempotency-Key") == "fresh":
        headers["Idempotency-Key"] = uuid.uuid4().hex  # never a replay of an earlier example
    response = target.send("POST", POSTS[route], auth, raw, headers)
    stream = route not in ("count_tokens", "embeddings") and isinstance(body, dict) and \
        body.get("stream") is True
    check(response, route, anthropic=route in ("messages", "count_tokens"), stream=stream)
    _refused(response, auth)


@FUZZ
@given(query=fz.models_query, auth=fz.auth, version=fz.version)
def test_a_fuzzed_model_list_is_answered_in_the_shape_it_was_asked_in(target, query, auth,
                                                                      version):
    headers = {} if version is None else {"anthropic-version": version}
    response = target.send("GET", "/v1/models", auth, headers=headers, params=query)
    anthropic = version is not None
    check(response, "anthropic_models" if anthropic else "models", anthropic=anthropic)


@FUZZ
@given(model_id=fz.model_ids, auth=fz.auth, version=fz.version)
def test_a_fuzzed_model_lookup_is_answered_in_the_shape_it_was_asked_in(target, model_id, auth,
                                                                        version):
    headers = {} if version is None else {"anthropic-version": version}
    path = "/v1/models/" + fz.segment(model_id, keep_slash=True)
    response = target.send("GET", path, auth, headers=headers)
    # Nothing but slashes after /v1/models is the list route, with a trailing slash.
    route = "model" if path[len("/v1/models"):].strip("/") else "models"
    anthropic = version is not None
    check(response, ("anthropic_" if anthropic else "") + route, anthropic=anthropic)


@FUZZ
@given(data=st.data(), method=st.sampled_from(["GET", "DELETE"]))
def test_a_fuzzed_stored_response_id_is_answered_in_the_openai_shape(target, data, method):
    wanted = data.draw(st.one_of(st.sampled_from([*target.stored, "resp_nope", "resp_"]),
                                 st.text(min_size=1, max_size=60)), label="response_id")
    auth = data.draw(fz.auth, label="auth")
    response = target.send(method, "/v1/responses/" + fz.segment(wanted, keep_slash=False),
                           auth)
    check(response, "get_response" if method == "GET" else "delete_response")
    _refused(response, auth)


# -- bugs the fuzz found, fixed: their minimal bodies stay as regressions -------------------
_HI = [{"role": "user", "content": "hi"}]
_CHAT, _MSG = {"model": ANTHROPIC_MODEL, "messages": _HI}, {"model": MODEL, "max_tokens": 16}


def _bug(name: str, route: str, body: dict, what: str):
    """``what`` the gateway did with this body before its fix."""
    return pytest.param(route, body, id=name)


@pytest.mark.parametrize(("route", "body"), [
    _bug("non-latin1-name-chat", "chat", {**_CHAT, "\u0100": 1},
         "500 after billing: the name went raw into X-Gatewayz-Dropped-Params"),
    _bug("non-latin1-name-messages", "messages", {**_MSG, "messages": _HI, "\u0100": 1},
         "500: the same, from the anthropic_openai translation"),
    _bug("non-latin1-name-responses", "responses",
         {"model": ANTHROPIC_MODEL, "input": "hi", "\u0100": 1}, "500: the same"),
    _bug("non-latin1-name-completions", "completions",
         {"model": ANTHROPIC_MODEL, "prompt": "hi", "\u0100": 1}, "500: the same"),
    _bug("crlf-name", "chat", {**_CHAT, "a\r\nb": 1},
         "no answer: uvicorn refused the CR LF in the header and dropped the connection"),
    _bug("unbounded-names", "chat", {**_CHAT, **{f"f{i}": 1 for i in range(20_000)}},
         "a billed answer httpx (so both SDKs) could not read: a ~150 KB header"),
    _bug("unhashable-part-type", "chat",
         {"model": MODEL, "messages": [{"role": "user", "content": [{"type": []}]}]},
         "500: hold sizing looked an unhashable part type up in a set"),
    _bug("unhashable-tool-choice-type", "messages",
         {**_MSG, "messages": _HI, "tool_choice": {"type": []}},
         "500: the translation looked an unhashable type up in a dict"),
    _bug("null-summary-text", "responses", {"model": MODEL, "input": [
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": None}]}]},
         "500: reasoning summary texts were joined unchecked"),
    _bug("summary-not-a-list", "responses",
         {"model": MODEL, "input": [{"type": "reasoning", "summary": 1}]},
         "500: a reasoning summary was iterated unchecked"),
])
def test_a_body_the_fuzz_found_is_answered_in_the_shape_of_its_route(target, route, body):
    response = target.send("POST", POSTS[route], content=fz.encode(body))
    check(response, route, anthropic=route == "messages")
