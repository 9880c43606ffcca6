"""Sizing the inputs of a hold: a deliberately high input-token estimate and the output limit.

Pure functions over the client's JSON; they never raise on malformed input (validation is
``parse_chat``'s job) because an estimator that crashes turns a bad request into a 500.
"""

from __future__ import annotations

import json
from typing import Any

IMAGE_TOKENS = 1600
PER_MESSAGE_TOKENS = 8
BYTES_PER_TOKEN = 3
DEFAULT_OUTPUT_LIMIT = 4096
# The fields that may carry the client's output limit, in the order they are reported.
LIMIT_FIELDS = ("max_completion_tokens", "max_tokens", "max_output_tokens")
# Top-level fields the provider feeds to the model as prompt text (``system`` is Anthropic's).
PROMPT_FIELDS = ("tools", "functions", "tool_choice", "response_format", "system")

_TEXT_PART_TYPES = frozenset({"text", "input_text"})
_IMAGE_PART_TYPES = frozenset({"image_url", "input_image", "image"})


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def estimate_text_tokens(text: str) -> int:
    """Fallback token count for text when the provider reports none: 4 characters per token."""
    return _ceil_div(len(text), 4)


def _utf8_len(value: object) -> int:
    """UTF-8 bytes of a string as it is, or of anything else serialised as JSON."""
    if isinstance(value, str):
        # Lone surrogates can arrive from JSON; they must be counted, not crash.
        return len(value.encode("utf-8", "surrogatepass"))
    return _json_len(value)


def _json_len(value: object) -> int:
    """UTF-8 bytes of a value serialised as JSON (a string with its quotes); None is 0."""
    if value is None:
        return 0
    try:
        return _utf8_len(json.dumps(value, default=str, ensure_ascii=False))
    except (TypeError, ValueError, RecursionError):
        return 0


def _call_bytes(call: object) -> int:
    if not isinstance(call, dict):
        return 0
    function = call.get("function")
    if not isinstance(function, dict):
        return 0
    return _utf8_len(function.get("name")) + _utf8_len(function.get("arguments"))


def _part_bytes(part: dict) -> tuple[int, int]:
    """(prompt bytes, images) of one content part."""
    kind = part.get("type")
    if not isinstance(kind, str):  # junk: counted below as JSON, never looked up
        kind = None
    if kind in _TEXT_PART_TYPES:
        return _utf8_len(part.get("text")), 0
    if kind in _IMAGE_PART_TYPES:
        return 0, 1
    # input_audio, file and any part type not known here: the whole part as JSON, so a
    # base64 payload counts 1 token per 3 bytes. Far above the real price, on purpose.
    return _utf8_len(part), 0


def _messages_size(messages: object) -> tuple[int, int, int]:
    """(prompt bytes, messages, images) of a chat messages array; junk counts as nothing."""
    if not isinstance(messages, list):
        return 0, 0, 0
    text_bytes = 0
    images = 0
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            text_bytes += _utf8_len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict):
                    part_bytes, part_images = _part_bytes(part)
                    text_bytes += part_bytes
                    images += part_images
        name = message.get("name")
        if isinstance(name, str):
            text_bytes += _utf8_len(name)
        tool_calls = message.get("tool_calls")
        if isinstance(tool_calls, list):
            text_bytes += sum(_call_bytes(call) for call in tool_calls)
        # The legacy single function_call has the same shape as a tool call's function.
        text_bytes += _call_bytes({"function": message.get("function_call")})
    return text_bytes, len(messages), images


def _tokens(text_bytes: int, messages: int, images: int) -> int:
    return (_ceil_div(text_bytes, BYTES_PER_TOKEN) + PER_MESSAGE_TOKENS * messages
            + IMAGE_TOKENS * images)


def estimate_input_tokens(messages: list[Any]) -> int:
    """Deliberately high input-token estimate for OpenAI chat messages, used only to size holds."""
    return _tokens(*_messages_size(messages))


def estimate_request_input_tokens(body: dict[str, Any]) -> int:
    """Input-token estimate of a whole chat request: the messages plus the tool, function and
    response-format definitions the provider also puts in the prompt, rounded up once."""
    if not isinstance(body, dict):
        return 0
    text_bytes, messages, images = _messages_size(body.get("messages"))
    text_bytes += sum(_json_len(body.get(name)) for name in PROMPT_FIELDS)
    return _tokens(text_bytes, messages, images)


def _positive_int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def requested_output_limit(body: dict[str, Any]) -> int | None:
    """The smallest valid output limit the client sent in any limit field, or None."""
    if not isinstance(body, dict):
        return None
    given = [v for v in (_positive_int(body.get(key)) for key in LIMIT_FIELDS) if v is not None]
    return min(given) if given else None


def output_limit(body: dict[str, Any], model_max_output: int | None,
                 default: int = DEFAULT_OUTPUT_LIMIT) -> int:
    """Most output tokens a request may produce: the smallest limit the client set, else the
    model's maximum, else ``default``. Values that are not positive integers are ignored."""
    requested = requested_output_limit(body)
    if requested is not None:
        return requested
    model_max = _positive_int(model_max_output)
    if model_max is not None:
        return model_max
    return default


def estimate_embedding_input_tokens(value: Any) -> int:
    """Deliberately high input-token estimate of an embeddings ``input``: text at 1 token
    per 3 UTF-8 bytes, token arrays by their length, junk as nothing."""
    items = value if isinstance(value, list) and value and not isinstance(value[0], int) \
        else [value]
    total = 0
    for item in items:
        if isinstance(item, str):
            total += _ceil_div(_utf8_len(item), BYTES_PER_TOKEN) + 1
        elif isinstance(item, list):
            total += len(item)
    return total
