"""The four bounded-context applications, opened together over one storage config."""

from __future__ import annotations

from collections.abc import Callable

from eventsourcing.application import Application

from application.apps import CONTEXTS, AccessApp, AccountsApp, CatalogApp, RequestsApp


class EventStores:
    def __init__(self, env_for: Callable[[str], dict[str, str]]) -> None:
        self.accounts = AccountsApp(env=env_for("accounts"))
        self.access = AccessApp(env=env_for("access"))
        self.requests = RequestsApp(env=env_for("requests"))
        self.catalog = CatalogApp(env=env_for("catalog"))

    def by_context(self) -> dict[str, Application]:
        return {name: getattr(self, name) for name in CONTEXTS}

    def max_positions(self) -> dict[str, int]:
        return {name: app.recorder.max_notification_id() or 0
                for name, app in self.by_context().items()}

    def close(self) -> None:
        for app in self.by_context().values():
            app.close()
