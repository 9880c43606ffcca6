"""An account's traffic-split route (2.12): a name clients use as `model: "route:<name>"`."""

from __future__ import annotations

from eventsourcing.domain import Aggregate, event

from domain.ids import stream_uuid


class Route(Aggregate):
    class Defined(Aggregate.Created):
        account_id: str
        name: str
        targets: list  # [{"model": "org/model[@provider]", "weight": int}], weights sum 100
        actor: str

    class Replaced(Aggregate.Event):
        targets: list
        actor: str

    class Deleted(Aggregate.Event):
        actor: str

    @staticmethod
    def create_id(account_id: str, name: str, **_: object):
        return stream_uuid(f"route:{account_id}:{name}")

    @event(Defined)
    def __init__(self, account_id: str, name: str, targets: list, actor: str) -> None:
        self.account_id = account_id
        self.name = name
        self.targets: list | None = targets

    @event(Replaced)
    def replace(self, targets: list, actor: str) -> None:
        self.targets = targets

    @event(Deleted)
    def delete(self, actor: str) -> None:
        self.targets = None
