"""An OpenAI chat-completions body as an Anthropic Messages body (spec 9.6, 9.10, 9.11)."""

from __future__ import annotations

from typing import Any

import msgspec

from application.translate.common import EFFORT_BUDGET, MIN_THINKING_BUDGET, Translated
from application.translate.openai_anthropic.response import thinking_blocks
from domain.errors import DomainError

JSON_TOOL = "json_output"
JSON_DESCRIPTION = "Respond by calling this tool with a JSON value that matches its input schema."
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
# Newer OpenAI effort levels; Anthropic has no budget above "high" in the 9.11 table.
BUDGETS = {**EFFORT_BUDGET, "xhigh": EFFORT_BUDGET["high"]}
# Consumed by the gateway itself (output limit, stream contract, 9.10 extensions): never
# forwarded, and not "dropped" since the caller honours them.
CONSUMED = frozenset({"model", "messages", "max_tokens", "max_completion_tokens",
                      "max_output_tokens", "stream_options", "models", "provider", "cache",
                      "session_id", "prompt"})
# Semantic features an Anthropic upstream cannot give are refused rather than dropped, as
# dropping them would change what the client gets (9.10).
REFUSED = frozenset({"audio", "prediction", "functions", "function_call"})
MAPPED = REFUSED | {"stream", "tools", "tool_choice", "parallel_tool_calls", "response_format",
                    "stop", "temperature", "top_p", "top_k", "user", "reasoning_effort", "n",
                    "logprobs", "top_logprobs", "modalities", "store"}


def _invalid(message: str, param: str | None) -> DomainError:
    return DomainError("invalid_request", message, param=param)


def _unsupported(name: str, param: str) -> DomainError:
    return DomainError("unsupported_parameter",
                       f"{name} is not supported by the chosen provider", param=param)


def request(body: dict, native_model: str, limit: int) -> Translated:
    dropped: set[str] = set()
    adjusted: set[str] = set()
    for name, value in body.items():
        if value is None or name in CONSUMED:
            continue  # null means "not given" in both APIs: nothing to forward or report
        if name not in MAPPED:
            dropped.add(name)  # sampling extras, OpenAI metadata and unknown fields
        elif _refused(name, value):
            raise _unsupported(name, name)
    system, messages = _conversation(body["messages"])
    tools, choice = _tools(body, adjusted)
    thinking = _thinking(body.get("reasoning_effort"), limit, choice, messages, adjusted)
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise _invalid("user must be a string", "user")
    out: dict[str, Any] = {
        "model": native_model, "max_tokens": limit, "system": system, "messages": messages,
        "tools": tools, "tool_choice": choice,
        "stop_sequences": _stops(body.get("stop"), dropped, adjusted),
        **_sampling(body, thinking is not None, dropped, adjusted),
        "metadata": {"user_id": user} if user is not None else None,
        "thinking": thinking, "stream": True if body.get("stream") is True else None}
    out = {key: value for key, value in out.items() if value not in (None, "", [])}
    return Translated(out, [n for n in body if n in dropped], [n for n in body if n in adjusted])


def forced_tool_name(body: dict) -> str | None:
    """The tool that carries structured output, whose input the client gets as content."""
    return (_forced_tool(body) or (None,))[0]


def _refused(name: str, value: Any) -> bool:
    return (name in REFUSED or (name == "n" and value != 1)
            or (name in ("logprobs", "store") and bool(value))
            or (name == "top_logprobs" and value != 0)
            or (name == "modalities" and isinstance(value, list) and "audio" in value))


def _sampling(body: dict, thinking: bool, dropped: set, adjusted: set) -> dict:
    # With thinking Anthropic refuses temperature and top_k, and top_p below 0.95.
    out = {}
    for name, low, high in (("temperature", 0, 1), ("top_p", 0.95 if thinking else 0, 1),
                            ("top_k", 0, None)):
        value = body.get(name)
        if value is None:
            continue
        kinds = int if high is None else int | float
        if isinstance(value, bool) or not isinstance(value, kinds) or value < 0:
            raise _invalid(f"{name} must be a non-negative number", name)
        if thinking and name != "top_p":
            dropped.add(name)
            continue
        clamped = max(low, value if high is None else min(high, value))
        if clamped != value:
            adjusted.add(name)
        out[name] = clamped
    return out


