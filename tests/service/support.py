"""Service-layer helpers: a gateway whose ``http`` provider client is a FakeProviderPort.

Everything goes through ``gw.inference`` of a real Gateway (events in memory or in a database,
read models, hold store, group-commit writer), so wiring changes in bootstrap do not break the
tests; only the provider port is fake. Prices are whole USD per million tokens, so a cost is
exact integer arithmetic here (1 USD/M = 1 micro per token) and never calls production code.
The reads at the end (terminal event, balance, hold store, SSE bodies) are what the service
tests assert on.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from fakes.provider_port import FakeProviderPort
from integration.support import TERMINAL_TYPES, RawEvent, stream_events

from application.chat_request import ChatRequest, parse_chat
from domain.inference_request import InferenceRequest

SOLO = "acme/solo-1"  # served by alpha only
DUO = "acme/duo-1"    # alpha first (priority 10), then beta (priority 20)
PRICES = {"alpha": (1, 2), "beta": (2, 4)}  # USD per million: (input, output)
STAFF = "usr_service-test"
CREDIT = 10_000_000


def add_providers(gw: Any) -> None:
    for slug, priority in (("alpha", 10), ("beta", 20)):
        gw.catalog.register_provider(
            {"slug": slug, "base_url": f"http://127.0.0.1:9/{slug}", "allow_private": True,
             "priority": priority, "credential": f"sk-{slug}-credential", "timeout_ms": 5000},
            STAFF)
    served_by = {SOLO: ("alpha",), DUO: ("alpha", "beta")}
    for model, slugs in served_by.items():
        for slug in slugs:
            inp, out = PRICES[slug]
            gw.catalog.set_prices(model, {"provider": slug,
                                          "prices": {"input": str(inp), "output": str(out)},
                                          "context_length": 128_000},
                                  STAFF)


def install_port(gw: Any, port: FakeProviderPort | None = None) -> FakeProviderPort:
    port = port or FakeProviderPort()
    clients = getattr(gw.inference, "clients", None)
    assert isinstance(clients, dict) and "http" in clients, \
        "gw.inference.clients['http'] is where the fake provider port goes; update install_port"
    clients["http"] = port
    return port


def without_health(gw: Any) -> None:
    """Routing that ignores health and breakers: a test that scripts which provider answers
    each call decides the order itself (priority, then price), whatever earlier calls did.
    Breakers and health are the subject of their own tests (test_routing_faults.py)."""
    from application.selection_inputs import NoHealth

    gw.inference.resolver.health = NoHealth()
    gw.inference.dispatcher.health = None


def customer(gw: Any, plan: str = "dev", credit: int = 0) -> tuple[str, Any]:
    """A new account (optionally granted ``credit`` micros) and a principal of a live key."""
    account_id = gw.accounts.open_account(f"{uuid.uuid4().hex[:8]}@example.com", plan,
                                          "staff:service-test")
    if credit:
        gw.accounts.grant_credits(account_id, credit, "credit for a service test", STAFF)
    issued = gw.access.issue_key(account_id, f"key-{uuid.uuid4().hex[:6]}", "live", None,
                                 None, "staff:service-test")
    return account_id, gw.access.authenticate_key(issued.secret)


def chat(model: str = SOLO, content: str = "Say hello to the tests.", *, max_tokens: int = 100,
         stream: bool = False, include_usage: bool = True, **extra: Any) -> ChatRequest:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": content}],
                            "max_tokens": max_tokens, **extra}
    if stream:
        body["stream"] = True
        if include_usage:
            body["stream_options"] = {"include_usage": True}
    return parse_chat(body)


def new_request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


def events_of(gw: Any, request_id: str) -> list[RawEvent]:
    return stream_events(gw.stores.requests, InferenceRequest.create_id(request_id))


def types_of(gw: Any, request_id: str) -> list[str]:
    return [e.type.split(".", 1)[1] for e in events_of(gw, request_id)]


def readme_hold(slugs: tuple[str, ...], chat_request: ChatRequest, max_tokens: int,
                n: int = 1) -> int:
    """The README's hold rule for plain text messages: (ceil(UTF-8 bytes / 3) + 8 per message)
    x input price + n x output limit x output price, the largest across the candidates."""
    text = sum(len(m["content"].encode()) for m in chat_request.messages)
    estimated_input = -(-text // 3) + 8 * len(chat_request.messages)
    return max(estimated_input * PRICES[s][0] + n * max_tokens * PRICES[s][1] for s in slugs)


def cost(slug: str, prompt: int, completion: int) -> int:
    inp, out = PRICES[slug]
    return prompt * inp + completion * out


def estimated_tokens(text: str) -> int:
    """The README's fallback count: 1 token per 4 characters, rounded up."""
    return -(-len(text) // 4)


def settle_all(gw) -> None:
    """Everything handed to the writer committed, then projected (the test's projector)."""
    assert gw.writer.wait_idle(10)
    gw.projector.run_until_idle()


def available(gw, account_id: str) -> int:
    return gw.holds.available(account_id, int(time.time()))


def balance(gw, account_id: str) -> dict:
    return gw.balances.balance(account_id, int(time.time()))


def terminal(gw, request_id: str):
    events = events_of(gw, request_id)
    ends = [e for e in events if e.type in TERMINAL_TYPES]
    assert len(ends) == 1, [e.type for e in events]
    assert events[0].type == "InferenceRequest.HoldPlaced"
    return events[0].data, ends[0]


def aggregate(gw, request_id: str) -> InferenceRequest:
    return gw.stores.requests.repository.get(InferenceRequest.create_id(request_id))


def assert_voided_free(gw, account_id: str, request_id: str, reason: str | None,
                       credit: int = CREDIT) -> None:
    settle_all(gw)
    _, end = terminal(gw, request_id)
    assert end.type == "InferenceRequest.HoldVoided", end
    if reason is not None:
        assert end.data["reason"] == reason, end.data
    assert aggregate(gw, request_id).outcome == "voided"
    view = balance(gw, account_id)
    assert (view["balance_micros"], view["open_holds"]) == (credit, 0)
    assert available(gw, account_id) == credit


async def consume(stream) -> bytes:
    return b"".join([chunk async for chunk in stream])


async def consume_until_cut(stream) -> bytes:
    """What a stream sent before it ended, normally or cut after its provider's broke off
    (application.relay.StreamCut: the client's connection would be cut there)."""
    from application.relay import StreamCut

    received: list[bytes] = []
    try:
        async for chunk in stream:
            received.append(chunk)
    except StreamCut:
        pass
    return b"".join(received)


def sse_events(raw: bytes) -> list:
    out = []
    for event in raw.split(b"\n\n"):
        if event.startswith(b"data: "):
            data = event[6:]
            out.append(data.decode() if data == b"[DONE]" else json.loads(data))
    return out


def content_of(events: list) -> str:
    return "".join(choice.get("delta", {}).get("content") or ""
                   for e in events if isinstance(e, dict) for choice in e.get("choices", []))
