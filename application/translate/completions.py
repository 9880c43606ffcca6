"""Legacy completions (spec 9.2) <-> chat completions.

The gateway serves chat models only, so each prompt becomes one user message (9.2 default) and
the chat answers are folded back into ``text_completion`` choices. Pure: ids and times are
parameters, so a translation is repeatable byte for byte.
"""

from __future__ import annotations

from typing import Any

from application.chat_request import MAX_N  # one rule for n (1.8)
from domain.errors import DomainError

MAX_PROMPTS = 20
MAX_CHOICES = 128  # n * prompts, as the OpenAI API allows
MAX_OUTPUT_LIMIT = 1_000_000
# Completions fields with no chat meaning: validated here, never forwarded.
_CONSUMED = ("prompt", "logprobs", "echo", "suffix", "best_of")
# The legacy API knows only these three; a chat model that called a tool simply stopped.
_FINISH = {"stop", "length", "content_filter"}
_USAGE_FIELDS = ("prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details",
                 "completion_tokens_details")


def _bad(message: str, param: str | None, code: str = "invalid_request") -> DomainError:
    return DomainError(code, message, param=param)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _int_in(body: dict, name: str, low: int, high: int) -> None:
    value = body.get(name)
    if value is not None and not (_is_int(value) and low <= value <= high):
        raise _bad(f"{name} must be an integer from {low} to {high}", name)


def _number_in(body: dict, name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is not None and not (_is_number(value) and low <= value <= high):
        raise _bad(f"{name} must be a number from {low:g} to {high:g}", name)


def _prompts(body: dict) -> list[str]:
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return [prompt]
    if not isinstance(prompt, list) or not prompt:
        raise _bad("prompt is required: a string or an array of 1 to 20 strings", "prompt")
    if any(_is_int(p) or isinstance(p, list) for p in prompt):
        raise _bad("token arrays are not supported as prompt; send text", "prompt",
                   "unsupported_parameter")
    if not all(isinstance(p, str) for p in prompt):
        raise _bad("prompt must be a string or an array of strings", "prompt")
    if len(prompt) > MAX_PROMPTS:
        raise _bad(f"prompt accepts at most {MAX_PROMPTS} strings", "prompt")
    return prompt


def parse_completions(body: Any) -> dict:
    """Validate a ``POST /v1/completions`` body; returned unchanged when it is valid."""
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object", None)
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _bad("model is required and must be a string", "model")
    # echo and suffix need a raw completion model; refused by name, never dropped (9.2).
    if body.get("echo") not in (None, False):
        raise _bad("echo is not supported: the gateway serves chat models", "echo",
                   "unsupported_parameter")
    if body.get("suffix") not in (None, ""):
        raise _bad("suffix is not supported: the gateway serves chat models", "suffix",
                   "unsupported_parameter")
    if body.get("best_of") not in (None, 1):
        raise _bad("best_of is not supported: use n", "best_of", "unsupported_parameter")
    prompts = _prompts(body)
    _int_in(body, "max_tokens", 1, MAX_OUTPUT_LIMIT)
    _number_in(body, "temperature", 0, 2)
    _number_in(body, "top_p", 0, 1)
    _number_in(body, "presence_penalty", -2, 2)
    _number_in(body, "frequency_penalty", -2, 2)
    _int_in(body, "n", 1, MAX_N)
    if (body.get("n") or 1) * len(prompts) > MAX_CHOICES:
        raise _bad(f"n times the number of prompts must be at most {MAX_CHOICES}", "n")
    _int_in(body, "logprobs", 0, 5)
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str) and not (
            isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) for s in stop)):
        raise _bad("stop must be a string or an array of at most 4 strings", "stop")
    if body.get("seed") is not None and not _is_int(body["seed"]):
        raise _bad("seed must be an integer", "seed")
    if body.get("user") is not None and not isinstance(body["user"], str):
        raise _bad("user must be a string", "user")
    if body.get("stream") is not None and not isinstance(body["stream"], bool):
        raise _bad("stream must be a boolean", "stream")
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise _bad("stream_options must be an object", "stream_options")
        if options.get("include_usage") is not None and \
                not isinstance(options["include_usage"], bool):
            raise _bad("stream_options.include_usage must be a boolean",
                       "stream_options.include_usage")
    return body