def _stops(stop: Any, dropped: set, adjusted: set) -> list[str]:
    items = [stop] if isinstance(stop, str) else [] if stop is None else stop
    if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
        raise _invalid("stop must be a string or an array of strings", "stop")
    # Anthropic refuses whitespace-only stop sequences (OpenAI clients often send "\n").
    kept = [s for s in items if s.strip()]
    if len(kept) < len(items):
        (adjusted if kept else dropped).add("stop")
    return kept


def _thinking(effort: Any, limit: int, choice: dict | None, turns: list[dict],
              adjusted: set) -> dict | None:
    if effort is None or effort == "none":
        return None
    if not isinstance(effort, str) or effort not in BUDGETS:
        raise _invalid("reasoning_effort must be none, low, medium or high", "reasoning_effort")
    budget = BUDGETS[effort]
    if budget >= limit:
        # Below max_tokens (9.11) at half of it, so the answer keeps room.
        budget = limit // 2
        adjusted.add("reasoning_effort")
    # Anthropic refuses thinking when a tool is forced (structured output, "required"), and
    # when the pending tool use lacks its thinking block (the client did not keep it).
    forced = choice is not None and choice["type"] in ("any", "tool")
    last = next((t["content"] for t in reversed(turns) if t["role"] == "assistant"), [{}])
    unthought = last[0].get("type") not in ("thinking", "redacted_thinking") and any(
        block.get("type") == "tool_use" for block in last)
    if budget < MIN_THINKING_BUDGET or forced or unthought:
        adjusted.add("reasoning_effort")
        return None
    return {"type": "enabled", "budget_tokens": budget}


def _tools(body: dict, adjusted: set) -> tuple[list[dict], dict | None]:
    tools = [_tool(tool, i) for i, tool in enumerate(body.get("tools") or [])]
    wanted = body.get("tool_choice")
    choice = _choice(wanted) if wanted is not None else None
    if not tools and choice is not None:  # "none"/"auto" without tools changes nothing
        if choice["type"] in ("any", "tool"):
            raise _invalid("tool_choice needs tools", "tool_choice")
        choice = None
    forced = _forced_tool(body)
    if forced:
        name, description, schema = forced
        tools.append({"name": name, "description": description, "input_schema": schema})
        if choice is not None and choice["type"] != "auto":
            adjusted.add("tool_choice")
        choice = {"type": "tool", "name": name}
    if body.get("parallel_tool_calls") is False and tools:
        choice = choice or {"type": "auto"}
        if choice["type"] != "none":  # the none choice takes no such flag
            choice["disable_parallel_tool_use"] = True
    return tools, choice


def _tool(tool: Any, i: int) -> dict:
    if not isinstance(tool, dict) or tool.get("type", "function") != "function":
        raise _unsupported("only function tools are", f"tools[{i}].type")
    fn = tool.get("function")
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise _invalid("each function tool needs a name", f"tools[{i}].function.name")
    schema = fn.get("parameters")
    if schema is not None and not isinstance(schema, dict):
        raise _invalid("parameters must be a JSON schema", f"tools[{i}].function.parameters")
    # Anthropic requires the root type, which OpenAI lets clients leave out.
    schema = {"type": "object", **(schema if schema is not None else {"properties": {}})}
    description = fn.get("description")
    return {"name": fn["name"], **({"description": description} if description else {}),
            "input_schema": schema}


def _choice(value: Any) -> dict:
    if value in ("none", "auto", "required"):
        return {"type": "any" if value == "required" else value}
    kind = value.get("type") if isinstance(value, dict) else None
    fn = value.get("function") if kind == "function" else None
    if isinstance(fn, dict) and isinstance(fn.get("name"), str):
        return {"type": "tool", "name": fn["name"]}
    if kind in ("allowed_tools", "custom"):
        raise _unsupported(f"tool_choice {kind}", "tool_choice")
    raise _invalid("tool_choice must be none, auto, required or a named function", "tool_choice")


