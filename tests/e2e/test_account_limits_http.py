"""Account limits and the bypass list over real HTTP (1.9, 1.10): what an admin sets on
/admin/accounts/{id}/restricted, /rate-limits and /admin/ip-bypass is what the next request
of a key (or of a bypassed address) runs under."""

from __future__ import annotations

import httpx

from e2e.support import assert_error, customer

REASON = "limits set by an automated test"


def balance(served, key: str) -> httpx.Response:
    return served.http.get("/v1/account/balance", headers={"Authorization": f"Bearer {key}"})


def put(served, path: str, body: dict, status: int = 200) -> dict:
    answer = served.admin("PUT", path, json=body)
    assert answer.status_code == status, answer.text
    return answer.json()


def test_a_restricted_account_runs_at_5_a_minute_with_a_burst_of_3(served):
    # No request before the restriction: the key's cell-rate state is carried across a
    # profile change, so an earlier request would use part of the burst.
    buyer = customer(served)

    reply = put(served, f"/admin/accounts/{buyer.account_id}/restricted",
                {"enabled": True, "reason": REASON})
    answers = [balance(served, buyer.key) for _ in range(4)]

    assert reply == {"object": "account", "id": buyer.account_id, "restricted": True,
                     "changed": True}
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert {a.headers["x-ratelimit-limit-requests"] for a in answers} == {"5"}
    assert answers[3].json()["error"]["code"] == "rate_limit_exceeded"
    assert answers[3].headers["x-gatewayz-ratelimit-scope"] == "key"
    assert '"hour";q=20;w=3600' in answers[0].headers["ratelimit-policy"]
    again = put(served, f"/admin/accounts/{buyer.account_id}/restricted",
                {"enabled": True, "reason": REASON})
    assert again["changed"] is False

    put(served, f"/admin/accounts/{buyer.account_id}/restricted",
        {"enabled": False, "reason": REASON})
    assert balance(served, buyer.key).headers["x-ratelimit-limit-requests"] == "250"


def test_a_key_own_limits_do_not_lift_it_out_of_the_restricted_profile(served):
    buyer = customer(served, rate_limits={"requests_per_minute": 100})
    assert balance(served, buyer.key).headers["x-ratelimit-limit-requests"] == "100"

    put(served, f"/admin/accounts/{buyer.account_id}/restricted",
        {"enabled": True, "reason": REASON})

    assert balance(served, buyer.key).headers["x-ratelimit-limit-requests"] == "5"


def test_a_bad_restriction_is_a_400_naming_the_field_and_an_unknown_account_a_404(served):
    buyer = customer(served)
    path = f"/admin/accounts/{buyer.account_id}/restricted"

    short = served.admin("PUT", path, json={"enabled": True, "reason": "spam"})
    not_bool = served.admin("PUT", path, json={"enabled": "yes", "reason": REASON})
    unknown = served.admin("PUT", "/admin/accounts/acct_nobody/restricted",
                           json={"enabled": True, "reason": REASON})

    assert_error(short, 400, "invalid_request", param="reason")
    assert_error(not_bool, 400, "invalid_request", param="enabled")
    assert_error(unknown, 404, "not_found")
    assert balance(served, buyer.key).headers["x-ratelimit-limit-requests"] == "250"


def test_an_enterprise_account_runs_at_the_limits_an_admin_set(served):
    account_id = served.open_account(plan="enterprise")
    key = served.issue_key(account_id)["key"]
    assert balance(served, key).headers["x-ratelimit-limit-requests"] == "250"

    reply = put(served, f"/admin/accounts/{account_id}/rate-limits",
                {"rate_limits": {"requests_per_minute": 1000, "burst": None},
                 "reason": REASON})

    assert reply == {"object": "account", "id": account_id,
                     "rate_limits": {"requests_per_minute": 1000}, "changed": True}
    answer = balance(served, key)
    assert answer.headers["x-ratelimit-limit-requests"] == "1000"
    assert '"hour";q=1000;w=3600' in answer.headers["ratelimit-policy"]  # the default hour


def test_bad_explicit_limits_are_a_400_naming_the_field(served):
    enterprise = served.open_account(plan="enterprise")
    dev = served.open_account(plan="dev")

    unknown = served.admin("PUT", f"/admin/accounts/{enterprise}/rate-limits", json={
        "rate_limits": {"requests_per_fortnight": 5}, "reason": REASON})
    zero = served.admin("PUT", f"/admin/accounts/{enterprise}/rate-limits", json={
        "rate_limits": {"burst": 0}, "reason": REASON})
    not_enterprise = served.admin("PUT", f"/admin/accounts/{dev}/rate-limits", json={
        "rate_limits": {"burst": 500}, "reason": REASON})

    assert_error(unknown, 400, "invalid_request", param="rate_limits.requests_per_fortnight")
    assert_error(zero, 400, "invalid_request", param="rate_limits.burst")
    assert_error(not_enterprise, 409, "conflict")


def test_a_bypassed_address_is_never_limited_by_layer_1(served):
    reply = put(served, "/admin/ip-bypass", {"networks": ["127.0.0.1/32"], "reason": REASON})
    answers = [balance(served, "not-a-key").status_code for _ in range(400)]

    assert reply == {"object": "ip_bypass", "networks": ["127.0.0.1/32"], "changed": True}
    assert set(answers) == {401}

    # Cleared, the same address is counted again: the 301st is refused (the bypass did it).
    put(served, "/admin/ip-bypass", {"networks": [], "reason": REASON})
    answers = [balance(served, "not-a-key") for _ in range(301)]
    assert {a.status_code for a in answers[:300]} == {401}
    assert answers[300].status_code == 429
    assert answers[300].headers["x-gatewayz-ratelimit-scope"] == "ip"


def test_a_bad_bypass_entry_is_a_400_naming_it(served):
    answer = served.admin("PUT", "/admin/ip-bypass", json={
        "networks": ["10.0.0.0/8", "10.0.0.300/32"], "reason": REASON})

    error = assert_error(answer, 400, "invalid_request", param="networks[1]")
    assert "10.0.0.300/32" in error["message"]
    too_many = served.admin("PUT", "/admin/ip-bypass", json={
        "networks": [f"10.1.{n // 256}.{n % 256}" for n in range(1001)], "reason": REASON})
    assert_error(too_many, 400, "invalid_request", param="networks")
