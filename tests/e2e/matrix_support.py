"""The cells of the compatibility matrix (spec 9.11): {OpenAI SDK, Anthropic SDK} x {fake
OpenAI, fake Anthropic upstream} x {JSON, stream}, and what each cell checks on the upstream
side and on the bill.

An ``Upstream`` scripts either fake in neutral terms and returns the usage that fake will
report (``Reported``, in OpenAI semantics: the prompt includes cache reads and writes), so
one scenario runs unchanged in every cell. Both fakes are spied on for the tool-call ids
they make, so a cell can prove the id the client sees is the one the upstream made.
"""

from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import fakes.anthropic_reply as anthropic_reply
import fakes.openai_upstream as openai_upstream
import pytest
from fakes.anthropic_upstream import Behaviour as AnthropicBehaviour
from fakes.openai_upstream import Behaviour as OpenAIBehaviour

from e2e.anthropic_support import ANTHROPIC_MODEL, price_anthropic
from e2e.matrix_clients import CLIENTS, Reply
from e2e.support import MODEL, Customer, customer, ledger, price_model, request_record

CREDIT = 5_000_000
SLUGS = {"openai": "fakeup", "anthropic": "anthro"}
# A 1x1 PNG, small enough to read in a failure message.
PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJ"
       "RU5ErkJggg==")
REASONING_FORMAT = "anthropic-claude-v1"
# The tool scenarios: two tools on offer, both called at once.
TOOLS = [("get_weather", "Weather in a city", {"city": {"type": "string"}}),
         ("get_time", "Local time in a zone", {"tz": {"type": "string"}})]
CALLS = (("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"}))
THOUGHT = "Weather first, then the time."


@dataclass(frozen=True)
class Reported:
    """The usage an upstream reported, in OpenAI semantics."""

    prompt: int
    completion: int
    cached: int = 0
    written: int = 0
    reasoning: int = 0

    @property
    def charge(self) -> int:
        # Input 1 and output 2 micro-USD per token; cache reads and writes at the input price.
        return self.prompt * 1 + self.completion * 2


def _words(text: str | None) -> int:
    return len((text or "").split())


class Upstream:
    """One fake upstream, scripted and read back in the terms of the matrix."""

    def __init__(self, kind: str, fake: Any, made_ids: list[str]) -> None:
        self.kind, self.fake, self.made_ids = kind, fake, made_ids
        self.model = MODEL if kind == "openai" else ANTHROPIC_MODEL

    def script(self, *, prompt: int, text: str | None = None,
               calls: tuple[tuple[str, dict], ...] = (), thinking: str | None = None,
               redacted: str | None = None, cached: int = 0, written: int = 0) -> Reported:
        """Queue one answer; returns the usage the fake will report for it."""
        if self.kind == "openai":
            # Neither cache writes nor redacted reasoning exist in the OpenAI format.
            assert written == 0 and redacted is None
            self.fake.script(OpenAIBehaviour(
                content=text, tool_calls=tuple((n, json.dumps(a)) for n, a in calls),
                reasoning=thinking, prompt_tokens=prompt, cached_tokens=cached))
        else:
            self.fake.script(AnthropicBehaviour(
                text=text, tool_uses=calls, thinking=thinking, redacted_thinking=redacted,
                input_tokens=prompt - cached - written, cache_read=cached,
                cache_creation=written))
        # Both fakes count words, and one token per tool call.
        completion = _words(thinking) + (len(calls) if calls else _words(text))
        return Reported(prompt, completion, cached, written, _words(thinking))

    def bodies(self) -> list[dict]:
        requests = (self.fake.chat_requests() if self.kind == "openai"
                    else self.fake.message_requests())
        return [r.json for r in requests]

    def last(self) -> dict:
        return self.bodies()[-1]

    def tool_names(self, body: dict) -> list[str]:
        if self.kind == "openai":
            return [t["function"]["name"] for t in body.get("tools") or []]
        return [t["name"] for t in body.get("tools") or []]

    def assistant(self, body: dict) -> dict:
        return next(m for m in reversed(body["messages"]) if m["role"] == "assistant")

    def sent_calls(self, body: dict) -> list[tuple[str, str, dict]]:
        """The tool calls of the last assistant turn, as the upstream received them."""
        turn = self.assistant(body)
        if self.kind == "openai":
            return [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
                    for c in turn.get("tool_calls") or []]
        return [(b["id"], b["name"], b["input"]) for b in turn["content"]
                if b["type"] == "tool_use"]

    def sent_results(self, body: dict) -> list[tuple[str, str]]:
        """(tool call id, result text) of every tool result, as the upstream received them."""
        if self.kind == "openai":
            return [(m["tool_call_id"], m["content"]) for m in body["messages"]
                    if m["role"] == "tool"]
        return [(b["tool_use_id"], _text(b.get("content"))) for m in body["messages"]
                if isinstance(m["content"], list) for b in m["content"]
                if b["type"] == "tool_result"]

    def sent_reasoning(self, body: dict) -> list[dict] | str | None:
        """What the last assistant turn carried of its reasoning: an Anthropic upstream's
        thinking blocks, or an OpenAI upstream's reasoning text."""
        turn = self.assistant(body)
        if self.kind == "anthropic":
            return [b for b in turn["content"] if b["type"] in ("thinking", "redacted_thinking")]
        if turn.get("reasoning_content"):
            return turn["reasoning_content"]
        return "".join(d.get("text") or "" for d in turn.get("reasoning_details") or []) or None

    def thinking_param(self, body: dict) -> Any:
        return body.get("reasoning_effort") if self.kind == "openai" else body.get("thinking")

    def images(self, body: dict) -> list[tuple[str, str]]:
        """(media type, base64 data) of every image the upstream received."""
        found = []
        for message in body["messages"]:
            for part in message["content"] if isinstance(message["content"], list) else []:
                if part["type"] == "image" and part["source"]["type"] == "base64":
                    found.append((part["source"]["media_type"], part["source"]["data"]))
                elif part["type"] == "image_url":
                    header, _, data = part["image_url"]["url"].removeprefix("data:").partition(",")
                    assert header.endswith(";base64"), header
                    found.append((header.removesuffix(";base64"), data))
        return found


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content or [] if b.get("type") == "text")


