"""Responses input items (and a Response's output items) as chat messages (spec 9.4):
what a request sends upstream, and what a stored turn adds to the conversation."""

from __future__ import annotations

from typing import Any

from application.translate.responses.response import open_reasoning
from domain.errors import DomainError


def bad(message: str, param: str | None, code: str = "invalid_request") -> DomainError:
    return DomainError(code, message, param=param)


def unsupported(message: str, param: str) -> DomainError:
    return DomainError("unsupported_parameter", message, param=param)


def turn_messages(body: dict, response: dict) -> list[dict]:
    """The chat messages one turn adds to the conversation: its input, then its output (a
    Response object) as assistant and tool-call messages; stored for previous_response_id."""
    messages = chat_messages(body["input"], "input") if body.get("input") is not None else []
    return messages + chat_messages(response.get("output") or [], "output")


def chat_messages(items: Any, param: str) -> list[dict]:
    """Responses input (a string or items) -> chat messages; raises on what cannot be sent."""
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    if not isinstance(items, list):
        raise bad(f"{param} is required: a string or an array of items", param)
    out: list[dict] = []
    reasoning: dict | None = None  # restored thinking, for the next assistant message
    for index, item in enumerate(items):
        where = f"{param}[{index}]"
        if not isinstance(item, dict):
            raise bad("each item must be an object", where)
        kind = item.get("type", "message")
        if kind == "message":
            out.append(_message(item, where))
        elif kind == "function_call":
            call = {"id": _text(item, "call_id", where), "type": "function",
                    "function": {"name": _text(item, "name", where),
                                 "arguments": _text(item, "arguments", where)}}
            # Consecutive calls (and the text before them) are one chat assistant turn.
            if out and out[-1]["role"] == "assistant" and reasoning is None:
                out[-1].setdefault("tool_calls", []).append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            out.append({"role": "tool", "tool_call_id": _text(item, "call_id", where),
                        "content": _tool_output(item.get("output"), f"{where}.output")})
        elif kind == "reasoning":
            # Only reasoning the gateway sealed (thinking signatures, 9.11) goes back
            # upstream; other reasoning items are skipped, as chat history has no place
            # for them.
            details = open_reasoning(item.get("encrypted_content"))
            summary = item.get("summary") or []
            if not isinstance(summary, list) or not all(
                    isinstance(s, dict) and isinstance(s.get("text", ""), str) for s in summary):
                raise bad("summary must be an array of summary_text parts",
                           f"{where}.summary")
            text = "".join(s.get("text", "") for s in summary)
            reasoning = {"reasoning_content": text, "reasoning_details": details} \
                if details else None
            continue
        else:
            raise unsupported(f"input items of type {str(kind)[:40]!r} are not supported",
                               where)
        if reasoning and out[-1]["role"] == "assistant":
            out[-1].update(reasoning)
        reasoning = None
    return out


def _text(item: dict, name: str, where: str) -> str:
    if not isinstance(item.get(name), str):
        raise bad(f"{name} must be a string", f"{where}.{name}")
    return item[name]


def _message(item: dict, where: str) -> dict:
    role = item.get("role")
    if role not in ("user", "system", "developer", "assistant"):
        raise bad("role must be user, system, developer or assistant", f"{where}.role")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise bad("content must be a string or an array of parts", f"{where}.content")
    parts, refusal = [], None
    for index, part in enumerate(content):
        at = f"{where}.content[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text"):
            parts.append({"type": "text", "text": _text(part, "text", at)})
        elif kind == "refusal" and role == "assistant":
            refusal = _text(part, "refusal", at)
        elif kind == "input_image" and role != "assistant":
            if part.get("image_url") is None and part.get("file_id") is not None:
                raise unsupported("images by file_id are not supported; send image_url",
                                   f"{at}.file_id")
            image = {"url": _text(part, "image_url", at)}
            if part.get("detail") is not None:
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        elif kind == "input_file":
            raise unsupported("file inputs are not supported", at)
        else:
            raise bad(f"content parts of type {str(kind)[:40]!r} are not accepted here", at)
    if role != "assistant":
        return {"role": role, "content": parts}
    message: dict = {"role": role, "content": "".join(p["text"] for p in parts)}
    if refusal is not None:
        message["refusal"] = refusal
    return message


def _tool_output(output: Any, where: str) -> str:
    """A function's output: a string, or text parts (chat tool messages carry text only)."""
    if isinstance(output, str):
        return output
    if not isinstance(output, list) or not all(isinstance(p, dict) for p in output):
        raise bad("output must be a string or an array of parts", where)
    if any(p.get("type") != "input_text" or not isinstance(p.get("text"), str) for p in output):
        raise unsupported("only text can be returned from a function call", where)
    return "".join(p["text"] for p in output)
