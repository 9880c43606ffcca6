"""Catalog read model: providers, prices per (model, provider), and when each model was first
listed (5.1, 5.3, 6.2)."""

from __future__ import annotations

import json
from typing import Any

from application.catalog_view import ModelMeta, OfferRow, ProviderInfo, meta_from_fields
from projections.base import BatchEffects, at, dumps, event_type, index_stream, ref_of
from projections.catalog_sync import SyncQueries


class CatalogProjection:
    name = "catalog"
    contexts = ("catalog",)

    def apply(self, cur: Any, event: Any, effects: BatchEffects) -> None:
        kind = event_type(event)
        if kind == "Provider.Registered":
            index_stream(cur, event, event.slug)
            cur.execute(
                "INSERT INTO providers (slug, name, protocol, base_url, allow_private, enabled, "
                "priority, timeout_ms, credential_last4) VALUES (%s, %s, %s, %s, %s, %s, %s, "
                "%s, %s) ON CONFLICT DO NOTHING",
                (event.slug, event.name, event.protocol, event.base_url,
                 int(event.allow_private), int(event.enabled), event.priority,
                 event.timeout_ms, event.credential_last4))
        elif kind in ("Provider.Enabled", "Provider.Disabled"):
            cur.execute("UPDATE providers SET enabled = %s WHERE slug = %s",
                        (int(kind == "Provider.Enabled"), ref_of(cur, event)))
        elif kind == "Provider.Configured":
            _configure(cur, ref_of(cur, event), event.changes)
        elif kind == "Provider.CredentialRotated":
            cur.execute("UPDATE providers SET credential_last4 = %s WHERE slug = %s",
                        (event.credential_last4, ref_of(cur, event)))
        elif kind in ("Model.MaintenanceStarted", "Model.MaintenanceEnded"):
            model_id = ref_of(cur, event)
            cur.execute("INSERT INTO model_metadata (model_id) VALUES (%s) "
                        "ON CONFLICT DO NOTHING", (model_id,))
            cur.execute("UPDATE model_metadata SET maintenance = %s WHERE model_id = %s",
                        (int(kind == "Model.MaintenanceStarted"), model_id))
        elif kind in ("Model.Described", "Model.ScoresSet", "Model.RoutingSet"):
            _model_metadata(cur, kind, ref_of(cur, event), event)
        elif kind in ("Alias.Set", "Alias.Retargeted", "Alias.Removed"):
            if kind == "Alias.Set":
                index_stream(cur, event, event.alias)
            target = None if kind == "Alias.Removed" else event.target
            cur.execute("INSERT INTO model_aliases (alias, target) VALUES (%s, %s) "
                        "ON CONFLICT (alias) DO UPDATE SET target = excluded.target",
                        (ref_of(cur, event), target))
        elif kind in ("Route.Defined", "Route.Replaced", "Route.Deleted"):
            if kind == "Route.Defined":
                index_stream(cur, event, f"{event.account_id}\n{event.name}")
            account_id, _, name = (ref_of(cur, event) or "").partition("\n")
            targets = None if kind == "Route.Deleted" else dumps(event.targets)
            cur.execute("INSERT INTO account_routes (account_id, name, targets) "
                        "VALUES (%s, %s, %s) ON CONFLICT (account_id, name) DO UPDATE "
                        "SET targets = excluded.targets", (account_id, name, targets))
        elif kind == "Health.Tracked":
            index_stream(cur, event, event.key)  # names the breaker in the audit trail
            return
        elif kind == "ProviderCredit.Tracked":
            index_stream(cur, event, event.provider)
            return
        elif kind == "Model.Listed":
            index_stream(cur, event, event.model_id)
            # The event's own time, never the projector's clock, so a rebuild writes the
            # same row (9.5 `created`). A model is listed once: its stream is created once.
            cur.execute("INSERT INTO catalog_models (model_id, listed_at) VALUES (%s, %s) "
                        "ON CONFLICT DO NOTHING", (event.model_id, at(event)))
        elif kind == "Model.PriceSet":
            cur.execute(
                "INSERT INTO model_prices (model_id, provider, prices, native_model_id, "
                "max_output_tokens, effective_at) VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (model_id, provider) DO UPDATE SET prices = excluded.prices, "
                "native_model_id = excluded.native_model_id, "
                "max_output_tokens = excluded.max_output_tokens, "
                "effective_at = excluded.effective_at",
                (ref_of(cur, event), event.provider, dumps(event.prices),
                 event.native_model_id, event.max_output_tokens, event.effective_at))
        else:
            return
        effects.catalog_changed = True


_PROVIDER_COLUMNS = {"name": "name", "base_url": "base_url", "priority": "priority",
                     "timeout_ms": "timeout_ms", "allow_private": "allow_private",
                     "weight": "weight", "regions": "regions", "passthrough": "passthrough"}


