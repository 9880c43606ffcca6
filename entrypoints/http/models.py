"""Model routes: GET /v1/models and GET /v1/models/{model_id} in the OpenAI or Anthropic shape
(9.5, 5.3, 5.5)."""

from __future__ import annotations

import asyncio
import functools
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, get

from application import envelope
from application.access import model_allowed
from application.catalog_listing import (
    CAPABILITIES,
    FILTERS,
    Card,
    page_limit,
    search,
    with_status,
)
from application.catalog_view import BUILTIN_PROVIDER, ECHO_MODEL
from application.envelope import Actor
from application.principals import KeyPrincipal
from application.resolve import not_found_error
from domain.errors import DomainError
from domain.pricing import Prices
from entrypoints.http.auth import gateway, origin
from entrypoints.http.context import credential, json_response
from entrypoints.http.limits import AUTHENTICATED

PERMISSION = "models:read"  # named in security events of a refused key; never required
PAGE_DEFAULT = 20  # the Anthropic shape's page (9.5); the OpenAI shape's is 1,000 (5.5)
# The built-in model ships with the gateway and is never listed by an event: its `created`
# is the release that introduced it, a fixed instant rather than a made-up 0.
ECHO_LISTED_AT = "2026-11-26T00:00:00.000000Z"
ECHO_PRICES = Prices.from_json({"input": "0", "output": "0"})


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


def _echo() -> dict[str, Any]:
    return {"id": ECHO_MODEL, "object": "model", "created": ECHO_LISTED_AT,
            "owned_by": "gatewayz", "name": "Gatewayz echo", "context_length": 1_000_000,
            "max_output_tokens": None, "modalities": {"input": ["text"], "output": ["text"]},
            "capabilities": {c: c == "streaming" for c in CAPABILITIES},
            "pricing": {**ECHO_PRICES.to_json(), "source": "free"},
            "providers": [{"slug": BUILTIN_PROVIDER, "native_id": ECHO_MODEL, "region": None,
                           "pricing": {**ECHO_PRICES.to_json(), "source": "free"}}],
            "benchmark_scores": {}, "health_status": "healthy"}


def _status(gw: Any) -> Callable[[str], str]:
    board = getattr(gw, "health_status", None)
    return board if board is not None else (lambda model_id: "healthy")


def _hf(gw: Any) -> Callable[[str], dict[str, Any] | None]:
    enricher = getattr(gw, "hf", None)
    return enricher.data if enricher is not None else (lambda model_id: None)


def catalog_rows(gw: Any, principal: KeyPrincipal | None,
                 params: dict[str, str]) -> list[Card | dict[str, Any]]:
    """Listed models after the 5.5 filters, in the asked order: cached cards (and echo for a
    test key), turned into JSON only for the page answered (blocking: run in a thread)."""
    snap = gw.catalog_view.snapshot
    rows: list[Card | dict[str, Any]] = list(search(gw.listing.cards(snap), params,
                                                    _status(gw), gw.popularity))
    if _sees_echo(principal) and not any(k in params for k in FILTERS):
        rows.append(_echo())
        if params.get("sort", "id") == "id":
            rows.sort(key=row_id)
    return rows


def row_id(row: Card | dict[str, Any]) -> str:
    return row["id"] if isinstance(row, dict) else row.model_id


def row_body(gw: Any, row: Card | dict[str, Any]) -> dict[str, Any]:
    if isinstance(row, dict):
        return row
    return with_status(row, _status(gw)(row.model_id), _hf(gw)(row.model_id))


def catalog_models(gw: Any, principal: KeyPrincipal | None,
                   params: dict[str, str]) -> list[dict[str, Any]]:
    """Every listed model after the filters, as JSON (the whole list; prefer pages)."""
    return [row_body(gw, row) for row in catalog_rows(gw, principal, params)]


def catalog_model(gw: Any, principal: KeyPrincipal | None, model_id: str) -> dict[str, Any]:
    if model_id == ECHO_MODEL and _sees_echo(principal):
        return _echo()
    snap = gw.catalog_view.snapshot
    wanted = gw.inference.resolver.canonical(model_id) if len(model_id) <= 256 else model_id
    card = gw.listing.card(snap, wanted)
    if card is None:
        raise not_found_error(model_id)
    return with_status(card, _status(gw)(card.model_id), _hf(gw)(card.model_id))


@functools.lru_cache(maxsize=100_000)
def _unix(listed_at: str) -> int:
    return int(datetime.fromisoformat(listed_at).astimezone(UTC).timestamp())


def openai_model(model: dict[str, Any], principal: KeyPrincipal | None) -> dict[str, Any]:
    out = {**model, "created": _unix(model["created"])}
    if principal is not None:
        out["allowed"] = model["id"] == ECHO_MODEL or model_allowed(principal.key, model["id"])
    return out


