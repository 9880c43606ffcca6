"""An Anthropic Messages request as an OpenAI chat-completions request (spec 9.6, 9.11)."""

from __future__ import annotations

from typing import Any

from application.translate.common import Translated, effort_for_budget, encode
from domain.errors import DomainError

# Top-level fields the translation carries over itself; any other field is named in
# `dropped` so the client learns of it through X-Gatewayz-Dropped-Params (9.10).
_MAPPED = frozenset({"model", "messages", "max_tokens", "system", "tools", "tool_choice",
                     "thinking", "stop_sequences", "temperature", "top_p", "metadata",
                     "stream"})
# Server-side Anthropic features: an OpenAI host cannot run them, and quietly dropping them
# would change what the model can do.
_REFUSED = frozenset({"container", "mcp_servers"})
# Gateway extensions (9.10) are read by the gateway, never meant for the upstream, so they
# are neither forwarded nor reported as dropped.
_EXTENSIONS = frozenset({"models", "provider", "cache", "session_id", "prompt"})
_MAX_STOP = 4  # OpenAI accepts at most four stop strings.
_JOIN = "\n\n"  # a blank line, as 9.11 joins system messages
# The OpenRouter tag that lets an OpenRouter-style host restore Anthropic thinking blocks.
_THINKING_FORMAT = "anthropic-claude-v1"
_TOOL_CHOICE = {"auto": "auto", "any": "required", "none": "none"}


def request(body: dict, native_model: str, limit: int) -> Translated:
    """``body`` is a shape-checked Anthropic Messages request; ``limit`` is the output cap
    the gateway settled on."""
    dropped: list[str] = []
    for key, value in body.items():
        if key in _REFUSED:
            raise _unsupported(key, f"`{key}` is not available for this model.")
        if key == "thinking" and value is not None \
                and _thinking_kind(value) not in ("enabled", "disabled"):
            dropped.append(key)  # adaptive thinking has no chat-completions equivalent
        elif key not in _MAPPED and key not in _EXTENSIONS:
            dropped.append(key)

    out: dict[str, Any] = {
        "model": native_model,
        "messages": _system(body.get("system")) + _messages(body["messages"]),
        "max_completion_tokens": limit,
    }
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    stop = body.get("stop_sequences")
    if stop:
        if not isinstance(stop, list):
            raise _invalid("stop_sequences", "`stop_sequences` must be a list of strings.")
        if len(stop) > _MAX_STOP:
            raise _unsupported("stop_sequences",
                               f"This model accepts at most {_MAX_STOP} stop sequences.")
        out["stop"] = list(stop)
    tools = body.get("tools")
    if tools:
        out["tools"] = [_tool(tool, i) for i, tool in enumerate(tools)]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        out["tool_choice"] = _tool_choice(choice)
        # OpenAI refuses parallel_tool_calls on a request without tools.
        if choice.get("disable_parallel_tool_use") is True and tools:
            out["parallel_tool_calls"] = False
    thinking = body.get("thinking")
    if _thinking_kind(thinking) == "enabled" and isinstance(thinking.get("budget_tokens"), int):
        out["reasoning_effort"] = effort_for_budget(thinking["budget_tokens"])
    user = (body.get("metadata") or {}).get("user_id")
    if isinstance(user, str) and user:
        out["user"] = user
    if body.get("stream") is True:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}  # the gateway bills from it
    return Translated(out, dropped)


def _thinking_kind(thinking: Any) -> str | None:
    return thinking.get("type") if isinstance(thinking, dict) else None


def _system(system: Any) -> list[dict]:
    if system is None or system == "" or system == []:
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    if not isinstance(system, list):
        raise _invalid("system", "`system` must be a string or a list of text blocks.")
    texts = [_text(block, f"system[{i}]") for i, block in enumerate(system)]
    return [{"role": "system", "content": _JOIN.join(texts)}]


def _messages(messages: list[dict]) -> list[dict]:
    out: list[dict] = []
    for i, message in enumerate(messages):
        content = message.get("content")
        if not isinstance(content, str | list):
            raise _invalid(f"messages[{i}].content", "Content must be a string or a list.")
        if message.get("role") == "assistant":
            out.append(_assistant(content, i))
        else:
            out.extend(_user(content, i))
    return out


def _user(content: str | list, i: int) -> list[dict]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    # Tool results answer the preceding assistant turn, so they must follow it directly:
    # they go first, the rest of the user's turn after them.
    results: list[dict] = []
    parts: list[dict] = []
    for j, block in enumerate(content):
        where = f"messages[{i}].content[{j}]"
        kind = _kind(block, where)
        if kind == "text":
            parts.append({"type": "text", "text": _text(block, where)})
        elif kind == "image":
            parts.append(_image(block, where))
        elif kind == "tool_result":
            results.append(_tool_result(block, where))
        else:
            raise _unsupported(where, f"A `{kind}` block cannot be sent to this model.")
    if parts or not results:
        results.append({"role": "user", "content": parts or ""})
    return results


