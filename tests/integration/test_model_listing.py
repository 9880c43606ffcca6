"""Model listings (5.2, 5.3, 5.6) over HTTP against a local fake: dialects, prices, failures."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal

import pytest
from fakes.listing_server import FakeListing, ListingFault, claude, synthetic_models
from hypothesis import given, settings
from hypothesis import strategies as st

import adapters.model_listing as ml
from adapters.huggingface import fetch_hf
from adapters.model_listing import CheckedSessions, ListingError, list_models, per_million

KEY = "sk-test-credential-1234"


@pytest.fixture(scope="module")
def server():
    with FakeListing(name="listing") as fake, FakeListing(name="redirect-sink") as sink:
        yield fake, sink


@pytest.fixture
def fake(server):
    for each in server:  # the sink too: redirect tests check it heard nothing
        each.reset()
    return server[0]


async def _with_sessions(use):
    sessions = CheckedSessions()
    try:
        return await use(sessions)
    finally:
        await sessions.close()


def listing(fake, dialect, *, base_url=None, allow_private=True, timeout_s=10.0, credential=KEY):
    return asyncio.run(_with_sessions(lambda s: list_models(
        s, dialect=dialect, base_url=base_url or fake.base_url_for(dialect), credential=credential,
        allow_private=allow_private, timeout_s=timeout_s)))


def hf(fake, hf_id, private=True, **kw):
    return asyncio.run(_with_sessions(lambda s: fetch_hf(
        s.get(private), hf_id, base_url=fake.hf_base_url, allow_private=private, **kw)))


def by_id(result):
    return {m.native_id: m for m in result.models}


def serve(fake, data):
    fake.script(ListingFault(body=json.dumps(data).encode()))


def test_openai_dialect_and_compatible_extras(fake):
    result = listing(fake, "openai")
    assert len(result.models) == len(fake.models) and result.dropped == 0
    gpt = by_id(result)["openai/gpt-4o"]
    assert (gpt.name, gpt.prices, gpt.capabilities, gpt.input_modalities) == (None,) * 4
    sent = fake.requests[0].headers
    assert sent["authorization"] == f"Bearer {KEY}" and "x-api-key" not in sent
    # Together answers a bare array with per-MILLION prices: the sizes count, the prices do not.
    body = [{"id": "meta-llama/Llama-3.3-70B-Instruct-Turbo", "display_name": "Llama 3.3 70B",
             "context_length": 131072, "pricing": {"prompt": "0.88", "completion": "0.88"}},
            {"id": "llama-3.1-8b-instant", "context_window": 131072}]
    serve(fake, body)
    models = by_id(listing(fake, "openai", credential=""))
    t = models["meta-llama/Llama-3.3-70B-Instruct-Turbo"]
    assert (t.name, t.context_length, t.prices) == ("Llama 3.3 70B", 131072, None)
    assert models["llama-3.1-8b-instant"].context_length == 131072
    assert "authorization" not in fake.requests[1].headers  # no credential, no header


def test_openrouter_fixture_is_normalised(fake):
    result = listing(fake, "openrouter")
    models = by_id(result)
    assert len(models) == len(fake.models) >= 300 and result.dropped == 0
    sonnet = models["anthropic/claude-sonnet-4.5"]
    assert sonnet.prices == dict(input="3", output="15", cached_input="0.3", cache_write="3.75")
    assert sonnet.input_modalities == ("text", "image") and sonnet.output_modalities == ("text",)
    assert sonnet.capabilities == {"streaming", "tools", "reasoning", "vision", "prompt_caching"}
    assert (sonnet.context_length, sonnet.max_output_tokens) == (1_000_000, 64_000)
    assert models["google/gemini-2.5-flash"].prices["cache_write"] == "0.3833"
    oss = models["openai/gpt-oss-120b"]
    assert oss.huggingface_id == "openai/gpt-oss-120b" and oss.max_output_tokens == 131072
    assert models["openai/gpt-4o"].capabilities >= {"json_mode", "json_schema", "logprobs"}
    assert models["deepseek/deepseek-r1:free"].prices == {"input": "0", "output": "0"}
    assert models["openrouter/auto"].prices is None  # "-1": price unknown, never negative
    emb = models["openai/text-embedding-3-small"]
    assert emb.output_modalities == ("embedding",) and "streaming" not in emb.capabilities
    assert models["openai/gpt-audio"].input_modalities == ("text", "audio")
    for model in result.models:
        assert model.name and model.context_length and model.input_modalities
        for price in (model.prices or {}).values():
            assert isinstance(price, str) and Decimal(price) == Decimal(price).quantize(
                Decimal("0.000001")) and "E" not in price


def test_anthropic_headers_shape_and_optional_fields(fake):
    fake.anthropic_models.append(claude("claude-2.0", "Claude 2", "2023-07-11T00:00:00Z",
                                        lifecycle="retired"))
    result = listing(fake, "anthropic")
    models = by_id(result)
    assert list(models)[0] == "claude-sonnet-4-5-20250929" and result.dropped == 1
    sent = fake.requests[0].headers
    assert sent["x-api-key"] == KEY and sent["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent and fake.queries[0][1] == {"limit": "1000"}
    r, plain = models["claude-sonnet-4-5-20250929"], models["claude-3-haiku-20240307"]
    assert (r.name, r.context_length, r.max_output_tokens) == ("Claude Sonnet 4.5", 200_000, 64_000)
    assert r.capabilities >= {"vision", "reasoning", "json_schema", "tools", "streaming"}
    assert r.input_modalities == ("text", "image") and r.prices is None
    assert (plain.capabilities, plain.input_modalities, plain.context_length) == (None,) * 3


def test_anthropic_pagination_follows_last_id(fake):
    fake.anthropic_page_cap = 3
    ids = [m["id"] for m in fake.anthropic_models]
    assert [m.native_id for m in listing(fake, "anthropic").models] == ids
    assert [query.get("after_id") for _, query in fake.queries] == [None, ids[2], ids[5]]
    fake.script(None, ListingFault(status=503))  # a later page failing fails the listing
    with pytest.raises(ListingError, match="503"):
        listing(fake, "anthropic")


def test_anthropic_pagination_is_bounded(fake):
    fake.anthropic_models = [claude(f"claude-{i}", f"C{i}", "2025-01-01T00:00:00Z")
                             for i in range(ml.MAX_PAGES + 5)]
    fake.anthropic_page_cap = 1
    with pytest.raises(ListingError, match="pages"):
        listing(fake, "anthropic")
    assert len(fake.requests) == ml.MAX_PAGES
    # A cursor that does not move (or is missing) would otherwise page forever.
    for last_id, data in (("claude-0", fake.anthropic_models[:1]), (None, [])):
        fake.reset()
        fake.script(*[ListingFault(body=json.dumps(
            {"data": data, "has_more": True, "last_id": last_id}).encode())] * 2)
        with pytest.raises(ListingError, match="last_id"):
            listing(fake, "anthropic")
        assert len(fake.requests) == (2 if last_id else 1)


BAD_BODIES = {"nan": b"NaN", "malformed": b'{"data": [{"id": "a"', "html": b"<html>busy</html>",
              "string": b'"models"', "data_not_list": b'{"data": {}}',
              "all_invalid": b'{"data": [1, {}]}', "deep": b"[" * 100_000 + b"]" * 100_000}
FAULTS = {"500": ListingFault(status=500), "401": ListingFault(status=401),
          "429": ListingFault(status=429), "hang": ListingFault(hang_s=5),
          "empty": ListingFault(empty=True), "huge": ListingFault(huge_bytes=ml.MAX_BODY_BYTES + 9),
          "redirect": ListingFault(redirect_to="http://169.254.169.254/latest/meta-data/"),
          **{name: ListingFault(body=raw) for name, raw in BAD_BODIES.items()}}


@pytest.mark.parametrize("dialect", ["openai", "anthropic", "openrouter"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_every_failure_is_a_listing_error(fake, dialect, fault):
    fake.script(FAULTS[fault])
    started = time.monotonic()
    with pytest.raises(ListingError, match={"huge": "larger", "hang": "timed out"}.get(fault)):
        listing(fake, dialect, timeout_s=0.5 if fault == "hang" else 10)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
def test_redirect_is_not_followed(server, fake, dialect):
    fake, sink = server
    fake.script(ListingFault(redirect_to=sink.base_url_for(dialect) + "/models"))
    with pytest.raises(ListingError, match="302"):
        listing(fake, dialect)
    time.sleep(0.1)
    assert sink.requests == [] and len(fake.requests) == 1


@pytest.mark.parametrize("base_url", [None, "http://10.1.2.3/v1", "https://169.254.169.254/v1",
                                      "https://[::1]/v1", "file://localhost/x"])
def test_refused_base_url_sends_nothing(fake, base_url):
    with pytest.raises(ListingError, match="base URL"):
        listing(fake, "openai", base_url=base_url, allow_private=False)
    assert fake.requests == []


def test_ids_names_and_sizes_are_bounded(fake):
    entries = [{"id": "ok/a", "name": "n" * 500, "context_length": 100_000_000,
                "top_provider": {"max_completion_tokens": 100_000_001}},
               {"id": "ok/b", "name": "tab\there", "context_length": 0,
                "top_provider": {"context_length": 8192.0}},
               {"id": "ok/c", "context_length": True},
               {"id": "ok/d", "context_length": "8192"},
               {"id": "ok/e", "context_length": -1, "pricing": {"prompt": 1e-06}},
               # JSON numbers parse exactly (json.dumps writes NaN and 3e-07 as such).
               {"id": "ok/f", "context_length": float("nan"),
                "pricing": {"prompt": 3e-07, "completion": 1.5e-06}},
               {"id": "x" * 201}, {"id": "has space"}, {"id": ""}, {"id": "ünï"}, {"id": 7},
               {"id": "ok/a"}, "not-an-object"]
    serve(fake, {"data": entries})
    result = listing(fake, "openrouter")
    models = by_id(result)
    assert list(models) == ["ok/a", "ok/b", "ok/c", "ok/d", "ok/e", "ok/f"] and result.dropped == 7
    a = models["ok/a"]
    assert (a.name, a.context_length, a.max_output_tokens) == ("n" * 200, 100_000_000, None)
    assert (models["ok/b"].name, models["ok/b"].context_length) == ("tabhere", 8192)
    assert [models[k].context_length for k in ("ok/c", "ok/d", "ok/e", "ok/f")] == [None] * 4
    assert models["ok/e"].prices is None  # no completion price: not priced at all
    assert models["ok/f"].prices == {"input": "0.3", "output": "1.5"}


def test_catalog_scale(fake):
    fake.models = fake.models + synthetic_models(10_000 - len(fake.models))
    started = time.monotonic()
    result = listing(fake, "openrouter")
    assert len({m.native_id for m in result.models}) == 10_000 and result.dropped == 0
    assert all(m.context_length for m in result.models)
    assert [m.native_id for m in result.models if m.prices is None] == ["openrouter/auto"]
    assert time.monotonic() - started < 10
    serve(fake, {"data": [{"id": f"m/{i}"} for i in range(ml.MAX_MODELS + 1)]})
    with pytest.raises(ListingError, match="more than"):
        listing(fake, "openai")


@pytest.mark.parametrize(("pricing", "expected"), [
    ({"prompt": "0.000001", "completion": "0.000002", "internal_reasoning": "0",
      "input_cache_read": "0"}, {"input": "1", "output": "2"}),
    ({"prompt": "0.000001", "completion": "0.000002", "internal_reasoning": "0.000004"},
     {"input": "1", "output": "2", "reasoning": "4"}),
    ({"prompt": "0.000001"}, None),
    ({"prompt": "0.000001", "completion": "0.000002", "input_cache_read": "-1"}, None),
    ({"prompt": "0.000001", "completion": "free"}, None),
    ({"prompt": "0.02", "completion": "0.000002"}, None),  # $20,000/M: above the domain's max
])
def test_price_sets(fake, pricing, expected):
    serve(fake, {"data": [{"id": "p/m", "pricing": pricing}]})
    assert listing(fake, "openrouter").models[0].prices == expected


@pytest.mark.parametrize(("per_token", "expected"), [
    ("0.000003", "3"), ("0.0000000000001", "0.000001"), ("0.00000000000100000001", "0.000002"),
    ("1e-7", "0.1"), ("0", "0"), ("-0", "0"), ("0." + "0" * 30, "0"), ("0.01", "10000"), (0, "0"),
    ("-1", None), ("-0.000001", None), ("abc", None), (" 1", None), ("NaN", None), (True, None),
    ("1e-999", "0.000001"), (3e-06, None), (None, None), (Decimal("3E-7"), "0.3")])
def test_per_million_examples(per_token, expected):
    assert per_million(per_token) == expected


@settings(max_examples=400, deadline=None, database=None)
@given(digits=st.integers(0, 10**15), places=st.integers(0, 40))
def test_per_million_is_exact_and_rounds_up(digits, places):
    text = str(digits).rjust(places + 1, "0")
    text = f"{text[:-places]}.{text[-places:]}" if places else text
    result = per_million(text)
    if digits * 10**6 > 10_000 * 10**places:
        assert result is None
        return
    micros = -(-digits * 10**12 // 10**places)  # ceil(p * 10^6 * 10^6), integers only
    assert isinstance(result, str) and "e" not in result.lower()
    assert len(result.partition(".")[2]) <= 6 and Decimal(result) * 10**6 == micros


def test_dialect_for_saved_providers():
    assert ml.dialect_for("anthropic", "https://api.anthropic.com/v1") == "anthropic"
    assert ml.dialect_for("openai", "https://api.openai.com/v1") == "openai"
    assert ml.dialect_for("openai-compatible", "https://openrouter.ai/api/v1") == "openrouter"
    assert ml.dialect_for("openai-compatible", "https://evil.com/openrouter.ai") == "openai"
    assert ml.dialect_for("google", "https://us-central1-aiplatform.googleapis.com") is None


def test_hf_enrichment(fake):
    info = hf(fake, "meta-llama/Llama-3.3-70B-Instruct")
    assert info == {"id": "meta-llama/Llama-3.3-70B-Instruct", "downloads": 562_113, "likes": 2_468,
                    "parameters": 70_553_706_496, "pipeline_tag": "text-generation",
                    "author": "meta-llama", "license": "llama3.3"}
    fake.hf_models["org/tagged"] = {"id": "org/tagged", "downloads": -3, "likes": True,
                                    "safetensors": {"total": 10**20}, "tags": ["license:mit"]}
    tagged = hf(fake, "org/tagged")  # out-of-bounds numbers dropped; licence from the tags
    assert tagged.pop("license") == "mit" and set(tagged.values()) == {"org/tagged", None}
    assert hf(fake, "missing/model") is None  # 404


@pytest.mark.parametrize("fault", [
    ListingFault(status=503), ListingFault(hang_s=3), ListingFault(body=b"{oops"),
    ListingFault(body=b"[]"), ListingFault(redirect_to="http://169.254.169.254/"),
    ListingFault(huge_bytes=6 << 20)])
def test_hf_down_gives_none(fake, fault):
    fake.script(fault)
    started = time.monotonic()
    assert hf(fake, "meta-llama/Llama-3.3-70B-Instruct", timeout_s=0.5) is None
    assert time.monotonic() - started < 3


def test_hf_bad_ids_and_urls_send_nothing(fake):
    for bad in ("../../admin", "a/b/c", "", "x" * 300, "a b/c"):
        assert hf(fake, bad) is None
    # Checked like a provider's: plain http to loopback is refused before connecting.
    assert hf(fake, "meta-llama/Llama-3.3-70B-Instruct", private=False) is None
    assert fake.requests == []
