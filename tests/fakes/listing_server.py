"""FakeListing: a programmable model-listing upstream on 127.0.0.1, plus a fake Hugging Face API.

One server speaks every listing dialect under its own prefix (``base_url_for``), so a
session-scoped instance serves all tests. Script ``ListingFault``s (one per request, in
order) for failures; ``None`` in the script means "answer normally".
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import web

from .background_server import _BackgroundServer

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "catalog" / "openrouter_models.json"
PREFIXES = {"openai": "/openai/v1", "anthropic": "/anthropic/v1",
            "openrouter": "/openrouter/api/v1"}


@dataclass(frozen=True)
class ListingFault:
    """What to answer instead of the listing; ``hang_s`` delays, then the first set field wins."""

    hang_s: float = 0.0
    redirect_to: str | None = None  # 302 with this Location
    status: int = 200  # != 200: an error body with this status
    body: bytes | None = None  # raw bytes as application/json (malformed JSON, wrong shapes)
    huge_bytes: int = 0  # a chunked body this long, no Content-Length
    empty: bool = False  # a well-formed listing with no models


def openrouter_fixture() -> list[dict[str, Any]]:
    """The ~300 real-looking OpenRouter entries of tests/fixtures/catalog/."""
    return json.loads(FIXTURE.read_text())["data"]


def _per_token(per_million: Decimal) -> str:
    return format(per_million.scaleb(-6).normalize(), "f") if per_million else "0"


def synthetic_models(n: int, start: int = 0) -> list[dict[str, Any]]:
    """``n`` distinct OpenRouter-shaped models (``synth-NN/model-I``), for catalog-scale tests."""
    out = []
    for i in range(start, start + n):
        prompt = Decimal(i % 997 + 1) / 100  # USD per million: 0.01 .. 9.97
        model_id = f"synth-{i % 50:02d}/model-{i}"
        out.append({
            "id": model_id, "canonical_slug": model_id, "hugging_face_id": "",
            "name": f"Synth {i % 50}: Model {i}", "created": 1_700_000_000 + i,
            "context_length": 4096 * (1 + i % 64),
            "architecture": {"modality": "text->text", "input_modalities": ["text"],
                             "output_modalities": ["text"], "tokenizer": "Other",
                             "instruct_type": None},
            "pricing": {"prompt": _per_token(prompt), "completion": _per_token(prompt * 4),
                        "request": "0", "image": "0", "web_search": "0",
                        "internal_reasoning": "0"},
            "top_provider": {"context_length": 4096 * (1 + i % 64),
                             "max_completion_tokens": 2048, "is_moderated": False},
            "per_request_limits": None,
            "supported_parameters": ["max_tokens", "temperature", "top_p", "stop"]
            + (["tools", "tool_choice"] if i % 2 else []),
        })
    return out


def claude(model_id: str, name: str, created_at: str, **extra: Any) -> dict[str, Any]:
    """An Anthropic ModelInfo; ``extra`` adds the newer optional fields (max_tokens, ...)."""
    return {"type": "model", "id": model_id, "display_name": name, "created_at": created_at,
            **extra}


def _caps(vision: bool = True, thinking: bool = False) -> dict[str, Any]:
    flag = lambda on: {"supported": on}  # noqa: E731 - a tiny local constructor
    return {"batch": flag(True), "citations": flag(True), "code_execution": flag(False),
            "image_input": flag(vision), "pdf_input": flag(vision), "thinking": flag(thinking),
            "structured_outputs": flag(thinking), "server_tools": flag(True)}


def anthropic_defaults() -> list[dict[str, Any]]:
    """Newest first, as the real API lists them; two carry the SDK's newer optional fields."""
    return [
        claude("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z",
               max_input_tokens=200_000, max_tokens=64_000, capabilities=_caps(True, True),
               lifecycle="active"),
        claude("claude-opus-4-1-20250805", "Claude Opus 4.1", "2025-08-05T00:00:00Z",
               max_input_tokens=200_000, max_tokens=32_000, capabilities=_caps(True, True),
               lifecycle="active"),
        claude("claude-opus-4-20250514", "Claude Opus 4", "2025-05-22T00:00:00Z"),
        claude("claude-sonnet-4-20250514", "Claude Sonnet 4", "2025-05-22T00:00:00Z"),
        claude("claude-3-7-sonnet-20250219", "Claude Sonnet 3.7", "2025-02-24T00:00:00Z"),
        claude("claude-3-5-haiku-20241022", "Claude Haiku 3.5", "2024-10-22T00:00:00Z"),
        claude("claude-3-haiku-20240307", "Claude Haiku 3", "2024-03-07T00:00:00Z"),
    ]


