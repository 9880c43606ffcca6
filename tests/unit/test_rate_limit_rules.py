"""Pure rate-limit rules (spec 1.9-1.12): GCRA bound, windows, headers, profiles, subjects."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.rate_limit_clients import (
    VelocityMonitor,
    anonymous_subject,
    in_networks,
    ip_subject,
    parse_networks,
)
from domain.rate_limit_headers import (
    Window,
    go_duration,
    rate_limit_headers,
    refusal_headers,
    retry_after_seconds,
)
from domain.rate_limits import (
    DEFAULT_PROFILE,
    LIMIT_FIELDS,
    RESTRICTED_PROFILE,
    TEAM_PROFILE,
    US,
    Gcra,
    KeyCounts,
    decide_key,
    key_verdict,
    profile_for,
    until_window_end,
    validate_limits,
    window_id,
)


def at(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp()) * US


def run(gcra: Gcra, arrivals: list[int]) -> list[int]:
    tat, admitted = None, []
    for now in arrivals:
        ok, new_tat, _ = gcra.check(tat, now)
        if ok:
            tat = new_tat
            admitted.append(now)
    return admitted


@settings(max_examples=300, deadline=None)
@given(rate=st.integers(1, 6000), burst=st.integers(1, 150),
       gaps=st.lists(st.integers(0, 3 * US), min_size=1, max_size=250))
def test_gcra_never_admits_more_than_burst_plus_rate_times_t(rate, burst, gaps):
    arrivals, now = [], 0
    for gap in gaps:
        now += gap
        arrivals.append(now)
    admitted = run(Gcra.per_minute(rate, burst), arrivals)
    # Every interval [admitted[i], admitted[j]] (integer arithmetic: no rounding slack).
    for i in range(len(admitted)):
        for j in range(i, len(admitted)):
            assert (j - i + 1 - burst) * 60 * US <= rate * (admitted[j] - admitted[i])


@given(rate=st.integers(1, 6000), burst=st.integers(1, 300))
def test_gcra_admits_the_whole_burst_at_once_then_one_per_emission(rate, burst):
    gcra = Gcra.per_minute(rate, burst)
    assert len(run(gcra, [0] * (burst + 5))) == burst
    steady = [k * gcra.emission_us for k in range(50)]
    assert len(run(gcra, steady)) == 50  # arrivals at the rate are never refused


@given(wait=st.integers(0, 10**11))
def test_retry_after_is_whole_seconds_at_least_one_within_a_second_of_the_wait(wait):
    seconds = retry_after_seconds(wait)
    assert seconds >= 1 and seconds * US >= wait  # never earlier than the true wait
    assert seconds * US - wait < US or wait == 0  # and never a second or more later


def test_gcra_refusal_waits_exactly_until_the_next_slot():
    gcra = Gcra.per_minute(5, 3)  # restricted: one per 12 s after 3
    tat = None
    for _ in range(3):
        _, tat, _ = gcra.check(tat, 0)
    ok, _, wait = gcra.check(tat, 0)
    assert not ok and wait == 12 * US
    assert not gcra.check(tat, wait - 1)[0] and gcra.check(tat, wait)[0]
    assert gcra.remaining(tat, 0) == 0 and gcra.remaining(tat, 36 * US) == 3


def test_team_profile_admits_750_requests_in_a_minute():
    gcra = Gcra.per_minute(TEAM_PROFILE.requests_per_minute, TEAM_PROFILE.burst)
    admitted = run(gcra, list(range(0, 60 * US, 10_000)))  # 100 req/s for a minute
    assert len(admitted) >= 750


def test_windows_turn_at_the_top_of_the_utc_hour_and_at_midnight():
    before, after = at(2025, 3, 1, 10, 59, 59), at(2025, 3, 1, 11, 0, 0)
    assert window_id(after, 3600) == window_id(before, 3600) + 1
    assert until_window_end(before, 3600) == US and until_window_end(after, 3600) == 3600 * US
    midnight = at(2025, 3, 2)
    assert window_id(midnight - 1, 86400) + 1 == window_id(midnight, 86400)
    assert until_window_end(midnight - US, 86400) == US
    assert until_window_end(at(2025, 3, 1, 12, 30), 60) == 60 * US


def test_hour_and_day_limits_refuse_until_the_window_turns():
    p = DEFAULT_PROFILE
    now = at(2025, 3, 1, 10, 59, 30)
    full_hour = decide_key(p, now, None, KeyCounts(hour=1000, day=1000), 0)
    assert full_hour.code == "rate_limit_exceeded" and full_hour.wait_us == 30 * US
    full_day = decide_key(p, now, None, KeyCounts(hour=1000, day=10_000), 0)
    assert full_day.wait_us == until_window_end(now, 86400)  # the longest failing wait
    assert full_day.tat_us == now  # a refusal moves nothing


def test_tokens_admit_while_below_the_limit():
    now = at(2025, 3, 1, 10, 0, 15)
    assert decide_key(DEFAULT_PROFILE, now, None, KeyCounts(tokens_minute=9_999), 0).code is None
    refused = decide_key(DEFAULT_PROFILE, now, None, KeyCounts(tokens_minute=10_000), 0)
    assert refused.code == "rate_limit_exceeded" and refused.wait_us == 45 * US
    assert decide_key(DEFAULT_PROFILE, now, None, KeyCounts(tokens_day=10**6), 0).code


def test_concurrency_is_named_only_when_it_alone_refuses():
    p = DEFAULT_PROFILE
    assert decide_key(p, 0, None, KeyCounts(), 49).code is None
    conc = decide_key(p, 0, None, KeyCounts(), 50)
    assert conc.code == "concurrency_limit_exceeded" and conc.tat_us == 0
    assert decide_key(p, 0, None, KeyCounts(hour=1000), 50).code == "rate_limit_exceeded"


def test_go_durations():
    cases = {0: "0s", 240_000: "240ms", US: "1s", 1_500_000: "1.5s", 360 * US: "6m0s",
             3600 * US: "1h0m0s", 3_723_250_000: "1h2m3.25s", 1: "1ms", 59_999_001: "1m0s"}
    for us, text in cases.items():
        assert go_duration(us) == text, us


def test_headers_carry_all_three_families_for_the_window_closest_to_exhaustion():
    req = [Window("minute", 60, 250, 12, 30 * US), Window("hour", 3600, 1000, 400, 900 * US)]
    tok = [Window("minute", 60, 10_000, 500, 20 * US, "tokens")]
    h = dict(rate_limit_headers(req, tok))
    assert (h["X-RateLimit-Limit"], h["X-RateLimit-Remaining"], h["X-RateLimit-Reset"]) == (
        "250", "12", "30")
    assert (h["x-ratelimit-limit-requests"], h["x-ratelimit-remaining-requests"],
            h["x-ratelimit-reset-requests"]) == ("250", "12", "30s")
    assert (h["x-ratelimit-remaining-tokens"], h["x-ratelimit-reset-tokens"]) == ("500", "20s")
    assert h["RateLimit-Policy"] == ('"minute";q=250;w=60, "hour";q=1000;w=3600, '
                                     '"minute-tokens";q=10000;w=60;qu="tokens"')
    assert h["RateLimit"] == '"minute";r=12;t=30'
    # The hour window binds once it has fewer left.
    req[1] = Window("hour", 3600, 1000, 3, 900 * US)
    assert dict(rate_limit_headers(req))["X-RateLimit-Reset"] == "900"


def test_key_verdicts_render_all_families_and_refusals_add_retry_after_and_scope():
    now = at(2025, 3, 1, 10, 0, 0)
    p = RESTRICTED_PROFILE
    ok = key_verdict(p, now, decide_key(p, now, None, KeyCounts(), 0), KeyCounts(hour=1, day=1))
    names = {n for n, _ in ok.headers}
    assert ok.allowed and ok.code is None and "Retry-After" not in names
    assert {"X-RateLimit-Limit", "x-ratelimit-limit-requests", "x-ratelimit-limit-tokens",
            "RateLimit-Policy", "RateLimit"} <= names
    full = decide_key(p, now, now + 36 * US, KeyCounts(hour=3, day=3), 0)
    no = key_verdict(p, now, full, KeyCounts(hour=3, day=3))
    h = dict(no.headers)
    assert not no.allowed and no.retry_after_s == 12 and h["Retry-After"] == "12"
    assert h["X-Gatewayz-RateLimit-Scope"] == "key" and names <= set(h)
    assert refusal_headers("trial", 0) == [("Retry-After", "1"),
                                          ("X-Gatewayz-RateLimit-Scope", "trial")]
    with pytest.raises(ValueError):
        refusal_headers("planet", 3)


def test_profiles_team_is_three_times_default_and_restricted_values():
    for name in LIMIT_FIELDS:
        assert getattr(TEAM_PROFILE, name) == 3 * getattr(DEFAULT_PROFILE, name)
    assert (DEFAULT_PROFILE.requests_per_minute, DEFAULT_PROFILE.burst,
            DEFAULT_PROFILE.concurrency, DEFAULT_PROFILE.tokens_per_day) == (250, 100, 50, 10**6)
    r = RESTRICTED_PROFILE
    assert (r.requests_per_minute, r.requests_per_hour, r.requests_per_day, r.tokens_per_minute,
            r.tokens_per_hour, r.tokens_per_day, r.burst, r.concurrency) == (
        5, 20, 50, 500, 2000, 5000, 3, 1)
    assert profile_for("team") == TEAM_PROFILE and profile_for("dev") == DEFAULT_PROFILE
    assert profile_for("trial") == DEFAULT_PROFILE
    assert profile_for("team", restricted=True) == RESTRICTED_PROFILE
    ent = profile_for("enterprise", explicit={"requests_per_minute": 5000, "burst": 800})
    assert (ent.requests_per_minute, ent.burst, ent.requests_per_hour) == (5000, 800, 1000)


@given(st.dictionaries(st.sampled_from(LIMIT_FIELDS), st.integers(1, 10**7)))
def test_a_keys_own_limits_only_lower_the_plan(key_limits):
    for plan in ("dev", "team"):
        base, mine = profile_for(plan), profile_for(plan, key_limits=key_limits)
        for name in LIMIT_FIELDS:
            expected = min(key_limits.get(name, getattr(base, name)), getattr(base, name))
            assert getattr(mine, name) == expected
    admin = profile_for("dev", key_limits=key_limits, key_limits_admin_set=True)
    assert all(getattr(admin, n) == v for n, v in key_limits.items())


def test_limit_validation_and_worker_division():
    for bad in ({"requests_per_minute": 0}, {"nope": 5}, {"burst": True}, {"burst": 2.5}):
        with pytest.raises(ValueError):
            validate_limits(bad)
    quarter = DEFAULT_PROFILE.divided(4)
    assert (quarter.requests_per_minute, quarter.burst, quarter.concurrency) == (62, 25, 12)
    assert RESTRICTED_PROFILE.divided(4).concurrency == 1  # never 0


def test_client_subjects_and_networks():
    assert ip_subject("::ffff:203.0.113.9") == "203.0.113.9" == anonymous_subject("203.0.113.9")
    assert anonymous_subject("2001:db8:1:2:aaaa::1") == anonymous_subject("2001:db8:1:2::ffff")
    assert anonymous_subject("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert anonymous_subject("2001:db8:1:3::1") != anonymous_subject("2001:db8:1:2::1")
    assert ip_subject("2001:db8:1:2::1") != ip_subject("2001:db8:1:2::2")
    nets = parse_networks(["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"])
    assert in_networks("10.1.2.3", nets) and in_networks("::ffff:10.0.0.1", nets)
    assert in_networks("192.0.2.7", nets) and not in_networks("192.0.2.8", nets)
    assert in_networks("2001:db8:5::1", nets) and not in_networks("not-an-ip", nets)
    with pytest.raises(ValueError):
        parse_networks(["10.0.0.0/33"])


def test_velocity_mode_needs_a_quarter_5xx_of_at_least_100_and_lasts_180_s():
    v = VelocityMonitor()
    for i in range(99):
        v.note(500 if i % 2 else 200, 1000.0)
    assert not v.active(1000.0)  # half failing, but fewer than 100 responses
    v = VelocityMonitor()
    for i in range(100):
        v.note(429 if i % 2 else 404, 1000.0)  # 4xx never count
    assert not v.active(1000.0)
    for i in range(100):
        v.note(503 if i < 50 else 200, 1010.0)  # 50 of 200 = 25%
    assert v.active(1010.0) and v.active(1189.9) and not v.active(1190.0)
    v = VelocityMonitor()
    for i in range(100):
        v.note(500 if i < 25 else 200, 1000.0 + i * 0.9)  # spread over 90 s
    assert not v.active(1090.0)  # the first errors left the 60 s window
