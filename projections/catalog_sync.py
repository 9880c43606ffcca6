"""The synced layer of the catalog (5.2): what each provider's last good listing said, and
when each provider last synced, from ProviderListing events.

Rows follow the events alone (times are the events' own ``at``), so a rebuild writes the
same rows. A failed run touches only the status row: the provider's models stay.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from application.catalog_view import ModelMeta, OfferRow
from application.feed import recorded_at
from projections.base import BatchEffects, dumps, event_type, index_stream, ref_of

# Entry fields kept in ``fields``; model_id, native_id and prices have their own columns.
META_FIELDS = ("name", "context_length", "max_output_tokens", "input_modalities",
               "output_modalities", "capabilities", "huggingface_id")
_MODALITY_ORDER = ("text", "image", "audio", "embedding")


class CatalogSyncProjection:
    name = "catalog_sync"
    contexts = ("catalog",)

    def apply(self, cur: Any, event: Any, effects: BatchEffects) -> None:
        kind = event_type(event)
        if kind == "ProviderListing.Opened":
            index_stream(cur, event, event.provider)
        elif kind == "ProviderListing.Synced":
            provider = ref_of(cur, event)
            for model_id in event.removed:
                cur.execute("DELETE FROM synced_models WHERE provider = %s AND model_id = %s",
                            (provider, model_id))
            for entry in (*event.added, *event.changed):
                # listed_at is kept on a change: it is when the provider first listed it.
                cur.execute(
                    "INSERT INTO synced_models (provider, model_id, native_id, fields, prices, "
                    "run_id, listed_at) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (provider, model_id) DO UPDATE SET "
                    "native_id = excluded.native_id, fields = excluded.fields, "
                    "prices = excluded.prices, run_id = excluded.run_id",
                    (provider, entry["model_id"], entry["native_id"],
                     dumps({k: entry.get(k) for k in META_FIELDS}),
                     None if entry.get("prices") is None else dumps(entry["prices"]),
                     event.run_id, event.at))
            cur.execute(
                "INSERT INTO catalog_sync_status (provider, last_success_at, last_run_id, "
                "synced_events) VALUES (%s, %s, %s, 1) ON CONFLICT (provider) DO UPDATE SET "
                "last_success_at = excluded.last_success_at, "
                "last_run_id = excluded.last_run_id, "
                "synced_events = catalog_sync_status.synced_events + 1",
                (provider, event.at, event.run_id))
            if event.added or event.changed or event.removed:
                effects.catalog_changed = True
        elif kind == "ProviderListing.SyncFailed":
            cur.execute(
                "INSERT INTO catalog_sync_status (provider, last_failure_at, last_error, "
                "last_run_id) VALUES (%s, %s, %s, %s) ON CONFLICT (provider) DO UPDATE SET "
                "last_failure_at = excluded.last_failure_at, "
                "last_error = excluded.last_error, last_run_id = excluded.last_run_id",
                (ref_of(cur, event), event.at, event.error, event.run_id))


def _merged(model_id: str, rows: list[tuple[dict, str]]) -> ModelMeta:
    """One model's metadata over the providers that list it: the smallest context and
    output limits (a request must fit wherever it is routed), the capabilities and
    modalities all of them report, the first name by provider slug."""
    fields = [f for f, _ in rows]
    contexts = [f["context_length"] for f in fields if f.get("context_length")]
    outputs = [f["max_output_tokens"] for f in fields if f.get("max_output_tokens")]
    caps = [set(f["capabilities"]) for f in fields if f.get("capabilities") is not None]
    return ModelMeta(
        model_id, next((f["name"] for f in fields if f.get("name")), None),
        min(contexts) if contexts else None, min(outputs) if outputs else None,
        _modalities([f["input_modalities"] for f in fields if f.get("input_modalities")]),
        _modalities([f["output_modalities"] for f in fields if f.get("output_modalities")]),
        frozenset(set.intersection(*caps)) if caps else None,
        listed_at=min(at for _, at in rows))


def _modalities(known: list[list[str]]) -> tuple[str, ...] | None:
    """What every provider that says agrees on (the model may be routed to any of them)."""
    if not known:
        return None
    if len(known) == 1:
        return tuple(known[0])  # stored in canonical order by the listing adapter
    common = set.intersection(*(set(m) for m in known))
    return tuple(m for m in _MODALITY_ORDER if m in common) or None


class SyncQueries:
    """Reads of the synced layer, for the routing view and the admin status.

    The routing view rebuilds often and reads both ``synced()`` and ``meta()``; parsing
    thousands of rows each time would dominate it, so the parsed layer is kept until a
    provider's count of Synced events moves (every row change comes with one).
    """

    def __init__(self, db: Any) -> None:
        self.db = db
        self._cached: tuple[Any, list[OfferRow], list[ModelMeta]] | None = None

    def _layer(self) -> tuple[list[OfferRow], list[ModelMeta]]:
        with self.db.transaction() as cur:
            cur.execute("SELECT provider, synced_events FROM catalog_sync_status "
                        "ORDER BY provider")
            version = tuple(cur.fetchall())
            cached = self._cached
            if cached is not None and cached[0] == version:
                return cached[1], cached[2]
            # Read after the version: the rows are at least that new (on PostgreSQL's read
            # committed they may be newer; the next call then just parses them again).
            cur.execute("SELECT provider, model_id, native_id, fields, prices, listed_at "
                        "FROM synced_models ORDER BY model_id, provider")
            rows = cur.fetchall()
        offers, by_model = [], {}
        for provider, model_id, native_id, fields, prices, listed_at in rows:
            parsed = json.loads(fields)
            offers.append(OfferRow(model_id, provider, native_id,
                                   json.loads(prices) if prices is not None else None,
                                   parsed.get("max_output_tokens")))
            by_model.setdefault(model_id, []).append((parsed, listed_at))
        metas = [_merged(model_id, entries) for model_id, entries in by_model.items()]
        self._cached = (version, offers, metas)
        return offers, metas

    def synced(self) -> list[OfferRow]:
        return list(self._layer()[0])

    def meta(self) -> list[ModelMeta]:
        return list(self._layer()[1])

    def hf_ids(self) -> dict[str, str]:
        """Model -> Hugging Face id (5.6), from the first provider by slug that names one.
        Read by the enrichment job every few minutes, never per request."""
        with self.db.transaction() as cur:
            cur.execute("SELECT model_id, fields FROM synced_models ORDER BY model_id, provider")
            rows = cur.fetchall()
        out: dict[str, str] = {}
        for model_id, fields in rows:
            hf_id = json.loads(fields).get("huggingface_id")
            if hf_id and model_id not in out:
                out[model_id] = hf_id
        return out

    def synced_providers(self) -> frozenset[str]:
        """Providers with at least one successful listing. Once a provider has one, its
        listing is the truth about it: a seed row it does not list may be left out."""
        with self.db.transaction() as cur:
            cur.execute("SELECT provider FROM catalog_sync_status WHERE synced_events > 0")
            return frozenset(r[0] for r in cur.fetchall())

    def status(self) -> list[dict[str, Any]]:
        """Each provider's last runs, with how many synced models it has now."""
        with self.db.transaction() as cur:
            cur.execute("SELECT s.provider, s.last_success_at, s.last_failure_at, "
                        "s.last_error, s.last_run_id, COUNT(m.model_id) "
                        "FROM catalog_sync_status s LEFT JOIN synced_models m "
                        "ON m.provider = s.provider GROUP BY s.provider, s.last_success_at, "
                        "s.last_failure_at, s.last_error, s.last_run_id ORDER BY s.provider")
            rows = cur.fetchall()
        return [{"provider": r[0], "last_success_at": r[1], "last_failure_at": r[2],
                 "last_error": r[3], "last_run_id": r[4], "models": int(r[5])} for r in rows]

    def stale_providers(self, now: datetime, interval_s: float) -> list[str]:
        """Providers without a success for two intervals; one that never succeeded is
        stale once it has failed (the catalog then holds no data of its own for it)."""
        cutoff = recorded_at(now - timedelta(seconds=2 * interval_s))
        with self.db.transaction() as cur:
            cur.execute("SELECT provider FROM catalog_sync_status WHERE "
                        "(last_success_at IS NULL AND last_failure_at IS NOT NULL) "
                        "OR last_success_at < %s ORDER BY provider", (cutoff,))
            return [r[0] for r in cur.fetchall()]
