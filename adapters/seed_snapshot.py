"""The price seed as shipped: a JSON snapshot generated from the pinned `genai-prices`.

The gateway reads the snapshot, never the package: importing genai-prices' data costs about
0.3 s and 30 MB per process, which every worker would pay for a table that cannot change
while it runs. The snapshot is regenerated from the pinned version with
``python -m adapters.seed_snapshot`` and a test checks that it still matches, so the file
and the pin cannot drift apart.

genai-prices prices text tokens; rows priced per audio, image or video token are skipped
when the seed is built (adapters/price_seed.py), so every seeded row is a text model:
text in and text out, or embeddings out for embedding models (5.3 modalities).
"""

from __future__ import annotations

import functools
import json
import sys
from dataclasses import asdict, replace
from datetime import date
from importlib import resources

SNAPSHOT_FILE = "seed_offers.json"
SNAPSHOT_DATE = date(2026, 12, 2)  # prices in force that day; bump with the pin


def build() -> dict:
    from adapters.price_seed import SEED_SOURCE, _is_embedding, build_seed

    offers, skips = build_seed(SNAPSHOT_DATE)
    rows = []
    for offer in offers:
        output = ("embedding",) if _is_embedding(offer.model_id) else ("text",)
        rows.append(asdict(replace(offer, input_modalities=("text",),
                                   output_modalities=output)))
    return {"source": SEED_SOURCE, "date": SNAPSHOT_DATE.isoformat(),
            "skipped": dict(sorted(skips.items())), "offers": rows}


@functools.cache
def read() -> dict:
    text = resources.files("catalog_data").joinpath(SNAPSHOT_FILE).read_text("utf-8")
    return json.loads(text)


def dumps(snapshot: dict) -> str:
    return json.dumps(snapshot, indent=None, separators=(",", ":"), sort_keys=True) + "\n"


if __name__ == "__main__":  # regenerate after bumping the genai-prices pin
    path = resources.files("catalog_data").joinpath(SNAPSHOT_FILE)
    with open(str(path), "w", encoding="utf-8") as out:
        out.write(dumps(build()))
    sys.stdout.write(f"wrote {path}\n")
