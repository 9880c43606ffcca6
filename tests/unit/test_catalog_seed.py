"""Shipped catalog data: seed offers from genai-prices, default providers, aliases, families."""

from __future__ import annotations

import socket
from collections import Counter
from datetime import date
from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price
from genai_prices.types import ModelPrice, Tier, TieredPrices

from adapters.price_seed import (
    SEED_SOURCE,
    Skip,
    build_seed,
    convert_prices,
    map_id,
    seed_offers,
    seed_skips,
)
from application.catalog_seed import (
    CANONICAL,
    SeedDataError,
    allowed_providers,
    load_aliases,
    load_families,
    load_providers,
    merge_seed,
    resolve,
    template_fields,
    validate_aliases,
    validate_families,
    validate_providers,
)
from domain.network_rules import parse_base_url
from domain.pricing import Prices

DEFAULT_PROVIDERS = {"openai", "anthropic", "google-vertex", "openrouter", "together",
                     "fireworks", "groq", "deepinfra", "cerebras", "mistral", "xai",
                     "cloudflare-workers-ai"}


def test_seed_is_large_and_canonical():
    offers = seed_offers()
    assert SEED_SOURCE == "genai-prices==0.2.3"
    assert len(offers) >= 1000
    assert len({o.model_id for o in offers}) >= 700
    slugs = {p["slug"] for p in load_providers()}
    for offer in offers:
        assert CANONICAL.match(offer.model_id), offer
        assert offer.provider in slugs
        assert offer.native_id
        assert offer.context_length is None or offer.context_length > 0
        # genai-prices carries none of these: they stay unknown, never guessed.
        assert offer.max_output_tokens is None
        assert offer.input_modalities is None and offer.output_modalities is None


def test_seed_prices_parse_as_decimal_strings():
    for offer in seed_offers():
        assert all(isinstance(v, str) for v in offer.prices.values()), offer
        Prices.from_json(offer.prices)  # at most 6 decimals, 0..10,000, known keys only


def test_seed_order_is_deterministic_and_unique():
    offers = seed_offers()
    keys = [(o.model_id, o.provider) for o in offers]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert seed_offers() == offers
    today = date.today()
    assert build_seed(today)[0] == build_seed(today)[0]


def test_seed_build_makes_no_network_call(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("network used while building the seed")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    offers, _ = build_seed(date(2026, 1, 1))
    assert len(offers) >= 1000


def test_known_rows_match_genai_prices():
    by_key = {(o.model_id, o.provider): o for o in seed_offers()}
    gpt4o = by_key[("openai/gpt-4o", "openai")]
    assert gpt4o.native_id == "gpt-4o"
    million = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    expected = calc_price(million, "gpt-4o", provider_id="openai")
    assert Decimal(gpt4o.prices["input"]) == expected.input_price
    assert Decimal(gpt4o.prices["output"]) == expected.output_price
    assert gpt4o.prices == {"input": "2.5", "output": "10", "cached_input": "1.25"}
    r1 = by_key[("deepseek/deepseek-r1-0528", "fireworks")]
    assert r1.native_id == "accounts/fireworks/models/deepseek-r1-0528"
    sonnet = by_key[("anthropic/claude-sonnet-4", "anthropic")]
    assert sonnet.native_id == "claude-sonnet-4-0"
    assert ("anthropic/claude-sonnet-4", "openrouter") in by_key
    assert by_key[("google/gemini-3.5-flash", "google-vertex")].native_id \
        == "google/gemini-3.5-flash"


def test_seed_skips_are_counted():
    skips = seed_skips()
    assert skips["provider_not_ours"] > 0
    assert skips["batch_variant"] > 0
    assert "no_confident_mapping" in skips


@pytest.mark.parametrize(("source", "native", "expected"), [
    ("openrouter", "openai/gpt-4o", ("openai/gpt-4o", "openai/gpt-4o")),
    ("openai", "gpt-4o", ("openai/gpt-4o", "gpt-4o")),
    ("anthropic", "claude-3-5-sonnet", ("anthropic/claude-3.5-sonnet", "claude-3-5-sonnet")),
    ("anthropic", "claude-sonnet-4-0", ("anthropic/claude-sonnet-4", "claude-sonnet-4-0")),
    ("anthropic", "claude-3-7-sonnet-latest",
     ("anthropic/claude-3.7-sonnet", "claude-3-7-sonnet-latest")),
    ("google", "gemini-2.5-flash", ("google/gemini-2.5-flash", "google/gemini-2.5-flash")),
    ("x-ai", "grok-3", ("x-ai/grok-3", "grok-3")),
    ("mistral", "mistral-large", ("mistralai/mistral-large", "mistral-large")),
    ("fireworks", "deepseek-r1", ("deepseek/deepseek-r1", "accounts/fireworks/models/deepseek-r1")),
    ("fireworks", "llama-v3p1-8b-instruct",
     ("meta-llama/llama-3.1-8b-instruct", "accounts/fireworks/models/llama-v3p1-8b-instruct")),
    ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo",
     ("meta-llama/llama-3.3-70b-instruct-turbo", "meta-llama/Llama-3.3-70B-Instruct-Turbo")),
    ("together", "deepseek-ai/DeepSeek-V4.1-Flash",
     ("deepseek/deepseek-v4.1-flash", "deepseek-ai/DeepSeek-V4.1-Flash")),
    ("cloudflare", "@cf/meta/llama-3.1-8b-instruct",
     ("meta-llama/llama-3.1-8b-instruct", "@cf/meta/llama-3.1-8b-instruct")),
    ("cerebras", "zai-glm-4.7", ("z-ai/glm-4.7", "zai-glm-4.7")),
    ("groq", "qwen/qwen3-32b", ("qwen/qwen3-32b", "qwen/qwen3-32b")),
])
def test_id_mapping_rules(source, native, expected):
    assert map_id(source, native) == expected


