"""An Anthropic Message as an OpenAI chat.completion (spec 9.1, 9.11).

Upstream bodies are trusted to be Anthropic-shaped but never to be complete: a missing or
odd field gets a neutral default, as a translation error here would lose a paid answer.
"""

from __future__ import annotations

from typing import Any

import msgspec

from application.translate.common import OPENAI_FINISH

# Tags the reasoning_details handed out, so only Anthropic's own signatures are sent back.
REASONING_FORMAT = "anthropic-claude-v1"


def response(message: dict, model: str, response_id: str, created: int,
             forced_tool: str | None = None) -> dict:
    message = message if isinstance(message, dict) else {}
    content = message.get("content")
    texts: list[str] = []
    thoughts: list[str] = []
    details: list[dict] = []
    calls: list[dict] = []
    forced_used = False
    for block in content if isinstance(content, list) else []:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(_str(block.get("text")))
        elif kind in ("thinking", "redacted_thinking"):
            if kind == "thinking":
                thoughts.append(_str(block.get("thinking")))
            details.append(reasoning_detail(block, len(details)))
        elif kind == "tool_use" and forced_tool is not None and block.get("name") == forced_tool:
            forced_used = True  # structured output: the client asked for content, not a call
            texts.append(arguments_json(block.get("input")))
        elif kind == "tool_use":
            calls.append({"id": _str(block.get("id")), "type": "function",
                          "function": {"name": _str(block.get("name")),
                                       "arguments": arguments_json(block.get("input"))}})
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None,
                             "refusal": None}
    if calls:
        reply["tool_calls"] = calls
    if thoughts:
        reply["reasoning_content"] = "".join(thoughts)
    if details:
        reply["reasoning_details"] = details
    finish = finish_reason(message.get("stop_reason"), forced_used and not calls)
    return {"id": response_id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": reply, "logprobs": None,
                         "finish_reason": finish}],
            "usage": usage(message.get("usage"))}


def usage(u: dict) -> dict:
    """Anthropic usage as OpenAI usage: Anthropic counts cached input apart, OpenAI inside."""
    u = u if isinstance(u, dict) else {}
    fresh, read, written, output = (_count(u.get(name)) for name in (
        "input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
        "output_tokens"))
    details = u.get("output_tokens_details")
    reasoning = _count(details.get("thinking_tokens")) if isinstance(details, dict) else 0
    prompt = fresh + read + written
    return {"prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output,
            "prompt_tokens_details": {"cached_tokens": read},
            "completion_tokens_details": {"reasoning_tokens": reasoning}}


def finish_reason(stop_reason: Any, forced_only: bool = False) -> str:
    """``forced_only``: the only tool used carried structured output, which is content."""
    finish = OPENAI_FINISH.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"
    return "stop" if forced_only and finish == "tool_calls" else finish


def reasoning_detail(block: dict, index: int) -> dict:
    """A thinking or redacted_thinking block as one OpenRouter-style reasoning_details entry."""
    if block.get("type") == "redacted_thinking":
        return {"type": "reasoning.encrypted", "data": _str(block.get("data")),
                "format": REASONING_FORMAT, "index": index}
    return {"type": "reasoning.text", "text": _str(block.get("thinking")),
            "signature": _str(block.get("signature")), "format": REASONING_FORMAT,
            "index": index}


def thinking_blocks(details: Any) -> list[dict]:
    """The inverse of ``reasoning_detail``, for a client sending an assistant turn back."""
    blocks: list[dict] = []
    for detail in details if isinstance(details, list) else []:
        if not isinstance(detail, dict) or detail.get("format") not in (None, REASONING_FORMAT):
            continue  # another provider's reasoning cannot be verified by Anthropic
        kind, text, signature = detail.get("type"), detail.get("text"), detail.get("signature")
        # Without its signature a thinking block is refused, so it cannot be sent back.
        if kind == "reasoning.text" and isinstance(signature, str) and signature:
            blocks.append({"type": "thinking", "thinking": text if isinstance(text, str) else "",
                           "signature": signature})
        elif kind == "reasoning.encrypted" and isinstance(detail.get("data"), str):
            blocks.append({"type": "redacted_thinking", "data": detail["data"]})
    return blocks


def arguments_json(value: Any) -> str:
    return msgspec.json.encode(value if isinstance(value, dict) else {}).decode()


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
