"""The model string grammar (spec 2.1): what a client may write in `model`, bounded.

Forms, matched case-insensitively (canonical ids are lower case):
  * canonical id ``org/model`` (``:free`` suffix allowed), or an alias ``gpt-4o``;
  * provider pin ``org/model@provider`` or ``provider/org/model`` (three or more segments
    whose first is a registered provider slug);
  * a provider-native id the catalog maps, ``accounts/fireworks/models/deepseek-r1``;
  * a router ``router:general[:mode]`` / ``router:code[:mode]``;
  * an account route ``route:<name>``.

This module only reads the string; which names exist is the catalog's to say. Nothing it
does grows with the input beyond the bound: a name over MAX_NAME characters, or with a
character no catalog id can hold, is refused before any lookup, and error messages quote at
most QUOTE characters of it, so no unbounded name is ever echoed or stored.
"""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass

MAX_NAME = 256
QUOTE = 64
# Every character a canonical id, an alias, a native id (fireworks' "accounts/...",
# cloudflare's "@cf/...") or a router/route name can contain.
_ALLOWED = re.compile(r"^[a-z0-9._:/@+-]+$")
CANONICAL = re.compile(r"^[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._:-]*$")
ROUTE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class ModelNameError(ValueError):
    """A model string that cannot name anything; ``code`` is the API error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ModelRef:
    kind: str  # "model" (canonical id, alias or native id), "router" or "route"
    name: str  # lower-cased model name, router kind ("general"/"code") or route name
    provider: str | None = None  # pinned provider slug
    mode: str | None = None  # router mode as written, None for the bare router


def quoted(raw: str) -> str:
    """A client's string, safe to put in a message: bounded and repr-escaped."""
    return repr(raw[:QUOTE] + ("..." if len(raw) > QUOTE else ""))


def not_found(raw: str) -> ModelNameError:
    return ModelNameError("model_not_found", f"the model {quoted(raw)} does not exist")


def parse(raw: object, providers: Container[str]) -> ModelRef:
    """Read a `model` value. ``providers`` holds the registered provider slugs (for pins)."""
    if not isinstance(raw, str) or not raw:
        raise ModelNameError("invalid_model", "model must be a non-empty string")
    if len(raw) > MAX_NAME:
        raise ModelNameError("invalid_model",
                             f"model must have at most {MAX_NAME} characters")
    name = raw.lower()
    if not _ALLOWED.match(name):
        raise not_found(raw)
    if name.startswith("router:"):
        kind, _, mode = name[len("router:"):].partition(":")
        return ModelRef("router", kind, mode=mode or None)
    if name.startswith("route:"):
        route = name[len("route:"):]
        if not ROUTE_NAME.match(route):
            raise not_found(raw)
        return ModelRef("route", route)
    segments = name.split("/")
    if ".." in segments or "." in segments or "" in segments[1:]:
        raise not_found(raw)  # "mock/../../admin/x" names nothing, whatever the catalog holds
    model, at, pinned = name.rpartition("@")
    if at and model and pinned in providers:
        return ModelRef("model", model, provider=pinned)
    if len(segments) >= 3 and segments[0] in providers:
        return ModelRef("model", "/".join(segments[1:]), provider=segments[0])
    return ModelRef("model", name)
