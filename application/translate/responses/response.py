"""A chat completion -> a Response object (spec 9.4), and the pieces the stream shares."""

from __future__ import annotations

import base64
from typing import Any

import msgspec

# The upstream stopped early: the Response is "incomplete", with this reason.
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
# Marks reasoning state the gateway sealed into a reasoning item's ``encrypted_content``.
_SEAL = "gwz1."


def item_id(prefix: str, response_id: str, output_index: int) -> str:
    """Output item ids derive from the response id, so a replayed translation is identical."""
    suffix = response_id[5:] if response_id.startswith("resp_") else response_id
    return f"{prefix}_{suffix}_{output_index}"


def seal_reasoning(details: list) -> str:
    """Chat ``reasoning_details`` (thinking signatures, redacted thinking; 9.11) as the opaque
    ``encrypted_content`` of a reasoning item, so a later turn can send them back."""
    return _SEAL + base64.urlsafe_b64encode(msgspec.json.encode(details)).decode()


def open_reasoning(sealed: Any) -> list | None:
    """The ``reasoning_details`` sealed by ``seal_reasoning``; None for anything else."""
    if not isinstance(sealed, str) or not sealed.startswith(_SEAL):
        return None
    try:
        details = msgspec.json.decode(base64.urlsafe_b64decode(sealed[len(_SEAL):]))
    except (ValueError, msgspec.DecodeError):
        return None
    return details if isinstance(details, list) else None


def reasoning_item(rid: str, text: str, details: list | None) -> dict:
    item: dict = {"id": rid, "type": "reasoning",
                  "summary": [{"type": "summary_text", "text": text}] if text else []}
    if details:
        item["encrypted_content"] = seal_reasoning(details)
    return item


def function_call_item(fid: str, call_id: str, name: str, arguments: str, status: str) -> dict:
    return {"id": fid, "type": "function_call", "status": status, "arguments": arguments,
            "call_id": call_id, "name": name}


def reasoning_text(message: dict) -> str:
    """``reasoning_content`` (DeepSeek, vLLM, the gateway's own) or ``reasoning`` (OpenRouter)."""
    for key in ("reasoning_content", "reasoning"):
        if isinstance(message.get(key), str) and message[key]:
            return message[key]
    return ""


def usage_of(usage: Any) -> dict | None:
    """Chat usage -> Responses usage; None when the upstream reported none."""
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens_details") or {}
    completion = usage.get("completion_tokens_details") or {}
    input_tokens = usage.get("prompt_tokens") or 0
    output_tokens = usage.get("completion_tokens") or 0
    return {"input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": prompt.get("cached_tokens") or 0,
                                     "cache_write_tokens": prompt.get("cache_write_tokens") or 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": completion.get("reasoning_tokens") or 0},
            "total_tokens": usage.get("total_tokens") or input_tokens + output_tokens}


def envelope(request: dict, response_id: str, created_at: int, model: str, *, status: str,
             output: list, usage: dict | None = None, finish: str | None = None,
             error: dict | None = None) -> dict:
    """The Response object around ``output``, echoing the request's settings as the SDK
    expects them (defaults as the OpenAI API reports them)."""
    reason = INCOMPLETE.get(finish or "")
    if status == "completed" and reason:
        status = "incomplete"
    text = request.get("text") or {}
    return {"id": response_id, "object": "response", "created_at": created_at,
            "status": status, "error": error,
            "incomplete_details": {"reason": reason} if status == "incomplete" else None,
            "instructions": request.get("instructions"),
            "max_output_tokens": request.get("max_output_tokens"),
            "model": model, "output": output,
            "parallel_tool_calls": request.get("parallel_tool_calls") is not False,
            "previous_response_id": request.get("previous_response_id"),
            "reasoning": request.get("reasoning") or {"effort": None, "summary": None},
            "store": request.get("store") is not False,
            "temperature": request.get("temperature"),
            "text": {**text, "format": text.get("format") or {"type": "text"}},
            "tool_choice": request.get("tool_choice") or "auto",
            "tools": [_echo_tool(tool) for tool in request.get("tools") or []],
            "top_p": request.get("top_p"), "truncation": "disabled",
            "usage": usage, "user": request.get("user"),
            "metadata": request.get("metadata") or {}}


def _echo_tool(tool: dict) -> dict:
    return {"type": "function", "name": tool.get("name"),
            "description": tool.get("description"), "parameters": tool.get("parameters"),
            "strict": tool.get("strict")}


def response_object(chat: dict, request: dict, response_id: str, created_at: int,
                    model: str) -> dict:
    """A chat completion (one choice) as the Response the client asked for."""
    choices = chat.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    finish = choice.get("finish_reason")
    status = "incomplete" if finish in INCOMPLETE else "completed"
    output: list[dict] = []
    reasoning = reasoning_text(message)
    details = message.get("reasoning_details")
    if reasoning or details:
        output.append(reasoning_item(item_id("rs", response_id, len(output)), reasoning,
                                     details if isinstance(details, list) else None))
    calls = message.get("tool_calls") or []
    content = message.get("content") or ""
    refusal = message.get("refusal")
    # A message item whenever there is text, or nothing else to show (output_text is then "").
    if content or refusal or not calls:
        parts: list[dict] = []
        if content or not refusal:
            parts.append({"type": "output_text", "annotations": [], "text": content})
        if refusal:
            parts.append({"type": "refusal", "refusal": refusal})
        output.append({"id": item_id("msg", response_id, len(output)), "type": "message",
                       "status": status, "content": parts, "role": "assistant"})
    for call in calls:
        function = call.get("function") or {}
        fid = item_id("fc", response_id, len(output))
        # A call without an id (a provider quirk) gets the item id, so its output can refer to it.
        output.append(function_call_item(fid, call.get("id") or fid, function.get("name") or "",
                                         function.get("arguments") or "", status))
    return envelope(request, response_id, created_at, model, status=status, output=output,
                    usage=usage_of(chat.get("usage")), finish=finish)
