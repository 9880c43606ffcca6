"""The shipped catalog seed as the routing view's bottom layer (5.1, 2.2, 6.2).

Default providers (disabled until an admin gives credentials), the alias table, vendor
families, and per-(model, provider) prices and metadata from the pinned price package.
Built once per process: the seed is versioned with the code, so it cannot change while a
process runs.
"""

from __future__ import annotations

import functools
from dataclasses import replace

from adapters.seed_snapshot import read
from application.catalog_seed import load_aliases, load_families, load_providers
from application.catalog_view import ModelMeta, OfferRow, ProviderInfo, Seed


def _provider(row: dict) -> ProviderInfo:
    return ProviderInfo(
        slug=row["slug"], name=row["name"], protocol=row["protocol"],
        base_url=row["base_url"], allow_private=False, enabled=False,
        priority=row.get("priority", 100), timeout_ms=row.get("timeout_ms", 60_000),
        credential_last4="", weight=row.get("weight", 50),
        regions=tuple(row.get("regions", ())), family=row.get("family"),
        registered=False, listing=row.get("listing"))


@functools.cache
def load_seed() -> Seed:
    snapshot = read()
    offers, meta = [], {}
    for s in snapshot["offers"]:
        offers.append(OfferRow(s["model_id"], s["provider"], s["native_id"], s["prices"],
                               s["max_output_tokens"]))
        known = meta.get(s["model_id"])
        entry = ModelMeta(s["model_id"], s["name"], s["context_length"],
                          s["max_output_tokens"], tuple(s["input_modalities"]),
                          tuple(s["output_modalities"]))
        if known is None:
            meta[s["model_id"]] = entry
        elif entry.context_length and known.context_length:
            # Providers' windows differ (a tiered price caps one): the model promises the
            # smallest, so no request is routed where it cannot fit.
            meta[s["model_id"]] = replace(known.merged(entry), context_length=min(
                entry.context_length, known.context_length))
        else:
            meta[s["model_id"]] = known.merged(entry)
    return Seed(providers=tuple(_provider(p) for p in load_providers()),
                offers=tuple(offers), meta=tuple(meta.values()), aliases=load_aliases(),
                families=load_families(), source=snapshot["source"])
