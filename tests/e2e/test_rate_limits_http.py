"""Rate limits over real HTTP (1.9, 1.10, 1.12): header families on every limited reply,
429s with Retry-After and scope, concurrency, layer 1 before any key lookup, and the token
windows fed by settlement. The limiter's arithmetic and Redis behaviour are proven in
tests/unit/test_rate_limit_*.py and tests/integration/test_rate_limit_redis.py."""

from __future__ import annotations

import threading
import time

import httpx
from fakes.openai_behaviour import Behaviour

from domain.key_format import generate_api_key
from e2e.support import chat_body, customer, post_chat

FAMILIES = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset",
            "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
            "x-ratelimit-reset-requests", "x-ratelimit-limit-tokens",
            "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens",
            "ratelimit-policy", "ratelimit")


def balance(served, key: str) -> httpx.Response:
    return served.http.get("/v1/account/balance", headers={"Authorization": f"Bearer {key}"})


def test_a_200_and_a_429_both_carry_every_header_family(served):
    buyer = customer(served, rate_limits={"requests_per_minute": 2, "burst": 2})

    answers = [balance(served, buyer.key) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    for answer in answers:
        missing = [name for name in FAMILIES if name not in answer.headers]
        assert not missing, (answer.status_code, missing)
    refused = answers[2]
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert refused.headers["x-gatewayz-ratelimit-scope"] == "key"
    # 2 per minute: the next cell frees 30 s after the first; Retry-After within 1 s of it.
    assert 28 <= int(refused.headers["retry-after"]) <= 31
    assert refused.headers["x-ratelimit-limit-requests"] == "2"
    assert '"minute";q=2;w=60' in refused.headers["ratelimit-policy"]


def test_the_concurrency_limit_refuses_the_request_over_it_until_one_ends(priced, fake_openai):
    buyer = customer(priced, rate_limits={"concurrency": 1})
    fake_openai.script(Behaviour(chunk_interval=0.2))
    first: dict = {}

    def slow() -> None:
        first["answer"] = post_chat(priced, buyer.key, chat_body(stream=True))

    worker = threading.Thread(target=slow)
    worker.start()
    time.sleep(0.3)  # the stream is under way
    second = post_chat(priced, buyer.key, chat_body())
    worker.join(timeout=30)

    assert second.status_code == 429, second.text
    assert second.json()["error"]["code"] == "concurrency_limit_exceeded"
    assert first["answer"].status_code == 200
    assert post_chat(priced, buyer.key, chat_body()).status_code == 200  # its slot is free


def test_an_ip_over_its_budget_is_refused_without_lookups_yet_a_valid_key_is_served(served):
    gw = served.gateway
    buyer = customer(served)
    for _ in range(300):  # 300 unauthenticated requests: the minute's budget
        assert balance(served, "not-a-key").status_code == 401

    refused = balance(served, "not-a-key")
    anonymous = served.http.get("/v1/account/balance")
    lookups = gw.access.lookups
    unknown = generate_api_key("live")  # well formed: still authenticated, then remembered
    repeats = [balance(served, unknown).status_code for _ in range(200)]
    served_anyway = balance(served, buyer.key)

    for answer in (refused, anonymous):
        assert answer.status_code == 429
        assert answer.json()["error"]["code"] == "rate_limit_exceeded"
        assert answer.headers["x-gatewayz-ratelimit-scope"] == "ip"
        assert int(answer.headers["retry-after"]) >= 1
    assert set(repeats) == {401}
    assert gw.access.lookups - lookups <= 2  # the unknown key once; the valid key once
    assert served_anyway.status_code == 200


def test_settled_tokens_count_toward_the_key_token_window(priced):
    buyer = customer(priced, rate_limits={"tokens_per_minute": 5})

    first = post_chat(priced, buyer.key, chat_body("one two three four five six"))
    time.sleep(0.3)  # tokens are counted when the request settles, off the hot path
    second = post_chat(priced, buyer.key, chat_body())

    assert first.status_code == 200
    assert int(first.headers["x-ratelimit-remaining-tokens"]) == 5  # before it was counted
    assert second.status_code == 429, second.text
    assert second.json()["error"]["code"] == "rate_limit_exceeded"
    assert second.headers["x-ratelimit-remaining-tokens"] == "0"


def test_a_key_holder_cannot_raise_its_limits_above_the_plan(served):
    buyer = customer(served)
    answer = served.http.patch(f"/v1/keys/{buyer.key_id}",
                               headers={"Authorization": f"Bearer {buyer.key}"},
                               json={"rate_limits": {"requests_per_minute": 251}})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == "rate_limits.requests_per_minute"
    lowered = served.http.patch(f"/v1/keys/{buyer.key_id}",
                                headers={"Authorization": f"Bearer {buyer.key}"},
                                json={"rate_limits": {"requests_per_minute": 100}})
    assert lowered.status_code == 200, lowered.text
    assert balance(served, buyer.key).headers["x-ratelimit-limit-requests"] == "100"


def test_a_team_plan_key_runs_at_three_times_the_default(served):
    account_id = served.open_account(plan="team")
    key = served.issue_key(account_id)["key"]
    answer = balance(served, key)
    assert answer.headers["x-ratelimit-limit-requests"] == "750"


def test_retries_with_one_idempotency_key_are_counted_once(priced):
    buyer = customer(priced, rate_limits={"requests_per_minute": 2, "burst": 2})
    headers = {"Idempotency-Key": "retry-me"}

    first = post_chat(priced, buyer.key, chat_body(), headers=headers)
    replays = [post_chat(priced, buyer.key, chat_body(), headers=headers) for _ in range(3)]
    fresh = post_chat(priced, buyer.key, chat_body())
    over = post_chat(priced, buyer.key, chat_body())

    assert first.status_code == 200
    assert [r.status_code for r in replays] == [200, 200, 200]
    assert all(r.json()["id"] == first.json()["id"] for r in replays)
    assert fresh.status_code == 200  # the second request of the burst of 2
    assert over.status_code == 429


def test_a_disallowed_model_is_refused_before_the_rate_limit_is_touched(priced):
    buyer = customer(priced, allowed_models=["openai/*"],
                     rate_limits={"requests_per_minute": 1, "burst": 1})

    answers = [post_chat(priced, buyer.key, chat_body()) for _ in range(3)]

    # 1.2: the model allowlist (check 7) comes before the rate limits (check 8).
    assert [a.json()["error"]["code"] for a in answers] == ["model_not_allowed"] * 3
    assert balance(priced, buyer.key).status_code == 200  # the one request is still there


def test_a_key_reads_its_limits_and_what_is_left_in_each_window(served):
    buyer = customer(served, rate_limits={"requests_per_hour": 40})
    headers = {"Authorization": f"Bearer {buyer.key}"}
    balance(served, buyer.key)

    view = served.http.get("/v1/limits", headers=headers).json()

    assert view["object"] == "rate_limits" and view["profile"] == "default"
    assert view["limits"]["requests_per_minute"] == 250
    assert view["limits"]["requests_per_hour"] == 40
    windows = {(w["window"], w["unit"]): w for w in view["windows"]}
    assert windows[("hour", "requests")]["remaining"] == 38  # this call and the one before
    assert windows[("day", "tokens")]["limit"] == 1_000_000
    assert 0 <= windows[("day", "requests")]["reset_seconds"] <= 86_400


def test_requests_refused_by_the_ip_limit_are_counted_as_failed_authentications(served):
    gw = served.gateway
    for _ in range(305):  # 300 answered 401, then 5 refused by layer 1 before any lookup
        balance(served, "not-a-key")

    gw.security.flush(everything=True)
    assert gw.security.wait_idle()
    assert gw.projector.wait_for("access", gw.stores.access.recorder.max_notification_id())
    events = served.admin("GET", "/audit/security-events",
                          params={"kind": "authentication_failed", "limit": 1000}).json()
    malformed = [e for e in events["data"] if e["reason"] == "malformed"]
    assert sum(e["count"] for e in malformed) == 305
    assert len(malformed) <= 4  # aggregated per address and minute, never one per call
