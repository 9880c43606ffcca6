"""The routing table in memory: layered catalog data swapped in one piece (5.1-5.4, 2.2).

Three layers make the catalog, each overriding the one before for a (model, provider):
the shipped seed (default providers, aliases, and prices from a versioned price package),
what discovery sync recorded (catalog events), and what admins set by hand (catalog
events). Sync never overwrites an admin row (5.2) because the layers are kept apart and
merged here, not written over each other.

The hot path never queries the database: a refresh builds a new Snapshot and swaps one
reference, so a reader sees the old table or the new one, never half of each.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from application.catalog_seed import allowed_providers
from domain.pricing import Prices, fallback_prices, is_premium_model

log = logging.getLogger("gatewayz.catalog")
ECHO_MODEL = "gatewayz/echo"  # the built-in zero-cost model, for test keys only (5.1)
BUILTIN_PROVIDER = "gatewayz"


@dataclass(frozen=True)
class ProviderInfo:
    slug: str
    name: str
    protocol: str
    base_url: str
    allow_private: bool
    enabled: bool
    priority: int
    timeout_ms: int
    credential_last4: str
    weight: int = 50
    regions: tuple[str, ...] = ()
    family: str | None = None
    passthrough: bool = False  # serve names the catalog does not list, at the fallback price
    registered: bool = True  # False: a shipped default nobody has configured yet
    listing: str | None = None  # model-listing dialect for discovery sync (5.2)


@dataclass(frozen=True)
class ModelMeta:
    model_id: str
    name: str | None = None
    context_length: int | None = None
    max_output_tokens: int | None = None
    input_modalities: tuple[str, ...] | None = None
    output_modalities: tuple[str, ...] | None = None
    capabilities: frozenset[str] | None = None
    scores: dict[str, int] = field(default_factory=dict)
    listed_at: str | None = None

    def merged(self, over: ModelMeta) -> ModelMeta:
        """This metadata with every field ``over`` knows taken from ``over``."""
        return ModelMeta(
            self.model_id, over.name or self.name,
            over.context_length or self.context_length,
            over.max_output_tokens or self.max_output_tokens,
            over.input_modalities or self.input_modalities,
            over.output_modalities or self.output_modalities,
            over.capabilities if over.capabilities is not None else self.capabilities,
            {**self.scores, **over.scores}, self.listed_at or over.listed_at)


@dataclass(frozen=True)
class Offer:
    model_id: str
    provider: ProviderInfo
    native_model_id: str
    prices: Prices
    max_output_tokens: int | None
    source: str = "explicit"  # "explicit", "fallback" or "free" (5.3 pricing.source)
    capabilities: frozenset[str] | None = None


@dataclass(frozen=True)
class OfferRow:
    """One (model, provider) mapping from a layer; prices None means "no price known"."""

    model_id: str
    provider: str
    native_id: str
    prices: dict | None
    max_output_tokens: int | None = None


@dataclass(frozen=True)
class Seed:
    providers: tuple[ProviderInfo, ...] = ()
    offers: tuple[OfferRow, ...] = ()
    meta: tuple[ModelMeta, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    families: dict = field(default_factory=dict)
    source: str = "none"


class CatalogReader(Protocol):
    def providers(self) -> list[ProviderInfo]: ...
    def offers(self) -> list[OfferRow]: ...  # admin rows
    def synced(self) -> list[OfferRow]: ...
    def meta(self) -> list[ModelMeta]: ...  # synced and admin metadata, admin last
    def aliases(self) -> dict[str, str | None]: ...  # None: an admin removed a seeded alias
    def routing(self) -> dict[str, dict]: ...  # model -> {"providers": [...], "strategy": ..}
    def routes(self) -> dict[tuple[str, str], list]: ...  # (account, name) -> targets


@dataclass(frozen=True)
class Snapshot:
    providers: dict[str, ProviderInfo]
    offers: dict[str, tuple[Offer, ...]]  # model -> offers of enabled providers, included
    meta: dict[str, ModelMeta]
    aliases: dict[str, str]
    native: dict[str, tuple[str, str]]  # native id -> (model, provider)
    routing: dict[str, dict]
    families: dict
    loaded: float = 0.0
    routes: dict[tuple[str, str], list] = field(default_factory=dict)


def vendor_locked(families: dict, model_id: str) -> tuple[str, ...] | None:
    """The providers a vendor-locked model may use (2.4), or None for open models."""
    if not families:
        return None
    return allowed_providers(families, model_id)


def included(meta: ModelMeta | None) -> bool:
    """5.4 rules 2 and 3: known modalities and a positive context length."""
    return bool(meta and meta.context_length and meta.context_length > 0
                and meta.input_modalities and meta.output_modalities)


def build(seed: Seed, reader: CatalogReader) -> Snapshot:
    providers = {p.slug: p for p in seed.providers}
    providers.update({p.slug: p for p in reader.providers()})
    meta: dict[str, ModelMeta] = {m.model_id: m for m in seed.meta}
    for m in reader.meta():
        meta[m.model_id] = meta[m.model_id].merged(m) if m.model_id in meta else m
    rows: dict[tuple[str, str], tuple[OfferRow, bool]] = {}
    for row in seed.offers:
        rows[(row.model_id, row.provider)] = (row, False)
    for row in reader.synced():
        old = rows.get((row.model_id, row.provider))
        if old is not None and row.prices is None:  # a listing without prices keeps the seed's
            row = OfferRow(row.model_id, row.provider, row.native_id, old[0].prices,
                           row.max_output_tokens or old[0].max_output_tokens)
        rows[(row.model_id, row.provider)] = (row, False)
    for row in reader.offers():
        rows[(row.model_id, row.provider)] = (row, True)
    offers: dict[str, list[Offer]] = {}
    native: dict[str, tuple[str, str]] = {}
    for (model_id, slug), (row, admin) in rows.items():
        provider = providers.get(slug)
        if provider is None or not provider.enabled:
            continue  # 5.4 rule 1: a disabled or unregistered provider serves nothing
        if not admin and (locked := vendor_locked(seed.families, model_id)) is not None \
                and slug not in locked:
            continue  # 2.4: vendor-locked families stay inside their family
        offer = _offer(model_id, provider, row, meta.get(model_id), admin)
        if offer is None:
            continue
        offers.setdefault(model_id, []).append(offer)
        if row.native_id != model_id:
            native.setdefault(row.native_id.lower(), (model_id, slug))
    for entries in offers.values():
        entries.sort(key=lambda o: (o.provider.priority, o.provider.slug))
    aliases = dict(seed.aliases)
    for alias, target in reader.aliases().items():
        if target is None:
            aliases.pop(alias, None)
        else:
            aliases[alias] = target
    return Snapshot(providers, {m: tuple(v) for m, v in offers.items()}, meta, aliases,
                    native, reader.routing(), seed.families, time.monotonic(),
                    reader.routes())


@functools.lru_cache(maxsize=65_536)
def _prices(items: tuple[tuple[str, str], ...]) -> Prices:
    """Parsed prices, shared by every row with the same ones: parsing (regex and Decimal)
    was half of a 10,000-model rebuild, and most rows repeat a few price pairs."""
    return Prices.from_json(dict(items))


def _offer(model_id: str, provider: ProviderInfo, row: OfferRow,
           meta: ModelMeta | None, admin: bool) -> Offer | None:
    # An admin's explicit price says the model exists: it is routed even before its
    # metadata is known (and listed only once it is, catalog_listing.py). Seeded and synced
    # rows must pass 5.4 to be served at all.
    if not admin and not included(meta):
        return None
    caps = meta.capabilities if meta else None
    if row.prices is not None:
        prices = _prices(tuple(sorted(row.prices.items())))
        source = "free" if prices.is_free and model_id.endswith(":free") else "explicit"
        return Offer(model_id, provider, row.native_id, prices, row.max_output_tokens, source,
                     caps)
    if is_premium_model(model_id):
        return None  # 5.4: a premium model without an explicit price is not served (6.2)
    return Offer(model_id, provider, row.native_id, fallback_prices(), row.max_output_tokens,
                 "fallback", caps)


class CatalogView:
    """The current Snapshot, rebuilt from the read model at most every ``max_age`` seconds
    and at once when the catalog projection reports a change."""

    def __init__(self, reader: CatalogReader, seed: Seed | None = None,
                 max_age: float = 1.0) -> None:
        self.reader = reader
        self.seed = seed or Seed()
        self.max_age = max_age
        self._snapshot = Snapshot({}, {}, {}, {}, {}, {}, {})
        self._lock = threading.Lock()
        self._refreshing = threading.Event()
        self._version: tuple | None = None  # the reader's version the table was built at
        self._checked = 0.0  # when the table was last built or found current
        self.stale_check: Callable[[], bool] | None = None  # catalog_sync.Staleness

    def refresh(self) -> None:
        with self._lock:
            self._snapshot = build(self.seed, self.reader)
            self._checked = time.monotonic()

    @property
    def snapshot(self) -> Snapshot:
        """The current table. Changes made here refresh it at once (commands and this
        process's projector call refresh); one older than ``max_age`` (another worker's
        change) is rebuilt in the background while requests keep the old one, so a
        10,000-model rebuild never lands on a request."""
        snap = self._snapshot
        if not snap.loaded:
            self.refresh()  # the first use: nothing to serve meanwhile
            return self._snapshot
        if time.monotonic() - self._checked > self.max_age and not self._refreshing.is_set():
            self._refreshing.set()
            threading.Thread(target=self._background_refresh, name="catalog-refresh",
                             daemon=True).start()
        return snap

    def _background_refresh(self) -> None:
        try:
            version = getattr(self.reader, "version", None)
            seen = version() if version is not None else None
            if seen is not None and seen == self._version:
                self._checked = time.monotonic()  # nothing moved: the table stands
                return
            self.refresh()
            self._version = seen
        except Exception:  # the read model is away: keep serving the last table
            log.warning("catalog refresh failed; serving the previous routing table")
            self._checked = time.monotonic()  # retry after another max_age, not at once
        finally:
            self._refreshing.clear()

    def stale(self) -> bool:
        """5.2: some provider's synced data is older than two sync intervals."""
        return bool(self.stale_check and self.stale_check())

    def offers_for(self, model_id: str) -> list[Offer]:
        """Offers of enabled providers for a listed model, in provider priority order."""
        return list(self.snapshot.offers.get(model_id, ()))

    def model_ids(self) -> list[str]:
        return sorted(self.snapshot.offers)

    def provider(self, slug: str) -> ProviderInfo | None:
        return self.snapshot.providers.get(slug)


def meta_from_fields(model_id: str, fields: dict, scores: dict) -> ModelMeta:
    """Admin metadata (Model.Described fields, merged) as a ModelMeta layer."""
    caps = fields.get("capabilities")
    return ModelMeta(
        model_id, fields.get("name"), fields.get("context_length"),
        fields.get("max_output_tokens"),
        tuple(fields["input_modalities"]) if fields.get("input_modalities") else None,
        tuple(fields["output_modalities"]) if fields.get("output_modalities") else None,
        frozenset(caps) if isinstance(caps, list) else None, dict(scores))
