"""The HTTP edge (issue 9): a bounded request head answered in the 9.8 JSON shape, no server
banner, nosniff everywhere, no-store on replies that carry a secret or account data, and
owner-only files in the data directory.

Raw sockets where httpx cannot express the request (a flood of headers, CL + TE)."""

from __future__ import annotations

import asyncio
import json
import socket
import stat
import time

import pytest

from e2e.support import customer
from entrypoints.http import edge_protocol
from entrypoints.http.edge import edge_middleware

HOST = b"Host: 127.0.0.1\r\n"


def _raw(served, *parts: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send the parts on a fresh connection; read until the server closes it."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        for part in parts:
            sock.sendall(part)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def _refused(answer: tuple[int, dict[str, str], bytes], status: int, code: str) -> dict:
    got, headers, body = answer
    assert got == status, body
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert headers["x-content-type-options"] == "nosniff"
    assert "server" not in headers
    error = json.loads(body)["error"]
    assert error == {"message": error["message"], "type": "invalid_request_error",
                     "param": None, "code": code, "request_id": headers["x-request-id"]}
    assert headers["request-id"] == error["request_id"] and error["request_id"].startswith("req_")
    assert 0 < len(error["message"]) <= 500
    return error


def test_twenty_thousand_headers_are_refused_with_a_json_431(served):
    flood = b"".join(b"X-H%d: v\r\n" % i for i in range(20_000))
    error = _refused(_raw(served, b"GET /health HTTP/1.1\r\n", HOST, flood, b"\r\n"),
                     431, "request_too_large")
    assert "100 headers" in error["message"]


def test_a_head_of_exactly_one_hundred_headers_is_served_and_one_more_is_not(served):
    def head(count: int) -> bytes:
        return b"GET /health HTTP/1.1\r\n" + HOST + b"Connection: close\r\n" + b"".join(
            b"X-H%d: v\r\n" % i for i in range(count - 2)) + b"\r\n"

    status, headers, _ = _raw(served, head(100))
    assert status == 200 and "server" not in headers
    _refused(_raw(served, head(101)), 431, "request_too_large")


def test_a_one_megabyte_header_value_is_refused_with_a_json_431_while_it_arrives(served):
    value = b"a" * (1024 * 1024)
    _refused(_raw(served, b"GET /health HTTP/1.1\r\n", HOST, b"X-Big: ", value, b"\r\n\r\n"),
             431, "request_too_large")


def test_one_header_over_8_kib_or_headers_over_64_kib_are_refused(served):
    one = b"X-Big: " + b"a" * (9 * 1024) + b"\r\n"
    _refused(_raw(served, b"GET /health HTTP/1.1\r\n", HOST, one, b"\r\n"),
             431, "request_too_large")
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"a" * 7000) for i in range(10))  # 70 KB in all
    _refused(_raw(served, b"GET /health HTTP/1.1\r\n", HOST, many, b"\r\n"),
             431, "request_too_large")
    fine = b"X-Fine: " + b"a" * 8000 + b"\r\nConnection: close\r\n"
    assert _raw(served, b"GET /health HTTP/1.1\r\n", HOST, fine, b"\r\n")[0] == 200


def test_a_16_kb_request_line_is_refused_with_a_json_414(served):
    line = b"GET /health?q=" + b"a" * (16 * 1024) + b" HTTP/1.1\r\n"
    _refused(_raw(served, line, HOST, b"\r\n"), 414, "request_too_large")


def test_a_refusal_on_anthropic_routes_has_anthropic_s_shape(served):
    status, headers, body = _raw(served, b"POST /v1/messages HTTP/1.1\r\n", HOST,
                                 b"X-Big: ", b"a" * (512 * 1024), b"\r\n\r\n")
    assert status == 431
    payload = json.loads(body)
    assert payload["type"] == "error" and payload["request_id"] == headers["x-request-id"]
    assert payload["error"]["type"] == "request_too_large"


