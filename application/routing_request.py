"""What a request asks of routing: the `provider` object, the `models` fallback list (2.3, 2.9)
and the semantic needs a provider must honour (2.6), read and bounded at the boundary."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from domain.errors import DomainError
from domain.selection import STRATEGIES, Needs

MAX_FALLBACK_MODELS = 3  # spec 2.9 default
MAX_SLUGS = 20  # a longer list names providers that cannot exist (slugs are few)
SLUG = re.compile(r"^[a-z0-9-]{2,40}$")


@dataclass(frozen=True)
class Preferences:
    order: tuple[str, ...] = ()
    only: tuple[str, ...] | None = None
    ignore: frozenset[str] = frozenset()
    allow_fallbacks: bool = True
    strategy: str | None = None


NO_PREFERENCES = Preferences()


def _slugs(value: Any, param: str) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_SLUGS or not all(
            isinstance(s, str) and SLUG.match(s) for s in value):
        raise DomainError("invalid_request",
                          f"{param} must be a list of at most {MAX_SLUGS} provider slugs",
                          param=param)
    return tuple(value)


def preferences_of(body: dict) -> Preferences:
    raw = body.get("provider")
    if raw is None:
        return NO_PREFERENCES
    if not isinstance(raw, dict):
        raise DomainError("invalid_request", "provider must be an object", param="provider")
    allow = raw.get("allow_fallbacks", True)
    if not isinstance(allow, bool):
        raise DomainError("invalid_request", "provider.allow_fallbacks must be a boolean",
                          param="provider.allow_fallbacks")
    strategy = raw.get("strategy", raw.get("sort"))
    strategy = {"price": "lowest-cost", "latency": "lowest-latency",
                "throughput": "least-busy"}.get(strategy, strategy)
    if strategy is not None and strategy not in STRATEGIES:
        raise DomainError("invalid_request",
                          f"provider.strategy must be one of {', '.join(STRATEGIES)}",
                          param="provider.strategy")
    only = raw.get("only")
    return Preferences(
        order=_slugs(raw.get("order", []), "provider.order"),
        only=None if only is None else _slugs(only, "provider.only"),
        ignore=frozenset(_slugs(raw.get("ignore", []), "provider.ignore")),
        allow_fallbacks=allow, strategy=strategy)


def fallback_models(body: dict) -> list[str]:
    """The client's opt-in alternatives (2.9), each a model string read like `model`."""
    raw = body.get("models")
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_FALLBACK_MODELS or not all(
            isinstance(m, str) and m for m in raw):
        raise DomainError("invalid_request",
                          f"models must be a list of at most {MAX_FALLBACK_MODELS} model names",
                          param="models")
    return list(raw)


def _has_image(messages: Any) -> bool:
    if not isinstance(messages, list):
        return False
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(
                isinstance(part, dict) and part.get("type") in ("image_url", "image",
                                                                 "input_image")
                for part in content):
            return True
    return False


def needs_of(body: dict, input_tokens: int, output_tokens: int) -> Needs:
    """The semantic parameters of a request a provider must support (2.6)."""
    response_format = body.get("response_format")
    return Needs(
        tools=bool(body.get("tools")),
        vision=_has_image(body.get("messages")),
        json_schema=isinstance(response_format, dict)
        and response_format.get("type") == "json_schema",
        logprobs=body.get("logprobs") is True,
        context_tokens=input_tokens + output_tokens,
        input_tokens=input_tokens, output_tokens=output_tokens)