def _assistant(content: str | list, i: int) -> dict:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[dict] = []
    details: list[dict] = []
    for j, block in enumerate(content):
        where = f"messages[{i}].content[{j}]"
        kind = _kind(block, where)
        if kind == "text":
            texts.append(_text(block, where))
        elif kind == "tool_use":
            calls.append(_tool_call(block, where))
        elif kind == "thinking":
            details.append({"type": "reasoning.text", "text": _string(block, "thinking", where),
                            "signature": _string(block, "signature", where),
                            "format": _THINKING_FORMAT, "index": len(details)})
        elif kind == "redacted_thinking":
            details.append({"type": "reasoning.encrypted", "data": _string(block, "data", where),
                            "format": _THINKING_FORMAT, "index": len(details)})
        else:
            raise _unsupported(where, f"A `{kind}` block cannot be sent to this model.")
    # OpenAI wants null content beside tool calls, and a string otherwise.
    text: str | None = _JOIN.join(texts)
    if not texts and calls:
        text = None
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = calls
    if details:
        message["reasoning_details"] = details
    return message


def _tool_call(block: dict, where: str) -> dict:
    tool_input = block.get("input", {})
    if not isinstance(tool_input, dict):
        raise _invalid(f"{where}.input", "A tool_use input must be an object.")
    return {"id": _string(block, "id", where), "type": "function",
            "function": {"name": _string(block, "name", where),
                         "arguments": encode(tool_input).decode()}}


def _tool_result(block: dict, where: str) -> dict:
    content = block.get("content", "")
    if isinstance(content, list):
        texts = []
        for k, part in enumerate(content):
            inner = f"{where}.content[{k}]"
            kind = _kind(part, inner)
            if kind != "text":
                raise _unsupported(inner, f"A tool result holding `{kind}` cannot be sent to "
                                          "this model.")
            texts.append(_text(part, inner))
        content = _JOIN.join(texts)
    elif not isinstance(content, str):
        raise _invalid(f"{where}.content", "A tool result's content must be a string or list.")
    # OpenAI has no error flag on tool messages; the content itself carries the error.
    return {"role": "tool", "tool_call_id": _string(block, "tool_use_id", where),
            "content": content}


def _image(block: dict, where: str) -> dict:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64":
        media = _string(source, "media_type", f"{where}.source")
        url = f"data:{media};base64,{_string(source, 'data', f'{where}.source')}"
    elif kind == "url":
        url = _string(source, "url", f"{where}.source")
    else:
        raise _unsupported(f"{where}.source", f"Image source `{kind}` is not supported here.")
    return {"type": "image_url", "image_url": {"url": url}}


def _tool(tool: Any, i: int) -> dict:
    if not isinstance(tool, dict) or tool.get("type") not in (None, "custom") \
            or not isinstance(tool.get("input_schema"), dict):
        kind = tool.get("type") if isinstance(tool, dict) else None
        raise _unsupported(f"tools[{i}]", f"Tool `{kind}` is not available for this model.")
    function: dict[str, Any] = {"name": _string(tool, "name", f"tools[{i}]")}
    if tool.get("description"):
        function["description"] = tool["description"]
    function["parameters"] = tool["input_schema"]
    if tool.get("strict") is True:
        function["strict"] = True
    return {"type": "function", "function": function}


def _tool_choice(choice: dict) -> Any:
    kind = choice.get("type")
    if not isinstance(kind, str):  # a list or object is no choice (and not hashable)
        raise _invalid("tool_choice.type", "tool_choice.type must be a string.")
    if kind == "tool":
        return {"type": "function", "function": {"name": _string(choice, "name", "tool_choice")}}
    if kind in _TOOL_CHOICE:
        return _TOOL_CHOICE[kind]
    raise _unsupported("tool_choice", f"tool_choice `{kind}` is not supported.")


def _kind(block: Any, where: str) -> str:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise _invalid(where, "A content block must be an object with a `type`.")
    return block["type"]


def _text(block: Any, where: str) -> str:
    if _kind(block, where) != "text":
        raise _invalid(where, "Only text blocks are allowed here.")
    return _string(block, "text", where)


def _string(obj: dict, key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise _invalid(f"{where}.{key}", f"`{key}` must be a string.")
    return value


def _unsupported(param: str, message: str) -> DomainError:
    return DomainError("unsupported_parameter", message, param=param)


def _invalid(param: str, message: str) -> DomainError:
    return DomainError("invalid_request", message, param=param)
