"""OpenAI chat messages as Anthropic turns (spec 9.11): system text, content blocks,
images, tool calls and results, thinking restored from ``reasoning_details``."""

from __future__ import annotations

from typing import Any

import msgspec

from application.translate.openai_anthropic.response import thinking_blocks
from domain.errors import DomainError

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def invalid(message: str, param: str | None) -> DomainError:
    return DomainError("invalid_request", message, param=param)


def unsupported(name: str, param: str) -> DomainError:
    return DomainError("unsupported_parameter",
                       f"{name} is not supported by the chosen provider", param=param)


def conversation(messages: list) -> tuple[str, list[dict]]:
    system: list[str] = []
    turns: list[dict] = []
    for i, message in enumerate(messages):
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system.extend(b["text"] for b in _blocks(content, i, ("text",)))
            continue
        if role == "user":
            blocks = _blocks(content, i, ("text", "image_url"))
        elif role == "assistant":
            # Thinking first, exactly as Anthropic produced it, or its signature check fails.
            blocks = thinking_blocks(message.get("reasoning_details"))
            blocks += _blocks(content, i, ("text", "refusal"))
            calls = message.get("tool_calls") or []
            if not isinstance(calls, list):
                raise invalid("tool_calls must be an array", f"messages[{i}].tool_calls")
            blocks += [_tool_use(c, f"messages[{i}].tool_calls[{k}]") for k, c in enumerate(calls)]
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise invalid("a tool message needs a tool_call_id", f"messages[{i}].tool_call_id")
            result = content if isinstance(content, str) else _blocks(content, i, ("text",))
            role, blocks = "user", [{"type": "tool_result", "tool_use_id": call_id,
                                     **({"content": result} if result else {})}]
        else:
            raise invalid(f"role {role!r} is not accepted", f"messages[{i}].role")
        if not blocks:
            continue
        # Anthropic needs alternating turns: tool results and the user text after them,
        # or two assistant messages, share one turn.
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return "\n\n".join(system), turns


def _blocks(content: Any, i: int, kinds: tuple[str, ...]) -> list[dict]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content.strip() else []
    if not isinstance(content, list):
        raise invalid("content must be a string or an array of parts", f"messages[{i}].content")
    blocks = []
    for j, part in enumerate(content):
        path = f"messages[{i}].content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_audio", "file"):
            raise unsupported(f"{kind} content", path)
        if kind not in kinds:
            raise invalid(f"content part type {kind!r} is not accepted here", path)
        if kind == "image_url":
            blocks.append(_image(part.get("image_url"), path))
            continue
        text = part.get("refusal" if kind == "refusal" else "text")
        if not isinstance(text, str):
            raise invalid("a text part needs a string text", path)
        if text.strip():  # Anthropic refuses empty text blocks
            blocks.append({"type": "text", "text": text})
    return blocks


def _image(ref: Any, path: str) -> dict:
    url = ref.get("url") if isinstance(ref, dict) else ref
    if not isinstance(url, str):
        raise invalid("image_url needs a url", path)
    if url[:5].lower() == "data:":
        header, _, data = url[5:].partition(",")
        params = header.lower().split(";")
        media = "image/jpeg" if params[0] == "image/jpg" else params[0]
        if media not in IMAGE_TYPES or "base64" not in params[1:]:
            raise invalid("image data URIs must be base64 JPEG, PNG, GIF or WebP", path)
        source = {"type": "base64", "media_type": media, "data": data}
    elif url[:8].lower() == "https://" or url[:7].lower() == "http://":
        source = {"type": "url", "url": url}
    else:
        raise invalid("image_url must be an http(s) URL or a data URI", path)
    return {"type": "image", "source": source}


def _tool_use(call: Any, path: str) -> dict:
    fn = call.get("function") if isinstance(call, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) \
            or not isinstance(call.get("id"), str):
        raise invalid("a tool call needs an id and a function name", path)
    raw = fn.get("arguments")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raw = "{}"  # models emit "" for tools without parameters; clients echo it back
    try:
        value = msgspec.json.decode(raw) if isinstance(raw, str) else None
    except msgspec.DecodeError:
        value = None
    if not isinstance(value, dict):
        raise invalid("tool call arguments must be a JSON object", f"{path}.function.arguments")
    return {"type": "tool_use", "id": call["id"], "name": fn["name"], "input": value}
