"""Seed offers (model, provider, native id, prices) from the prices bundled in `genai-prices`.

Only the data module shipped inside the wheel is read (`genai_prices.data.providers`): not
`get_snapshot()`, which returns whatever an in-process `UpdatePrices` (logfire, pydantic-ai)
last downloaded, and never `UpdatePrices` itself, so the gateway makes no network call for
this at start or later. genai-prices is MIT-licensed (Pydantic Services Inc.).

Mapping rules (each skip is counted by reason in `seed_skips()`):
* providers: genai-prices ids map to our slugs through PROVIDERS; others are skipped.
* canonical id `org/model`, lower case, org in OpenRouter's convention:
  - openrouter: its id already is canonical; `~router` ids and `:batch` rows (a
    genai-prices price tier, not an OpenRouter model) are skipped;
  - other providers: ids with ":" (OpenRouter-style variants, `ft:` patterns) are not ids
    their API takes and are skipped;
  - openai / x-ai / mistral / anthropic: vendor org prefixed to the native id; anthropic
    also takes OpenRouter's spelling (`claude-3-5-sonnet` -> `claude-3.5-sonnet`,
    `claude-sonnet-4-0` -> `claude-sonnet-4`, `-latest` dropped) so both rows meet;
  - google: Gemini/Gemma only, native id `google/<id>` (Vertex's OpenAI-compatible
    endpoint names models that way); Claude-on-Vertex needs the Anthropic protocol;
  - together / groq / cloudflare: `org/model` native ids lower-cased, org renamed (ORGS);
  - fireworks / groq / cerebras bare ids: org inferred from a known name prefix (BY_PREFIX),
    fireworks' `3p1` version spelling becomes `3.1`; no known prefix -> skipped.
  - openrouter org-less legacy ids (`qwen3-32b:free`) take the org OpenRouter's own
    prefixed ids use for that name, when exactly one does; otherwise skipped.
* prices (USD per million tokens): input, output, cached_input (cache read), cache_write
  (5-minute write); the price active today (UTC) among genai-prices' dated prices; values
  with more than 6 decimals rounded UP to 6 (never undercharge). Embedding models (name
  has "embed" or is a BGE model) produce no output tokens: output "0". Skipped: prices per
  modality (audio/image/video tokens) or per unit (hours, characters, pages), no output
  price, and empty prices unless the id is a `:free` variant. Per-call tool fees (web/file
  search) and Anthropic's 1-hour cache-write rate are dropped: the gateway meters neither.
* tiered prices (a higher rate for every token once input exceeds T) cannot be one Prices;
  with CAP_TIERED the offer keeps the base rate and its context_length is capped at the
  first T, so no request it may serve reaches the higher tier; without it they are skipped.
* metadata: genai-prices carries name and context window only; max output, modalities and
  capabilities stay None rather than guessed.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_CEILING, Decimal
from functools import cache
from importlib.metadata import version

SEED_SOURCE = f"genai-prices=={version('genai-prices')}"

# genai-prices provider id -> our provider slug (spec 5.1 defaults). deepinfra has no data.
PROVIDERS = {
    "openai": "openai", "anthropic": "anthropic", "google": "google-vertex",
    "openrouter": "openrouter", "together": "together", "fireworks": "fireworks",
    "groq": "groq", "cerebras": "cerebras", "mistral": "mistral", "x-ai": "xai",
    "cloudflare": "cloudflare-workers-ai",
}
# Host-side organisation names -> OpenRouter's.
ORGS = {"deepseek-ai": "deepseek", "zai-org": "z-ai", "minimaxai": "minimax",
        "mistral": "mistralai", "meta-models": "meta"}
# Bare model-name prefix -> (org, prefix to strip). First match wins: keep longer first.
BY_PREFIX = (
    ("zai-glm", "z-ai", "zai-"), ("gpt-oss", "openai", ""), ("whisper", "openai", ""),
    ("llama", "meta-llama", ""), ("deepseek", "deepseek", ""), ("qwen", "qwen", ""),
    ("qwq", "qwen", ""), ("gemma", "google", ""), ("glm", "z-ai", ""),
    ("kimi", "moonshotai", ""), ("minimax", "minimax", ""), ("mistral", "mistralai", ""),
    ("mixtral", "mistralai", ""), ("nemotron", "nvidia", ""),
)
# Each vendor serves only its own models under its org; anything else it lists is skipped.
VENDORS = {
    "openai": ("openai", ("",)),
    "x-ai": ("x-ai", ("grok",)),
    "anthropic": ("anthropic", ("claude",)),
    "google": ("google", ("gemini", "gemma")),
    "mistral": ("mistralai", ("mistral", "mixtral", "codestral", "devstral", "ministral",
                              "magistral", "pixtral", "voxtral", "open-mistral")),
}
CANONICAL = re.compile(r"^[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._:-]*$")
PRICE_KEYS = {"input_mtok": "input", "output_mtok": "output",
              "cache_read_mtok": "cached_input", "cache_write_mtok": "cache_write",
              "output_reasoning_mtok": "reasoning"}
DROPPED_KEYS = {"web_searches_kcount": "dropped_tool_fee",
                "storage_searches_kcount": "dropped_tool_fee",
                "cache_write_1h_mtok": "dropped_cache_write_1h"}
CAP_TIERED = True
_PLACES = Decimal("0.000001")
_MAX_PRICE = Decimal(10000)


@dataclass(frozen=True)
class SeedOffer:
    model_id: str
    provider: str
    native_id: str
    prices: dict[str, str]
    context_length: int | None
    max_output_tokens: int | None
    name: str | None
    input_modalities: tuple[str, ...] | None
    output_modalities: tuple[str, ...] | None


class Skip(Exception):
    """A genai-prices row that cannot become an offer; the message is the counted reason."""


def _by_prefix(name: str) -> str:
    for prefix, org, strip in BY_PREFIX:
        if name.startswith(prefix):
            return f"{org}/{name[len(strip):]}"
    raise Skip("no_confident_mapping")


def _org_path(native: str) -> str:
    org, _, model = native.lower().partition("/")
    if org == "meta":  # OpenRouter files Llama under meta-llama, Meta's other models under meta
        return f"{'meta-llama' if model.startswith('llama') else 'meta'}/{model}"
    return f"{ORGS.get(org, org)}/{model}"


def _anthropic_name(name: str) -> str:
    name = name.removesuffix("-latest").removesuffix("-0")
    # "3-5" -> "3.5", but a date suffix ("-20241022") is left alone.
    return re.sub(r"(?<=\d)-(?=\d(?:-|$))", ".", name)


def map_id(source: str, native: str) -> tuple[str, str]:
    """(canonical id, native id to send) for one genai-prices row, or raise Skip."""
    low = native.lower()
    if source == "openrouter":
        if low.startswith("~") or "/" not in low:
            raise Skip("no_confident_mapping")
        if low.endswith(":batch"):
            raise Skip("batch_variant")
        return low, native
    # genai-prices also keeps prefix patterns ("ft:gpt-4o", "gpt-4o-mini-...ft-") and
    # OpenRouter-style ":free"/":extended" rows under vendors: not ids a vendor API takes.
    if ":" in low or low.endswith(("-", ".")):
        raise Skip("not_a_model_id")
    if source in VENDORS:
        org, prefixes = VENDORS[source]
        if source == "google" and low.startswith("claude"):
            raise Skip("protocol_mismatch")
        if not low.startswith(prefixes):
            raise Skip("no_confident_mapping")
        if source == "anthropic":
            return f"anthropic/{_anthropic_name(low)}", native
        if source == "google":
            return f"google/{low}", f"google/{native}"
        return f"{org}/{low}", native
    if source == "fireworks":
        name = re.sub(r"(?<=\d)p(?=\d)", ".", low)
        name = re.sub(r"^llama-v(?=\d)", "llama-", name)
        return _by_prefix(name), f"accounts/fireworks/models/{native}"
    if source == "cloudflare":
        return _org_path(low.removeprefix("@cf/")), native
    if "/" in low:  # together, groq
        return _org_path(low), native
    return _by_prefix(low), native  # groq, cerebras bare names


def _active_prices(model, today: date):
    """The standard prices genai-prices would apply today (last dated price that started)."""
    from genai_prices.types import ModelPrice, StartDateConstraint

    if isinstance(model.prices, ModelPrice):
        return model.prices
    for conditional in reversed(model.prices):
        constraint = conditional.constraint
        if constraint is None:
            return conditional.prices
        if not isinstance(constraint, StartDateConstraint):
            raise Skip("time_of_day_price")
        if constraint.start_date <= today:
            return conditional.prices
    return model.prices[0].prices


def _decimal_string(value: Decimal) -> str:
    rounded = value.quantize(_PLACES, rounding=ROUND_CEILING)
    if rounded < 0 or rounded > _MAX_PRICE:
        raise Skip("price_out_of_range")
    return "0" if not rounded else format(rounded.normalize(), "f")


def _is_embedding(model_id: str) -> bool:
    name = model_id.rsplit("/", 1)[-1]
    return "embed" in name or name.startswith("bge-")


def convert_prices(model_price, model_id: str, notes: Counter) -> tuple[dict[str, str], int | None]:
    """genai-prices' ModelPrice -> (our Prices JSON, tier cap on input tokens), or raise Skip."""
    from genai_prices.types import TieredPrices

    values = {k: v for k, v in vars(model_price).items() if v is not None}
    if not values:
        if model_id.endswith(":free"):
            return {"input": "0", "output": "0"}, None
        raise Skip("no_price")
    out: dict[str, str] = {}
    local: Counter = Counter()
    cap: int | None = None
    for key, value in sorted(values.items()):
        if isinstance(value, TieredPrices):
            if not CAP_TIERED:
                raise Skip("tiered_price")
            first = min(tier.start for tier in value.tiers)
            cap = first if cap is None else min(cap, first)
            value = value.base
        if key in DROPPED_KEYS:
            local[DROPPED_KEYS[key]] = 1
        elif key in PRICE_KEYS:
            out[PRICE_KEYS[key]] = _decimal_string(value)
            if out[PRICE_KEYS[key]] != format(value.normalize(), "f"):
                local["rounded_up_to_6dp"] = 1
        elif key.endswith("_mtok"):
            raise Skip("modality_price")
        else:
            raise Skip("non_token_unit")
    if "input" in out and "output" not in out and _is_embedding(model_id):
        out["output"] = "0"
        local["embedding_output_zero"] = 1
    if "input" not in out or "output" not in out:
        raise Skip("no_output_price" if "input" in out else "no_input_price")
    if cap is not None:
        local["tiered_capped"] = 1
    notes.update(local)  # counted only for rows that become offers
    return out, cap


