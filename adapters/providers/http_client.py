"""aiohttp client for providers (OpenAI-format and Anthropic): one pooled session per provider.

Addresses are checked by ``CheckedResolver`` at connect time (so a host that re-resolves to
a private address is refused), redirects are never followed, and closing a response closes
its connection, which is how an upstream stream is cancelled.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp

from adapters.checked_resolver import CheckedResolver
from application.ports import ProviderTarget

# 9.9: only these provider response headers are read at all; ``Set-Cookie`` and the rest
# never reach the client. ``request-id`` is Anthropic's name for ``x-request-id``.
PASSED_HEADERS = ("content-type", "openai-processing-ms", "x-request-id", "request-id",
                  "retry-after", "retry-after-ms")


class HttpUpstream:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers = {k.lower(): v for k, v in response.headers.items()
                        if k.lower() in PASSED_HEADERS}

    async def chunks(self) -> AsyncIterator[bytes]:
        content = self._response.content
        try:
            async for data in content.iter_any():
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
                   extra: dict[str, str] | None = None) -> HttpUpstream:
        timeout = target.timeout_ms / 1000
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "User-Agent": "gatewayz/0.1", **(extra or {})}
        if target.credential:
            if target.protocol == "anthropic":
                headers["x-api-key"] = target.credential
            else:
                headers["Authorization"] = f"Bearer {target.credential}"
        response = await self._session(target).post(
            target.base_url + path, data=body, headers=headers, allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=target.total_timeout_s,
                                          connect=min(timeout, 10),
                                          sock_read=timeout))
        return HttpUpstream(response)

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()
