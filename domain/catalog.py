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

    class Configured(Aggregate.Event):
        changes: dict  # field -> new value, for the fields of PATCH /admin/providers/{slug}
        actor: str

    class CredentialRotated(Aggregate.Event):
        credential_last4: str
        actor: str

    @event(Disabled)
    def disable(self, reason: str, actor: str) -> None:
        self.enabled = False

    @event(Configured)
    def configure(self, changes: dict, actor: str) -> None:
        pass

    @event(CredentialRotated)
    def rotate_credential(self, credential_last4: str, actor: str) -> None:
        pass


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

    class Described(Aggregate.Event):
        """Metadata an admin set by hand (5.3); sync never overwrites it."""

        fields: dict
        actor: str

    class RoutingSet(Aggregate.Event):
        providers: list  # admin override of the candidate providers, in order (2.4)
        strategy: str | None
        actor: str

    class Delisted(Aggregate.Event):
        """Gone from a provider's successful listing (5.2); the run names the sync."""

        provider: str
        sync_run_id: str

    class MaintenanceStarted(Aggregate.Event):
        reason: str
        actor: str

    class MaintenanceEnded(Aggregate.Event):
        actor: str

    class ScoresSet(Aggregate.Event):
        scores: dict  # category -> integer 0..100 (3.5)
        actor: str

    @staticmethod
    def create_id(model_id: str, **_: object):
        return stream_uuid(f"model:{model_id}")

    @event(Listed)
    def __init__(self, model_id: str) -> None:
        self.model_id = model_id
        self.maintenance = False

    @event(PriceSet)
    def set_price(self, provider: str, prices: dict, native_model_id: str,
                  max_output_tokens: int | None, effective_at: str, actor: str) -> None:
        pass

    @event(Described)
    def describe(self, fields: dict, actor: str) -> None:
        pass

    @event(RoutingSet)
    def set_routing(self, providers: list, strategy: str | None, actor: str) -> None:
        pass

    @event(ScoresSet)
    def set_scores(self, scores: dict, actor: str) -> None:
        pass

    @event(Delisted)
    def delist(self, provider: str, sync_run_id: str) -> None:
        pass

    @event(MaintenanceStarted)
    def start_maintenance(self, reason: str, actor: str) -> None:
        self.maintenance = True

    @event(MaintenanceEnded)
    def end_maintenance(self, actor: str) -> None:
        self.maintenance = False


class Alias(Aggregate):
    """One entry of the admin alias table (2.2): a name that reads as a canonical id."""

    class Set(Aggregate.Created):
        alias: str
        target: str
        actor: str

    class Retargeted(Aggregate.Event):
        target: str
        actor: str

    class Removed(Aggregate.Event):
        actor: str

    @staticmethod
    def create_id(alias: str, **_: object):
        return stream_uuid(f"alias:{alias}")

    @event(Set)
    def __init__(self, alias: str, target: str, actor: str) -> None:
        self.alias = alias
        self.target: str | None = target

    @event(Retargeted)
    def retarget(self, target: str, actor: str) -> None:
        self.target = target

    @event(Removed)
    def remove(self, actor: str) -> None:
        self.target = None