def hf_defaults() -> dict[str, dict[str, Any]]:
    return {"meta-llama/Llama-3.3-70B-Instruct": {
        "_id": "6745f28f9333dfcc06268b1e", "id": "meta-llama/Llama-3.3-70B-Instruct",
        "author": "meta-llama", "downloads": 562_113, "likes": 2_468, "private": False,
        "pipeline_tag": "text-generation", "library_name": "transformers",
        "tags": ["transformers", "safetensors", "llama", "text-generation", "conversational",
                 "en", "base_model:meta-llama/Llama-3.1-70B", "license:llama3.3"],
        "cardData": {"license": "llama3.3", "language": ["en", "fr", "de"]},
        "safetensors": {"parameters": {"BF16": 70_553_706_496}, "total": 70_553_706_496},
        "siblings": [{"rfilename": f"model-{i:05d}-of-00030.safetensors"} for i in range(30)]}}


class FakeListing(_BackgroundServer):
    """Listing endpoints for all three dialects and ``/hf/api/models/{id}``."""

    def __init__(self, *, name: str = "fake-listing") -> None:
        super().__init__(name=name)
        self.default = None
        self.queries: list[tuple[str, dict[str, str]]] = []
        self._reset_settings()

    def _reset_settings(self) -> None:
        self.default = None
        self.models: list[dict[str, Any]] = openrouter_fixture()  # openai + openrouter views
        self.anthropic_models: list[dict[str, Any]] = anthropic_defaults()
        # Anthropic may send fewer than ``limit``; a small cap makes pagination testable.
        self.anthropic_page_cap = 1000
        self.hf_models: dict[str, dict[str, Any]] = hf_defaults()
        self.queries = []

    def base_url_for(self, dialect: str) -> str:
        return f"http://127.0.0.1:{self.port}{PREFIXES[dialect]}"

    @property
    def hf_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hf"

    def _make_app(self) -> web.Application:
        app = web.Application()
        for dialect, prefix in PREFIXES.items():
            app.router.add_get(f"{prefix}/models", self._handler(dialect))
        app.router.add_get("/hf/api/models/{repo:.+}", self._hf)
        return app

    def _handler(self, dialect: str) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            answer = await self._begin(request)
            if answer is not None:
                return answer
            if dialect == "anthropic":
                return self._anthropic_page(request)
            if dialect == "openai":
                return web.json_response({"object": "list", "data": [
                    {"id": m["id"], "object": "model", "created": m.get("created", 0),
                     "owned_by": m["id"].split("/")[0]} for m in self.models]})
            return web.json_response({"data": self.models})
        return handle

    async def _begin(self, request: web.Request) -> web.StreamResponse | None:
        """Record the request and play the next scripted fault; None: answer normally."""
        await self._remember(request)
        with self._lock:
            self.queries.append((request.path, dict(request.query)))
        fault = self._next_behaviour()
        if fault is None:
            return None
        if fault.hang_s:
            await asyncio.sleep(fault.hang_s)
        if fault.redirect_to is not None:
            return web.Response(status=302, headers={"Location": fault.redirect_to})
        if fault.status != 200:
            return web.json_response({"error": {"type": "api_error", "message": "scripted"}},
                                     status=fault.status)
        if fault.body is not None:
            return web.Response(body=fault.body, content_type="application/json")
        if fault.huge_bytes:
            return await self._huge(request, fault.huge_bytes)
        if fault.empty:
            return web.json_response({"object": "list", "data": [], "has_more": False,
                                      "first_id": None, "last_id": None})
        return None

    @staticmethod
    async def _huge(request: web.Request, size: int) -> web.StreamResponse:
        # Chunked, so only counting the bytes as they arrive can stop the client.
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk, sent = b" " * (1 << 20), 0
        try:
            # Valid JSON with one model, so only the size cap can make it fail.
            await response.write(b'{"data": [{"id": "pad/model", "object": "model"}')
            while sent < size:
                await response.write(chunk)
                sent += len(chunk)
            await response.write(b"]}")
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client hung up at its cap, as it should
        return response

    def _anthropic_page(self, request: web.Request) -> web.Response:
        models = self.anthropic_models
        try:
            limit = int(request.query.get("limit", "20"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            return web.json_response({"type": "error", "error": {
                "type": "invalid_request_error", "message": "limit: out of range"}}, status=400)
        start = 0
        if "after_id" in request.query:
            ids = [m["id"] for m in models]
            if request.query["after_id"] not in ids:
                return web.json_response({"type": "error", "error": {
                    "type": "invalid_request_error", "message": "after_id: unknown"}}, status=400)
            start = ids.index(request.query["after_id"]) + 1
        page = models[start:start + min(limit, self.anthropic_page_cap)]
        return web.json_response({
            "data": page, "has_more": start + len(page) < len(models),
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None})

    async def _hf(self, request: web.Request) -> web.StreamResponse:
        answer = await self._begin(request)
        if answer is not None:
            return answer
        found = self.hf_models.get(request.match_info["repo"])
        if found is None:
            return web.json_response({"error": "Repository not found"}, status=404)
        return web.json_response(found)
