"""A legacy completions request (9.2) as the pipeline's request: validated by the translator
module, its prompts as user messages for the hold estimate."""

from __future__ import annotations

from typing import Any

from application.chat_request import ChatRequest
from application.translate.completions import parse_completions


def parse_legacy(body: Any) -> ChatRequest:
    body = parse_completions(body)
    prompts = [body["prompt"]] if isinstance(body["prompt"], str) else body["prompt"]
    options = body.get("stream_options")
    return ChatRequest(
        body=body, model=body["model"].strip(),
        messages=[{"role": "user", "content": p} for p in prompts],
        stream=body.get("stream") is True,
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
        n=(body.get("n") or 1) * len(prompts), format="completions")
