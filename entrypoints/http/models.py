"""Model routes: GET /v1/models and GET /v1/models/{model_id} in the OpenAI or Anthropic shape
(9.5, 5.3, 5.5)."""

from __future__ import annotations

import asyncio
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, get

from application import envelope
from application.access import model_allowed
from application.catalog import BUILTIN_PROVIDER, ECHO_MODEL, Offer
from application.envelope import Actor
from application.principals import KeyPrincipal
from domain.errors import DomainError
from domain.pricing import Prices
from entrypoints.http.auth import gateway, origin
from entrypoints.http.context import credential, json_response
from entrypoints.http.limits import AUTHENTICATED
from projections.catalog import CatalogQueries

PERMISSION = "models:read"  # named in security events of a refused key; never required
PAGE_DEFAULT, PAGE_MAX = 20, 1000
# The built-in model ships with the gateway and is never listed by an event: its `created`
# is the release that introduced it, a fixed instant rather than a made-up 0.
ECHO_LISTED_AT = "2026-11-26T00:00:00.000000Z"
ECHO_PRICES = Prices.from_json({"input": "0", "output": "0"})


@dataclass(frozen=True)
class ModelEntry:
    model_id: str
    listed_at: str  # the event time format of application/feed.py, which is RFC 3339
    pricing: dict[str, str]
    providers: list[str]
    max_output_tokens: int | None


def optional_key(request: Request) -> KeyPrincipal | None:
    """The caller's key when one is presented, else None (the list is public).

    A presented key is authenticated exactly as on other /v1 routes, so a bad one is a 401
    (or 403 for a staff token) and is recorded as a security event; no scope is required.
    """
    presented = credential(request, allow_x_api_key=True)
    if not presented:
        return None
    gw = gateway(request)
    try:
        principal = gw.access.authenticate_key(presented)
    except DomainError as error:  # recorded off the request path, never raising (11.3)
        gw.security.refused(error.code, presented, PERMISSION, origin(request))
        raise
    envelope.identify(Actor("api_key", principal.key.key_id, principal.key.prefix))
    request.scope["state"][AUTHENTICATED] = True  # not an unauthenticated call (1.9)
    return principal


def _sees_echo(principal: KeyPrincipal | None) -> bool:
    """gatewayz/echo is served to test keys only (resolve.py), so only they see it."""
    return principal is not None and principal.key.environment == "test"


def _echo_entry() -> ModelEntry:
    return ModelEntry(ECHO_MODEL, ECHO_LISTED_AT, ECHO_PRICES.to_json(), [BUILTIN_PROVIDER],
                      None)


def _entry(model_id: str, listed_at: str, offers: list[Offer]) -> ModelEntry:
    # Cheapest by input + output price; ties keep the routing (priority) order.
    cheapest = min(offers, key=lambda o: o.prices.input + o.prices.output)
    # A model can produce as many tokens as its most generous provider allows.
    limits = [o.max_output_tokens for o in offers if o.max_output_tokens is not None]
    return ModelEntry(model_id, listed_at, cheapest.prices.to_json(),
                      [o.provider.slug for o in offers], max(limits) if limits else None)


def catalog_entries(gw: Any, principal: KeyPrincipal | None) -> list[ModelEntry]:
    """Models with at least one enabled provider, sorted by id (blocking: run in a thread)."""
    listed = CatalogQueries(gw.db).listed()
    entries = [_echo_entry()] if _sees_echo(principal) else []
    for model_id in gw.catalog_view.model_ids():
        offers = gw.catalog_view.offers_for(model_id)
        # Listing and prices are written by one projection, Listed first; a model without
        # its listing row is one the projector has not replayed yet (migration 012).
        if offers and model_id in listed:
            entries.append(_entry(model_id, listed[model_id], offers))
    return sorted(entries, key=lambda e: e.model_id)


