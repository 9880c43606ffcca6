"""aiohttp client for providers (OpenAI-format and Anthropic): one pooled session per provider.

Addresses are checked by ``CheckedResolver`` at connect time (so a host that re-resolves to
a private address is refused), redirects are never followed, and closing a response closes
its connection, which is how an upstream stream is cancelled.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import aiohttp

from adapters.checked_resolver import CheckedResolver
from application.ports import ProviderTarget

# 9.9: only these provider response headers are read at all; ``Set-Cookie`` and the rest
# never reach the client. ``request-id`` is Anthropic's name for ``x-request-id``.
PASSED_HEADERS = ("content-type", "openai-processing-ms", "x-request-id", "request-id",
                  "retry-after", "retry-after-ms")


# 9.7: a stream idle this long gets a keep-alive (an empty chunk here; the relay writes the
# client format's own: a comment or Anthropic's ping).
KEEP_ALIVE_S = float(os.environ.get("GATEWAYZ_STREAM_KEEPALIVE_S", "15"))


class HttpUpstream:
    def __init__(self, response: aiohttp.ClientResponse,
                 keep_alive_s: float = KEEP_ALIVE_S) -> None:
        self._response = response
        self.keep_alive_s = keep_alive_s
        self.status = response.status
        self.headers = {k.lower(): v for k, v in response.headers.items()
                        if k.lower() in PASSED_HEADERS}

    async def chunks(self) -> AsyncIterator[bytes]:
        content = self._response.content
        try:
            while True:
                idle = asyncio.timeout(self.keep_alive_s)
                try:
                    # Cancelling readany() loses nothing: data stays buffered until read.
                    async with idle:
                        data = await content.readany()
                except TimeoutError:
                    if not idle.expired():  # aiohttp's own timeouts: the request cap
                        raise
                    yield b""  # idle: the relay sends a keep-alive
                    continue
                if not data:
                    return
                yield data
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError):
            # When the connection dies mid-body aiohttp raises before handing over what it
            # had already buffered; pass that on first, so the client gets every chunk the
            # provider sent before the error event (2.8, 9.7).
            buffered = getattr(content, "_buffer", None)
            if buffered:
                data = b"".join(buffered)
                buffered.clear()
                yield data
            raise

    async def read(self) -> bytes:
        return await self._response.read()

    def close(self) -> None:
        self._response.close()


class AiohttpProviderClient:
    def __init__(self) -> None:
        self.keep_alive_s = KEEP_ALIVE_S
        self._sessions: dict[tuple[str, bool], aiohttp.ClientSession] = {}

    def _session(self, target: ProviderTarget) -> aiohttp.ClientSession:
        key = (target.slug, target.allow_private)
        session = self._sessions.get(key)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=1000, limit_per_host=0, keepalive_timeout=30,
                resolver=CheckedResolver(allow_private=target.allow_private),
                ttl_dns_cache=10)
            session = aiohttp.ClientSession(connector=connector, auto_decompress=True,
                                            skip_auto_headers=("User-Agent",))
            self._sessions[key] = session
        return session

    async def send(self, target: ProviderTarget, path: str, body: bytes,
                   headers: dict[str, str] | None = None) -> HttpUpstream:
        timeout = target.timeout_ms / 1000
        sent = {"Content-Type": "application/json", "Accept": "application/json",
                "User-Agent": "gatewayz/0.1", **(headers or {})}
        if target.credential:
            if target.protocol == "anthropic":
                sent["x-api-key"] = target.credential
            else:
                sent["Authorization"] = f"Bearer {target.credential}"
        response = await self._session(target).post(
            target.base_url + path, data=body, headers=sent, allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=target.total_timeout_s,
                                          connect=min(timeout, 10),
                                          sock_read=timeout))
        return HttpUpstream(response, self.keep_alive_s)

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()
