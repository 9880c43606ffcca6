"""Resolve: which (model, provider) offers may serve a requested model for this key."""

from __future__ import annotations

from application import security_events
from application.access import check_model_allowed
from application.catalog import BUILTIN_PROVIDER, ECHO_MODEL, CatalogView, Offer, ProviderInfo
from application.principals import KeyPrincipal
from domain.errors import DomainError
from domain.pricing import Prices, fallback_prices, is_premium_model


def resolve_offers(catalog: CatalogView, model: str, principal: KeyPrincipal) -> list[Offer]:
    if model == ECHO_MODEL:
        if principal.key.environment != "test":
            security_events.report_misuse(principal.key, "model_not_allowed")
            raise DomainError("model_not_allowed",
                              "gatewayz/echo is served to test keys only", param="model")
        echo = ProviderInfo(BUILTIN_PROVIDER, "Gatewayz", "echo", "", False, True, 0, 60_000,
                            "")
        return [Offer(ECHO_MODEL, echo, ECHO_MODEL, Prices.from_json(
            {"input": "0", "output": "0"}), None)]
    offers = catalog.offers_for(model)
    if not offers:
        org, _, rest = model.partition("/")
        pinned = catalog.provider(org)
        if pinned is None or not pinned.enabled or not rest:
            raise DomainError("model_not_found", f"the model {model!r} does not exist",
                              param="model")
        if is_premium_model(model):
            raise DomainError("model_pricing_missing",
                              f"{model} has no price set; refusing to guess a premium price",
                              param="model")
        offers = [Offer(model, pinned, rest, fallback_prices(), None)]
    check_model_allowed(principal.key, model)
    return offers
