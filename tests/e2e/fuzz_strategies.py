"""Hypothesis strategies of the 9.8 acceptance fuzz. Each endpoint has a schema: the valid
values of its fields (9.1-9.6) and the fields it requires. Bodies are mostly valid-shaped with
one to three mutations anywhere inside (a value of the wrong type or range, a field dropped or
added), so validation and translators are exercised, not only the JSON parser; some are
arbitrary JSON or bytes that are not JSON at all."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

from application.translate.responses.response import seal_reasoning
from e2e.anthropic_support import ANTHROPIC_MODEL
from e2e.support import MODEL

# Printable ASCII only: what an HTTP header may carry without httpx refusing to send it.
HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40).map(
    str.strip)
_scalars = st.one_of(st.none(), st.booleans(), st.integers(),
                     st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
# Arbitrary JSON: what a mutated field, or a whole body, may turn into.
junk = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)
# Values on validation edges: sizes, signs, magnitudes, emptiness, nesting.
edge = st.sampled_from([
    "", " ", "x" * 100_000, 0, -1, 1, 2, 3, 2**31, 2**63, 2**64 + 1, -(2**63) - 1, 10**30,
    0.5, -0.0, 1e308, -1e308, 2.0000001, 1024, 1_000_001, True, False, None, [], {}, [None],
    [[[]]], {"": None}, "\u0000", "\U0001F600" * 50, "null"])
# One branch per JSON type, so that containers (which break hashing, iteration and string
# joins) are as likely in any position as scalars are.
wrong = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                  st.text(max_size=20), st.lists(junk, max_size=3),
                  st.dictionaries(st.text(max_size=8), junk, max_size=3), edge)
# Unknown top-level field names: any text, control characters included (they end up named
# in X-Gatewayz-Dropped-Params, which must stay a valid header).
field_name = st.text(max_size=12)

words = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF), min_size=1, max_size=30)
small_words = st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=8)
model = st.sampled_from([MODEL, MODEL, ANTHROPIC_MODEL, "nope/not-a-model", " " + MODEL])
unit, penalty = st.floats(0, 1), st.floats(-2, 2)
stop = st.one_of(words, st.lists(words, max_size=4))
metadata = st.dictionaries(small_words, words, max_size=3)
usage_option = st.fixed_dictionaries({"include_usage": st.booleans()})


def _parts(kinds: dict[str, Any]) -> st.SearchStrategy:
    return st.lists(st.one_of(*kinds.values()), min_size=1, max_size=3)


# -- 9.1 chat completions ------------------------------------------------------------------
_image_url = st.sampled_from(["https://example.com/a.png", "data:image/png;base64,iVBORw0KGgo=",
                              "data:image/svg;base64,!!", "ftp://x", ""])
_chat_part = {"text": st.builds(lambda t: {"type": "text", "text": t}, words),
              "image": st.builds(lambda u, d: {"type": "image_url", "image_url": {
                  "url": u, "detail": d}}, _image_url, st.sampled_from(["low", "high", "auto"])),
              "audio": st.just({"type": "input_audio",
                                "input_audio": {"data": "UklGRg==", "format": "wav"}})}
_call = st.builds(lambda n, a: {"id": "call_1", "type": "function", "function": {
    "name": n, "arguments": a}}, small_words, st.sampled_from(['{"a": 1}', "{}", "{", "[]"]))
_reasoning_details = st.lists(st.one_of(
    st.builds(lambda t: {"type": "reasoning.text", "text": t, "signature": "sig",
                         "format": "anthropic-claude-v1"}, words),
    st.just({"type": "reasoning.encrypted", "data": "opaque"}), junk), max_size=2)
_chat_message = st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "developer", "user", "user"]),
                           "content": st.one_of(words, _parts(_chat_part))}),
    st.fixed_dictionaries({"role": st.just("assistant"), "content": st.one_of(st.none(), words)},
                          optional={"tool_calls": st.lists(_call, min_size=1, max_size=2),
                                    "reasoning_details": _reasoning_details, "refusal": words}),
    st.fixed_dictionaries({"role": st.just("tool"), "tool_call_id": st.just("call_1"),
                           "content": st.one_of(words, _parts(_chat_part))}))
_function = st.builds(lambda n: {"type": "function", "function": {
    "name": n, "parameters": {"type": "object", "properties": {}}}}, small_words)
_json_schema = {"name": "s", "strict": True, "schema": {"type": "object", "properties": {}}}
CHAT = {
    "model": model, "messages": st.lists(_chat_message, min_size=1, max_size=4),
    "stream": st.booleans(), "stream_options": usage_option,
    "max_tokens": st.integers(1, 64), "max_completion_tokens": st.integers(1, 64),
    "temperature": st.floats(0, 2), "top_p": unit, "n": st.integers(1, 3), "stop": stop,
    "presence_penalty": penalty, "frequency_penalty": penalty, "logit_bias": st.dictionaries(
        st.integers(0, 999).map(str), st.integers(-100, 100), max_size=2),
    "logprobs": st.booleans(), "top_logprobs": st.integers(0, 20),
    "tools": st.lists(_function, max_size=2), "parallel_tool_calls": st.booleans(),
    "tool_choice": st.one_of(st.sampled_from(["auto", "none", "required"]), small_words.map(
        lambda n: {"type": "function", "function": {"name": n}})),
    "response_format": st.sampled_from([{"type": "text"}, {"type": "json_object"},
                                        {"type": "json_schema", "json_schema": _json_schema}]),
    "seed": st.integers(0, 2**31), "user": words, "store": st.booleans(),
    "reasoning_effort": st.sampled_from(["low", "medium", "high"]), "metadata": metadata,
    # The gateway's extensions (9.10).
    "models": st.lists(model, max_size=2), "session_id": small_words,
    "provider": st.fixed_dictionaries({}, optional={
        "require_parameters": st.booleans(), "allow_fallbacks": st.booleans(),
        "order": st.lists(st.sampled_from(["fakeup", "anthro", "nope"]), max_size=2)}),
    "cache": st.fixed_dictionaries({}, optional={"ttl": st.integers(0, 3600)}),
    "prompt": st.just({"id": "pmpt_nope", "variables": {}}),
}

# -- 9.6 Anthropic messages ----------------------------------------------------------------
_block = {"text": st.builds(lambda t: {"type": "text", "text": t}, words),
          "image": st.sampled_from([{"type": "image", "source": {
              "type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
              {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]),
          "document": st.just({"type": "document", "source": {
              "type": "text", "media_type": "text/plain", "data": "hello"}}),
          "tool_use": st.just({"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}),
          "tool_result": st.just({"type": "tool_result", "tool_use_id": "toolu_1",
                                  "content": "ok"}),
          "thinking": st.sampled_from([{"type": "thinking", "thinking": "t", "signature": "s"},
                                       {"type": "redacted_thinking", "data": "opaque"}])}
_turn = {role: st.one_of(words, _parts({k: _block[k] for k in kinds})) for role, kinds in (
    ("user", ("text", "image", "document", "tool_result")),
    ("assistant", ("thinking", "text", "tool_use")))}
# Turns alternate from a user turn, as Anthropic requires: a refusal for that would hide
# what the mutations do to an otherwise valid body.
_turns = st.integers(0, 1).flatmap(lambda pairs: st.tuples(*[
    st.fixed_dictionaries({"role": st.just(role), "content": _turn[role]})
    for role in ["user", "assistant"] * pairs + ["user"]]).map(list))
MESSAGES = {
    # max_tokens above any thinking budget below, so that thinking alone is valid.
    "model": model, "max_tokens": st.integers(2049, 4096), "messages": _turns,
    "system": st.one_of(words, st.lists(_block["text"].map(
        lambda b: {**b, "cache_control": {"type": "ephemeral"}}), max_size=2)),
    "temperature": unit, "top_p": unit, "top_k": st.integers(1, 100),
    "stop_sequences": st.lists(words, max_size=3), "stream": st.booleans(),
    "tools": st.lists(st.builds(lambda n: {"name": n, "description": "d", "input_schema": {
        "type": "object"}}, small_words), max_size=2),
    "tool_choice": st.sampled_from([{"type": t} for t in ("auto", "any", "none")] +
                                   [{"type": "tool", "name": "f"}]),
    "thinking": st.builds(lambda b: {"type": "enabled", "budget_tokens": b},
                          st.integers(1024, 2048)),
    "metadata": st.builds(lambda u: {"user_id": u}, small_words),
}

# -- 9.3 embeddings, 9.2 completions -------------------------------------------------------
EMBEDDINGS = {"model": model, "user": words, "dimensions": st.integers(1, 64),
              "input": st.one_of(words, st.lists(words, min_size=1, max_size=3),
                                 st.lists(st.integers(0, 50_000), min_size=1, max_size=5)),
              "encoding_format": st.sampled_from(["float", "base64"])}
COMPLETIONS = {
    "model": model, "prompt": st.one_of(words, st.lists(words, min_size=1, max_size=3)),
    "max_tokens": st.integers(1, 64), "temperature": st.floats(0, 2), "top_p": unit,
    "n": st.integers(1, 3), "stop": stop, "logprobs": st.integers(0, 5),
    "seed": st.integers(0, 2**31), "user": words, "stream": st.booleans(),
    "stream_options": usage_option, "echo": st.just(False), "suffix": st.just(""),
    "best_of": st.just(1), "presence_penalty": penalty, "frequency_penalty": penalty,
}

# -- 9.4 responses -------------------------------------------------------------------------
_item = st.one_of(
    st.builds(lambda r, t: {"type": "message", "role": r, "content": t},
              st.sampled_from(["user", "system", "developer", "assistant"]), words),
    st.builds(lambda t: {"role": "user", "content": [{"type": "input_text", "text": t}]}, words),
    st.builds(lambda u: {"role": "user", "content": [{"type": "input_image", "image_url": u}]},
              _image_url),
    st.just({"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"}),
    st.just({"type": "function_call_output", "call_id": "call_1", "output": "ok"}),
    # Reasoning the gateway sealed is sent back upstream: forge any content under the seal.
    st.builds(lambda d: {"type": "reasoning", "summary": [{"type": "summary_text", "text": "t"}],
                         "encrypted_content": seal_reasoning(d)}, _reasoning_details))
RESPONSES = {
    "model": model, "input": st.one_of(words, st.lists(_item, min_size=1, max_size=3)),
    "instructions": words, "max_output_tokens": st.integers(1, 64),
    "temperature": st.floats(0, 2), "top_p": unit,
    "tools": st.lists(st.builds(lambda n: {"type": "function", "name": n, "parameters": {
        "type": "object"}}, small_words), max_size=2),
    "tool_choice": st.sampled_from(["auto", "none", "required"]),
    "text": st.sampled_from([{"format": {"type": "text"}}, {"format": {"type": "json_object"}},
                             {"verbosity": "low"}, {"format": {"type": "json_schema",
                                                               **_json_schema}}]),
    "reasoning": st.fixed_dictionaries({}, optional={
        "effort": st.sampled_from(["low", "high"]), "summary": st.just("auto")}),
    "stream": st.booleans(), "store": st.booleans(), "metadata": metadata, "user": words,
    "previous_response_id": st.just("resp_01HZZZZZZZZZZZZZZZZZZZZZZZ"),
    "parallel_tool_calls": st.booleans(), "include": st.just([]),
}

# Per endpoint: (the valid values of each field, the fields a body needs).
Schema = tuple[dict[str, st.SearchStrategy], tuple[str, ...]]
SCHEMAS: dict[str, Schema] = {
    "chat": (CHAT, ("model", "messages")),
    "messages": (MESSAGES, ("model", "max_tokens", "messages")),
    "count_tokens": ({k: v for k, v in MESSAGES.items() if k != "stream"}, ("model", "messages")),
    "embeddings": (EMBEDDINGS, ("model", "input")),
    "completions": (COMPLETIONS, ("model", "prompt")),
    "responses": (RESPONSES, ("model", "input")),
}


@st.composite
def valid_body(draw, schema: Schema) -> dict:
    fields, required = schema
    chosen = draw(st.lists(st.sampled_from([k for k in fields if k not in required]),
                           max_size=4, unique=True))
    return {name: draw(fields[name]) for name in (*required, *chosen)}


def _paths(value: Any, prefix: tuple) -> list[tuple]:
    """Every position inside a value (``prefix`` is its own), parents before children."""
    children = value.items() if isinstance(value, dict) else enumerate(
        value if isinstance(value, list) else ())
    return [prefix] + [p for key, child in children for p in _paths(child, (*prefix, key))]


_DROP, _KINDS = object(), ("nested", "nested", "retype", "retype", "wrong", "drop", "drop", "add")
# Each JSON type once: a value of another type than the one a position expects.
_RETYPED = st.sampled_from([None, True, 0, -1, 1.5, "", "x", [], [{}], {}, {"type": "x"}])


def _replace(body: Any, path: tuple, new: Any) -> Any:
    copy, head = dict(body) if isinstance(body, dict) else list(body), path[0]
    if new is _DROP and len(path) == 1:
        del copy[head]
    else:
        copy[head] = _replace(copy[head], path[1:], new) if len(path) > 1 else new
    return copy


@st.composite
def mutated_body(draw, schema: Schema) -> dict:
    """A valid-shaped body with one to three mutations, anywhere inside it."""
    body = draw(valid_body(schema))
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        kind = draw(st.sampled_from(_KINDS))
        if kind == "wrong":
            body[draw(st.sampled_from(sorted(schema[0])))] = draw(wrong)
        elif kind in ("nested", "retype", "drop") and body:
            # A field first, then a position inside it, deepest first: one draw over all the
            # positions of a body would seldom reach inside its later fields.
            name = draw(st.sampled_from(sorted(body)))
            at = draw(st.sampled_from(_paths(body[name], (name,))[::-1]))
            new = {"nested": wrong, "retype": _RETYPED}.get(kind)
            body = _replace(body, at, _DROP if new is None else draw(new))
        else:
            body[draw(field_name)] = draw(junk)
    return body


# Bytes that are not (or barely not) JSON, plus nesting past the gateway's depth limit.
_raw_edges = st.sampled_from([
    b"", b" ", b"{", b'{"model":', b"NaN", b"[1e400]", b"\xff\xfe{}", b"\xef\xbb\xbf{}",
    b'{"a":1}{"b":2}', b"[" * 70 + b"]" * 70, b"[" * 100_000, b"[" * 5000 + b"]" * 5000,
    b'{"model":"' + MODEL.encode() + b'","messages":[{"role":"user","content":"\xc3"}]}',
    b'"\\ud800"', b"null", b"true", b"0", b"\x00"])
# Past the 10 MiB body limit: within the read slack (refused by the gateway) and beyond it
# (refused by the framework); both must answer 413 in the route's shape.
_too_large = st.sampled_from([10 << 20 | 1, 11 << 20]).map(lambda n: b'"' + b"x" * n + b'"')


class Body(bytes):
    """Sent bytes whose repr (what hypothesis prints of a failure) stays readable."""

    def __repr__(self) -> str:
        short = f"{bytes(self[:300])!r} + ... ({len(self)} bytes, ends {bytes(self[-40:])!r})"
        return bytes.__repr__(self) if len(self) <= 600 else short


def encode(value: Any) -> Body:
    return Body(json.dumps(value).encode())


def body_bytes(schema: Schema) -> st.SearchStrategy[bytes]:
    """What a fuzzed POST sends: mostly mutated bodies, some valid, some junk or non-JSON."""
    mutated = mutated_body(schema).map(encode)
    raw = st.one_of(_raw_edges, _raw_edges, _raw_edges, _too_large, st.binary(max_size=64))
    return st.one_of(mutated, mutated, mutated, mutated, valid_body(schema).map(encode),
                     st.one_of(junk.map(encode), raw.map(Body)))


# -- credentials, headers, query parameters and path ids -----------------------------------
# Mostly the funded key; sometimes none, a wrong one, two that differ, or one in the URL.
auth = st.sampled_from(["key"] * 12 + ["x-api-key", "none", "bad", "ambiguous", "in-url"])
headers = st.fixed_dictionaries({}, optional={
    "anthropic-version": st.one_of(st.just("2023-06-01"), HEADER_TEXT),
    "anthropic-beta": HEADER_TEXT, "X-Client-Request-Id": HEADER_TEXT,
    "Idempotency-Key": st.sampled_from(["", "k" * 300, "fresh"]),
    "Content-Type": st.sampled_from(["text/plain", "application/json; charset=utf-8"]),
    "X-Gatewayz-Cache": st.sampled_from(["bypass", "force", "x"]), "Cache-Control": HEADER_TEXT,
    "X-Gatewayz-Tags": st.one_of(st.just("a=b,c=d"), HEADER_TEXT),
    "traceparent": st.one_of(st.just(f"00-{'a' * 32}-{'b' * 16}-01"), HEADER_TEXT)})
# Any anthropic-version, even an empty one, asks for Anthropic's shape (9.5); None: absent.
version = st.one_of(st.none(), st.just("2023-06-01"), HEADER_TEXT)
_query_value = st.one_of(st.sampled_from(["1", "20", "1000", "0", "1001", "-1", "abc", "", "01",
                                          "1e3", "\u0661", MODEL, ANTHROPIC_MODEL]), HEADER_TEXT)
models_query = st.fixed_dictionaries({}, optional={
    "limit": _query_value, "after_id": _query_value, "before_id": _query_value})
model_ids = st.one_of(st.text(min_size=1, max_size=40), st.sampled_from(
    [MODEL, ANTHROPIC_MODEL, "gatewayz/echo", "acme", "acme/", "%", "a/b/c/d", "x" * 3000]))


def segment(text: str, keep_slash: bool) -> str:
    """A path id, percent-encoded; dot segments too, or the client folds them away."""
    quoted = quote(text, safe="/" if keep_slash else "")
    return "/".join(p if p.strip(".") else p.replace(".", "%2E") for p in quoted.split("/"))