def _bare_openrouter_orgs(rows) -> dict[str, str]:
    """Model name -> org, for names OpenRouter's prefixed ids use under exactly one org."""
    orgs: dict[str, set[str]] = {}
    for native in rows:
        if "/" in native and not native.startswith("~"):
            org, _, name = native.lower().partition("/")
            orgs.setdefault(name.split(":")[0], set()).add(org)
    return {name: next(iter(found)) for name, found in orgs.items() if len(found) == 1}


def build_seed(today: date) -> tuple[list[SeedOffer], Counter]:
    """Every offer genai-prices' bundled data yields, sorted, and the skips by reason."""
    from genai_prices.data import providers

    skips: Counter = Counter()
    offers: dict[tuple[str, str], SeedOffer] = {}
    for source in providers:
        slug = PROVIDERS.get(source.id)
        if slug is None:
            skips["provider_not_ours"] += len(source.models)
            continue
        bare = _bare_openrouter_orgs(m.id for m in source.models) if slug == "openrouter" else {}
        # Prefixed ids first: where an org-less legacy row duplicates one, the prefixed wins.
        for model in sorted(source.models, key=lambda m: "/" not in m.id):
            try:
                low = model.id.lower()
                if slug == "openrouter" and "/" not in low and not low.startswith("~"):
                    if low.split(":")[0] not in bare:
                        raise Skip("no_confident_mapping")
                    model_id = native = f"{bare[low.split(':')[0]]}/{low}"
                else:
                    model_id, native = map_id(source.id, model.id)
                if not CANONICAL.match(model_id):
                    raise Skip("bad_canonical_id")
                if (model_id, slug) in offers:  # a second genai-prices row for one model
                    raise Skip("duplicate")
                prices, cap = convert_prices(_active_prices(model, today), model_id, skips)
            except Skip as skip:
                skips[str(skip)] += 1
                continue
            window = model.context_window if isinstance(model.context_window, int) else None
            window = window if window and window > 0 else None
            if cap is not None:
                window = cap if window is None else min(window, cap)
            offers[(model_id, slug)] = SeedOffer(
                model_id, slug, native, prices, window, None, model.name, None, None)
    return [offers[key] for key in sorted(offers)], skips


@cache
def _seed() -> tuple[tuple[SeedOffer, ...], Counter]:
    offers, skips = build_seed(datetime.now(UTC).date())
    return tuple(offers), skips


def seed_offers() -> list[SeedOffer]:
    """The seed offers, built once per process, ordered by (model_id, provider)."""
    return list(_seed()[0])


def seed_skips() -> dict[str, int]:
    """genai-prices rows skipped by reason, and notes (dropped_*, tiered_capped, ...)."""
    return dict(sorted(_seed()[1].items()))