@pytest.mark.parametrize(("source", "native", "reason"), [
    ("openrouter", "openai/gpt-4o:batch", "batch_variant"),
    ("openrouter", "~openai/gpt-latest", "no_confident_mapping"),
    ("google", "claude-3-5-haiku", "protocol_mismatch"),
    ("openai", "ft:gpt-4o", "not_a_model_id"),
    ("mistral", "mistral-nemo:free", "not_a_model_id"),
    ("mistral", "zai-glm-5-3", "no_confident_mapping"),
    ("fireworks", "ember-1", "no_confident_mapping"),
])
def test_id_mapping_skips(source, native, reason):
    with pytest.raises(Skip, match=reason):
        map_id(source, native)


def test_prices_round_up_to_six_places_and_cap_tiers():
    notes: Counter = Counter()
    prices, cap = convert_prices(
        ModelPrice(input_mtok=Decimal("0.0000001"), output_mtok=Decimal("1.2345671")), "a/b", notes)
    assert prices == {"input": "0.000001", "output": "1.234568"} and cap is None
    assert notes["rounded_up_to_6dp"] == 1
    tiered = TieredPrices(base=Decimal("1.25"), tiers=[Tier(start=200_000, price=Decimal("2.5"))])
    prices, cap = convert_prices(ModelPrice(input_mtok=tiered, output_mtok=Decimal(10)), "a/b", notes)
    assert prices == {"input": "1.25", "output": "10"} and cap == 200_000
    assert convert_prices(ModelPrice(), "a/b:free", notes)[0] == {"input": "0", "output": "0"}
    assert convert_prices(ModelPrice(input_mtok=Decimal("0.02")), "a/text-embed", notes)[0] \
        == {"input": "0.02", "output": "0"}
    for bad, reason in [(ModelPrice(), "no_price"),
                        (ModelPrice(input_mtok=Decimal(1)), "no_output_price"),
                        (ModelPrice(input_mtok=Decimal(1), output_mtok=Decimal(1),
                                    input_audio_mtok=Decimal(4)), "modality_price"),
                        (ModelPrice(audio_hours=Decimal(1)), "non_token_unit")]:
        with pytest.raises(Skip, match=reason):
            convert_prices(bad, "a/b", notes)


def test_tier_capped_offers_keep_the_base_tier():
    by_key = {(o.model_id, o.provider): o for o in seed_offers()}
    pro = by_key[("google/gemini-2.5-pro", "openrouter")]
    assert pro.prices["input"] == "1.25" and pro.context_length == 200_000


def test_default_providers():
    providers = load_providers()
    assert {p["slug"] for p in providers} == DEFAULT_PROVIDERS
    for p in providers:
        assert p["base_url"].startswith("https://")
        parse_base_url(p["base_url"].replace("{", "").replace("}", ""), allow_private=False)
        assert p["enabled"] is False  # 5.1: defined but disabled until credentials are set
    templated = {p["slug"]: template_fields(p["base_url"]) for p in providers
                 if template_fields(p["base_url"])}
    assert templated == {"google-vertex": ("location", "project"),
                         "cloudflare-workers-ai": ("account_id",)}
    load_providers()[0]["slug"] = "changed"
    assert load_providers()[0]["slug"] == "openai"  # callers get copies


