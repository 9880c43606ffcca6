"""FakeOpenAI's POST /v1/embeddings: deterministic vectors, as floats or base64.

``_Embeddings`` is mixed into FakeOpenAI; ``embedding_vector`` lets a test predict the answer.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Any

from aiohttp import web

from .background_server import _Progress
from .openai_behaviour import Behaviour, _error
from .text_chunks import _count_words

EMBEDDING_DIMENSIONS = 8


class _Embeddings:
    """The embeddings endpoint, as a FakeOpenAI method wrapped by ``_generating``."""

    async def _answer_embeddings(self, request: web.Request, behaviour: Behaviour,
                                 body: dict[str, Any], streaming: bool,
                                 progress: _Progress) -> web.StreamResponse:
        inputs = _embedding_inputs(body.get("input"))
        if inputs is None:
            return _error(400, "'input' must be a non-empty string, list of strings, "
                               "list of tokens or list of token lists.")
        dimensions = body.get("dimensions", EMBEDDING_DIMENSIONS)
        if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1:
            return _error(400, "'dimensions' must be a positive integer.")
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, (text, _) in enumerate(inputs):
            vector = embedding_vector(text, dimensions)
            encoded: Any = vector
            if as_base64:
                encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = behaviour.prompt_tokens
        if tokens is None:
            tokens = sum(count for _, count in inputs)
        return web.json_response(
            {"object": "list", "data": data, "model": body["model"],
             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}},
            headers=dict(behaviour.extra_headers))


def embedding_vector(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """The fake's embedding of ``text``: deterministic, in [-1, 1), exact as float32.

    Each 16-bit slice of a SHA-256 stream becomes k/32768, a value float32 holds exactly,
    so base64 and float answers decode to the same numbers.
    """
    values: list[float] = []
    block = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{block}:{text}".encode()).digest()
        values += [(v - 32768) / 32768 for v in struct.unpack(">16H", digest)]
        block += 1
    return values[:dimensions]


def _embedding_inputs(raw: Any) -> list[tuple[str, int]] | None:
    """(text to hash, token count) per input; None when the input is not valid."""
    def tokens(value: Any) -> bool:
        return isinstance(value, list) and bool(value) and all(
            isinstance(t, int) and not isinstance(t, bool) for t in value)

    if isinstance(raw, str):
        raw = [raw]
    if tokens(raw):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        return None
    out = []
    for item in raw:
        if isinstance(item, str) and item:
            out.append((item, _count_words(item)))
        elif tokens(item):
            out.append((" ".join(map(str, item)), len(item)))
        else:
            return None
    return out
