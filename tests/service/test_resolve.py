"""Resolution (spec 2.1-2.5, 2.9, 5.4) against an in-memory catalog: grammar, aliases, pins,
provider preferences, vendor families, native ids, pass-through and fallback lists."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.catalog_seed_loader import load_seed
from application.resolve import Resolver
from application.routing_request import preferences_of
from domain.errors import DomainError
from domain.model_names import CANONICAL, MAX_NAME
from service.routing_fakes import FakeReader, meta, principal, provider, view

KEY = principal()


def resolver(reader: FakeReader, seed=None) -> Resolver:
    return Resolver(view(reader, seed))


def slugs(resolution) -> list[str]:
    return [o.provider.slug for o in resolution.offers]


def refused(call, code: str) -> DomainError:
    with pytest.raises(DomainError) as raised:
        call()
    assert raised.value.code == code, raised.value
    return raised.value


@pytest.fixture
def seeded() -> Resolver:
    """The shipped seed with OpenAI, OpenRouter, Together and Fireworks configured."""
    reader = FakeReader(providers_=[provider(s, p) for s, p in (
        ("openai", 10), ("openrouter", 50), ("together", 20), ("fireworks", 20))])
    return resolver(reader, load_seed())


def test_names_are_case_insensitive_and_aliases_resolve_to_canonical_ids(seeded):
    upper, lower = seeded.resolve("GPT-4o", KEY), seeded.resolve("gpt-4o", KEY)
    assert upper.models == lower.models == ["openai/gpt-4o"]
    assert slugs(upper) == slugs(lower)
    assert seeded.resolve("r1", KEY).models == ["deepseek/deepseek-r1"]
    assert seeded.resolve("openai/gpt-4o", KEY).models == ["openai/gpt-4o"]


def test_alias_resolution_is_idempotent_over_the_whole_seeded_table(seeded):
    aliases = seeded.catalog.snapshot.aliases
    assert len(aliases) >= 120
    for alias in aliases:
        once = seeded.canonical(alias)
        assert seeded.canonical(once) == once and CANONICAL.match(once), alias


def test_an_unknown_name_is_404_and_an_unbounded_one_400_without_echoing_it(seeded):
    refused(lambda: seeded.resolve("no-such-model", KEY), "model_not_found")
    huge = "a/" + "x" * 100_000
    error = refused(lambda: seeded.resolve(huge, KEY), "invalid_model")
    assert len(str(error)) < 200
    error = refused(lambda: seeded.resolve("openai/" + "y" * 240, KEY), "model_not_found")
    assert len(str(error)) < 200


def test_dot_dot_names_nothing_even_where_pass_through_is_allowed():
    reader = FakeReader(providers_=[provider("mock", passthrough=True)])
    r = resolver(reader)
    assert r.resolve("mock/anything-1", KEY).offers[0].source == "fallback"
    refused(lambda: r.resolve("mock/../../admin/x", KEY), "model_not_found")


def test_pass_through_needs_the_admin_s_permission():
    reader = FakeReader(providers_=[provider("mock")])
    refused(lambda: resolver(reader).resolve("mock/anything-1", KEY), "model_not_found")


def test_an_unknown_router_mode_lists_the_valid_ones():
    from application.model_routers import ModelPicker

    r = resolver(FakeReader())
    r.pick_model = ModelPicker(_NoStatus())
    error = refused(lambda: r.resolve("router:general:fastest", KEY), "invalid_model")
    assert "balanced" in str(error) and "quality" in str(error)


class _NoStatus:
    def signals(self, provider, model):
        from application.selection_inputs import UNKNOWN
        return UNKNOWN

    def status(self, provider, model):
        return "healthy"


def test_vendor_locked_models_stay_in_their_family(seeded):
    assert set(slugs(seeded.resolve("openai/gpt-4o", KEY))) <= {"openai", "openrouter"}


def test_a_model_listed_by_three_hosts_has_exactly_those_three():
    reader = FakeReader(providers_=[provider(s) for s in ("together", "fireworks",
                                                           "deepinfra", "groq")])
    for slug in ("together", "fireworks", "deepinfra"):
        reader.serve("meta-llama/llama-3.3-70b-instruct", slug)
    assert sorted(slugs(resolver(reader).resolve("meta-llama/llama-3.3-70b-instruct",
                                                 KEY))) == ["deepinfra", "fireworks",
                                                            "together"]


def test_pins_name_one_provider_and_never_fail_over():
    reader = FakeReader(providers_=[provider("together"), provider("fireworks")])
    for slug in ("together", "fireworks"):
        reader.serve("meta-llama/llama-3.3-70b-instruct", slug)
    r = resolver(reader)
    assert slugs(r.resolve("meta-llama/llama-3.3-70b-instruct@together", KEY)) == ["together"]
    assert slugs(r.resolve("fireworks/meta-llama/llama-3.3-70b-instruct", KEY)) == [
        "fireworks"]
    refused(lambda: r.resolve("meta-llama/llama-3.3-70b-instruct@groq", KEY),
            "model_not_found")  # groq is no registered slug: not a pin at all
    reader.providers_.append(provider("groq"))
    r = resolver(reader)
    error = refused(lambda: r.resolve("meta-llama/llama-3.3-70b-instruct@groq", KEY),
                    "no_provider_available")
    assert "groq" in str(error)


def test_a_native_id_reads_as_its_model_pinned_to_that_provider():
    reader = FakeReader(providers_=[provider("fireworks"), provider("together")])
    reader.serve("deepseek/deepseek-r1", "fireworks",
                 native="accounts/fireworks/models/deepseek-r1")
    reader.serve("deepseek/deepseek-r1", "together", native="deepseek-ai/DeepSeek-R1")
    resolution = resolver(reader).resolve("accounts/fireworks/models/deepseek-r1", KEY)
    assert resolution.models == ["deepseek/deepseek-r1"] and slugs(resolution) == ["fireworks"]
    assert resolution.offers[0].native_model_id == "accounts/fireworks/models/deepseek-r1"


def test_provider_preferences_only_ignore_order_and_no_fallbacks():
    reader = FakeReader(providers_=[provider("aa", 10), provider("bb", 20),
                                    provider("cc", 30)])
    for slug in ("aa", "bb", "cc"):
        reader.serve("org/m-1", slug)
    r = resolver(reader)

    def with_prefs(prefs: dict) -> list[str]:
        return slugs(r.resolve("org/m-1", KEY, preferences=preferences_of(
            {"provider": prefs})))

    assert "bb" not in with_prefs({"ignore": ["bb"]})
    assert with_prefs({"only": ["cc"]}) == ["cc"]
    assert with_prefs({"order": ["cc", "bb"]})[:2] == ["cc", "bb"]
    assert len(with_prefs({"allow_fallbacks": False})) == 1
    refused(lambda: with_prefs({"only": ["zz"]}), "no_provider_available")
    refused(lambda: preferences_of({"provider": {"strategy": "fastest"}}), "invalid_request")


def test_an_admin_override_beats_every_other_rule():
    reader = FakeReader(providers_=[provider("a", 10), provider("b", 20)],
                        routing_={"org/m-1": {"providers": ["b"], "strategy": None}})
    for slug in "ab":
        reader.serve("org/m-1", slug)
    assert slugs(resolver(reader).resolve("org/m-1", KEY)) == ["b"]


def test_a_premium_model_without_a_price_is_refused_and_unlisted():
    reader = FakeReader(providers_=[provider("openai")], meta_=[meta("openai/gpt-5-mini")])
    r = resolver(reader)
    refused(lambda: r.resolve("openai/gpt-5-mini", KEY), "model_pricing_missing")
    assert "openai/gpt-5-mini" not in r.catalog.snapshot.offers


def test_an_open_model_without_a_price_is_served_at_the_fallback_price():
    from application.catalog_view import OfferRow

    reader = FakeReader(providers_=[provider("together")], meta_=[meta("qwen/qwen-3-8b")],
                        offers_=[])
    seed_rows = (OfferRow("qwen/qwen-3-8b", "together", "Qwen/Qwen3-8B", None),)
    from application.catalog_view import Seed

    r = resolver(reader, Seed(offers=seed_rows))
    offer = r.resolve("qwen/qwen-3-8b", KEY).offers[0]
    assert offer.source == "fallback" and str(offer.prices.input) == "20"


def test_a_fallback_list_adds_each_model_s_candidates_in_turn():
    reader = FakeReader(providers_=[provider("openai"), provider("anthropic")])
    reader.serve("openai/gpt-4o", "openai", "2.5", "10")
    reader.serve("anthropic/claude-sonnet-4", "anthropic", "3", "15")
    resolution = resolver(reader).resolve("openai/gpt-4o", KEY,
                                          fallbacks=["anthropic/claude-sonnet-4"])
    assert resolution.models == ["openai/gpt-4o", "anthropic/claude-sonnet-4"]
    assert [o.model_id for o in resolution.offers] == resolution.models


def test_a_key_s_allowlist_applies_to_the_canonical_id(seeded):
    key = principal(allowed=("openai/*",))
    assert seeded.resolve("gpt-4o", key).models == ["openai/gpt-4o"]
    refused(lambda: seeded.resolve("r1", key), "model_not_allowed")


def test_disabling_the_only_provider_removes_the_model():
    reader = FakeReader(providers_=[provider("a")])
    reader.serve("org/m-1", "a")
    catalog = view(reader)
    assert "org/m-1" in catalog.snapshot.offers
    reader.providers_ = [provider("a", enabled=False)]
    catalog.refresh()
    assert "org/m-1" not in catalog.snapshot.offers


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_any_string_either_resolves_to_a_canonical_id_or_is_refused_cleanly(name):
    r = _FUZZ
    try:
        resolution = r.resolve(name, KEY)
    except DomainError as error:
        assert error.code in ("model_not_found", "invalid_model", "no_provider_available",
                              "model_pricing_missing")
        assert len(str(error)) < 300
        return
    assert len(resolution.requested) <= MAX_NAME
    assert all(CANONICAL.match(m) for m in resolution.models)


_FUZZ = resolver(FakeReader(providers_=[provider("openai"), provider("openrouter")]),
                 load_seed())
