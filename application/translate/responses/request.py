"""A Responses request (spec 9.4) -> a chat-completions request, and back to chat history."""

from __future__ import annotations

from typing import Any

from application.translate.responses.items import bad, chat_messages, turn_messages, unsupported

MAX_OUTPUT_LIMIT = 1_000_000
MAX_TOOLS = 128
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
# Responses features the chat pipeline cannot provide, with the values that ask for nothing:
# any other value is refused by name (9.4, 9.10: never dropped silently).
_UNSUPPORTED: dict[str, tuple] = {
    "background": (None, False), "background_options": (None,), "conversation": (None,),
    "context_management": (None,), "max_tool_calls": (None,), "top_logprobs": (None, 0),
    "truncation": (None, "disabled"), "moderation": (None,), "prompt_cache_options": (None,),
    "access_programs": (None,), "image": (None,)}
# Responses fields this module maps (or the gateway consumes); every other field passes
# through to the chat body unchanged (sampling, user, gateway extensions such as prompt).
_CONSUMED = {"model", "input", "instructions", "max_output_tokens", "metadata", "include",
             "previous_response_id", "reasoning", "store", "stream", "stream_options", "text",
             "tool_choice", "tools", "parallel_tool_calls", *_UNSUPPORTED}
_FORMATS = ("text", "json_object", "json_schema")




def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _optional(body: dict, name: str, kind: type, what: str) -> None:
    if body.get(name) is not None and not isinstance(body[name], kind):
        raise bad(f"{name} must be {what}", name)


def parse_responses(body: Any) -> dict:
    """Validate a ``POST /v1/responses`` body; returned unchanged when it is valid."""
    if not isinstance(body, dict):
        raise bad("the request body must be a JSON object", None)
    if not isinstance(body.get("model"), str) or not body["model"].strip():
        raise bad("model is required and must be a string", "model")
    for name, allowed in _UNSUPPORTED.items():
        if body.get(name) not in allowed:
            raise unsupported(f"{name} is not supported by this gateway", name)
    if body.get("input") is not None or body.get("prompt") is None:
        chat_messages(body.get("input"), "input")  # validates every item
    _optional(body, "instructions", str, "a string")
    limit = body.get("max_output_tokens")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or
                              not 1 <= limit <= MAX_OUTPUT_LIMIT):
        raise bad(f"max_output_tokens must be an integer from 1 to {MAX_OUTPUT_LIMIT}",
                   "max_output_tokens")
    for name, high in (("temperature", 2), ("top_p", 1)):
        if body.get(name) is not None and not (_number(body[name]) and 0 <= body[name] <= high):
            raise bad(f"{name} must be a number from 0 to {high}", name)
    for name in ("stream", "store", "parallel_tool_calls"):
        _optional(body, name, bool, "a boolean")
    for name in ("previous_response_id", "user"):
        _optional(body, name, str, "a string")
    _check_metadata(body.get("metadata"))
    _check_tools(body.get("tools"))
    _check_tool_choice(body.get("tool_choice"))
    _check_text(body.get("text"))
    _optional(body, "reasoning", dict, "an object")
    reasoning = body.get("reasoning") or {}
    if reasoning.get("effort") not in (None, *EFFORTS):
        raise bad(f"reasoning.effort must be one of {', '.join(EFFORTS)}", "reasoning.effort")
    if reasoning.get("summary") not in (None, "auto", "concise", "detailed"):
        raise bad("reasoning.summary must be auto, concise or detailed", "reasoning.summary")
    include = body.get("include") or []
    if not isinstance(include, list) or not all(isinstance(i, str) for i in include):
        raise bad("include must be an array of strings", "include")
    if "message.output_text.logprobs" in include:
        index = include.index("message.output_text.logprobs")
        raise unsupported("output logprobs are not supported", f"include[{index}]")
    return body


def _check_metadata(metadata: Any) -> None:
    if metadata is not None and (not isinstance(metadata, dict) or len(metadata) > 16 or not all(
            isinstance(k, str) and len(k) <= 64 and isinstance(v, str) and len(v) <= 512
            for k, v in metadata.items())):
        raise bad("metadata must map at most 16 keys (64 characters) to strings "
                   "(512 characters)", "metadata")


