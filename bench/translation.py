"""What cross-format translation adds per request, against the same-format path (9.11).

For each (client format, upstream format) pair, one request's gateway-side work is timed:
preparing the upstream body, turning a JSON answer into the client's format, and metering a
recorded stream (tests/golden) into the client's format. Provider time is the same whatever
the pair, so the difference of these is what translation adds to a request's latency.

    .venv/bin/python bench/translation.py [iterations]

Prints p50 and p99 in microseconds per request for each pair and path, and the translated
minus same-format difference at p50.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from application.chat_request import parse_chat  # noqa: E402
from application.exchange import exchange_for  # noqa: E402
from application.messages_request import parse_messages  # noqa: E402

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "golden"
TOOLS = [{"type": "function", "function": {"name": "weather", "description": "Weather now",
                                           "parameters": {"type": "object", "properties": {
                                               "city": {"type": "string"}}}}}]
OPENAI_BODY = {"model": "acme/m", "max_tokens": 256, "tools": TOOLS, "messages": [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is the weather in Paris and in Rome today? " * 4}]}
ANTHROPIC_BODY = {"model": "acme/m", "max_tokens": 256, "system": "You are terse.",
                  "tools": [{"name": "weather", "description": "Weather now",
                             "input_schema": TOOLS[0]["function"]["parameters"]}],
                  "messages": [{"role": "user", "content": OPENAI_BODY["messages"][1]["content"]}]}
OPENAI_ANSWER = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
                 "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                              "message": {"role": "assistant", "content": "Sunny. " * 40}}],
                 "usage": {"prompt_tokens": 60, "completion_tokens": 80, "total_tokens": 140}}
ANTHROPIC_ANSWER = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                    "content": [{"type": "text", "text": "Sunny. " * 40}],
                    "stop_reason": "end_turn", "stop_sequence": None,
                    "usage": {"input_tokens": 60, "output_tokens": 80}}
# The same answer in both formats, per client: each golden pair is one answer recorded in the
# upstream's format with its translation in the client's, so both paths carry equal content.
STREAMS = {("openai", "openai"): GOLDEN / "openai_anthropic" / "text.openai.sse",
           ("openai", "anthropic"): GOLDEN / "openai_anthropic" / "text.anthropic.sse",
           ("anthropic", "anthropic"): GOLDEN / "anthropic_openai" / "text.anthropic.sse",
           ("anthropic", "openai"): GOLDEN / "anthropic_openai" / "text.openai.sse"}


def _request(client: str, stream: bool):
    if client == "openai":
        chat = parse_chat({**OPENAI_BODY, "stream": stream,
                           **({"stream_options": {"include_usage": True}} if stream else {})})
        return chat
    return replace(parse_messages({**ANTHROPIC_BODY, "stream": stream}),
                   anthropic_version="2023-06-01")


def _json_once(client: str, upstream: str) -> float:
    chat = _request(client, False)
    exchange = exchange_for(client, upstream)
    answer = json.loads(json.dumps(OPENAI_ANSWER if upstream == "openai" else ANTHROPIC_ANSWER))
    began = time.perf_counter_ns()
    exchange.prepare(chat, "native-m", 256)
    exchange.complete(chat, answer)
    return (time.perf_counter_ns() - began) / 1000


def _stream_once(client: str, upstream: str) -> float:
    chat = _request(client, True)
    exchange = exchange_for(client, upstream)
    raw = STREAMS[(client, upstream)].read_bytes()
    began = time.perf_counter_ns()
    exchange.prepare(chat, "native-m", 256)
    meter = exchange.meter(chat, "req_bench")
    for at in range(0, len(raw), 256):  # as a provider's reads arrive
        meter.feed(raw[at:at + 256])
    meter.flush()
    assert meter.done, (client, upstream)
    return (time.perf_counter_ns() - began) / 1000


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    pairs = [("openai", "openai"), ("openai", "anthropic"), ("anthropic", "anthropic"),
             ("anthropic", "openai")]
    p50: dict[tuple[str, str, str], float] = {}
    print(f"{'client -> upstream':<24}{'path':<8}{'p50 us':>10}{'p99 us':>10}")
    for client, upstream in pairs:
        for path, once in (("json", _json_once), ("stream", _stream_once)):
            for _ in range(200):  # warm up
                once(client, upstream)
            times = sorted(once(client, upstream) for _ in range(iterations))
            p50[(client, upstream, path)] = statistics.median(times)
            print(f"{client + ' -> ' + upstream:<24}{path:<8}"
                  f"{p50[(client, upstream, path)]:>10.1f}{times[int(len(times) * 0.99)]:>10.1f}")
    print("\ntranslation added at p50 (translated minus same-format, same client):")
    for client, same, other in (("openai", "openai", "anthropic"),
                                ("anthropic", "anthropic", "openai")):
        for path in ("json", "stream"):
            added = p50[(client, other, path)] - p50[(client, same, path)]
            print(f"  {client} client, {path:<6}: {added / 1000:+.3f} ms")


if __name__ == "__main__":
    main()
