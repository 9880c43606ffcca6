"""Catalog commands and the in-memory routing view: providers as data, prices per provider."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from application.event_stores import EventStores
from application.ports import Clock
from domain.catalog import PROTOCOLS, Model, Provider
from domain.errors import DomainError
from domain.network_rules import BaseUrlError, parse_base_url
from domain.pricing import PriceError, Prices

SLUG = re.compile(r"^[a-z0-9-]{2,40}$")
MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*/[A-Za-z0-9][A-Za-z0-9._:/-]{0,200}$")
ECHO_MODEL = "gatewayz/echo"
BUILTIN_PROVIDER = "gatewayz"


class SecretVault(Protocol):
    def put(self, slug: str, secret: str) -> None: ...
    def get(self, slug: str) -> str: ...


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


@dataclass(frozen=True)
class Offer:
    model_id: str
    provider: ProviderInfo
    native_model_id: str
    prices: Prices
    max_output_tokens: int | None


class CatalogReader(Protocol):
    def providers(self) -> list[ProviderInfo]: ...
    def offers(self) -> list[tuple[str, str, dict, str, int | None]]: ...


class CatalogView:
    """The routing table, held in memory and refreshed from the read model.

    The hot path never queries the database for routing; a refresh swaps one dict.
    """

    def __init__(self, reader: CatalogReader, max_age: float = 1.0) -> None:
        self.reader = reader
        self.max_age = max_age
        self._offers: dict[str, list[Offer]] = {}
        self._providers: dict[str, ProviderInfo] = {}
        self._loaded = 0.0
        self._lock = threading.Lock()

    def refresh(self) -> None:
        providers = {p.slug: p for p in self.reader.providers()}
        offers: dict[str, list[Offer]] = {}
        for model_id, slug, prices, native, max_out in self.reader.offers():
            provider = providers.get(slug)
            if provider is None:
                continue
            offers.setdefault(model_id, []).append(
                Offer(model_id, provider, native, Prices.from_json(prices), max_out))
        for entries in offers.values():
            entries.sort(key=lambda o: (o.provider.priority, o.provider.slug))
        with self._lock:
            self._providers, self._offers, self._loaded = providers, offers, time.monotonic()

    def _fresh(self) -> None:
        if time.monotonic() - self._loaded > self.max_age:
            self.refresh()

    def offers_for(self, model_id: str) -> list[Offer]:
        """Enabled offers for a model, in provider priority order."""
        self._fresh()
        return [o for o in self._offers.get(model_id, []) if o.provider.enabled]

    def model_ids(self) -> list[str]:
        self._fresh()
        return sorted(m for m, offers in self._offers.items()
                      if any(o.provider.enabled for o in offers))

    def provider(self, slug: str) -> ProviderInfo | None:
        self._fresh()
        return self._providers.get(slug)


class CatalogService:
    def __init__(self, stores: EventStores, vault: SecretVault, clock: Clock,
                 wait: Callable[[str, int], None]) -> None:
        self.app = stores.catalog
        self.vault = vault
        self.clock = clock
        self.wait = wait

    def register_provider(self, body: dict, actor: str) -> str:
        slug = body.get("slug")
        if not isinstance(slug, str) or not SLUG.match(slug) or slug == BUILTIN_PROVIDER:
            raise DomainError("invalid_request", "slug must match [a-z0-9-]{2,40}", param="slug")
        protocol = body.get("protocol", "openai-compatible")
        if protocol not in PROTOCOLS:
            raise DomainError("invalid_request",
                              f"protocol must be one of {', '.join(PROTOCOLS)}", param="protocol")
        allow_private = body.get("allow_private", False)
        if not isinstance(allow_private, bool):
            raise DomainError("invalid_request", "allow_private must be a boolean",
                              param="allow_private")
        base_url = body.get("base_url")
        if not isinstance(base_url, str):
            raise DomainError("invalid_base_url", "base_url is required", param="base_url")
        try:
            parsed = parse_base_url(base_url, allow_private=allow_private)
        except BaseUrlError as error:
            raise DomainError("invalid_base_url", str(error), param="base_url") from None
        credential = body.get("credential", "")
        if not isinstance(credential, str) or len(credential) > 4096:
            raise DomainError("invalid_request", "credential must be a string",
                              param="credential")
        name = body.get("name", slug)
        priority = body.get("priority", 100)
        timeout_ms = body.get("timeout_ms", 60_000)
        enabled = body.get("enabled", True)
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            raise DomainError("invalid_request", "name must have 1 to 100 characters",
                              param="name")
        _int_in(priority, 0, 1_000_000, "priority")
        _int_in(timeout_ms, 100, 600_000, "timeout_ms")
        if not isinstance(enabled, bool):
            raise DomainError("invalid_request", "enabled must be a boolean", param="enabled")
        url = parsed.url
        provider = Provider(slug=slug, name=name, protocol=protocol, base_url=url,
                            allow_private=allow_private, enabled=enabled, priority=priority,
                            timeout_ms=timeout_ms, credential_last4=credential[-4:],
                            actor=actor)
        try:
            self.app.repository.get(Provider.create_id(slug))
        except AggregateNotFoundError:
            pass
        else:
            raise DomainError("conflict", "a provider with this slug exists", param="slug")
        if credential:
            self.vault.put(slug, credential)
        try:
            position = self.app.save(provider)[-1].notification.id
        except IntegrityError:
            raise DomainError("conflict", "a provider with this slug exists",
                              param="slug") from None
        self.wait("catalog", position)
        return slug

    def set_prices(self, model_id: str, body: dict, actor: str) -> None:
        if not MODEL_ID.match(model_id) or model_id == ECHO_MODEL:
            raise DomainError("invalid_model", "model id must look like org/name",
                              param="model_id")
        slug = body.get("provider")
        try:
            self.app.repository.get(Provider.create_id(slug if isinstance(slug, str) else ""))
        except AggregateNotFoundError:
            raise DomainError("invalid_request", "provider must name a registered provider",
                              param="provider") from None
        raw = body.get("prices")
        if not isinstance(raw, dict):
            raise DomainError("invalid_request", "prices must be an object", param="prices")
        try:
            prices = Prices.from_json(raw)
        except PriceError as error:
            raise DomainError("invalid_request", str(error),
                              param=f"prices.{error.param}") from None
        native = body.get("native_model_id", model_id.split("/", 1)[1])
        if not isinstance(native, str) or not 1 <= len(native) <= 200:
            raise DomainError("invalid_request", "native_model_id must be a string",
                              param="native_model_id")
        max_out = body.get("max_output_tokens")
        if max_out is not None:
            _int_in(max_out, 1, 10_000_000, "max_output_tokens")
        try:
            model = self.app.repository.get(Model.create_id(model_id))
        except AggregateNotFoundError:
            model = Model(model_id=model_id)
        model.set_price(slug, prices.to_json(), native, max_out,
                        self.clock.now().isoformat(), actor)
        self.wait("catalog", self.app.save(model)[-1].notification.id)


def _int_in(value: object, low: int, high: int, param: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise DomainError("invalid_request", f"{param} must be an integer from {low} to {high}",
                          param=param)