def test_families():
    families = load_families()
    slugs = {p["slug"] for p in load_providers()}
    for allowed in families["vendor_locked"].values():
        assert set(allowed) <= slugs
    assert set(families["org_fallback"].values()) <= slugs
    assert set(families["id_format"].values()) <= slugs
    assert families["vendor_locked"] == {"openai/*": ["openai", "openrouter"],
                                         "anthropic/*": ["anthropic", "openrouter"],
                                         "google/gemini-*": ["google-vertex", "openrouter"]}
    assert allowed_providers(families, "openai/gpt-4o") == ("openai", "openrouter")
    assert allowed_providers(families, "openai/gpt-oss-120b") is None  # open weights
    assert allowed_providers(families, "meta-llama/llama-3.3-70b-instruct") is None


def test_aliases():
    aliases = load_aliases()
    seeded = {o.model_id for o in seed_offers()}
    assert len(aliases) >= 120
    for alias, target in aliases.items():
        assert "/" not in alias and alias not in seeded  # never shadows a canonical id
        assert target in seeded, alias
        assert target not in aliases  # one level only
        assert resolve(resolve(alias, aliases), aliases) == resolve(alias, aliases)
    assert resolve("r1", aliases) == "deepseek/deepseek-r1"
    assert resolve("GPT-4o", aliases) == resolve("gpt-4o", aliases) == "openai/gpt-4o"
    assert resolve("claude-sonnet-4", aliases) == "anthropic/claude-sonnet-4"
    assert resolve("openai/gpt-4o", aliases) == "openai/gpt-4o"


def test_merge_seed_keeps_everything_shipped_consistent():
    seed = merge_seed(seed_offers())
    assert seed.dropped == {}
    assert len(seed.offers) == len(seed_offers()) and seed.aliases == load_aliases()
    for offer in seed.offers:
        allowed = allowed_providers(seed.families, offer.model_id)
        assert allowed is None or offer.provider in allowed


def test_merge_seed_drops_what_routing_could_never_use():
    offers = seed_offers()
    by_key = {(o.model_id, o.provider): o for o in offers}
    gpt4o = by_key[("openai/gpt-4o", "openai")]
    off_family = type(gpt4o)(**{**gpt4o.__dict__, "provider": "together"})
    unknown = type(gpt4o)(**{**gpt4o.__dict__, "provider": "nobody"})
    seed = merge_seed([o for o in offers if o.model_id != "deepseek/deepseek-r1"]
                      + [off_family, unknown])
    assert seed.dropped == {"alias_target_missing": 2, "outside_vendor_family": 1,
                            "unknown_provider": 1}
    assert "r1" not in seed.aliases


def _provider(**over):
    base = {"slug": "acme", "name": "Acme", "protocol": "openai-compatible",
            "base_url": "https://api.acme.test/v1", "regions": ["us"], "family": None,
            "listing": "openai", "balance_api": None, "priority": 10, "weight": 50,
            "enabled": False}
    return {**base, **over}


@pytest.mark.parametrize("bad", [
    {"slug": "A"}, {"protocol": "google"}, {"base_url": "http://api.acme.test"},
    {"base_url": "https://10.1.2.3/v1"}, {"regions": []}, {"listing": "custom"},
    {"balance_api": "credits"}, {"weight": 101}, {"priority": True}, {"enabled": "no"},
])
def test_provider_validation_rejects(bad):
    with pytest.raises(SeedDataError):
        validate_providers([_provider(**bad)])


def test_alias_and_family_validation_rejects():
    for bad in ({"router:general": "openai/gpt-4o"}, {"a/b": "openai/gpt-4o"},
                {"gpt-4o": "gpt-4o"}, {"GPT": "openai/gpt-4o"}):
        with pytest.raises(SeedDataError):
            validate_aliases(bad)
    families = {"vendor_locked": {"openai/*": ["openai"]}, "open_weight": [],
                "org_fallback": {"openai": "nowhere"}, "id_format": {}}
    with pytest.raises(SeedDataError, match="nowhere"):
        validate_families(families, {"openai"})
    with pytest.raises(SeedDataError):
        validate_providers([_provider(), _provider()])  # duplicate slug


def test_the_shipped_snapshot_is_what_the_pinned_package_generates():
    """catalog_data/seed_offers.json (what the gateway reads) and the genai-prices pin
    cannot drift apart: regenerate with `python -m adapters.seed_snapshot`."""
    from adapters import seed_snapshot

    shipped = seed_snapshot.read()
    assert shipped["source"] == SEED_SOURCE
    assert seed_snapshot.dumps(seed_snapshot.build()) == seed_snapshot.dumps(shipped)
    assert all(o["input_modalities"] == ["text"] for o in shipped["offers"])
