"""A legacy completions request (9.2) as the pipeline's request: validated by the translator
module, its prompts as user messages for the hold estimate."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from application.chat_request import ChatRequest, parse_chat
from application.translate.completions import chat_bodies, parse_completions


def parse_legacy(body: Any) -> ChatRequest:
    body = parse_completions(body)
    prompts = [body["prompt"]] if isinstance(body["prompt"], str) else body["prompt"]
    options = body.get("stream_options")
    model = body["model"].strip()
    return ChatRequest(
        body=body, model=model, messages=[{"role": "user", "content": p} for p in prompts],
        stream=body.get("stream") is True,
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
        n=(body.get("n") or 1) * len(prompts), format="completions",
        inner=tuple(_prompt_chats(body, model)))


def _prompt_chats(body: dict, model: str) -> list[ChatRequest]:
    """The chat request of each prompt; streams always carry usage upstream (billing)."""
    out = []
    for chat_body in chat_bodies(body):
        if body.get("stream") is True:
            chat_body["stream_options"] = {"include_usage": True}
        out.append(replace(parse_chat(chat_body), model=model))
    return out
