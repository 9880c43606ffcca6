"""Catalog read model: providers, prices per (model, provider), and when each model was first
listed (5.1, 5.3, 6.2)."""

from __future__ import annotations

import json
from typing import Any

from projections.base import BatchEffects, at, dumps, event_type, index_stream, ref_of


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