def chat_bodies(body: dict) -> list[dict]:
    """One chat-completions body per prompt, in prompt order; every field the chat API shares
    (and every field the gateway does not know) is passed through unchanged."""
    prompts = [body["prompt"]] if isinstance(body["prompt"], str) else body["prompt"]
    rest = {k: v for k, v in body.items() if k not in _CONSUMED and k != "model"}
    k = body.get("logprobs")
    if k is not None:
        rest["logprobs"] = True
        if k > 0:
            rest["top_logprobs"] = k
    return [{"model": body["model"], "messages": [{"role": "user", "content": prompt}], **rest}
            for prompt in prompts]


def _finish(reason: Any) -> str | None:
    if reason is None:
        return None
    return reason if reason in _FINISH else "stop"


def _logprobs(chat_logprobs: Any, offset: int = 0) -> dict | None:
    """Chat ``logprobs.content`` -> the legacy parallel arrays. ``text_offset`` counts
    characters from the start of this choice's text (there is no echoed prompt)."""
    if not isinstance(chat_logprobs, dict):
        return None
    entries = chat_logprobs.get("content") or []
    tokens, offsets = [], []
    for entry in entries:
        tokens.append(entry.get("token", ""))
        offsets.append(offset)
        offset += len(tokens[-1])
    return {"tokens": tokens,
            "token_logprobs": [entry.get("logprob") for entry in entries],
            "top_logprobs": [{top["token"]: top["logprob"] for top in entry.get("top_logprobs")
                              or []} for entry in entries],
            "text_offset": offsets}


def _add_usage(total: dict, usage: Any) -> None:
    if not isinstance(usage, dict):
        return
    for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
        total[name] = total.get(name, 0) + (usage.get(name) or 0)
    for group, field in (("prompt_tokens_details", "cached_tokens"),
                         ("completion_tokens_details", "reasoning_tokens")):
        details = usage.get(group)
        if isinstance(details, dict) and details.get(field) is not None:
            sums = total.setdefault(group, {})
            sums[field] = sums.get(field, 0) + details[field]


def completion_response(chats: list[dict], model: str, response_id: str, created: int) -> dict:
    """Chat completions, one per prompt in prompt order, as one ``text_completion``."""
    n = max([1] + [choice.get("index", 0) + 1 for chat in chats
                   for choice in chat.get("choices") or []])
    choices = []
    usage: dict = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    for prompt_index, chat in enumerate(chats):
        for choice in chat.get("choices") or []:
            message = choice.get("message") or {}
            choices.append({"text": message.get("content") or "",
                            "index": prompt_index * n + choice.get("index", 0),
                            "logprobs": _logprobs(choice.get("logprobs")),
                            "finish_reason": _finish(choice.get("finish_reason")) or "stop"})
        _add_usage(usage, chat.get("usage"))
    choices.sort(key=lambda choice: choice["index"])
    return {"id": response_id, "object": "text_completion", "created": created, "model": model,
            "choices": choices, "usage": usage}


class ChatToCompletionStream:
    """Chat-completion chunks of one prompt's stream -> ``text_completion`` chunks.

    A request with several prompts runs one upstream stream per prompt, each through its own
    instance with its ``prompt_index``; choice indexes then never collide (9.2)."""

    def __init__(self, model: str, response_id: str, created: int, n: int,
                 prompt_index: int = 0) -> None:
        self._head = {"id": response_id, "object": "text_completion", "created": created,
                      "model": model}
        self._base = prompt_index * n
        self._offsets: dict[int, int] = {}  # characters already sent, per choice

    def feed(self, chunk: dict) -> list[dict]:
        choices = []
        for choice in chunk.get("choices") or []:
            index = choice.get("index", 0)
            delta = choice.get("delta") or {}
            text = delta.get("content") or ""
            finish = _finish(choice.get("finish_reason"))
            # Role-only, tool-call and reasoning deltas carry no completion text.
            if not text and finish is None:
                continue
            offset = self._offsets.get(index, 0)
            self._offsets[index] = offset + len(text)
            choices.append({"text": text, "index": self._base + index,
                            "logprobs": _logprobs(choice.get("logprobs"), offset),
                            "finish_reason": finish})
        usage = chunk.get("usage")
        if not choices and not usage:
            return []
        out = {**self._head, "choices": choices}
        if usage:
            # Only the OpenAI usage fields: a provider's own counters never reach the client.
            out["usage"] = {k: usage[k] for k in _USAGE_FIELDS if usage.get(k) is not None}
        return [out]
