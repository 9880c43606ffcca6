"""How the fakes count and cut text: words as tokens, chunks that rejoin losslessly.

Shared by FakeOpenAI and FakeAnthropic, so both stream a text the same way.
"""

from __future__ import annotations

import json
import re
from typing import Any

_WORD = re.compile(r"\s*\S+")


def _count_words(text: str) -> int:
    return len(text.split())


def _pieces(text: str) -> list[str]:
    """Split into words that keep their leading whitespace, so ''.join() is lossless."""
    pieces = _WORD.findall(text)
    rest = text[len("".join(pieces)):]
    if rest:
        if pieces:
            pieces[-1] += rest
        else:
            pieces = [rest]
    return pieces


def _groups(text: str, words_per_chunk: int) -> list[str]:
    pieces = _pieces(text)
    size = max(1, words_per_chunk)
    return ["".join(pieces[i:i + size]) for i in range(0, len(pieces), size)]


def _fragments(text: str, parts: int = 3) -> list[str]:
    """Split arguments JSON into up to ``parts`` raw fragments, as a model streams them."""
    size = max(1, -(-len(text) // parts))
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def _dump(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))
