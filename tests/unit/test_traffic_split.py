"""domain.traffic_split: route validation and weighted, sticky target choice (2.12)."""

import os
import random
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import DomainError
from domain.traffic_split import SplitTarget, choose_target, parse_route


def route(*weights, name="ab-test"):
    return parse_route(name, [{"model": f"org/model-{i}", "weight": w}
                              for i, w in enumerate(weights)])


def shares(picks):
    counts = Counter(t.target for t in picks)
    return {k: 100 * v / len(picks) for k, v in counts.items()}


# --- validation -------------------------------------------------------------------------------

def test_a_valid_route_is_normalised():
    r = parse_route("My-Route", [{"model": "Meta-Llama/Llama-3.3-70B-Instruct@Together",
                                  "weight": 70},
                                 {"model": "deepseek/deepseek-r1:free", "weight": 30}])
    assert r.name == "my-route"
    assert r.targets == (SplitTarget("meta-llama/llama-3.3-70b-instruct", "together", 70),
                         SplitTarget("deepseek/deepseek-r1:free", None, 30))
    assert r.targets[0].target == "meta-llama/llama-3.3-70b-instruct@together"
    assert parse_route(r.name, r.to_json()) == r


def test_weights_summing_to_90_are_refused():
    with pytest.raises(DomainError) as err:
        route(60, 30)
    assert err.value.code == "invalid_request" and err.value.param == "targets"
    assert "100" in err.value.message


@pytest.mark.parametrize("weights", [(100,), (10,) * 11, ()])
def test_target_count_bounds(weights):
    with pytest.raises(DomainError):
        route(*weights)


def test_ten_targets_and_a_custom_bound():
    assert len(route(*(10,) * 10).targets) == 10
    with pytest.raises(DomainError):
        parse_route("r", [{"model": f"o/m{i}", "weight": 25} for i in range(4)], max_targets=3)


@pytest.mark.parametrize("bad", [0, 101, -5, True, 70.0, "70", None])
def test_bad_weights(bad):
    with pytest.raises(DomainError) as err:
        parse_route("r", [{"model": "o/a", "weight": bad}, {"model": "o/b", "weight": 30}])
    assert err.value.param == "targets[0].weight"


@pytest.mark.parametrize("bad", ["gpt-4o", "o/a@", "o/a@x", "@together", "/a", "o/a b", 5,
                                 "route:other", "o/a@to_gether", "x" * 300])
def test_bad_targets(bad):
    with pytest.raises(DomainError) as err:
        parse_route("r", [{"model": bad, "weight": 70}, {"model": "o/b", "weight": 30}])
    assert err.value.param == "targets[0].model"


@pytest.mark.parametrize(("name", "targets"), [
    ("", [{"model": "o/a", "weight": 50}, {"model": "o/b", "weight": 50}]),
    ("bad name", [{"model": "o/a", "weight": 50}, {"model": "o/b", "weight": 50}]),
    (None, [{"model": "o/a", "weight": 50}, {"model": "o/b", "weight": 50}]),
    ("r", {"o/a": 50, "o/b": 50}),
    ("r", [{"model": "o/a", "weight": 50}, ["o/b", 50]]),
    ("r", [{"model": "o/a", "weight": 50}, {"model": "o/b", "weight": 50, "extra": 1}]),
    ("r", [{"model": "o/a", "weight": 50}, {"model": "O/A", "weight": 50}]),
])
def test_bad_definitions(name, targets):
    with pytest.raises(DomainError):
        parse_route(name, targets)


def test_same_model_on_two_providers_is_two_targets():
    r = parse_route("r", [{"model": "o/a@together", "weight": 50},
                          {"model": "o/a@fireworks", "weight": 50}])
    assert [t.provider for t in r.targets] == ["together", "fireworks"]


# --- random choice ----------------------------------------------------------------------------

def test_70_30_over_1000_requests_within_5_points():
    rng = random.Random(1)
    r = route(70, 30)
    observed = shares([choose_target(r, user=None, rng=rng) for _ in range(1000)])
    assert abs(observed["org/model-0"] - 70) <= 5