def _configure(cur: Any, slug: str | None, changes: dict) -> None:
    for field, value in sorted(changes.items()):
        column = _PROVIDER_COLUMNS.get(field)
        if column is None:
            continue  # a field a later version added: its own migration projects it
        if isinstance(value, bool):
            value = int(value)
        elif isinstance(value, list):
            value = dumps(value)
        cur.execute(f"UPDATE providers SET {column} = %s WHERE slug = %s", (value, slug))


def _model_metadata(cur: Any, kind: str, model_id: str | None, event: Any) -> None:
    cur.execute("INSERT INTO model_metadata (model_id) VALUES (%s) ON CONFLICT DO NOTHING",
                (model_id,))
    if kind == "Model.Described":
        cur.execute("SELECT fields FROM model_metadata WHERE model_id = %s", (model_id,))
        merged = {**json.loads(cur.fetchone()[0]), **event.fields}
        cur.execute("UPDATE model_metadata SET fields = %s WHERE model_id = %s",
                    (dumps(merged), model_id))
    elif kind == "Model.ScoresSet":
        cur.execute("UPDATE model_metadata SET scores = %s WHERE model_id = %s",
                    (dumps(event.scores), model_id))
    else:
        cur.execute("UPDATE model_metadata SET routing = %s WHERE model_id = %s",
                    (dumps({"providers": event.providers, "strategy": event.strategy}),
                     model_id))


class CatalogQueries:
    """Reads for the routing view; implements the CatalogReader port."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.sync = SyncQueries(db)  # one instance: it caches parsed rows between syncs

    def version(self) -> tuple:
        """Where the catalog projections stand: the routing table needs a rebuild only
        when this moved (one small query instead of a rebuild every second)."""
        with self.db.transaction() as cur:
            cur.execute("SELECT projection, position FROM projection_tracking "
                        "WHERE projection IN ('catalog', 'catalog_sync')")
            return tuple(sorted(cur.fetchall()))

    def providers(self) -> list[ProviderInfo]:
        with self.db.transaction() as cur:
            cur.execute("SELECT slug, name, protocol, base_url, allow_private, enabled, priority, "
                        "timeout_ms, credential_last4, weight, regions, passthrough "
                        "FROM providers")
            rows = cur.fetchall()
        return [ProviderInfo(r[0], r[1], r[2], r[3], bool(r[4]), bool(r[5]), r[6], r[7], r[8],
                             weight=r[9], regions=tuple(json.loads(r[10])),
                             passthrough=bool(r[11]))
                for r in rows]

    def offers(self) -> list[OfferRow]:
        with self.db.transaction() as cur:
            cur.execute("SELECT model_id, provider, prices, native_model_id, max_output_tokens "
                        "FROM model_prices")
            rows = cur.fetchall()
        return [OfferRow(r[0], r[1], r[3], json.loads(r[2]), r[4]) for r in rows]

    def synced(self) -> list[OfferRow]:
        return self.sync.synced()

    def meta(self) -> list[ModelMeta]:
        with self.db.transaction() as cur:
            cur.execute("SELECT model_id, fields, scores FROM model_metadata")
            rows = cur.fetchall()
        # Synced metadata first: the view merges later rows over earlier ones, admin last.
        return [*self.sync.meta(),
                *(meta_from_fields(r[0], json.loads(r[1]), json.loads(r[2])) for r in rows)]

    def aliases(self) -> dict[str, str | None]:
        with self.db.transaction() as cur:
            cur.execute("SELECT alias, target FROM model_aliases")
            return dict(cur.fetchall())

    def routes(self) -> dict[tuple[str, str], list]:
        with self.db.transaction() as cur:
            cur.execute("SELECT account_id, name, targets FROM account_routes "
                        "WHERE targets IS NOT NULL")
            return {(r[0], r[1]): json.loads(r[2]) for r in cur.fetchall()}

    def routing(self) -> dict[str, dict]:
        """Per model: the admin's provider override and strategy, and maintenance (2.4,
        2.6, 2.7)."""
        with self.db.transaction() as cur:
            cur.execute("SELECT model_id, routing, maintenance FROM model_metadata "
                        "WHERE routing IS NOT NULL OR maintenance = 1")
            return {r[0]: {**(json.loads(r[1]) if r[1] else {}),
                           "maintenance": bool(r[2])} for r in cur.fetchall()}

    def listed(self) -> dict[str, str]:
        """Every listed model id -> when it was first listed (the event time format)."""
        with self.db.transaction() as cur:
            cur.execute("SELECT model_id, listed_at FROM catalog_models")
            return dict(cur.fetchall())

    def listed_at(self, model_id: str) -> str | None:
        with self.db.transaction() as cur:
            cur.execute("SELECT listed_at FROM catalog_models WHERE model_id = %s", (model_id,))
            row = cur.fetchone()
        return row[0] if row else None