def catalog_entry(gw: Any, principal: KeyPrincipal | None, model_id: str) -> ModelEntry:
    if model_id == ECHO_MODEL and _sees_echo(principal):
        return _echo_entry()
    offers = gw.catalog_view.offers_for(model_id) if model_id != ECHO_MODEL else []
    listed_at = CatalogQueries(gw.db).listed_at(model_id) if offers else None
    if listed_at is None:
        raise DomainError("model_not_found", f"the model {model_id!r} does not exist",
                          param="model")
    return _entry(model_id, listed_at, offers)


def _unix(listed_at: str) -> int:
    return int(datetime.fromisoformat(listed_at).astimezone(UTC).timestamp())


def openai_model(entry: ModelEntry, principal: KeyPrincipal | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": entry.model_id, "object": "model", "created": _unix(entry.listed_at),
        "owned_by": entry.model_id.split("/", 1)[0],
        "context_length": None,  # not recorded by the catalog yet: unknown, never guessed
        "max_output_tokens": entry.max_output_tokens,
        "pricing": entry.pricing, "providers": entry.providers,
    }
    if principal is not None:
        out["allowed"] = entry.model_id == ECHO_MODEL or model_allowed(principal.key,
                                                                       entry.model_id)
    return out


def anthropic_model(entry: ModelEntry) -> dict[str, Any]:
    return {"type": "model", "id": entry.model_id, "display_name": entry.model_id,
            "created_at": entry.listed_at}


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return PAGE_DEFAULT
    if not raw.isdigit() or not 1 <= int(raw) <= PAGE_MAX:
        raise DomainError("invalid_request", f"limit must be an integer from 1 to {PAGE_MAX}",
                          param="limit")
    return int(raw)


def anthropic_page(request: Request, entries: list[ModelEntry]) -> dict[str, Any]:
    """Cursor paging over the sorted ids: ``after_id`` gives the ids after it, ``before_id``
    the ``limit`` ids just before it; has_more tells whether more lie in that direction.
    Cursors compare as strings, so an id that has since gone still pages correctly."""
    limit = _limit(request)
    after = request.query_params.get("after_id")
    before = request.query_params.get("before_id")
    if after is not None and before is not None:
        raise DomainError("invalid_request", "after_id and before_id cannot be combined",
                          param="before_id")
    ids = [e.model_id for e in entries]
    if before is not None:
        end = bisect_left(ids, before)
        start = max(0, end - limit)
        page, has_more = entries[start:end], start > 0
    else:
        start = bisect_right(ids, after) if after is not None else 0
        page, has_more = entries[start:start + limit], start + limit < len(entries)
    return {"data": [anthropic_model(e) for e in page], "has_more": has_more,
            "first_id": page[0].model_id if page else None,
            "last_id": page[-1].model_id if page else None}


async def _answer(request: Request,
                  build: Callable[[KeyPrincipal | None, bool], dict[str, Any]]) -> Response:
    # Errors raised here reach the app's one mapping (errors.py), which answers a request
    # carrying anthropic-version in the Anthropic shape (9.8) and any other in OpenAI's.
    principal = optional_key(request)
    anthropic = "anthropic-version" in request.headers
    # The routing view may refresh from the read model and the listing is a query.
    return json_response(await asyncio.to_thread(build, principal, anthropic))


@get("/v1/models")
async def list_models(request: Request) -> Response:
    gw = gateway(request)

    def build(principal: KeyPrincipal | None, anthropic: bool) -> dict[str, Any]:
        entries = catalog_entries(gw, principal)
        if anthropic:
            return anthropic_page(request, entries)
        return {"object": "list", "data": [openai_model(e, principal) for e in entries]}

    return await _answer(request, build)


@get("/v1/models/{model_id:path}")
async def get_model(request: Request, model_id: str) -> Response:
    # A path parameter keeps the slashes of org/model ids and starts with "/".
    wanted = model_id.strip("/")
    gw = gateway(request)

    def build(principal: KeyPrincipal | None, anthropic: bool) -> dict[str, Any]:
        entry = catalog_entry(gw, principal, wanted)
        return anthropic_model(entry) if anthropic else openai_model(entry, principal)

    return await _answer(request, build)