def test_70_30_over_10000_requests_within_2_percent():
    rng = random.Random(2)
    r = route(70, 30)
    observed = shares([choose_target(r, user=None, rng=rng) for _ in range(10_000)])
    # 2% of the 70% share (1.4 points); the 30% share is off by the same amount.
    assert abs(observed["org/model-0"] - 70) <= 70 * 0.02


def test_empty_user_is_random_per_request():
    r = route(50, 50)
    picks = {choose_target(r, user="", rng=random.Random(s)).target for s in range(50)}
    assert len(picks) == 2


def test_unavailable_targets_are_skipped_and_weights_renormalised():
    rng = random.Random(3)
    r = route(50, 30, 20)
    picks = [choose_target(r, user=None, rng=rng, unavailable={"org/model-0"})
             for _ in range(10_000)]
    observed = shares(picks)
    assert "org/model-0" not in observed
    assert abs(observed["org/model-1"] - 60) <= 2 and abs(observed["org/model-2"] - 40) <= 2


def test_every_target_unavailable_gives_none():
    r = route(50, 50)
    everything = {t.target for t in r.targets}
    assert choose_target(r, user=None, rng=random.Random(), unavailable=everything) is None
    assert choose_target(r, user="u", rng=random.Random(), unavailable=everything) is None


# --- sticky choice ----------------------------------------------------------------------------

def test_same_user_same_target_while_healthy():
    r = route(70, 30)
    for user in (f"user-{i}" for i in range(200)):
        first = choose_target(r, user=user, rng=random.Random(0))
        assert all(choose_target(r, user=user, rng=random.Random(s)) == first
                   for s in range(1, 10))


def test_sticky_users_spread_by_weight():
    r = route(70, 30)
    observed = shares([choose_target(r, user=f"u{i}", rng=random.Random(0))
                       for i in range(10_000)])
    assert abs(observed["org/model-0"] - 70) <= 2


def test_a_user_keeps_a_healthy_target_when_another_fails():
    r = route(40, 30, 30)
    for i in range(1000):
        before = choose_target(r, user=f"u{i}", rng=random.Random(0))
        after = choose_target(r, user=f"u{i}", rng=random.Random(0),
                              unavailable={"org/model-2"})
        assert after.target != "org/model-2"
        if before.target != "org/model-2":
            assert after == before


def test_stickiness_does_not_depend_on_the_process_hash_seed():
    code = ("import random; from domain.traffic_split import parse_route, choose_target; "
            "r = parse_route('ab', [{'model': 'o/a', 'weight': 50}, {'model': 'o/b', 'weight': 50}]);"
            "print(''.join(choose_target(r, user=f'u{i}', rng=random.Random()).target[-1]"
            " for i in range(64)))")
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        outputs.add(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                   capture_output=True, text=True, cwd=os.getcwd()).stdout)
    assert len(outputs) == 1


def test_route_name_is_part_of_the_sticky_hash():
    a, b = route(50, 50, name="first"), route(50, 50, name="second")
    differing = sum(choose_target(a, user=f"u{i}", rng=random.Random()).target
                    != choose_target(b, user=f"u{i}", rng=random.Random()).target
                    for i in range(200))
    assert 50 < differing < 150


# Weights summing to 100: the gaps between 1 to 9 distinct cut points in 1..99.
_weights = st.sets(st.integers(1, 99), min_size=1, max_size=9).map(
    lambda cuts: [b - a for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), 100], strict=True)])


@settings(max_examples=200, deadline=None)
@given(_weights, st.text(max_size=20), st.integers(0, 2**32), st.sets(st.integers(0, 9)))
def test_choice_is_always_an_available_target(weights, user, seed, down):
    r = route(*weights)
    unavailable = {f"org/model-{i}" for i in down}
    picked = choose_target(r, user=user or None, rng=random.Random(seed), unavailable=unavailable)
    live = [t for t in r.targets if t.target not in unavailable]
    assert (picked is None) == (not live)
    assert picked is None or picked in live