def spy_tool_ids(monkeypatch) -> list[str]:
    """Record every tool-call id either fake makes (the fakes run in this process)."""
    made: list[str] = []
    real = anthropic_reply.tool_use_id

    def tool_use_id() -> str:
        made.append(real())
        return made[-1]

    class SpyUuid:
        # FakeOpenAI names a call "call_" + uuid4().hex[:24]; every uuid4 it draws is
        # recorded as that candidate (its completion ids too, which no call can match).
        @staticmethod
        def uuid4() -> uuid.UUID:
            value = uuid.uuid4()
            made.append(f"call_{value.hex[:24]}")
            return value

    monkeypatch.setattr(anthropic_reply, "tool_use_id", tool_use_id)
    monkeypatch.setattr(openai_upstream, "uuid", SpyUuid)
    return made


@dataclass
class Cell:
    served: Any
    who: Customer
    client: Any
    up: Upstream
    stream: bool
    charges: list[int] = field(default_factory=list)

    def ask(self, messages: list, **kwargs: Any) -> Reply:
        reply = self.client.ask(self.up.model, messages, self.stream, **kwargs)
        assert reply.model == self.up.model
        assert reply.headers["x-gatewayz-provider"] == SLUGS[self.up.kind]
        return reply

    def check_usage(self, reply: Reply, reported: Reported) -> None:
        """Usage as the client's format defines it (9.1, 9.6, 9.11)."""
        assert reply.usage == self.client.expected_usage(
            reported.prompt, reported.completion, reported.cached, reported.written,
            reported.reasoning)

    def check_bill(self, reply: Reply, reported: Reported) -> None:
        """The request record charges the usage the upstream reported, at the prices."""
        record = request_record(self.served, reply.request_id)
        assert record["status"] == "settled", record
        assert record["stream"] is self.stream
        assert (record["prompt_tokens"], record["completion_tokens"]) == \
            (reported.prompt, reported.completion), record
        assert record["charged_micros"] == reported.charge, record
        if not self.stream:  # a stream's cost is not known when its headers go out (9.9)
            assert reply.headers["x-gatewayz-cost-micros"] == str(reported.charge)
        self.charges.append(reported.charge)

    def check_ledger(self) -> None:
        """The account's usage lines are exactly the charges checked so far."""
        lines = [line for line in ledger(self.served, self.who.key) if line["kind"] == "usage"]
        assert sorted(-line["amount_micros"] for line in lines) == sorted(self.charges), lines
        assert sum(line["amount_micros"] for line in ledger(self.served, self.who.key)) == \
            CREDIT - sum(self.charges)


def open_cell(served, fake_openai, fake_anthropic, monkeypatch, client: str, upstream: str,
              mode: str, priced: bool = False) -> Cell:
    """One cell on ``served``; ``priced``: both models are already priced there."""
    made = spy_tool_ids(monkeypatch)
    if upstream == "openai":
        if not priced:
            price_model(served, fake_openai)
        up = Upstream("openai", fake_openai, made)
    else:
        if not priced:
            price_anthropic(served, fake_anthropic)
        up = Upstream("anthropic", fake_anthropic, made)
    # A fresh account per cell: its ledger holds only this cell's charges.
    who = customer(served, credit_micros=CREDIT)
    return Cell(served, who, CLIENTS[client](served, who.key), up, mode == "stream")


def matrix_fixtures(xfail: dict[tuple[str, str, str], str] | None = None) -> tuple:
    """(module gateway fixture, cell fixture) for a module of matrix cells.

    The cells of a module share one served gateway with both models priced: starting a
    gateway costs more than a cell, and every cell works in its own account and reads only
    its own request records, so nothing one cell does is seen by the next.
    """
    from conftest import ServedGateway, close_gateway, open_gateway

    @pytest.fixture(scope="module")
    def matrix_served(tmp_path_factory, fake_openai_server, fake_anthropic_server):
        gateway, schema = open_gateway("sqlite", tmp_path_factory.mktemp("matrix"))
        served = ServedGateway(gateway)
        price_model(served, fake_openai_server)
        price_anthropic(served, fake_anthropic_server)
        yield served
        served.close()
        close_gateway(gateway, schema)

    @pytest.fixture(params=cells(xfail))
    def cell(request, matrix_served, fake_openai, fake_anthropic, monkeypatch):
        return open_cell(matrix_served, fake_openai, fake_anthropic, monkeypatch,
                         *request.param, priced=True)

    return matrix_served, cell


def cells(xfail: dict[tuple[str, str, str], str] | None = None) -> list:
    """Every (client, upstream, mode) as a pytest param; ``xfail`` marks known gateway bugs
    (strict, so a fix turns them red until the mark goes)."""
    out = []
    for key in itertools.product(CLIENTS, ("openai", "anthropic"), ("json", "stream")):
        reason = (xfail or {}).get(key)
        marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
        out.append(pytest.param(key, id="{}-sdk/{}-upstream/{}".format(*key), marks=marks))
    return out