def test_content_length_with_transfer_encoding_is_a_json_400(served):
    request = (b"POST /v1/chat/completions HTTP/1.1\r\n" + HOST
               + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    error = _refused(_raw(served, request), 400, "invalid_request")
    assert error["message"] == "the request is not valid HTTP/1.1"


def test_bytes_that_are_not_http_and_a_nul_in_a_header_are_json_400s(served):
    _refused(_raw(served, b"\x16\x03\x01 not http at all\r\n\r\n"), 400, "invalid_request")
    _refused(_raw(served, b"GET /health HTTP/1.1\r\n", HOST, b"X-A: a\x00b\r\n\r\n"),
             400, "invalid_request")


def test_a_head_not_complete_in_time_closes_the_connection(served, monkeypatch):
    monkeypatch.setattr(edge_protocol, "HEAD_TIMEOUT_S", 0.3)
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as idle, \
            socket.create_connection(("127.0.0.1", served.port), timeout=5) as slow:
        slow.sendall(b"GET /health HTTP/1.1\r\n" + HOST)  # and never the end of the head
        started = time.monotonic()
        assert idle.recv(1) == b"" and slow.recv(1) == b""
        assert time.monotonic() - started < 3
    assert served.http.get("/health").status_code == 200


def test_no_response_carries_a_server_header_and_every_one_carries_nosniff(served):
    responses = [served.http.get("/health"), served.http.get("/no/such/route"),
                 served.http.get("/v1/account/balance"), served.http.get("/v1/models"),
                 served.http.post("/v1/chat/completions", content=b"{")]
    assert [r.status_code for r in responses] == [200, 404, 401, 200, 401]
    for response in responses:
        assert "server" not in response.headers, response.request.url
        assert response.headers["x-content-type-options"] == "nosniff"


def test_replies_with_secrets_or_account_data_are_no_store(served):
    who = customer(served, credit_micros=1_000)  # the admin route that shows a new key
    shown = served.admin("POST", f"/admin/accounts/{who.account_id}/keys",
                         json={"name": "second", "environment": "live"})
    assert shown.status_code == 201 and shown.json()["key"].startswith("gw_live_")
    own = served.http.get("/v1/account/balance", headers={"Authorization": f"Bearer {who.key}"})
    assert own.status_code == 200
    refused = served.http.get("/admin/requests/req_x")  # an error there is no-store too
    for response in (shown, own, refused):
        assert response.headers["cache-control"] == "no-store", response.request.url
        assert response.headers["x-content-type-options"] == "nosniff"
    for public in ("/v1/models", "/audit/public-keys", "/health"):
        response = served.http.get(public)
        assert response.status_code == 200
        assert "no-store" not in response.headers.get("cache-control", ""), public


def test_every_file_in_the_data_dir_is_owner_only(served):
    who = customer(served, credit_micros=1_000)
    assert served.admin("POST", "/admin/audit/checkpoints").status_code in (200, 201)
    served.http.get("/v1/account/balance", headers={"Authorization": f"Bearer {who.key}"})
    data_dir = served.gateway.settings.data_dir
    modes = {str(path.relative_to(data_dir)): (path.is_dir(), stat.S_IMODE(path.stat().st_mode))
             for path in [data_dir, *data_dir.rglob("*")]}
    assert {"gatewayz.sqlite", "gatewayz.sqlite-wal", "read-models.sqlite"} <= set(modes)
    checkpoints = [name for name in modes if name.endswith(".json")]
    assert checkpoints, modes
    for name, (is_dir, mode) in modes.items():
        # Signed checkpoints are also read-only: written once, never overwritten.
        expected = 0o700 if is_dir else 0o400 if name in checkpoints else 0o600
        assert mode == expected, (name, oct(mode))


def test_an_error_raised_before_a_response_is_a_json_500():
    async def broken(scope, receive, send):
        raise RuntimeError("boom")

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "path": "/v1/keys", "state": {"request_id": "req_1"}}
    asyncio.run(edge_middleware(broken)(scope, None, send))
    start, body = sent
    headers = dict(start["headers"])
    assert start["status"] == 500 and headers[b"x-request-id"] == b"req_1"
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert headers[b"cache-control"] == b"no-store"
    assert json.loads(body["body"])["error"]["code"] == "internal_error"


@pytest.mark.parametrize("path, no_store", [
    ("/v1/chat/completions", True), ("/v1/keys", True), ("/v1/models", False),
    ("/v1/models/acme/chat-1", False), ("/admin/accounts", True), ("/finance/balances", True),
    ("/audit/entries", True), ("/audit/public-keys", False), ("/health", False)])
def test_which_paths_are_no_store(path, no_store):
    from entrypoints.http.edge import carries_secrets

    assert carries_secrets(path) is no_store
