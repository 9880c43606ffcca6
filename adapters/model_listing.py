"""Provider model listings (spec 5.2, 5.3): fetch one provider's model list and normalise it.
As for inference (5.1): the base URL is re-checked before every listing, hosts resolve through
CheckedResolver and redirects are never followed, so the credential only reaches the checked
host. Outside numbers are bounded here; any failure is a ListingError (keep the last good data).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, InvalidOperation, localcontext
from typing import Any

import aiohttp

from adapters.checked_resolver import CheckedResolver
from domain.network_rules import BaseUrlError, parse_base_url
from domain.pricing import MAX_PRICE_USD_PER_M, format_price

DIALECTS = ("openai", "anthropic", "openrouter")
MAX_BODY_BYTES = 50 * 1024 * 1024
MAX_MODELS = 50_000
MAX_PAGES = 100
ANTHROPIC_PAGE_LIMIT = 1000
ANTHROPIC_VERSION = "2023-06-01"
MAX_CONTEXT = 100_000_000

_NATIVE_ID = re.compile(r"[!-~]{1,200}")  # printable ASCII, no whitespace
_HF_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}(?:/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?")
# A plain decimal (an exponent is still exact); bounded so the Decimal work stays cheap.
_PRICE_TEXT = re.compile(r"-?[0-9]{1,20}(?:\.[0-9]{1,40})?(?:[eE][+-]?[0-9]{1,3})?")
_MODALITIES = {"text": "text", "image": "image", "audio": "audio", "embedding": "embedding",
               "embeddings": "embedding"}  # OpenRouter's embedding models say "embeddings"
_MODALITY_ORDER = ("text", "image", "audio", "embedding")
# OpenRouter supported_parameters -> our capability names (5.3).
_PARAM_CAPS = {"tools": "tools", "tool_choice": "tools", "response_format": "json_mode",
               "structured_outputs": "json_schema", "reasoning": "reasoning",
               "include_reasoning": "reasoning", "logprobs": "logprobs", "top_logprobs": "logprobs"}
# Anthropic's capabilities object -> ours; streaming, tools and prompt caching are Messages
# API features of every model, so they are implied whenever the object is present.
_ANTHROPIC_CAPS = {"image_input": ("vision",), "thinking": ("reasoning",),
                   "structured_outputs": ("json_schema", "json_mode")}
# OpenRouter pricing keys -> our price classes; the first two are required.
_PRICE_KEYS = (("prompt", "input"), ("completion", "output"), ("input_cache_read", "cached_input"),
               ("input_cache_write", "cache_write"), ("internal_reasoning", "reasoning"))
# Where OpenAI-compatible servers put a context size (OpenRouter, Groq, vLLM, Mistral).
_CONTEXT_KEYS = ("context_length", "context_window", "max_model_len", "max_context_length")


class ListingError(Exception):
    """A listing that must not change the catalog: HTTP error, timeout, bad body, empty list."""


@dataclass(frozen=True)
class ListedModel:
    native_id: str
    name: str | None
    context_length: int | None
    max_output_tokens: int | None
    input_modalities: tuple[str, ...] | None
    output_modalities: tuple[str, ...] | None
    capabilities: frozenset[str] | None
    prices: dict[str, str] | None  # USD per million tokens, decimal strings
    huggingface_id: str | None


@dataclass(frozen=True)
class Listing:
    models: list[ListedModel]
    dropped: int  # entries refused: not an object, bad id, duplicate id, retired


class CheckedSessions:
    """aiohttp sessions connecting through CheckedResolver, one per allow_private; use and
    close() it inside the running event loop."""

    def __init__(self) -> None:
        self._sessions: dict[bool, aiohttp.ClientSession] = {}

    def get(self, allow_private: bool) -> aiohttp.ClientSession:
        session = self._sessions.get(allow_private)
        if session is None or session.closed:
            resolver = CheckedResolver(allow_private)
            session = self._sessions[allow_private] = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=100, ttl_dns_cache=10, resolver=resolver),
                skip_auto_headers=("User-Agent",))
        return session

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()


def dialect_for(protocol: str, base_url: str) -> str | None:
    """The listing dialect of a saved provider; None when it has no listing we speak."""
    if protocol not in ("openai", "openai-compatible"):
        return "anthropic" if protocol == "anthropic" else None
    # OpenRouter speaks OpenAI for inference, but its listing also carries prices and limits.
    host = re.sub(r"^[a-z]+://([^/:?#]*).*$", r"\1", base_url.lower(), flags=re.S).rstrip(".")
    return "openrouter" if host == "openrouter.ai" or host.endswith(".openrouter.ai") else "openai"


async def read_json_capped(session: aiohttp.ClientSession, url: str, *, headers: dict[str, str],
                           params: dict[str, str] | None, timeout_s: float,
                           max_bytes: int) -> Any:
    """GET without redirects; a non-200, a body over max_bytes or bad JSON is a ListingError."""
    try:
        async with session.get(url, headers=headers, params=params, allow_redirects=False,
                               timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            if response.status != 200:
                raise ListingError(f"HTTP {response.status}")
            chunks, size = [], 0
            # Counted as it arrives (Content-Length may be absent or lie), so memory stays bounded.
            async for chunk in response.content.iter_any():
                size += len(chunk)
                if size > max_bytes:
                    raise ListingError(f"body larger than {max_bytes} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise ListingError(f"timed out after {timeout_s}s") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise ListingError(f"connection failed: {type(exc).__name__}: {exc}") from None
    try:
        # Decimal keeps JSON numbers exact (NaN/Infinity become Decimals the bounds refuse).
        return json.loads(b"".join(chunks), parse_float=Decimal, parse_constant=Decimal)
    except (ValueError, RecursionError) as exc:
        raise ListingError(f"malformed JSON: {type(exc).__name__}") from None


async def list_models(sessions: CheckedSessions, *, dialect: str, base_url: str, credential: str,
                      allow_private: bool, timeout_s: float = 30.0) -> Listing:
    """Fetch and normalise one provider's listing; ListingError on any failure. ``timeout_s``
    bounds the whole listing, all pages; an empty credential sends no auth (local servers)."""
    if dialect not in DIALECTS:
        raise ListingError(f"unknown listing dialect {dialect!r}")
    try:
        url = parse_base_url(base_url, allow_private).url + "/models"
    except BaseUrlError as exc:
        raise ListingError(f"base URL refused: {exc}") from None
    session = sessions.get(allow_private)
    headers = {"Accept": "application/json", "User-Agent": "gatewayz/0.1"}
    if dialect == "anthropic":
        headers["anthropic-version"] = ANTHROPIC_VERSION
        headers |= {"x-api-key": credential} if credential else {}
    elif credential:
        headers["Authorization"] = f"Bearer {credential}"
    items, after = [], None
    try:
        async with asyncio.timeout(timeout_s):
            for _ in range(MAX_PAGES):  # only Anthropic's listing has pages
                params = {"limit": str(ANTHROPIC_PAGE_LIMIT)} | (
                    {"after_id": after} if after else {}) if dialect == "anthropic" else None
                body = await read_json_capped(session, url, headers=headers, params=params,
                                              timeout_s=timeout_s, max_bytes=MAX_BODY_BYTES)
                if dialect == "openai" and isinstance(body, list):
                    body = {"data": body}  # some compatible servers (Together) send a bare array
                if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                    raise ListingError("response is not an object with a data list")
                items.extend(body["data"])
                if len(items) > MAX_MODELS:
                    raise ListingError(f"more than {MAX_MODELS} models")
                if dialect != "anthropic" or body.get("has_more") is not True:
                    break
                # A cursor that does not move would page forever.
                if not _valid_id(body.get("last_id")) or body["last_id"] == after:
                    raise ListingError("has_more without a new last_id")
                after = body["last_id"]
            else:
                raise ListingError(f"more than {MAX_PAGES} pages")
    except TimeoutError:
        raise ListingError(f"timed out after {timeout_s}s") from None
    models, seen = [], set()
    for item in (i for i in items if isinstance(i, dict) and _valid_id(i.get("id"))):
        model = _anthropic(item) if dialect == "anthropic" else _openai_like(item, dialect)
        if model is not None and model.native_id not in seen:
            seen.add(model.native_id)
            models.append(model)
    if not models:
        # 5.2: an empty listing is a failure, never a reason to delist everything.
        raise ListingError(f"empty listing ({len(items)} entries, none usable)")
    return Listing(models=models, dropped=len(items) - len(models))


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) and _NATIVE_ID.fullmatch(value) is not None


def valid_hf_id(value: Any) -> bool:
    """A Hugging Face repository id such as ``meta-llama/Llama-3.1-8B`` (or a bare ``gpt2``)."""
    return isinstance(value, str) and _HF_ID.fullmatch(value) is not None


def bounded_text(value: Any, limit: int = 200) -> str | None:
    """A display string without control characters, cut to ``limit``; None when empty."""
    text = value[: limit * 2] if isinstance(value, str) else ""
    return "".join(ch for ch in text if ch.isprintable()).strip()[:limit] or None


def bounded_int(value: Any, low: int = 1, high: int = MAX_CONTEXT) -> int | None:
    """An integer in [low, high], else None; bool is refused, integral 8192.0 accepted."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    try:
        return int(value) if low <= value <= high and value == int(value) else None
    except (ValueError, OverflowError, InvalidOperation):  # NaN
        return None