def full_view(models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """5.5 ``view=full``: one entry per (model, provider), id ``model@provider``."""
    out = []
    for model in models:
        for provider in model["providers"]:
            out.append({**model, "id": f"{model['id']}@{provider['slug']}",
                        "model": model["id"], "providers": [provider],
                        "pricing": provider["pricing"]})
    return out


def _after(models: list, after: str) -> int:
    """The position just past the cursor's model (the end when it is gone)."""
    for position, model in enumerate(models):
        if (model["id"] if isinstance(model, dict) else model.model_id) == after:
            return position + 1
    return len(models)


def anthropic_model(model: dict[str, Any]) -> dict[str, Any]:
    return {"type": "model", "id": model["id"], "display_name": model.get("name") or model["id"],
            "created_at": model["created"]}


def anthropic_page(request: Request, entries: list, body: Callable[[Any], dict[str, Any]]
                   ) -> dict[str, Any]:
    """Cursor paging over the sorted ids: ``after_id`` gives the ids after it, ``before_id``
    the ``limit`` ids just before it; has_more tells whether more lie in that direction.
    Cursors compare as strings, so an id that has since gone still pages correctly."""
    limit = page_limit(request.query_params.get("limit"), PAGE_DEFAULT)
    after = request.query_params.get("after_id")
    before = request.query_params.get("before_id")
    if after is not None and before is not None:
        raise DomainError("invalid_request", "after_id and before_id cannot be combined",
                          param="before_id")
    ids = [row_id(e) for e in entries]
    if before is not None:
        end = bisect_left(ids, before)
        start = max(0, end - limit)
        page, has_more = entries[start:end], start > 0
    else:
        start = bisect_right(ids, after) if after is not None else 0
        page, has_more = entries[start:start + limit], start + limit < len(entries)
    return {"data": [anthropic_model(body(e)) for e in page], "has_more": has_more,
            "first_id": row_id(page[0]) if page else None,
            "last_id": row_id(page[-1]) if page else None}


async def _answer(request: Request,
                  build: Callable[[KeyPrincipal | None, bool], dict[str, Any]]) -> Response:
    # Errors raised here reach the app's one mapping (errors.py), which answers a request
    # carrying anthropic-version in the Anthropic shape (9.8) and any other in OpenAI's.
    principal = optional_key(request)
    anthropic = "anthropic-version" in request.headers
    # The routing view may refresh from the read model and the listing is a query.
    return json_response(await asyncio.to_thread(build, principal, anthropic))


def _params(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items()
            if k in FILTERS or k in ("sort", "view")}


@get("/v1/models")
async def list_models(request: Request) -> Response:
    gw = gateway(request)

    def build(principal: KeyPrincipal | None, anthropic: bool) -> dict[str, Any]:
        params = _params(request)
        view = params.pop("view", "default")
        if view not in ("default", "full"):
            raise DomainError("invalid_request", "view must be default or full", param="view")
        rows = catalog_rows(gw, principal, params)
        if anthropic:
            return anthropic_page(request, rows, lambda row: row_body(gw, row))
        limit = page_limit(request.query_params.get("limit"))
        after = request.query_params.get("after")
        models = full_view([row_body(gw, row) for row in rows]) if view == "full" else rows
        start = 0 if after is None else _after(models, after)
        page = [m if isinstance(m, dict) else row_body(gw, m)
                for m in models[start:start + limit]]
        return {"object": "list", "data": [openai_model(m, principal) for m in page],
                "has_more": start + limit < len(models),
                "last_id": page[-1]["id"] if page else None}

    response = await _answer(request, build)
    if gw.catalog_view.stale():
        response.headers["x-gatewayz-catalog-stale"] = "true"
    return response


@get("/v1/models/{model_id:path}")
async def get_model(request: Request, model_id: str) -> Response:
    # A path parameter keeps the slashes of org/model ids and starts with "/".
    wanted = model_id.strip("/")
    gw = gateway(request)

    def build(principal: KeyPrincipal | None, anthropic: bool) -> dict[str, Any]:
        model = catalog_model(gw, principal, wanted)
        return anthropic_model(model) if anthropic else openai_model(model, principal)

    return await _answer(request, build)


@get("/v1/providers")
async def list_providers(request: Request) -> Response:
    """5.5: enabled providers with status and model counts; never a credential."""
    gw = gateway(request)
    optional_key(request)  # public, but a presented credential must be a valid key

    def build() -> dict[str, Any]:
        snap = gw.catalog_view.snapshot
        counts: dict[str, int] = {}
        for offers in snap.offers.values():
            for offer in offers:
                counts[offer.provider.slug] = counts.get(offer.provider.slug, 0) + 1
        status = getattr(gw, "provider_status", None) or (lambda slug: "healthy")
        data = [{"slug": p.slug, "object": "provider", "name": p.name,
                 "regions": list(p.regions), "status": status(p.slug),
                 "model_count": counts.get(p.slug, 0)}
                for p in sorted(snap.providers.values(), key=lambda p: p.slug) if p.enabled]
        return {"object": "list", "data": data}

    return json_response(await asyncio.to_thread(build))