def _forced_tool(body: dict) -> tuple[str, str, dict] | None:
    fmt = body.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, dict) else fmt
    if kind is None or kind == "text":
        return None
    if kind == "json_object":
        return JSON_TOOL, JSON_DESCRIPTION, {"type": "object"}
    if kind != "json_schema":
        raise _invalid("unknown response_format type", "response_format.type")
    spec = fmt.get("json_schema")
    name = spec.get("name") or JSON_TOOL if isinstance(spec, dict) else None
    schema = spec.get("schema") or {"type": "object"} if isinstance(spec, dict) else None
    if not isinstance(name, str) or not isinstance(schema, dict):
        raise _invalid("json_schema needs a name and a schema", "response_format.json_schema")
    if schema.get("type", "object") != "object":  # a tool input is always an object
        raise _unsupported("a schema whose root is not an object is",
                           "response_format.json_schema.schema")
    return name, spec.get("description") or JSON_DESCRIPTION, schema


def _conversation(messages: list) -> tuple[str, list[dict]]:
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
                raise _invalid("tool_calls must be an array", f"messages[{i}].tool_calls")
            blocks += [_tool_use(c, f"messages[{i}].tool_calls[{k}]") for k, c in enumerate(calls)]
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise _invalid("a tool message needs a tool_call_id", f"messages[{i}].tool_call_id")
            result = content if isinstance(content, str) else _blocks(content, i, ("text",))
            role, blocks = "user", [{"type": "tool_result", "tool_use_id": call_id,
                                     **({"content": result} if result else {})}]
        else:
            raise _invalid(f"role {role!r} is not accepted", f"messages[{i}].role")
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
        raise _invalid("content must be a string or an array of parts", f"messages[{i}].content")
    blocks = []
    for j, part in enumerate(content):
        path = f"messages[{i}].content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_audio", "file"):
            raise _unsupported(f"{kind} content", path)
        if kind not in kinds:
            raise _invalid(f"content part type {kind!r} is not accepted here", path)
        if kind == "image_url":
            blocks.append(_image(part.get("image_url"), path))
            continue
        text = part.get("refusal" if kind == "refusal" else "text")
        if not isinstance(text, str):
            raise _invalid("a text part needs a string text", path)
        if text.strip():  # Anthropic refuses empty text blocks
            blocks.append({"type": "text", "text": text})
    return blocks


def _image(ref: Any, path: str) -> dict:
    url = ref.get("url") if isinstance(ref, dict) else ref
    if not isinstance(url, str):
        raise _invalid("image_url needs a url", path)
    if url[:5].lower() == "data:":
        header, _, data = url[5:].partition(",")
        params = header.lower().split(";")
        media = "image/jpeg" if params[0] == "image/jpg" else params[0]
        if media not in IMAGE_TYPES or "base64" not in params[1:]:
            raise _invalid("image data URIs must be base64 JPEG, PNG, GIF or WebP", path)
        source = {"type": "base64", "media_type": media, "data": data}
    elif url[:8].lower() == "https://" or url[:7].lower() == "http://":
        source = {"type": "url", "url": url}
    else:
        raise _invalid("image_url must be an http(s) URL or a data URI", path)
    return {"type": "image", "source": source}


def _tool_use(call: Any, path: str) -> dict:
    fn = call.get("function") if isinstance(call, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) \
            or not isinstance(call.get("id"), str):
        raise _invalid("a tool call needs an id and a function name", path)
    raw = fn.get("arguments")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raw = "{}"  # models emit "" for tools without parameters; clients echo it back
    try:
        value = msgspec.json.decode(raw) if isinstance(raw, str) else None
    except msgspec.DecodeError:
        value = None
    if not isinstance(value, dict):
        raise _invalid("tool call arguments must be a JSON object", f"{path}.function.arguments")
    return {"type": "tool_use", "id": call["id"], "name": fn["name"], "input": value}
