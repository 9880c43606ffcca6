"""Provider commands (5.1): register, configure, enable/disable, rotate credentials."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from application.catalog_models import CatalogModels, int_in
from application.catalog_view import BUILTIN_PROVIDER, CatalogView
from application.event_stores import EventStores
from application.ports import Clock
from domain.catalog import PROTOCOLS, Provider
from domain.errors import DomainError
from domain.network_rules import BaseUrlError, parse_base_url

SLUG = re.compile(r"^[a-z0-9-]{2,40}$")


class SecretVault(Protocol):
    def put(self, slug: str, secret: str) -> None: ...
    def get(self, slug: str) -> str: ...


REGION = re.compile(r"^[a-z]{2,10}$")


class CatalogService:
    def __init__(self, stores: EventStores, vault: SecretVault, clock: Clock,
                 wait: Callable[[str, int], None], view: CatalogView | None = None) -> None:
        self.app = stores.catalog
        self.vault = vault
        self.clock = clock
        self.wait = wait
        self.view = view  # the shipped default providers, registered on first configuration
        self.models = CatalogModels(self)

    def set_prices(self, model_id: str, body: dict, actor: str) -> None:
        self.models.set_prices(model_id, body, actor)

    def _save(self, *aggregates) -> None:
        try:
            position = self.app.save(*aggregates)[-1].notification.id
        except IntegrityError:
            raise DomainError("conflict", "a concurrent change won; retry",
                              param="slug") from None
        self.wait("catalog", position)

    def _provider(self, slug: str) -> Provider:
        try:
            return self.app.repository.get(Provider.create_id(slug))
        except AggregateNotFoundError:
            raise DomainError("not_found", f"no provider {slug!r}", param="slug") from None

    def _registered(self, slug: str) -> bool:
        try:
            self.app.repository.get(Provider.create_id(slug))
        except AggregateNotFoundError:
            return False
        return True

    def register_provider(self, body: dict, actor: str) -> str:
        slug = body.get("slug")
        if not isinstance(slug, str) or not SLUG.match(slug) or slug == BUILTIN_PROVIDER:
            raise DomainError("invalid_request", "slug must match [a-z0-9-]{2,40}", param="slug")
        protocol = body.get("protocol", "openai-compatible")
        if protocol not in PROTOCOLS:
            raise DomainError("invalid_request",
                              f"protocol must be one of {', '.join(PROTOCOLS)}", param="protocol")
        if not isinstance(body.get("base_url"), str):
            raise DomainError("invalid_base_url", "base_url is required", param="base_url")
        settings = provider_settings({"allow_private": False, "name": slug, "priority": 100,
                                      "timeout_ms": 60_000, **body})
        credential = _credential(body.get("credential", ""))
        enabled = body.get("enabled", True)
        if not isinstance(enabled, bool):
            raise DomainError("invalid_request", "enabled must be a boolean", param="enabled")
        if self._registered(slug):
            raise DomainError("conflict", "a provider with this slug exists", param="slug")
        self._create(slug, protocol, settings, enabled, credential, actor)
        return slug

    def _create(self, slug: str, protocol: str, settings: dict, enabled: bool,
                credential: str, actor: str) -> None:
        core = ("name", "base_url", "allow_private", "priority", "timeout_ms")
        provider = Provider(slug=slug, protocol=protocol, enabled=enabled,
                            credential_last4=credential[-4:], actor=actor,
                            **{k: settings[k] for k in core})
        extra = {k: v for k, v in settings.items() if k not in core}
        if extra:
            provider.configure(extra, actor)
        if credential:
            self.vault.put(slug, credential)
        try:
            self._save(provider)
        except DomainError:
            raise DomainError("conflict", "a provider with this slug exists",
                              param="slug") from None

    def configure_provider(self, slug: str, body: dict, actor: str) -> None:
        provider = self._provider(slug)
        changes = provider_settings(body)
        if not changes:
            raise DomainError("invalid_request", "nothing to change", param="body")
        provider.configure(changes, actor)
        self._save(provider)

    def set_enabled(self, slug: str, enabled: bool, reason: str, actor: str) -> None:
        provider = self._provider(slug)
        if provider.enabled == enabled:
            return  # already so: no event, the answer is the same
        if enabled:
            provider.enable(actor)
        else:
            provider.disable(reason, actor)
        self._save(provider)

    def rotate_credential(self, slug: str, body: dict, actor: str) -> None:
        credential = _credential(body.get("credential"))
        if not credential:
            raise DomainError("invalid_request", "credential is required", param="credential")
        if not self._registered(slug):
            default = self.view.snapshot.providers.get(slug) if self.view else None
            if default is None or default.registered:
                raise DomainError("not_found", f"no provider {slug!r}", param="slug")
            # A shipped default comes alive with its first credential (5.1).
            self._create(slug, default.protocol, {
                "name": default.name, "base_url": default.base_url, "allow_private": False,
                "priority": default.priority, "timeout_ms": default.timeout_ms,
                "weight": default.weight, "regions": list(default.regions)}, True,
                credential, actor)
            return
        provider = self._provider(slug)
        self.vault.put(slug, credential)
        provider.rotate_credential(credential[-4:], actor)
        self._save(provider)


def _credential(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 4096:
        raise DomainError("invalid_request", "credential must be a string of at most 4096 "
                          "characters", param="credential")
    return value


def provider_settings(body: dict) -> dict:
    """The configurable fields present in ``body``, validated (5.1, 2.6)."""
    out: dict = {}
    if "allow_private" in body:
        if not isinstance(body["allow_private"], bool):
            raise DomainError("invalid_request", "allow_private must be a boolean",
                              param="allow_private")
        out["allow_private"] = body["allow_private"]
    if "base_url" in body:
        try:
            out["base_url"] = parse_base_url(body["base_url"] if isinstance(
                body["base_url"], str) else "", allow_private=body.get(
                    "allow_private", False) is True).url
        except BaseUrlError as error:
            raise DomainError("invalid_base_url", str(error), param="base_url") from None
    if "name" in body:
        if not isinstance(body["name"], str) or not 1 <= len(body["name"]) <= 100:
            raise DomainError("invalid_request", "name must have 1 to 100 characters",
                              param="name")
        out["name"] = body["name"]
    for field, low, high in (("priority", 0, 1_000_000), ("timeout_ms", 100, 600_000),
                             ("weight", 0, 100)):
        if field in body:
            int_in(body[field], low, high, field)
            out[field] = body[field]
    if "passthrough" in body:
        if not isinstance(body["passthrough"], bool):
            raise DomainError("invalid_request", "passthrough must be a boolean",
                              param="passthrough")
        out["passthrough"] = body["passthrough"]
    if "regions" in body:
        regions = body["regions"]
        if not isinstance(regions, list) or len(regions) > 20 or not all(
                isinstance(r, str) and REGION.match(r) for r in regions):
            raise DomainError("invalid_request", "regions must be a list of region codes "
                              "such as \"us\"", param="regions")
        out["regions"] = sorted(set(regions))
    return out
