"""Several upstream calls as one attempt (legacy completions with several prompts, 9.2).

They are sent together; the attempt succeeds only if every call does. A JSON answer is the
array of the calls' answers, a stream is their streams one after the other.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from application.ports import ProviderClient, ProviderTarget


class CombinedUpstream:
    def __init__(self, parts: list[Any]) -> None:
        self.parts = parts
        self.status = 200
        self.headers = parts[0].headers

    async def chunks(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            async for data in part.chunks():
                yield data

    async def read(self) -> bytes:
        bodies = [await part.read() for part in self.parts]
        return b"[" + b",".join(bodies) + b"]"

    def close(self) -> None:
        for part in self.parts:
            part.close()


async def send_parts(client: ProviderClient, target: ProviderTarget, parts: list[Any]) -> Any:
    """All parts' responses as one; the first failure (an exception or a non-200 answer)
    stands for the attempt, and every other response is closed."""
    results = await asyncio.gather(
        *(client.send(target, p.path, p.body, p.headers) for p in parts),
        return_exceptions=True)
    failure = next((r for r in results if isinstance(r, BaseException)), None)
    refusal = next((r for r in results if not isinstance(r, BaseException) and r.status != 200),
                   None)
    if failure is None and refusal is None:
        return CombinedUpstream(list(results))
    for result in results:
        if not isinstance(result, BaseException) and result is not refusal:
            result.close()
    if failure is not None:
        if refusal is not None:
            refusal.close()
        raise failure
    return refusal