def _modalities(value: Any) -> tuple[str, ...] | None:
    found = {_MODALITIES.get(v) for v in value[:32] if isinstance(v, str)} \
        if isinstance(value, list) else set()
    return tuple(m for m in _MODALITY_ORDER if m in found) or None


def per_million(per_token: Any) -> str | None:
    """USD per token -> USD per million tokens, exact, rounded up at 6 places; None for
    negatives ("-1" sentinels), non-numbers, floats and prices above the domain's maximum."""
    if isinstance(per_token, int | Decimal) and not isinstance(per_token, bool):
        per_token = str(per_token)  # JSON numbers arrive exact; bounded like strings below
    if not isinstance(per_token, str) or not _PRICE_TEXT.fullmatch(per_token):
        return None
    with localcontext() as ctx:
        ctx.prec = 100  # the pattern allows at most 60 digits, so scaling is exact
        value = Decimal(per_token)
        if value < 0 or value.adjusted() > 10:
            return None
        if value and value.adjusted() < -20:  # far below 1e-6 per million: rounds up to that
            return "0.000001"
        scaled = value.scaleb(6)
        if scaled > MAX_PRICE_USD_PER_M:
            return None
        return format_price(scaled.quantize(Decimal("0.000001"), rounding=ROUND_CEILING))


