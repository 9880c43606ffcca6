"""An OpenAI chat completion as an Anthropic Message (spec 9.6, 9.11).

Never raises on odd upstream output: the client has been charged for the answer by now, so
a malformed piece is carried as well as it can be rather than thrown away with the rest.
"""

from __future__ import annotations

import json
from typing import Any

from application.translate.common import ANTHROPIC_STOP


def response(completion: dict, model: str, message_id: str) -> dict:
    """Only ``choices[0]`` is read: an Anthropic client always asks for one answer."""
    choices = completion.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    content = thinking_blocks(message)
    if isinstance(message.get("content"), str) and message["content"]:
        content.append({"type": "text", "text": message["content"]})
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        content.append({"type": "text", "text": refusal})
    calls = [c for c in message.get("tool_calls") or [] if isinstance(c, dict)]
    content.extend(tool_use_block(call) for call in calls)
    reason = stop_reason(choice.get("finish_reason"), bool(calls), bool(refusal))
    return {"id": message_id, "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": reason, "stop_sequence": None,
            "usage": usage(completion.get("usage") or {})}


def stop_reason(finish_reason: Any, has_tool_calls: bool, refused: bool) -> str:
    if refused:
        return "refusal"
    # Some OpenAI-compatible hosts end a tool-calling turn with "stop"; an Anthropic client
    # only runs its tools on "tool_use".
    if has_tool_calls and finish_reason in (None, "stop"):
        return "tool_use"
    return ANTHROPIC_STOP.get(finish_reason, "end_turn") if isinstance(finish_reason, str) \
        else "end_turn"


def usage(u: dict) -> dict:
    """OpenAI usage as Anthropic usage: OpenAI's prompt count includes the cached tokens,
    Anthropic's input count excludes them (9.11)."""
    prompt = _count(u.get("prompt_tokens"))
    details = u.get("prompt_tokens_details")
    cached = min(_count(details.get("cached_tokens")) if isinstance(details, dict) else 0,
                 prompt)
    return {"input_tokens": prompt - cached, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": cached,
            "output_tokens": _count(u.get("completion_tokens"))}


def thinking_blocks(message: dict) -> list[dict]:
    """Thinking blocks from ``reasoning_details`` when the host sent them (they keep each
    block's signature and redacted data), else one unsigned block of the reasoning text."""
    blocks: list[dict] = []
    for detail in message.get("reasoning_details") or []:
        if not isinstance(detail, dict):
            continue
        kind = detail.get("type")
        if kind == "reasoning.text":
            blocks.append({"type": "thinking", "thinking": _str(detail.get("text")),
                           "signature": _str(detail.get("signature"))})
        elif kind == "reasoning.summary":
            blocks.append({"type": "thinking", "thinking": _str(detail.get("summary")),
                           "signature": ""})
        elif kind == "reasoning.encrypted" and _str(detail.get("data")):
            blocks.append({"type": "redacted_thinking", "data": detail["data"]})
    text = reasoning_text(message)
    if text and not any(b.get("thinking") for b in blocks):
        # Details that carry only signatures: the text comes from reasoning_content.
        first = next((b for b in blocks if b["type"] == "thinking"), None)
        if first is None:
            blocks.insert(0, {"type": "thinking", "thinking": text, "signature": ""})
        else:
            first["thinking"] = text
    return blocks


def reasoning_text(message: dict) -> str:
    """``reasoning_content`` (DeepSeek, vLLM) or ``reasoning`` (OpenRouter)."""
    for key in ("reasoning_content", "reasoning"):
        if isinstance(message.get(key), str) and message[key]:
            return message[key]
    return ""


def tool_use_block(call: dict) -> dict:
    function = call.get("function") or {}
    return {"type": "tool_use", "id": _str(call.get("id")), "name": _str(function.get("name")),
            "input": parse_arguments(function.get("arguments"))}


def parse_arguments(arguments: Any) -> dict:
    """Tool arguments as an object; text that is not a JSON object becomes ``{}``."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""
