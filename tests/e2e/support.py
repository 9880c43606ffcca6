"""Helpers shared by the end-to-end tests: set up a priced model, a funded key, and read back
what the gateway recorded (request records, balances, event-store positions)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
import openai

MODEL = "acme/chat-1"
NATIVE = "chat-1"
UPSTREAM_CREDENTIAL = "sk-upstream-secret-1234"
TERMINAL = ("settled", "voided", "expired")


@dataclass
class Customer:
    account_id: str
    key_id: str
    key: str
    prefix: str
    last4: str


def price_model(served, fake, slug: str = "fakeup", model: str = MODEL,
                input_price: str = "1", output_price: str = "2", priority: int = 100,
                credential: str = UPSTREAM_CREDENTIAL, **extra) -> None:
    served.register_provider(slug, fake.base_url, priority=priority, credential=credential)
    served.set_price(model, slug, input_price=input_price, output_price=output_price, **extra)


def customer(served, credit_micros: int = 5_000_000, **key_body) -> Customer:
    account_id = served.open_account(credit_micros=credit_micros)
    issued = served.issue_key(account_id, **key_body)
    return Customer(account_id, issued["id"], issued["key"], issued["prefix"], issued["last4"])


def sdk(served, key: str, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.url + "/v1", api_key=key, max_retries=0, **kwargs)


def async_sdk(served, key: str, **kwargs) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=served.url + "/v1", api_key=key, max_retries=0,
                              **kwargs)


def chat_body(text: str = "one two three", **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], **extra}


def post_chat(served, key: str | None, body: Any = None, *, content: bytes | None = None,
              headers: dict[str, str] | None = None) -> httpx.Response:
    """A raw POST /v1/chat/completions, for cases the SDK cannot express."""
    sent = dict(headers or {})
    if key is not None:
        sent.setdefault("Authorization", f"Bearer {key}")
    if content is not None:
        sent.setdefault("Content-Type", "application/json")
        return served.http.post("/v1/chat/completions", content=content, headers=sent)
    return served.http.post("/v1/chat/completions", json=body, headers=sent)


def positions(served) -> dict[str, int]:
    """The last notification id of every bounded context's event store, once the request
    writer has committed what it was handed (settlements follow answers by a moment)."""
    assert served.gateway.writer.wait_idle()
    return {name: app.recorder.max_notification_id() or 0
            for name, app in served.gateway.stores.by_context().items()}


def request_record(served, request_id: str, timeout: float = 5.0) -> dict:
    """GET /admin/requests/{id}, waiting until the request has reached its terminal event."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        response = served.admin("GET", f"/admin/requests/{request_id}")
        if response.status_code == 200:
            last = response.json()
            if last["status"] in TERMINAL:
                return last
        time.sleep(0.02)
    raise AssertionError(f"request {request_id} did not end within {timeout}s: {last}")


def balance(served, key: str) -> dict:
    response = served.http.get("/v1/account/balance",
                               headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    return response.json()


def ledger(served, key: str) -> list[dict]:
    """Every statement line of the key's account, oldest first (all pages)."""
    lines: list[dict] = []
    params: dict[str, str] = {"order": "asc", "limit": "1000"}
    while True:
        response = served.http.get("/v1/account/ledger", params=params,
                                   headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200, response.text
        body = response.json()
        lines += body["data"]
        if body["next_cursor"] is None:
            return lines
        params["cursor"] = body["next_cursor"]


def request_events(served, request_id: str | None = None) -> list[str]:
    """Names of the events in the requests store (optionally of one request), in order."""
    from domain.inference_request import InferenceRequest

    app = served.gateway.stores.requests
    wanted = InferenceRequest.create_id(request_id) if request_id is not None else None
    names = []
    for note in app.recorder.select_notifications(start=1, limit=100_000):
        event = app.mapper.to_domain_event(note)
        if wanted is None or event.originator_id == wanted:
            names.append(type(event).__name__)
    return names


_ANY = object()
OPENAI_TYPE = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
               403: "permission_error", 404: "not_found_error", 409: "conflict_error",
               413: "invalid_request_error", 422: "invalid_request_error",
               429: "rate_limit_error", 500: "server_error", 502: "server_error",
               503: "server_error", 504: "server_error"}


def assert_error(response: httpx.Response, status: int, code: str,
                 param: object = _ANY) -> dict:
    """The OpenAI error shape (9.8) with the given status and code; returns the error object."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"message", "type", "param", "code", "request_id"} <= set(error), error
    assert error["code"] == code, error
    expected = OPENAI_TYPE[status]
    if status == 401 and response.request.url.path.startswith("/v1/"):
        expected = "invalid_request_error"  # as api.openai.com answers a bad key
    assert error["type"] == expected, error
    assert isinstance(error["message"], str) and 0 < len(error["message"]) <= 500
    assert error["request_id"].startswith("req_")
    assert response.headers["x-request-id"] == error["request_id"]
    if param is not _ANY:
        assert error["param"] == param, error
    return error


def account_requests(served, account_id: str) -> list[tuple[str, str]]:
    """(request_id, status) of every request record of an account, oldest first."""
    with served.gateway.db.transaction() as cur:
        cur.execute("SELECT request_id, status FROM requests WHERE account_id = %s "
                    "ORDER BY created_at, request_id", (account_id,))
        return [(row[0], row[1]) for row in cur.fetchall()]


def idempotency_row(served, key: str) -> tuple | None:
    """(state, status, content_type, body, attempt) of the idempotency record of a key."""
    with served.gateway.db.transaction() as cur:
        cur.execute("SELECT state, status, content_type, body, attempt FROM "
                    "idempotency_records WHERE idem_key = %s", (key,))
        return cur.fetchone()


def read_until_cut(response: httpx.Response) -> tuple[bytes, bool]:
    """A streamed body as far as it came, and whether the connection was cut before its end
    (how the gateway ends a stream its provider broke off, after the error event)."""
    received: list[bytes] = []
    try:
        for data in response.iter_raw():
            received.append(data)
    except httpx.RemoteProtocolError:
        return b"".join(received), True
    return b"".join(received), False


def post_stream_until_cut(served, key: str, body: dict) -> tuple[httpx.Response, bytes, bool]:
    with served.http.stream("POST", "/v1/chat/completions",
                            headers={"Authorization": f"Bearer {key}"}, json=body) as response:
        raw, cut = read_until_cut(response)
    return response, raw, cut
