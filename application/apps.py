"""One eventsourcing Application per bounded context, each with its own events table."""

from __future__ import annotations

from eventsourcing.application import Application


class AccountsApp(Application):
    """Accounts and wallets: who pays, and every credit into their pools."""

    name = "accounts"


class AccessApp(Application):
    """API keys, users, staff tokens and grant logs."""

    name = "access"


class RequestsApp(Application):
    """Inference requests: one small stream per request (hold + terminal event)."""

    name = "requests"


class CatalogApp(Application):
    """Providers and model prices."""

    name = "catalog"


CONTEXTS = {"accounts": AccountsApp, "access": AccessApp, "requests": RequestsApp,
            "catalog": CatalogApp}
