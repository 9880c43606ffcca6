"""One eventsourcing Application per bounded context, each with its own events table."""

from __future__ import annotations

from typing import Any

from eventsourcing.application import Application

from application.envelope import stamp_aggregates


class GatewayApplication(Application):
    """An eventsourcing Application whose saves carry the current envelope (11.1)."""

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        stamp_aggregates(objs)
        return super().save(*objs, **kwargs)


class AccountsApp(GatewayApplication):
    """Accounts and wallets: who pays, and every credit into their pools."""

    name = "accounts"


class AccessApp(GatewayApplication):
    """API keys, users, staff tokens and grant logs."""

    name = "access"


class RequestsApp(GatewayApplication):
    """Inference requests: one small stream per request (hold + terminal event)."""

    name = "requests"


class CatalogApp(GatewayApplication):
    """Providers and model prices."""

    name = "catalog"


CONTEXTS = {"accounts": AccountsApp, "access": AccessApp, "requests": RequestsApp,
            "catalog": CatalogApp}
