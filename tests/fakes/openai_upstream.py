"""FakeOpenAI: an OpenAI-compatible upstream on 127.0.0.1 speaking the real wire format.

Serves POST /v1/chat/completions, /v1/completions (legacy) and /v1/embeddings, and
GET /v1/models[/{id}]. Each POST consumes one scripted ``Behaviour`` (else ``default``).
The chat and legacy answers live here; the plumbing is in openai_server.py and
background_server.py, ``Behaviour`` in openai_behaviour.py, embeddings in
openai_embeddings.py. Everything that draws a uuid4 stays in this module, because
tests/e2e/matrix_support.py patches its ``uuid`` to learn the tool-call ids made.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

# Names other modules import from here are re-exported with ``as`` so they stay importable.
from .background_server import _CALL as _CALL
from .background_server import ReceivedRequest as ReceivedRequest
from .background_server import _BackgroundServer as _BackgroundServer
from .background_server import _Progress as _Progress
from .openai_behaviour import Behaviour, _error
from .openai_embeddings import EMBEDDING_DIMENSIONS as EMBEDDING_DIMENSIONS
from .openai_embeddings import _Embeddings
from .openai_embeddings import embedding_vector as embedding_vector
from .openai_server import DEFAULT_MODELS as DEFAULT_MODELS
from .openai_server import Cancellation as Cancellation
from .openai_server import _OpenAIServer
from .text_chunks import _count_words, _dump, _fragments, _groups, _pieces

__all__ = ["Behaviour", "Cancellation", "FakeOpenAI", "ReceivedRequest"]

# A tool call has no prose to count, but a zero would make it look like an empty
# answer to billing code, so it is charged as one token.
TOOL_CALL_COMPLETION_TOKENS = 1

# The legacy completions endpoint's documented default for max_tokens.
LEGACY_DEFAULT_MAX_TOKENS = 16


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def _limit(body: dict[str, Any], *names: str) -> int | None:
    for name in names:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


class FakeOpenAI(_Embeddings, _OpenAIServer):
    """OpenAI-compatible server in a background thread; see tests/fakes/fixtures.py."""

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_post("/v1/chat/completions", self._generating(self._answer_chat))
        app.router.add_post("/v1/completions", self._generating(self._answer_legacy))
        app.router.add_post("/v1/embeddings", self._generating(self._answer_embeddings))
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model}", self._get_model)
        return app

    async def _answer_chat(self, request: web.Request, behaviour: Behaviour,
                           body: dict[str, Any], streaming: bool,
                           progress: _Progress) -> web.StreamResponse:
        if not isinstance(body.get("messages"), list):
            return _error(400, "Request body must be JSON with 'model' and 'messages'.")
        reply = _Reply.build(body, behaviour)
        if not streaming:
            return web.json_response(reply.completion(body["model"], behaviour.report_usage),
                                     headers=dict(behaviour.extra_headers))
        options = body.get("stream_options")
        include_usage = (isinstance(options, dict) and options.get("include_usage") is True
                         and behaviour.report_usage)
        chunk = reply.chunk_factory(body["model"], include_usage)
        deltas = [(_dump(chunk(delta)), tokens)
                  for delta, tokens in reply.deltas(behaviour.words_per_chunk)]
        return await self._stream(
            request, behaviour, progress, _dump(chunk(reply.first_delta())), deltas,
            _dump(chunk({}, finish_reason=reply.finish_reason)),
            _dump(chunk(None, usage=reply.usage())) if include_usage else None)

    async def _answer_legacy(self, request: web.Request, behaviour: Behaviour,
                             body: dict[str, Any], streaming: bool,
                             progress: _Progress) -> web.StreamResponse:
        prompt = body.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not isinstance(prompts, list) or not prompts \
                or not all(isinstance(p, str) for p in prompts):
            return _error(400, "'prompt' must be a string or a list of strings.")
        limit = _limit(body, "max_tokens")
        limit = LEGACY_DEFAULT_MAX_TOKENS if limit is None else limit
        texts, reasons = [], []
        for p in prompts:
            text = behaviour.content if behaviour.content is not None else "Echo: " + p
            texts.append("".join(_pieces(text)[:max(limit, 0)]))
            reasons.append("length" if _count_words(text) > limit else "stop")
        prompt_tokens = behaviour.prompt_tokens
        if prompt_tokens is None:
            prompt_tokens = max(1, sum(_count_words(p) for p in prompts))
        completion_tokens = sum(_count_words(t) for t in texts)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        head = {"id": f"cmpl-{uuid.uuid4().hex[:24]}", "object": "text_completion",
                "created": int(time.time()), "model": body["model"]}

        def choice(text: str, index: int, reason: str | None) -> dict[str, Any]:
            return {"text": text, "index": index, "logprobs": None, "finish_reason": reason}

        if not streaming:
            out = {**head, "choices": [choice(t, i, r) for i, (t, r)
                                       in enumerate(zip(texts, reasons, strict=True))]}
            if behaviour.report_usage:
                out["usage"] = usage
            return web.json_response(out, headers=dict(behaviour.extra_headers))
        deltas = []
        for i, (text, reason) in enumerate(zip(texts, reasons, strict=True)):
            deltas += [(_dump({**head, "choices": [choice(g, i, None)]}), _count_words(g))
                       for g in _groups(text, behaviour.words_per_chunk)]
            # Each prompt's choice ends with its own finish_reason chunk.
            deltas.append((_dump({**head, "choices": [choice("", i, reason)]}), 0))
        options = body.get("stream_options")
        include_usage = (isinstance(options, dict) and options.get("include_usage") is True
                         and behaviour.report_usage)
        usage_chunk = _dump({**head, "choices": [], "usage": usage}) if include_usage else None
        *middle, (last, _) = deltas
        return await self._stream(request, behaviour, progress, None, middle, last, usage_chunk)


@dataclass(frozen=True)
class _Reply:
    """What the assistant says for one chat request, independent of stream or not."""

    id: str
    created: int
    content: str | None
    reasoning: str | None
    # (id, name, arguments JSON) per tool call.
    tool_calls: tuple[tuple[str, str, str], ...]
    finish_reason: str
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    reasoning_tokens: int

    @classmethod
    def build(cls, body: dict[str, Any], behaviour: Behaviour) -> _Reply:
        messages = [m for m in body["messages"] if isinstance(m, dict)]
        prompt_tokens = behaviour.prompt_tokens
        if prompt_tokens is None:
            prompt_tokens = max(1, sum(_count_words(_text_of(m.get("content")))
                                       for m in messages))
        reasoning = behaviour.reasoning
        reasoning_tokens = _count_words(reasoning or "")
        common = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()),
                  "prompt_tokens": prompt_tokens, "cached_tokens": behaviour.cached_tokens,
                  "reasoning": reasoning, "reasoning_tokens": reasoning_tokens}

        calls = behaviour.tool_calls or _default_tool_call(body, messages)
        if calls:
            return cls(content=None, finish_reason="tool_calls",
                       tool_calls=tuple((f"call_{uuid.uuid4().hex[:24]}", name, arguments)
                                        for name, arguments in calls),
                       completion_tokens=TOOL_CALL_COMPLETION_TOKENS * len(calls)
                       + reasoning_tokens, **common)

        content = behaviour.content
        if content is None:
            # After a tool result, answer from it, so a tool round trip terminates.
            last = messages[-1] if messages else {}
            source = last if last.get("role") == "tool" else next(
                (m for m in reversed(messages) if m.get("role") == "user"), {})
            content = "Echo: " + _text_of(source.get("content"))
        finish_reason = "stop"
        limit = _limit(body, "max_completion_tokens", "max_tokens")
        # Reasoning tokens count against the same budget, as with OpenAI's o-series.
        if limit is not None and limit - reasoning_tokens < _count_words(content):
            content = "".join(_pieces(content)[:max(limit - reasoning_tokens, 0)])
            finish_reason = "length"
        return cls(content=content, tool_calls=(), finish_reason=finish_reason,
                   completion_tokens=_count_words(content) + reasoning_tokens, **common)

    def usage(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }

    @staticmethod
    def _tool_call(call: tuple[str, str, str], arguments: str) -> dict[str, Any]:
        call_id, name, _ = call
        return {"id": call_id, "type": "function",
                "function": {"name": name, "arguments": arguments}}

    def completion(self, model: str, report_usage: bool) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.content, "refusal": None}
        if self.reasoning is not None:
            message["reasoning_content"] = self.reasoning
        if self.tool_calls:
            message["tool_calls"] = [self._tool_call(c, c[2]) for c in self.tool_calls]
        out: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": self.finish_reason}],
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }
        if report_usage:
            out["usage"] = self.usage()
        return out

    def first_delta(self) -> dict[str, Any]:
        if self.tool_calls:
            return {"role": "assistant", "content": None, "refusal": None,
                    "tool_calls": [{"index": 0, **self._tool_call(self.tool_calls[0], "")}]}
        return {"role": "assistant", "content": "", "refusal": None}

    def deltas(self, words_per_chunk: int) -> list[tuple[dict[str, Any], int]]:
        """Each delta after the first with the completion tokens it carries."""
        out = [({"reasoning_content": text}, _count_words(text))
               for text in _groups(self.reasoning or "", words_per_chunk)]
        for index, call in enumerate(self.tool_calls):
            if index:
                # Every later call opens with its own id/name chunk, arguments "".
                out.append(({"tool_calls": [{"index": index, **self._tool_call(call, "")}]}, 0))
            for number, fragment in enumerate(_fragments(call[2])):
                out.append(({"tool_calls": [{"index": index,
                                             "function": {"arguments": fragment}}]},
                            0 if number else TOOL_CALL_COMPLETION_TOKENS))
        if not self.tool_calls:
            out += [({"content": text}, _count_words(text))
                    for text in _groups(self.content or "", words_per_chunk)]
        return out

    def chunk_factory(self, model: str, include_usage: bool) -> Callable[..., dict[str, Any]]:
        def chunk(delta: dict[str, Any] | None, *, finish_reason: str | None = None,
                  usage: dict[str, Any] | None = None) -> dict[str, Any]:
            out: dict[str, Any] = {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": "fp_fake",
                # The usage chunk is the one chunk with no choices at all.
                "choices": [] if delta is None else [
                    {"index": 0, "delta": delta, "logprobs": None,
                     "finish_reason": finish_reason}],
            }
            if include_usage:
                out["usage"] = usage
            return out

        return chunk


def _default_tool_call(body: dict[str, Any],
                       messages: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    """With tools on offer, call the chosen (else first) one, unless a result just came in."""
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not isinstance(tools, list) or not tools or choice == "none":
        return ()
    if messages and messages[-1].get("role") == "tool":
        return ()
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return ((str(choice["function"].get("name", "tool")), "{}"),)
    first = tools[0] if isinstance(tools[0], dict) else {}
    function = first.get("function") if isinstance(first.get("function"), dict) else {}
    return ((str(function.get("name", "tool")), "{}"),)
