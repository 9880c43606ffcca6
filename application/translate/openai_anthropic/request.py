"""An OpenAI chat-completions body as an Anthropic Messages body (spec 9.6, 9.10, 9.11)."""

from __future__ import annotations

from typing import Any

from application.translate.common import EFFORT_BUDGET, MIN_THINKING_BUDGET, Translated
from application.translate.openai_anthropic.messages import conversation, invalid, unsupported

JSON_TOOL = "json_output"
JSON_DESCRIPTION = "Respond by calling this tool with a JSON value that matches its input schema."
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




def request(body: dict, native_model: str, limit: int) -> Translated:
    dropped: set[str] = set()
    adjusted: set[str] = set()
    for name, value in body.items():
        if value is None or name in CONSUMED:
            continue  # null means "not given" in both APIs: nothing to forward or report
        if name not in MAPPED:
            dropped.add(name)  # sampling extras, OpenAI metadata and unknown fields
        elif _refused(name, value):
            raise unsupported(name, name)
    system, messages = conversation(body["messages"])
    tools, choice = _tools(body, adjusted)
    thinking = _thinking(body.get("reasoning_effort"), limit, choice, messages, adjusted)
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise invalid("user must be a string", "user")
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
            raise invalid(f"{name} must be a non-negative number", name)
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
        raise invalid("stop must be a string or an array of strings", "stop")
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
        raise invalid("reasoning_effort must be none, low, medium or high", "reasoning_effort")
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
            raise invalid("tool_choice needs tools", "tool_choice")
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
        raise unsupported("only function tools are", f"tools[{i}].type")
    fn = tool.get("function")
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise invalid("each function tool needs a name", f"tools[{i}].function.name")
    schema = fn.get("parameters")
    if schema is not None and not isinstance(schema, dict):
        raise invalid("parameters must be a JSON schema", f"tools[{i}].function.parameters")
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
        raise unsupported(f"tool_choice {kind}", "tool_choice")
    raise invalid("tool_choice must be none, auto, required or a named function", "tool_choice")


def _forced_tool(body: dict) -> tuple[str, str, dict] | None:
    fmt = body.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, dict) else fmt
    if kind is None or kind == "text":
        return None
    if kind == "json_object":
        return JSON_TOOL, JSON_DESCRIPTION, {"type": "object"}
    if kind != "json_schema":
        raise invalid("unknown response_format type", "response_format.type")
    spec = fmt.get("json_schema")
    name = spec.get("name") or JSON_TOOL if isinstance(spec, dict) else None
    schema = spec.get("schema") or {"type": "object"} if isinstance(spec, dict) else None
    if not isinstance(name, str) or not isinstance(schema, dict):
        raise invalid("json_schema needs a name and a schema", "response_format.json_schema")
    if schema.get("type", "object") != "object":  # a tool input is always an object
        raise unsupported("a schema whose root is not an object is",
                           "response_format.json_schema.schema")
    return name, spec.get("description") or JSON_DESCRIPTION, schema
