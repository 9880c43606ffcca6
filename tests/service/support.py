"""Service-layer helpers: a gateway whose ``http`` provider client is a FakeProviderPort.

Everything goes through ``gw.inference`` of a real Gateway (events in memory or in a database,
read models, hold store, group-commit writer), so wiring changes in bootstrap do not break the
tests; only the provider port is fake. Prices are whole USD per million tokens, so a cost is
exact integer arithmetic here (1 USD/M = 1 micro per token) and never calls production code.
"""

from __future__ import annotations

import uuid
from typing import Any

from fakes.provider_port import FakeProviderPort
from integration.support import RawEvent, stream_events

from application.chat_request import ChatRequest, parse_chat
from domain.inference_request import InferenceRequest

SOLO = "acme/solo-1"  # served by alpha only
DUO = "acme/duo-1"    # alpha first (priority 10), then beta (priority 20)
PRICES = {"alpha": (1, 2), "beta": (2, 4)}  # USD per million: (input, output)
STAFF = "usr_service-test"


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
                                          "prices": {"input": str(inp), "output": str(out)}},
                                  STAFF)


def install_port(gw: Any, port: FakeProviderPort | None = None) -> FakeProviderPort:
    port = port or FakeProviderPort()
    clients = getattr(gw.inference, "clients", None)
    assert isinstance(clients, dict) and "http" in clients, \
        "gw.inference.clients['http'] is where the fake provider port goes; update install_port"
    clients["http"] = port
    return port


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
