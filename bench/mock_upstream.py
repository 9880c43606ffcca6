"""Fast standalone mock OpenAI upstream for load tests: raw asyncio HTTP/1.1 with keep-alive."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys

# Responses are fixed and built once: the mock must cost the machine as little as
# possible, because in a load test it shares two cores with the gateway and wrk.
MODEL = "gpt-4o-mini"
CREATED = 1_700_000_000
WORDS = ["Hello", " from", " the", " mock", " upstream."]
PROMPT_TOKENS = 12
USAGE = {
    "prompt_tokens": PROMPT_TOKENS,
    "completion_tokens": len(WORDS),
    "total_tokens": PROMPT_TOKENS + len(WORDS),
    "prompt_tokens_details": {"cached_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0},
}
MAX_HEAD = 64 * 1024


def _dump(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _response(status: str, content_type: bytes, body: bytes, *, close: bool = False) -> bytes:
    head = (
        b"HTTP/1.1 " + status.encode() + b"\r\n"
        b"Content-Type: " + content_type + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n"
        + (b"Connection: close\r\n" if close else b"")
        + b"\r\n"
    )
    return head + body


def _chunked(status: str, content_type: bytes, events: list[bytes]) -> bytes:
    # One HTTP chunk per SSE event, as real providers flush them, so clients that
    # parse event by event see realistic framing.
    parts = [
        b"HTTP/1.1 " + status.encode() + b"\r\n"
        b"Content-Type: " + content_type + b"\r\n"
        b"Cache-Control: no-cache\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    ]
    for event in events:
        parts.append(f"{len(event):x}\r\n".encode() + event + b"\r\n")
    parts.append(b"0\r\n\r\n")
    return b"".join(parts)


def _completion() -> bytes:
    return _dump({
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "created": CREATED,
        "model": MODEL,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "".join(WORDS), "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }],
        "usage": USAGE,
        "service_tier": "default",
        "system_fingerprint": "fp_mock",
    })


def _stream_events() -> list[bytes]:
    def chunk(choices: list[dict], usage: dict | None = None) -> bytes:
        return b"data: " + _dump({
            "id": "chatcmpl-mock",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": MODEL,
            "service_tier": "default",
            "system_fingerprint": "fp_mock",
            "choices": choices,
            "usage": usage,
        }) + b"\n\n"

    def choice(delta: dict, finish_reason: str | None = None) -> list[dict]:
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]

    events = [chunk(choice({"role": "assistant", "content": "", "refusal": None}))]
    events += [chunk(choice({"content": word})) for word in WORDS]
    events.append(chunk(choice({}, "stop")))
    events.append(chunk([], USAGE))
    events.append(b"data: [DONE]\n\n")
    return events


JSON = b"application/json"
COMPLETION = _response("200 OK", JSON, _completion())
STREAM = _chunked("200 OK", b"text/event-stream; charset=utf-8", _stream_events())
MODELS = _response("200 OK", JSON, _dump({
    "object": "list",
    "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "mock"}],
}))


def _error(status: str, message: str, *, close: bool = False) -> bytes:
    body = _dump({"error": {"message": message, "type": "invalid_request_error",
                            "param": None, "code": None}})
    return _response(status, JSON, body, close=close)


NOT_FOUND = _error("404 Not Found", "Invalid URL")
BAD_REQUEST = _error("400 Bad Request", "Malformed HTTP request", close=True)
LENGTH_REQUIRED = _error("411 Length Required", "Chunked request bodies are not supported",
                         close=True)


class MockUpstream(asyncio.Protocol):
    """One connection; answers pipelined keep-alive requests in order."""

    __slots__ = ("transport", "buffer", "paused")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Small responses must not wait for Nagle behind the client's delayed ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def pause_writing(self) -> None:
        # Stop reading new requests while the client is not reading our answers.
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while self.transport is not None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    self._finish(BAD_REQUEST, close=True)
                return
            head = bytes(buffer[:end]).lower()
            line_end = head.find(b"\r\n")
            request_line = head if line_end < 0 else head[:line_end]
            parts = request_line.split(b" ")
            if len(parts) != 3:
                self._finish(BAD_REQUEST, close=True)
                return
            method, target, version = parts
            if b"\r\ntransfer-encoding:" in head:
                self._finish(LENGTH_REQUIRED, close=True)
                return
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                value_end = head.find(b"\r\n", at + 2)
                try:
                    length = int(head[at + 17:value_end if value_end >= 0 else None])
                except ValueError:
                    self._finish(BAD_REQUEST, close=True)
                    return
            body_start = end + 4
            if len(buffer) < body_start + length:
                if b"\r\nexpect: 100-continue" in head and len(buffer) == body_start:
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                return
            body = bytes(buffer[body_start:body_start + length])
            del buffer[:body_start + length]

            close = (b"\r\nconnection: close" in head) or version == b"http/1.0"
            path = target.split(b"?", 1)[0]
            if method == b"post" and path == b"/v1/chat/completions":
                stream = b'"stream": true' in body or b'"stream":true' in body
                self._finish(STREAM if stream else COMPLETION, close=close)
            elif method == b"get" and path == b"/v1/models":
                self._finish(MODELS, close=close)
            else:
                self._finish(NOT_FOUND, close=close)

    def _finish(self, response: bytes, *, close: bool) -> None:
        transport = self.transport
        if transport is None:
            return
        transport.write(response)
        if close:
            transport.close()
            self.transport = None


def _listen(port: int, reuse_port: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def _serve(sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(MockUpstream, sock=sock)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def _run(sock: socket.socket) -> None:
    try:
        import uvloop  # optional: a faster loop, used only where it is installed
    except ImportError:
        asyncio.run(_serve(sock))
    else:
        uvloop.run(_serve(sock))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=9100, help="0 picks a free port")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes sharing the port through SO_REUSEPORT")
    args = parser.parse_args(argv)

    workers = max(1, args.workers)
    sock = _listen(args.port, reuse_port=workers > 1)
    port = sock.getsockname()[1]
    children = []
    for _ in range(workers - 1):
        pid = os.fork()
        if pid == 0:
            _run(_listen(port, reuse_port=True))
            os._exit(0)
        children.append(pid)
    print(f"listening on 127.0.0.1:{port}", flush=True)
    try:
        _run(sock)
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
            except ProcessLookupError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
