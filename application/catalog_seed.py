"""The shipped catalog reference data, validated: providers (5.1), aliases (2.2), families (2.4).

The JSON lives in the `catalog_data` package and is read with importlib.resources, so it works
from a wheel or a zip and needs no path configuration; nothing here touches the network. Each
file is validated as a whole when first loaded (a broken file fails the start, not a request)
and cached; callers get copies, so the cache cannot be changed by accident.

`merge_seed` joins that data with the seed offers (adapters.price_seed, passed in so this
layer does not import adapters): it drops offers of unknown providers and offers outside a
vendor-locked family, and aliases whose target no kept offer serves, counting each.

families.json keys: `vendor_locked` (pattern -> allowed providers, first match wins),
`open_weight` (patterns exempt from vendor locks: `openai/gpt-oss-*` is open weights that any
host may serve, spec 2.4), `org_fallback` (org -> provider), `id_format` (native id prefix ->
provider).
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Protocol

from domain.network_rules import BaseUrlError, parse_base_url
from domain.pricing import PriceError, Prices

DATA_PACKAGE = "catalog_data"
SLUG = re.compile(r"^[a-z0-9-]{2,40}$")
ALIAS = re.compile(r"^[a-z0-9._:-]{1,64}$")
CANONICAL = re.compile(r"^[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._:-]*$")
REGION = re.compile(r"^[a-z]{2}$")
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
PROTOCOLS = ("openai", "anthropic", "openai-compatible")
LISTINGS = ("openai", "anthropic", "openrouter", None)
# The model grammar (2.1) reads these prefixes before any alias lookup.
RESERVED_PREFIXES = ("router:", "route:")
_PROVIDER_KEYS = {"slug", "name", "protocol", "base_url", "regions", "family", "listing",
                  "balance_api", "priority", "weight", "enabled"}
_FAMILY_KEYS = {"vendor_locked", "open_weight", "org_fallback", "id_format"}


class SeedDataError(ValueError):
    """Shipped catalog data that breaks a rule; the message names the file and the entry."""


def _read(name: str) -> Any:
    return json.loads(resources.files(DATA_PACKAGE).joinpath(name).read_text("utf-8"))


def template_fields(base_url: str) -> tuple[str, ...]:
    """Placeholders an admin must fill in a templated base URL (`{project}`), in order."""
    return tuple(dict.fromkeys(PLACEHOLDER.findall(base_url)))


def _int(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def validate_providers(raw: Any) -> list[dict]:
    if not isinstance(raw, list) or not raw:
        raise SeedDataError("providers.json: a non-empty list is required")
    seen: set[str] = set()
    for entry in raw:
        where = f"providers.json: {entry.get('slug') if isinstance(entry, dict) else entry!r}"
        if not isinstance(entry, dict) or set(entry) != _PROVIDER_KEYS:
            raise SeedDataError(f"{where}: keys must be exactly {sorted(_PROVIDER_KEYS)}")
        slug = entry["slug"]
        if not isinstance(slug, str) or not SLUG.match(slug) or slug in seen:
            raise SeedDataError(f"{where}: slug must match {SLUG.pattern} and be unique")
        seen.add(slug)
        if not isinstance(entry["name"], str) or not entry["name"].strip():
            raise SeedDataError(f"{where}: name is required")
        if entry["protocol"] not in PROTOCOLS:
            raise SeedDataError(f"{where}: protocol must be one of {PROTOCOLS}")
        url = entry["base_url"]
        try:  # a template is checked with its placeholders filled by a harmless label
            parse_base_url(PLACEHOLDER.sub("placeholder", url) if isinstance(url, str) else url,
                           allow_private=False)
        except BaseUrlError as exc:
            raise SeedDataError(f"{where}: base_url: {exc}") from None
        regions = entry["regions"]
        if not isinstance(regions, list) or not regions or \
                not all(isinstance(r, str) and REGION.match(r) for r in regions):
            raise SeedDataError(f"{where}: regions must be a non-empty list of region codes")
        if entry["family"] is not None and not isinstance(entry["family"], str):
            raise SeedDataError(f"{where}: family must be a string or null")
        if entry["listing"] not in LISTINGS:
            raise SeedDataError(f"{where}: listing must be one of {LISTINGS}")
        balance = entry["balance_api"]
        if balance is not None and not (isinstance(balance, str) and balance.startswith("/")):
            raise SeedDataError(f"{where}: balance_api must be null or a path under base_url")
        if not _int(entry["priority"], 0, 1_000_000) or not _int(entry["weight"], 0, 100):
            raise SeedDataError(f"{where}: priority must be 0..1000000 and weight 0..100")
        if not isinstance(entry["enabled"], bool):
            raise SeedDataError(f"{where}: enabled must be a boolean")
    return raw


def validate_aliases(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise SeedDataError("aliases.json: an object is required")
    for alias, target in raw.items():
        where = f"aliases.json: {alias!r}"
        # The regex has no "/", so an alias can never equal (shadow) a canonical id.
        if not ALIAS.match(alias) or alias.startswith(RESERVED_PREFIXES):
            raise SeedDataError(f"{where}: alias must match {ALIAS.pattern}, not router:/route:")
        if not isinstance(target, str) or not CANONICAL.match(target):
            raise SeedDataError(f"{where}: target must be a canonical org/model id")
        if target in raw:  # one level only (2.2); unreachable while targets hold a "/"
            raise SeedDataError(f"{where}: target is itself an alias")
    return raw


def validate_families(raw: Any, slugs: set[str]) -> dict:
    if not isinstance(raw, dict) or set(raw) != _FAMILY_KEYS:
        raise SeedDataError(f"families.json: keys must be exactly {sorted(_FAMILY_KEYS)}")
    for key in ("vendor_locked", "org_fallback", "id_format"):
        if not isinstance(raw[key], dict):
            raise SeedDataError(f"families.json: {key} must be an object")
    named: list[str] = []
    for pattern, allowed in raw["vendor_locked"].items():
        if not isinstance(allowed, list) or not allowed:
            raise SeedDataError(f"families.json: vendor_locked {pattern!r} needs providers")
        named.extend(allowed)
    if not isinstance(raw["open_weight"], list) or \
            not all(isinstance(p, str) for p in raw["open_weight"]):
        raise SeedDataError("families.json: open_weight must be a list of patterns")
    named.extend(raw["org_fallback"].values())
    named.extend(raw["id_format"].values())
    unknown = sorted({s for s in named if s not in slugs})
    if unknown:
        raise SeedDataError(f"families.json: unknown providers {unknown}")
    return raw


@cache
def _providers() -> tuple[dict, ...]:
    return tuple(validate_providers(_read("providers.json")))


@cache
def _aliases() -> dict[str, str]:
    return validate_aliases(_read("aliases.json"))


@cache
def _families() -> dict:
    return validate_families(_read("families.json"), {p["slug"] for p in _providers()})


def load_providers() -> list[dict]:
    """The default providers (5.1), in file order; each a fresh copy."""
    return copy.deepcopy(list(_providers()))


def load_aliases() -> dict[str, str]:
    """The seeded alias table, alias -> canonical id."""
    return dict(_aliases())


def load_families() -> dict:
    """Vendor-locked families, open-weight exemptions, org fallbacks and id-format rules."""
    return copy.deepcopy(_families())


def resolve(name: str, aliases: dict[str, str]) -> str:
    """One alias level (2.2): an alias becomes its target, anything else stays as it is."""
    low = name.lower()
    return aliases.get(low, low)


def allowed_providers(families: dict, model_id: str) -> tuple[str, ...] | None:
    """The providers a vendor-locked model may use (2.4), or None when any may serve it."""
    if any(fnmatch.fnmatchcase(model_id, p) for p in families["open_weight"]):
        return None
    for pattern, slugs in families["vendor_locked"].items():
        if fnmatch.fnmatchcase(model_id, pattern):
            return tuple(slugs)
    return None


class OfferLike(Protocol):
    model_id: str
    provider: str
    prices: dict[str, str]


@dataclass(frozen=True)
class CatalogSeed:
    providers: tuple[dict, ...]
    aliases: dict[str, str]
    families: dict
    offers: tuple[Any, ...]  # the kept OfferLike rows, in the order given
    dropped: dict[str, int]  # reason -> count


def merge_seed(offers: Iterable[OfferLike]) -> CatalogSeed:
    """The shipped data and seed offers made consistent with each other (see module doc)."""
    providers, families = load_providers(), load_families()
    slugs = {p["slug"] for p in providers}
    dropped: Counter = Counter()
    kept = []
    for offer in offers:
        if not CANONICAL.match(offer.model_id):
            raise SeedDataError(f"seed offer {offer.model_id!r}: not a canonical id")
        try:
            Prices.from_json(offer.prices)
        except PriceError as exc:
            raise SeedDataError(f"seed offer {offer.model_id!r}: {exc}") from None
        if offer.provider not in slugs:
            dropped["unknown_provider"] += 1
            continue
        allowed = allowed_providers(families, offer.model_id)
        if allowed is not None and offer.provider not in allowed:
            dropped["outside_vendor_family"] += 1
            continue
        kept.append(offer)
    served = {offer.model_id for offer in kept}
    aliases = {}
    for alias, target in load_aliases().items():
        if target in served:
            aliases[alias] = target
        else:  # a price-package upgrade dropped the model: skip the alias, do not fail start
            dropped["alias_target_missing"] += 1
    return CatalogSeed(tuple(providers), aliases, families, tuple(kept),
                       dict(sorted(dropped.items())))
