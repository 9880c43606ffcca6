"""An in-memory catalog reader and key principals for resolution tests (no HTTP, no SQL)."""

from __future__ import annotations

from dataclasses import dataclass, field

from application.catalog_view import CatalogView, ModelMeta, OfferRow, ProviderInfo, Seed
from application.principals import KeyPrincipal, KeyRecord

TEXT = ("text",)


def provider(slug: str, priority: int = 100, enabled: bool = True, weight: int = 50,
             passthrough: bool = False) -> ProviderInfo:
    return ProviderInfo(slug, slug.title(), "openai-compatible", f"https://{slug}.example/v1",
                        False, enabled, priority, 5000, "1234", weight=weight,
                        passthrough=passthrough)


def meta(model_id: str, context: int = 128_000, caps: frozenset[str] | None = None,
         scores: dict | None = None) -> ModelMeta:
    return ModelMeta(model_id, model_id, context, None, TEXT, TEXT, caps, scores or {})


@dataclass
class FakeReader:
    """The admin layer of a catalog, held in dicts a test edits."""

    providers_: list[ProviderInfo] = field(default_factory=list)
    offers_: list[OfferRow] = field(default_factory=list)
    meta_: list[ModelMeta] = field(default_factory=list)
    aliases_: dict[str, str | None] = field(default_factory=dict)
    routing_: dict[str, dict] = field(default_factory=dict)
    routes_: dict[tuple[str, str], list] = field(default_factory=dict)

    def providers(self): return list(self.providers_)
    def offers(self): return list(self.offers_)
    def synced(self): return []
    def meta(self): return list(self.meta_)
    def aliases(self): return dict(self.aliases_)
    def routing(self): return dict(self.routing_)
    def routes(self): return dict(self.routes_)

    def serve(self, model_id: str, slug: str, input_price: str = "1", output_price: str = "2",
              native: str | None = None, **meta_kwargs) -> None:
        self.offers_.append(OfferRow(model_id, slug, native or model_id.split("/", 1)[1],
                                     {"input": input_price, "output": output_price}))
        if not any(m.model_id == model_id for m in self.meta_):
            self.meta_.append(meta(model_id, **meta_kwargs))


def view(reader: FakeReader, seed: Seed | None = None) -> CatalogView:
    catalog = CatalogView(reader, seed, max_age=3600)
    catalog.refresh()
    return catalog


def principal(allowed: tuple[str, ...] = (), environment: str = "live",
              account: str = "acct_1") -> KeyPrincipal:
    return KeyPrincipal(KeyRecord("key_1", account, environment, "active", None, ("*",),
                                  allowed, None, "gw_live_abc"))
