"""Request intake (1.8): the body deadline, the per-worker in-flight cap, CORS on /v1 only,
and ``n`` above 8 refused before any hold."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from e2e.support import chat_body, customer, positions, post_chat
from entrypoints.http.intake import intake_middleware


@pytest.fixture
def one_second_body_deadline(monkeypatch):
    monkeypatch.setenv("GATEWAYZ_BODY_DEADLINE_S", "1")


def test_a_body_trickled_past_the_deadline_is_answered_408_and_the_connection_closed(
        one_second_body_deadline, served):
    buyer = customer(served)
    before = positions(served)
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer " + buyer.key.encode() +
                     b"\r\nContent-Length: 100\r\n\r\n{")
        started = time.monotonic()
        answer = b""
        for _ in range(6):  # a byte every half second: never complete in time
            time.sleep(0.5)
            try:
                sock.sendall(b" ")
            except OSError:
                break
        sock.settimeout(5)
        while chunk := sock.recv(65536):
            answer += chunk
    elapsed = time.monotonic() - started
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer
    assert b"connection: close" in head.lower()
    assert json.loads(body)["error"]["code"] == "request_timeout"
    assert elapsed < 4
    assert positions(served) == before  # nothing recorded for it, no hold


def test_the_in_flight_cap_answers_503_overloaded_with_retry_after():
    release = asyncio.Event()
    sent: list[dict] = []

    async def slow_app(scope, receive, send):
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def scenario() -> list[int]:
        app = intake_middleware(slow_app, max_in_flight=2)

        async def call() -> int:
            statuses: list[int] = []

            async def send(message):
                sent.append(message)
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])

            async def receive():
                return {"type": "http.request", "body": b"", "more_body": False}

            scope = {"type": "http", "path": "/v1/chat/completions", "method": "POST",
                     "headers": [], "state": {"request_id": "req_test"}}
            await app(scope, receive, send)
            return statuses[0]

        first = [asyncio.create_task(call()) for _ in range(2)]
        await asyncio.sleep(0.01)
        third = await call()  # refused at once: two are in flight
        release.set()
        return [third, *await asyncio.gather(*first), await call()]

    statuses = asyncio.run(scenario())
    assert statuses == [503, 200, 200, 200]  # and a slot frees when a request ends
    refusal = next(m for m in sent if m["type"] == "http.response.start"
                   and m["status"] == 503)
    assert (b"retry-after", b"1") in refusal["headers"]
    body = next(m["body"] for m in sent if m["type"] == "http.response.body"
                and b"overloaded" in m["body"])
    assert json.loads(body)["error"]["code"] == "overloaded"


def test_v1_serves_cors_for_any_origin_without_credentials(served):
    preflight = served.http.options("/v1/chat/completions", headers={
        "Origin": "https://play.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert preflight.headers["access-control-max-age"] == "600"
    assert "authorization" in preflight.headers["access-control-allow-headers"]
    assert "access-control-allow-credentials" not in preflight.headers
    answer = served.http.get("/v1/models", headers={"Origin": "https://play.example"})
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "x-request-id" in answer.headers["access-control-expose-headers"]


@pytest.mark.parametrize("path", ["/admin/accounts", "/finance/balances", "/audit/events"])
def test_staff_routes_get_no_cors(served, path):
    preflight = served.http.options(path, headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in preflight.headers
    answer = served.http.get(path, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in answer.headers


def test_n_above_8_is_refused_before_any_hold(served):
    buyer = customer(served)
    before = positions(served)

    answer = post_chat(served, buyer.key, chat_body(n=9))

    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "n"
    assert positions(served) == before
