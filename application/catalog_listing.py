"""Model cards (5.3) and the catalog's views and search (5.5), built from the snapshot.

Cards are built once per catalog snapshot and kept: a listing then filters, sorts and pages
plain dicts, with no database or provider call (5.2 "a warm cache makes zero provider
calls"). Health status and Hugging Face enrichment (5.6) are read per request from
memory, as they change between snapshots.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from application.catalog_view import ModelMeta, Offer, Snapshot, included
from application.feed import recorded_at
from domain.errors import DomainError

PAGE_MAX = 1000
SEED_LISTED_AT = "2026-11-26T00:00:00.000000Z"  # models the shipped seed lists: its release
CAPABILITIES = ("streaming", "tools", "vision", "json_mode", "json_schema", "reasoning",
                "logprobs", "prompt_caching")
SORTS = ("id", "price", "context_length", "popularity")
FILTERS = ("q", "provider", "capability", "input_modality", "output_modality",
           "max_input_price", "max_output_price", "min_context_length", "health_status")


@dataclass(frozen=True)
class Card:
    model_id: str
    body: dict[str, Any]  # the JSON of the model, health_status filled in per request
    input_price: Decimal
    output_price: Decimal
    context_length: int
    providers: frozenset[str]
    capabilities: frozenset[str]


def _cheapest(offers: tuple[Offer, ...]) -> Offer:
    return min(offers, key=lambda o: (o.prices.input + o.prices.output, o.provider.priority))


def _pricing(offer: Offer) -> dict[str, str]:
    return {**offer.prices.to_json(), "source": offer.source}


def card_body(model_id: str, offers: tuple[Offer, ...], meta: ModelMeta,
              listed_at: str) -> dict[str, Any]:
    cheapest = _cheapest(offers)
    limits = [o.max_output_tokens for o in offers if o.max_output_tokens]
    caps = meta.capabilities or frozenset()
    return {
        "id": model_id, "object": "model", "created": listed_at,
        "owned_by": model_id.split("/", 1)[0], "name": meta.name or model_id,
        "context_length": meta.context_length,
        "max_output_tokens": max(limits) if limits else meta.max_output_tokens,
        "modalities": {"input": list(meta.input_modalities or ()),
                       "output": list(meta.output_modalities or ())},
        "capabilities": {c: c in caps for c in CAPABILITIES},
        "pricing": _pricing(cheapest),
        "providers": [{"slug": o.provider.slug, "native_id": o.native_model_id,
                       "region": ",".join(o.provider.regions) or None,
                       "pricing": _pricing(o)} for o in offers],
        "benchmark_scores": dict(meta.scores),
    }


class Listing:
    """Cards of the current snapshot, rebuilt when the snapshot object changes."""

    def __init__(self, listed_at: Callable[[], dict[str, str]]) -> None:
        self.listed_at = listed_at  # model -> Model.Listed time (read model)
        self._for: Snapshot | None = None
        self._cards: list[Card] = []
        self._by_id: dict[str, Card] = {}
        self._lock = threading.Lock()

    def cards(self, snap: Snapshot) -> list[Card]:
        with self._lock:
            if self._for is not snap:
                listed = self.listed_at()
                cards = []
                for model_id in sorted(snap.offers):
                    offers = snap.offers[model_id]
                    meta = snap.meta.get(model_id) or ModelMeta(model_id)
                    if not included(meta):
                        continue  # 5.4: listed only with modalities and a context length
                    body = card_body(model_id, offers, meta,
                                     listed.get(model_id, SEED_LISTED_AT))
                    cheapest = _cheapest(offers)
                    cards.append(Card(model_id, body, cheapest.prices.input,
                                      cheapest.prices.output, meta.context_length or 0,
                                      frozenset(o.provider.slug for o in offers),
                                      meta.capabilities or frozenset()))
                self._cards, self._by_id, self._for = cards, {c.model_id: c for c in cards}, snap
            return self._cards

    def card(self, snap: Snapshot, model_id: str) -> Card | None:
        self.cards(snap)
        return self._by_id.get(model_id)


def _decimal(raw: str, param: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0 or len(raw) > 20:
        raise DomainError("invalid_request", f"{param} must be a non-negative number",
                          param=param)
    return value


def page_limit(raw: str | None, default: int = PAGE_MAX) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= PAGE_MAX:
        raise DomainError("invalid_request", f"limit must be an integer from 1 to {PAGE_MAX}",
                          param="limit")
    return int(raw)


class Popularity:
    """Requests per model over 7 days, read at most once a minute (a GROUP BY over a week
    of requests is not for every listing)."""

    def __init__(self, count_since: Callable[[str], dict[str, int]],
                 now: Callable[[], datetime], ttl_s: float = 60.0) -> None:
        self.count_since = count_since
        self.now = now
        self.ttl_s = ttl_s
        self._at = -ttl_s
        self._counts: dict[str, int] = {}

    def __call__(self) -> dict[str, int]:
        if time.monotonic() - self._at >= self.ttl_s:
            since = self.now() - timedelta(days=7)
            self._counts = self.count_since(recorded_at(since))
            self._at = time.monotonic()
        return self._counts


def search(cards: list[Card], params: dict[str, str], status: Callable[[str], str],
           popularity: Callable[[], dict[str, int]] | None = None) -> list[Card]:
    """Apply the 5.5 filters and sort; ``status`` gives a model's health status."""
    out = cards
    q = params.get("q")
    if q:
        q = q.lower()[:200]
        out = [c for c in out if q in c.model_id or q in str(c.body["name"]).lower()]
    if (provider := params.get("provider")) is not None:
        out = [c for c in out if provider in c.providers]
    if (capability := params.get("capability")) is not None:
        if capability not in CAPABILITIES:
            raise DomainError("invalid_request", "capability must be one of "
                              f"{', '.join(CAPABILITIES)}", param="capability")
        out = [c for c in out if capability in c.capabilities]
    for param, side in (("input_modality", "input"), ("output_modality", "output")):
        if (modality := params.get(param)) is not None:
            out = [c for c in out if modality in c.body["modalities"][side]]
    if (raw := params.get("max_input_price")) is not None:
        bound = _decimal(raw, "max_input_price")
        out = [c for c in out if c.input_price <= bound]
    if (raw := params.get("max_output_price")) is not None:
        bound = _decimal(raw, "max_output_price")
        out = [c for c in out if c.output_price <= bound]
    if (raw := params.get("min_context_length")) is not None:
        if not raw.isdigit() or len(raw) > 12:
            raise DomainError("invalid_request", "min_context_length must be an integer",
                              param="min_context_length")
        out = [c for c in out if c.context_length >= int(raw)]
    if (health := params.get("health_status")) is not None:
        out = [c for c in out if status(c.model_id) == health]
    sort = params.get("sort", "id")
    if sort not in SORTS:
        raise DomainError("invalid_request", f"sort must be one of {', '.join(SORTS)}",
                          param="sort")
    if sort == "price":
        out = sorted(out, key=lambda c: (c.input_price + c.output_price, c.model_id))
    elif sort == "context_length":
        out = sorted(out, key=lambda c: (-c.context_length, c.model_id))
    elif sort == "popularity" and popularity is not None:
        counts = popularity()
        out = sorted(out, key=lambda c: (-counts.get(c.model_id, 0), c.model_id))
    return out


def page_after(cards: list[Card], after: str | None, limit: int,
               by_id: bool) -> tuple[list[Card], bool]:
    """A page after the cursor (a model id); for the id order by bisection."""
    start = 0
    if after is not None:
        if by_id:
            start = bisect_right([c.model_id for c in cards], after)
        else:
            ids = [c.model_id for c in cards]
            start = ids.index(after) + 1 if after in ids else 0
    return cards[start:start + limit], start + limit < len(cards)


def with_status(card: Card, status: str,
                huggingface: dict[str, Any] | None = None) -> dict[str, Any]:
    """The card's JSON with what changes between snapshots: health, and the Hugging Face
    object (5.6) when the enricher has one (omitted otherwise)."""
    body = {**card.body, "health_status": status}
    if huggingface is not None:
        body["huggingface"] = huggingface
    return body
