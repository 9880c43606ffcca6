"""FakeAnthropic's request validation: the invalid_request_error the real API would give.

Covers parameters, tools, message roles and blocks, tool_use/tool_result pairing and
thinking blocks in a tool loop, with the real API's wording.
"""

from __future__ import annotations

from typing import Any

from .anthropic_content import _blocks, thinking_enabled, thinking_signature

IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
USER_BLOCKS = {"text", "image", "document", "tool_result", "search_result"}
ASSISTANT_BLOCKS = {"text", "tool_use", "thinking", "redacted_thinking", "server_tool_use",
                    "web_search_tool_result"}


def validate(body: Any, *, counting: bool = False) -> str | None:
    """The invalid_request_error message the real API would give, or None if acceptable."""
    if not isinstance(body, dict):
        return "There was an error parsing the body of your request."
    if not isinstance(body.get("model"), str):
        return "model: Field required"
    max_tokens = body.get("max_tokens")
    if not counting:
        if max_tokens is None:
            return "max_tokens: Field required"
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            return "max_tokens: Input should be greater than or equal to 1"
    thinking = body.get("thinking")
    if thinking is not None:
        if not isinstance(thinking, dict) \
                or thinking.get("type") not in ("enabled", "disabled", "adaptive"):
            return "thinking: Input tag found using 'type' does not match any expected tags"
        budget = thinking.get("budget_tokens")
        if thinking.get("type") == "enabled":
            if not isinstance(budget, int) or budget < 1024:
                return "thinking.enabled.budget_tokens: Input should be greater than or " \
                       "equal to 1024"
            if not counting and budget >= max_tokens:
                return "`max_tokens` must be greater than `thinking.budget_tokens`. Please " \
                       "consult our documentation at https://docs.claude.com/en/docs/" \
                       "build-with-claude/extended-thinking#max-tokens-and-context-window-size"
    temperature = body.get("temperature")
    if temperature is not None:
        if not isinstance(temperature, int | float) or not 0 <= temperature <= 1:
            return "temperature: Input should be less than or equal to 1" \
                if isinstance(temperature, int | float) and temperature > 1 \
                else "temperature: Input should be greater than or equal to 0"
        if thinking_enabled(body) and temperature != 1:
            return "`temperature` may only be set to 1 when thinking is enabled. Please " \
                   "consult our documentation at https://docs.claude.com/en/docs/" \
                   "build-with-claude/extended-thinking#feature-compatibility"
    return _validate_tools(body) or _validate_messages(body)


def _validate_tools(body: dict[str, Any]) -> str | None:
    tools = body.get("tools", [])
    if not isinstance(tools, list):
        return "tools: Input should be a valid list"
    for i, tool in enumerate(tools):
        # Server tools (web_search_..., bash_...) carry their own type and no schema.
        if not isinstance(tool, dict) or tool.get("type", "custom") != "custom":
            continue
        if not isinstance(tool.get("name"), str):
            return f"tools.{i}.custom.name: Field required"
        if not isinstance(tool.get("input_schema"), dict):
            return f"tools.{i}.custom.input_schema: Field required"
    choice = body.get("tool_choice")
    if choice is None:
        return None
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        return "tool_choice: Input tag found using 'type' does not match any expected tags"
    if choice["type"] == "tool" and not isinstance(choice.get("name"), str):
        return "tool_choice.tool.name: Field required"
    if choice["type"] in ("any", "tool") and thinking_enabled(body):
        return "Thinking may not be enabled when tool_choice forces tool use."
    return None


def _validate_messages(body: dict[str, Any]) -> str | None:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return "messages: Field required"
    if not messages:
        return "messages: at least one message is required"
    previous = None
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        if i == 0 and role != "user":
            return 'messages: first message must use the "user" role'
        if role == previous:
            return (f'messages: roles must alternate between "user" and "assistant", '
                    f'but found multiple "{role}" roles in a row')
        previous = role
        content = message.get("content")
        last = i == len(messages) - 1
        if not isinstance(content, str | list):
            return f"messages.{i}.content: Field required"
        if not content and not (last and role == "assistant"):
            return (f"messages.{i}: all messages must have non-empty content except for "
                    f"the optional final assistant message")
        for j, block in enumerate(_blocks(content) if isinstance(content, list) else []):
            problem = _check_block(block, role, f"messages.{i}.content.{j}")
            if problem:
                return problem
    return _validate_pairing(messages) or _validate_thinking_turn(body, messages)