def _prices(pricing: Any) -> dict[str, str] | None:
    """OpenRouter per-token pricing in our per-million shape; None if any price is unusable.
    A zero optional class is dropped: OpenRouter writes "0" for "not billed separately", and
    an absent class bills at the input/output rate, so cache or reasoning is never free."""
    if not isinstance(pricing, dict):
        return None
    out: dict[str, str] = {}
    for theirs, ours in _PRICE_KEYS:
        raw = pricing.get(theirs)
        value = None if raw is None else per_million(raw)
        if value is None and (raw is not None or ours in ("input", "output")):
            return None
        if value is not None and (value != "0" or ours in ("input", "output")):
            out[ours] = value
    return out


def _openai_like(item: dict[str, Any], dialect: str) -> ListedModel:
    """OpenRouter's entry, or OpenAI's (id/created/owned_by) plus what compatible servers add;
    prices only from OpenRouter, whose units are known (Together's look alike but are per M)."""
    arch = item.get("architecture") if isinstance(item.get("architecture"), dict) else {}
    top = item.get("top_provider") if isinstance(item.get("top_provider"), dict) else {}
    inputs = _modalities(arch.get("input_modalities"))
    outputs = _modalities(arch.get("output_modalities"))
    prices = _prices(item.get("pricing")) if dialect == "openrouter" else None
    params, capabilities = item.get("supported_parameters"), None
    if isinstance(params, list):
        found = {_PARAM_CAPS[p] for p in params[:200] if isinstance(p, str) and p in _PARAM_CAPS}
        # OpenRouter streams every text model; vision and caching show in other fields.
        found |= {cap for cap, has in (("streaming", "text" in (outputs or ())),
                                       ("vision", "image" in (inputs or ())),
                                       ("prompt_caching", "cached_input" in (prices or {})))
                  if has}
        capabilities = frozenset(found)
    contexts = [item.get(key) for key in _CONTEXT_KEYS] + [top.get("context_length")]
    hf = item.get("hugging_face_id")
    return ListedModel(
        native_id=item["id"], name=bounded_text(item.get("name") or item.get("display_name")),
        context_length=next((c for v in contexts if (c := bounded_int(v))), None),
        max_output_tokens=bounded_int(top.get("max_completion_tokens")),
        input_modalities=inputs, output_modalities=outputs, capabilities=capabilities,
        prices=prices, huggingface_id=hf if valid_hf_id(hf) else None)


def _anthropic(item: dict[str, Any]) -> ListedModel | None:
    """Anthropic's ModelInfo; the SDK's optional fields (limits, capabilities) when sent."""
    if item.get("lifecycle") == "retired":  # listed for the record, no longer callable
        return None
    caps, capabilities, inputs, outputs = item.get("capabilities"), None, None, None
    if isinstance(caps, dict):
        found = {"streaming", "tools", "prompt_caching"}
        for key, names in _ANTHROPIC_CAPS.items():
            if isinstance(caps.get(key), dict) and caps[key].get("supported") is True:
                found.update(names)
        capabilities, outputs = frozenset(found), ("text",)
        inputs = ("text", "image") if "vision" in found else ("text",)
    return ListedModel(
        native_id=item["id"], name=bounded_text(item.get("display_name")),
        context_length=bounded_int(item.get("max_input_tokens")),
        max_output_tokens=bounded_int(item.get("max_tokens")), input_modalities=inputs,
        output_modalities=outputs, capabilities=capabilities, prices=None, huggingface_id=None)

