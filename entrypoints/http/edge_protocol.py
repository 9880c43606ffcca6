"""The HTTP/1.1 server protocol: uvicorn's httptools protocol with a bounded request head.

Why a subclass: llhttp (behind httptools) has no limit on the request line, the number of
headers or their size, and httptools keeps a header value that is still arriving in one
growing bytes object, so one connection sending a 40 MB header made the server hold it
(eight took `serve` from 81 to 525 MiB, measured with bench/header_flood.py). uvicorn has no
setting for this; h11's `h11_max_incomplete_event_size` bounds the head but answers every
refusal with uvicorn's plain-text 400. Here the head is counted as it arrives and refused
with a 9.8 JSON body (414 for the request line, 431 for headers); every request llhttp
itself rejects (Content-Length with Transfer-Encoding, CR/LF/NUL in a header, no valid
HTTP) gets a JSON 400 instead of plain text; and a head must be complete within 10 s (1.8).

Selected with ``http="entrypoints.http.edge_protocol:EdgeHttpProtocol"`` in uvicorn's config.
"""

from __future__ import annotations

import logging
from typing import Any

import httptools
import msgspec
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from domain.ids import new_id

# Spec 1.8 sets no numbers for the head; these are the brief's (nginx allows 8 KiB lines).
MAX_REQUEST_LINE = 8 * 1024  # the request target, as llhttp hands it over
MAX_HEADER = 8 * 1024  # one header: name + value
MAX_HEADERS = 100
MAX_HEAD = 64 * 1024  # request target + every header
# The byte count below is per read, and one read (asyncio and uvloop read at most 256 KiB)
# may end an earlier pipelined request before starting this head: one read of slack keeps
# that from refusing a valid head, and still bounds a flood to ~320 KiB per connection.
READ_SLACK = 256 * 1024
HEAD_TIMEOUT_S = 10.0  # 1.8: close connections whose headers are not complete by then
# After a refusal the connection keeps reading and discarding for this long (or until the
# client closes): closing with unread bytes makes the kernel send RST, and the client would
# lose the 431 it was sent. 5 s drains 40 MB at 64 Mbit/s; it costs a socket, no memory.
LINGER_S = 5.0

logger = logging.getLogger("gatewayz.http")


class HeadRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _too_large(status: int, message: str) -> HeadRefused:
    return HeadRefused(status, "request_too_large", message)


BAD_REQUEST = HeadRefused(400, "invalid_request", "the request is not valid HTTP/1.1")


class EdgeHttpProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_open = True  # before the first head, or reading a request line and headers
        self._head_started = 0.0
        self._fed = 0  # bytes of reads that ended with the head still open
        self._target_bytes = 0
        self._header_bytes = 0
        self._refusal: HeadRefused | None = None
        self._refused = False
        self._head_timer: Any = None

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # One timer per connection, re-armed when it fires, rather than one per request:
        # arming and cancelling a timer for every request cost ~7 us (measured).
        self._head_started = self.loop.time()  # a connection that never sends a head too
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT_S, self._check_head)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:  # lingering after a refusal: drop what the client still sends
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # as uvicorn does: no upgrade is served here
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            # A limit below raised inside a parser callback (httptools wraps it), or llhttp
            # refused the bytes itself.
            self._refuse(self._refusal or BAD_REQUEST)
            return
        if self._head_open:
            self._fed += len(data)
            if self._fed > MAX_HEAD + READ_SLACK:
                # One header value still arriving reaches no callback until it ends.
                self._refuse(_too_large(431, f"the request headers exceed {MAX_HEAD} bytes"))

    # Parser callbacks: count, then hand over to uvicorn's (called by class, not super(),
    # as these run for every header of every request).
    def on_message_begin(self) -> None:
        self._target_bytes = self._header_bytes = 0
        self._head_open, self._fed = True, 0
        self._head_started = self.loop.time()
        HttpToolsProtocol.on_message_begin(self)

    def on_url(self, url: bytes) -> None:
        self._target_bytes += len(url)
        if self._target_bytes > MAX_REQUEST_LINE:
            self._fail(_too_large(414, f"the request target exceeds {MAX_REQUEST_LINE} bytes"))
        HttpToolsProtocol.on_url(self, url)

    def on_header(self, name: bytes, value: bytes) -> None:
        size = len(name) + len(value)
        self._header_bytes += size
        if (size > MAX_HEADER or len(self.headers) >= MAX_HEADERS
                or self._target_bytes + self._header_bytes > MAX_HEAD):
            self._fail(_too_large(431, self._header_problem(size)))
        HttpToolsProtocol.on_header(self, name, value)

    def _header_problem(self, size: int) -> str:
        if len(self.headers) >= MAX_HEADERS:
            return f"the request has more than {MAX_HEADERS} headers"
        if size > MAX_HEADER:
            return f"a request header exceeds {MAX_HEADER} bytes"
        return f"the request headers exceed {MAX_HEAD} bytes"

    def on_headers_complete(self) -> None:
        self._head_open = False
        HttpToolsProtocol.on_headers_complete(self)

    def _fail(self, refusal: HeadRefused) -> None:
        self._refusal = refusal  # httptools re-raises its own error; keep ours to answer
        raise refusal

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _check_head(self) -> None:
        delay = HEAD_TIMEOUT_S
        if self._head_open:
            delay = self._head_started + HEAD_TIMEOUT_S - self.loop.time()
            if delay <= 0:
                self._head_timer = None
                self.transport.close()
                return
        self._head_timer = self.loop.call_later(delay, self._check_head)

    def _refuse(self, refusal: HeadRefused) -> None:
        """Answer in the 9.8 shape, then close once the client has stopped sending."""
        self._refused = True
        self._cancel_head_timer()
        self._unset_keepalive_if_required()
        if self.cycle is not None and not self.cycle.response_complete:
            # An earlier pipelined request is still answering: a refusal now would be read
            # as its response, so the connection is closed without one.
            self.transport.close()
            return
        logger.debug("refused a request head: %s", refusal.message)
        request_id = new_id("req")
        target = getattr(self, "url", b"")  # unset when no request line began
        if target.startswith(b"/v1/messages"):  # Anthropic's shape on its routes (9.8)
            kind = "request_too_large" if refusal.status != 400 else "invalid_request_error"
            payload: dict = {"type": "error", "request_id": request_id, "error": {
                "type": kind, "message": refusal.message, "code": refusal.code}}
        else:
            payload = {"error": {"message": refusal.message, "type": "invalid_request_error",
                                 "param": None, "code": refusal.code,
                                 "request_id": request_id}}
        body = msgspec.json.encode(payload)
        head = [STATUS_LINE[refusal.status]]
        for name, value in self.server_state.default_headers:  # Date, configured headers
            if name.lower() != b"server":
                head.append(b"%s: %s\r\n" % (name, value))
        rid = request_id.encode()
        head.append(b"content-type: application/json\r\ncontent-length: %d\r\n"
                    b"connection: close\r\nx-content-type-options: nosniff\r\n"
                    b"cache-control: no-store\r\nx-request-id: %s\r\nrequest-id: %s\r\n\r\n"
                    % (len(body), rid, rid))
        self.transport.write(b"".join(head) + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the client sees the answer end; reading goes on
        self.loop.call_later(LINGER_S, self.transport.close)