def _check_block(block: dict[str, Any], role: str, where: str) -> str | None:
    kind = block.get("type")
    allowed = USER_BLOCKS if role == "user" else ASSISTANT_BLOCKS
    if kind not in allowed:
        return f"{where}: Input tag '{kind}' found using 'type' is not allowed in a {role} turn"
    if kind == "text" and not isinstance(block.get("text"), str):
        return f"{where}.text.text: Field required"
    if kind == "image":
        source = block.get("source")
        if not isinstance(source, dict):
            return f"{where}.image.source: Field required"
        if source.get("type") == "base64":
            if source.get("media_type") not in IMAGE_MEDIA_TYPES:
                return (f"{where}.image.source.base64.media_type: Input should be "
                        "'image/jpeg', 'image/png', 'image/gif' or 'image/webp'")
            if not isinstance(source.get("data"), str):
                return f"{where}.image.source.base64.data: Field required"
        elif source.get("type") == "url":
            if not isinstance(source.get("url"), str):
                return f"{where}.image.source.url.url: Field required"
        elif source.get("type") != "file":
            return f"{where}.image.source: Input tag does not match any of the expected tags"
    if kind == "tool_use" and not (isinstance(block.get("id"), str)
                                   and isinstance(block.get("name"), str)
                                   and isinstance(block.get("input"), dict)):
        return f"{where}.tool_use: id, name and input are required"
    if kind == "thinking":
        if not isinstance(block.get("signature"), str):
            return f"{where}.thinking.signature: Field required"
        if block["signature"] != thinking_signature(str(block.get("thinking", ""))):
            return f"{where}: Invalid `signature` in `thinking` block"
    return None


def _ids(message: dict[str, Any], kind: str, key: str) -> list[str]:
    return [str(b.get(key)) for b in _blocks(message.get("content")) if b.get("type") == kind]


def _validate_pairing(messages: list[dict[str, Any]]) -> str | None:
    """tool_result answers a tool_use of the message before; every tool_use gets answered."""
    for i, message in enumerate(messages):
        if message["role"] == "user":
            offered = set(_ids(messages[i - 1], "tool_use", "id")) if i else set()
            for j, block in enumerate(_blocks(message["content"])):
                if block.get("type") == "tool_result" and block.get("tool_use_id") not in offered:
                    return (f"messages.{i}.content.{j}: unexpected `tool_use_id` found in "
                            f"`tool_result` blocks: {block.get('tool_use_id')}. Each "
                            f"`tool_result` block must have a corresponding `tool_use` block "
                            f"in the previous message.")
        elif i + 1 < len(messages):
            answered = set(_ids(messages[i + 1], "tool_result", "tool_use_id"))
            missing = [u for u in _ids(message, "tool_use", "id") if u not in answered]
            if missing:
                return (f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                        f"immediately after: {', '.join(missing)}. Each `tool_use` block must "
                        f"have a corresponding `tool_result` block in the next message.")
    return None


def _validate_thinking_turn(body: dict[str, Any], messages: list[dict[str, Any]]) -> str | None:
    """With thinking on, a tool-using final assistant turn must open with its thinking.

    The turn is every assistant message since the last user message that is more than
    tool results; this is how the real API refuses a client that dropped thinking blocks.
    """
    if not thinking_enabled(body):
        return None
    start = 0
    for i, message in enumerate(messages):
        kinds = {b.get("type") for b in _blocks(message["content"])}
        if message["role"] == "user" and kinds - {"tool_result"}:
            start = i + 1
    turn = [i for i in range(start, len(messages)) if messages[i]["role"] == "assistant"]
    if not turn or not any(_ids(messages[i], "tool_use", "id") for i in turn):
        return None
    first = _blocks(messages[turn[0]]["content"])
    found = first[0].get("type") if first else "nothing"
    if found in ("thinking", "redacted_thinking"):
        return None
    return (f"messages.{turn[0]}.content.0.type: Expected `thinking` or `redacted_thinking`, "
            f"but found `{found}`. When `thinking` is enabled, a final `assistant` message "
            f"must start with a thinking block (preceeding the lastmost set of `tool_use` and "
            f"`tool_result` blocks). We recommend you include thinking blocks from previous "
            f"turns. To avoid this requirement, disable `thinking`. Please consult our "
            f"documentation at https://docs.claude.com/en/docs/build-with-claude/"
            f"extended-thinking")

