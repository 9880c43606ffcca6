"""Catalog and resolution figures at catalog scale (issue 7): the shipped seed plus synthetic
models to at least 10,000, then

* resolving a model name to its ordered candidates (alias, canonical, native id), p50/p99;
* answering GET /v1/models from the warm card cache (filter, first page of 1,000, JSON),
  as the handler does in its worker thread, p50/p99;
* the same GET over real HTTP from an embedded gateway holding those models.

    python bench/catalog_routing.py [--models 10000] [--samples 2000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from service.routing_fakes import FakeReader, meta, principal, provider, view  # noqa: E402

from adapters.catalog_seed_loader import load_seed  # noqa: E402
from application.breakers import Breakers, HealthBoard  # noqa: E402, I001
from application.catalog_listing import Listing, search, with_status  # noqa: E402
from application.catalog_view import OfferRow  # noqa: E402
from application.resolve import Resolver  # noqa: E402
from application.routing_health import RoutingHealth  # noqa: E402


def timed(call, samples: int) -> tuple[float, float]:
    out = []
    for _ in range(samples):
        began = time.perf_counter()
        call()
        out.append((time.perf_counter() - began) * 1e6)
    out.sort()
    return statistics.median(out), out[int(len(out) * 0.99) - 1]


def catalog(models: int):
    slugs = ("together", "fireworks", "deepinfra", "openai", "openrouter")
    reader = FakeReader(providers_=[provider(s, 10 * i) for i, s in enumerate(slugs)])
    for i in range(models):
        model_id = f"org{i % 97}/model-{i}"
        for slug in slugs[:1 + i % 3]:
            reader.offers_.append(OfferRow(model_id, slug, f"native/{model_id}",
                                           {"input": str(1 + i % 5), "output": "2"}))
        reader.meta_.append(meta(model_id))
    return view(reader, load_seed())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    began = time.perf_counter()
    cat = catalog(args.models)
    built = time.perf_counter() - began
    snap = cat.snapshot
    print(f"catalog: {len(snap.offers)} listed models, "
          f"{sum(len(v) for v in snap.offers.values())} offers, {len(snap.aliases)} aliases; "
          f"built in {built * 1000:.0f} ms")
    key = principal()
    plain = Resolver(cat)
    healthy = Resolver(cat, RoutingHealth(Breakers.embedded(), HealthBoard()))
    for name in ("org5/model-5", "gpt-4o", "native/org7/model-7"):
        for label, r in (("no health", plain), ("breakers+health", healthy)):
            p50, p99 = timed(lambda r=r, name=name: r.resolve(name, key), args.samples)
            print(f"resolve {name!r:24} ({label}): p50 {p50:6.1f} us  p99 {p99:6.1f} us")
    listing = Listing(lambda: {})
    listing.cards(snap)  # warm

    def list_page():
        cards = search(listing.cards(snap), {}, lambda m: "healthy")[:1000]
        msgspec.json.encode({"object": "list", "data": [with_status(c, "healthy")
                                                        for c in cards]})

    p50, p99 = timed(list_page, 200)
    print(f"GET /v1/models first page of 1,000 (in process): p50 {p50 / 1000:.2f} ms  "
          f"p99 {p99 / 1000:.2f} ms")

    def filtered():
        cards = search(listing.cards(snap), {"capability": "tools", "max_input_price": "1",
                                             "q": "model-1"}, lambda m: "healthy")
        msgspec.json.encode([with_status(c, "healthy") for c in cards[:1000]])

    p50, p99 = timed(filtered, 200)
    print(f"GET /v1/models?q=&capability=&max_input_price= (in process): "
          f"p50 {p50 / 1000:.2f} ms  p99 {p99 / 1000:.2f} ms")
    over_http(cat, args.models)


def over_http(cat, models: int) -> None:
    """The route itself, served: the gateway's own catalog view replaced by this one."""
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)  # a log line per request is not the route
    from conftest import ServedGateway, close_gateway, open_gateway

    with tempfile.TemporaryDirectory() as tmp:
        gw, schema = open_gateway("sqlite", Path(tmp))
        gw.catalog_view = cat
        served = ServedGateway(gw)
        try:
            with httpx.Client(base_url=served.url) as client:
                client.get("/v1/models")  # warm the card cache
                samples = []
                for _ in range(100):
                    began = time.perf_counter()
                    answer = client.get("/v1/models")
                    samples.append((time.perf_counter() - began) * 1000)
                    assert answer.status_code == 200, answer.text
                samples.sort()
                print(f"GET /v1/models over HTTP, {models} models, page of "
                      f"{len(answer.json()['data'])}: p50 {statistics.median(samples):.2f} ms"
                      f"  p99 {samples[98]:.2f} ms")
        finally:
            served.close()
            close_gateway(gw, schema)


if __name__ == "__main__":
    main()
