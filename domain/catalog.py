"""Catalog aggregates: providers as data and per-(model, provider) prices (spec 5.1, 6.2)."""

from __future__ import annotations

from eventsourcing.domain import Aggregate, event

from domain.ids import stream_uuid

PROTOCOLS = ("openai", "openai-compatible", "anthropic")


class Provider(Aggregate):
    class Registered(Aggregate.Created):
        slug: str
        name: str
        protocol: str
        base_url: str
        allow_private: bool
        enabled: bool
        priority: int
        timeout_ms: int
        credential_last4: str
        actor: str

    class Enabled(Aggregate.Event):
        actor: str

    class Disabled(Aggregate.Event):
        reason: str
        actor: str

    @staticmethod
    def create_id(slug: str, **_: object):
        return stream_uuid(f"provider:{slug}")

    @event(Registered)
    def __init__(self, slug: str, name: str, protocol: str, base_url: str, allow_private: bool,
                 enabled: bool, priority: int, timeout_ms: int, credential_last4: str,
                 actor: str) -> None:
        self.slug = slug
        self.enabled = enabled

    @event(Enabled)
    def enable(self, actor: str) -> None:
        self.enabled = True

    @event(Disabled)
    def disable(self, reason: str, actor: str) -> None:
        self.enabled = False


class Model(Aggregate):
    class Listed(Aggregate.Created):
        model_id: str

    class PriceSet(Aggregate.Event):
        provider: str
        prices: dict
        native_model_id: str
        max_output_tokens: int | None
        effective_at: str
        actor: str

    @staticmethod
    def create_id(model_id: str, **_: object):
        return stream_uuid(f"model:{model_id}")

    @event(Listed)
    def __init__(self, model_id: str) -> None:
        self.model_id = model_id

    @event(PriceSet)
    def set_price(self, provider: str, prices: dict, native_model_id: str,
                  max_output_tokens: int | None, effective_at: str, actor: str) -> None:
        pass