def _check_tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list) or len(tools) > MAX_TOOLS:
        raise bad(f"tools must be an array of at most {MAX_TOOLS} tools", "tools")
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        if not isinstance(tool, dict):
            raise bad("each tool must be an object", where)
        if tool.get("type") != "function":
            # Hosted tools (web search, file search, code interpreter, computer use, MCP...)
            # run inside OpenAI; no upstream of the gateway provides them (9.4 default).
            raise unsupported(f"tools of type {str(tool.get('type'))[:40]!r} are not "
                               "supported; only function tools are", where)
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise bad("a function tool needs a name", f"{where}.name")
        for name, kind in (("description", str), ("parameters", dict), ("strict", bool)):
            if tool.get(name) is not None and not isinstance(tool[name], kind):
                raise bad(f"{name} has the wrong type", f"{where}.{name}")


def _check_tool_choice(choice: Any) -> None:
    if choice is None or choice in ("auto", "none", "required"):
        return
    if isinstance(choice, dict) and choice.get("type") == "function":
        if not isinstance(choice.get("name"), str) or not choice["name"]:
            raise bad("tool_choice.name must be a string", "tool_choice.name")
        return
    if isinstance(choice, dict):
        raise unsupported("only auto, none, required or a function may be chosen",
                           "tool_choice")
    raise bad("tool_choice must be auto, none, required or a function", "tool_choice")


def _check_text(text: Any) -> None:
    if text is not None and not isinstance(text, dict):
        raise bad("text must be an object", "text")
    if (text or {}).get("verbosity") not in (None, "low", "medium", "high"):
        raise bad("text.verbosity must be low, medium or high", "text.verbosity")
    form = (text or {}).get("format")
    if form is None:
        return
    if not isinstance(form, dict) or form.get("type") not in _FORMATS:
        raise bad("text.format.type must be text, json_object or json_schema",
                   "text.format.type")
    if form["type"] == "json_schema":
        if not isinstance(form.get("name"), str) or not form["name"]:
            raise bad("a json_schema format needs a name", "text.format.name")
        if not isinstance(form.get("schema"), dict):
            raise bad("a json_schema format needs a schema object", "text.format.schema")
        if form.get("strict") is not None and not isinstance(form["strict"], bool):
            raise bad("text.format.strict must be a boolean", "text.format.strict")


def chat_body(body: dict, history: list[dict]) -> dict:
    """The chat-completions body for a validated Responses body. ``history`` holds the chat
    messages of earlier turns (``previous_response_id``); the earlier turns' instructions are
    not carried over, as in the OpenAI API."""
    messages: list[dict] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    messages += history
    if body.get("input") is not None:
        messages += chat_messages(body["input"], "input")
    chat: dict = {"model": body["model"], "messages": messages}
    if body.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = body["max_output_tokens"]
    text = body.get("text") or {}
    form = text.get("format") or {}
    if form.get("type") == "json_object":
        chat["response_format"] = {"type": "json_object"}
    elif form.get("type") == "json_schema":
        schema = {k: form[k] for k in ("name", "description", "schema", "strict")
                  if form.get(k) is not None}
        chat["response_format"] = {"type": "json_schema", "json_schema": schema}
    if text.get("verbosity"):
        chat["verbosity"] = text["verbosity"]
    effort = (body.get("reasoning") or {}).get("effort")
    if effort:
        chat["reasoning_effort"] = effort
    if body.get("tools"):
        chat["tools"] = [{"type": "function", "function": {
            k: tool[k] for k in ("name", "description", "parameters", "strict")
            if tool.get(k) is not None}} for tool in body["tools"]]
        # Without tools the chat API refuses these two, and they would mean nothing.
        if body.get("parallel_tool_calls") is not None:
            chat["parallel_tool_calls"] = body["parallel_tool_calls"]
        choice = body.get("tool_choice")
        if isinstance(choice, dict):
            chat["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
        elif choice is not None:
            chat["tool_choice"] = choice
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    chat.update((k, v) for k, v in body.items() if k not in _CONSUMED)
    return chat


__all__ = ["chat_body", "chat_messages", "parse_responses", "turn_messages"]
