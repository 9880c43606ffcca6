"""Tier of a coding request, 1 simple .. 4 expert, for `router:code:*` (spec 2.11).

A cheap, explainable heuristic over the request body (OpenAI chat, Anthropic messages, or a
plain `prompt`/`input`): each signal earns 0-3 points on a ladder of thresholds, and the
total maps to a tier. It never raises: a malformed body is validation's business, and the
router must still pick something for it (an unreadable part just adds no points).

Signals and their ladders (a value at or above the n-th step earns n points):
  prompt length in characters     500 / 2,000 / 8,000
  fenced code blocks              1 / 2 / 4
  distinct file paths mentioned   1 / 2 / 5
  stack traces                    1 / 2
  tool definitions                1 / 4
Tier by total points: 0-1 -> 1, 2-3 -> 2, 4-6 -> 3, 7+ -> 4.
"""

from __future__ import annotations

import re
from typing import Any

LENGTH_STEPS = (500, 2_000, 8_000)
CODE_BLOCK_STEPS = (1, 2, 4)
FILE_STEPS = (1, 2, 5)
TRACE_STEPS = (1, 2)
TOOL_STEPS = (1, 4)
TIER_MIN_POINTS = ((7, 4), (4, 3), (2, 2))  # (points at least, tier), highest tier first
# Only this much text is scanned: the signals saturate far below it, and a bound keeps the
# regexes' cost independent of how much the client sends.
MAX_SCAN_CHARS = 200_000
_MAX_DEPTH = 8  # nesting of content parts worth descending into

_FENCE = re.compile(r"^[ \t]*(?:```|~~~)", re.MULTILINE)
_EXTENSIONS = ("py|pyi|js|jsx|mjs|ts|tsx|java|kt|scala|go|rs|c|h|cc|cpp|hpp|cs|rb|php|swift|"
               "m|sql|sh|bash|yaml|yml|json|toml|ini|cfg|html|css|scss|vue|svelte|proto|tf|"
               "gradle|xml|md|lock")
# A path ends in a known source extension; directories are optional ("main.go", "src/a/b.py",
# "/usr/lib/x.py"). Starting only after a non-path character keeps the scan linear.
_FILE = re.compile(r"(?<![\w./-])/?(?:[\w.-]+/)*[\w-]+\.(?:" + _EXTENSIONS + r")(?![\w])")
_TRACE_HEADS = re.compile(
    r"Traceback \(most recent call last\)"  # Python
    r"|^Exception in thread "  # Java, uncaught
    r"|^panic: "  # Go
    r"|^thread '[^'\n]*' panicked at"  # Rust
    r"|(?:^[ \t]+at [^\n]+\n?){2,}",  # a run of JS/Java/C# "at ..." frames counts once
    re.MULTILINE)

_TEXT_KEYS = ("text", "content", "input", "output")


def _collect(value: Any, out: list[str], budget: list[int], depth: int = 0) -> None:
    """Gather the strings of messages/content parts, whatever the wire format nests them in.

    ``budget`` is the one-element count of characters still wanted (shared across calls).
    """
    if depth > _MAX_DEPTH or budget[0] <= 0:
        return
    if isinstance(value, str):
        out.append(value[:budget[0]])
        budget[0] -= len(out[-1]) + 1  # + the joining newline
    elif isinstance(value, list):
        for item in value:
            _collect(item, out, budget, depth + 1)
    elif isinstance(value, dict):
        for key in _TEXT_KEYS:
            if key in value:
                _collect(value[key], out, budget, depth + 1)


def prompt_text(body: dict) -> str:
    """All prompt text of the request, joined by newlines, at most MAX_SCAN_CHARS."""
    parts: list[str] = []
    budget = [MAX_SCAN_CHARS]
    if isinstance(body, dict):
        for key in ("system", "messages", "prompt", "input"):
            _collect(body.get(key), parts, budget)
    return "\n".join(parts)[:MAX_SCAN_CHARS]


def _points(value: int, steps: tuple[int, ...]) -> int:
    return sum(value >= step for step in steps)


def signals(body: dict) -> dict[str, int]:
    """The raw signal values, exposed so a decision can be logged and explained."""
    text = prompt_text(body)
    tools = body.get("tools") if isinstance(body, dict) else None
    # An unclosed fence still opened a block, hence the rounding up.
    return {
        "length": len(text),
        "code_blocks": (len(_FENCE.findall(text)) + 1) // 2,
        "files": len(set(_FILE.findall(text))),
        "stack_traces": len(_TRACE_HEADS.findall(text)),
        "tools": len(tools) if isinstance(tools, list) else 0,
    }


def classify(body: dict) -> int:
    """Tier 1-4 of a chat/messages request body."""
    s = signals(body)
    total = (_points(s["length"], LENGTH_STEPS)
             + _points(s["code_blocks"], CODE_BLOCK_STEPS)
             + _points(s["files"], FILE_STEPS)
             + _points(s["stack_traces"], TRACE_STEPS)
             + _points(s["tools"], TOOL_STEPS))
    for minimum, tier in TIER_MIN_POINTS:
        if total >= minimum:
            return tier
    return 1
