"""Catalog read model: providers and prices per (model, provider) (5.1, 6.2)."""

from __future__ import annotations

import json
from typing import Any

from projections.base import BatchEffects, dumps, event_type, index_stream, ref_of


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
        elif kind == "Model.Listed":
            index_stream(cur, event, event.model_id)
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


class CatalogQueries:
    """Reads for the routing view; implements the CatalogReader port."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def providers(self):
        from application.catalog import ProviderInfo

        with self.db.transaction() as cur:
            cur.execute("SELECT slug, name, protocol, base_url, allow_private, enabled, priority, "
                        "timeout_ms, credential_last4 FROM providers")
            rows = cur.fetchall()
        return [ProviderInfo(r[0], r[1], r[2], r[3], bool(r[4]), bool(r[5]), r[6], r[7], r[8])
                for r in rows]

    def offers(self) -> list[tuple[str, str, dict, str, int | None]]:
        with self.db.transaction() as cur:
            cur.execute("SELECT model_id, provider, prices, native_model_id, max_output_tokens "
                        "FROM model_prices")
            rows = cur.fetchall()
        return [(r[0], r[1], json.loads(r[2]), r[3], r[4]) for r in rows]
