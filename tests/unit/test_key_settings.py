"""domain.key_settings and the ApiKey settings/expiry verbs: PATCH validation, normal forms
and the {field, old, new} change list (spec 1.1, 1.3, 1.6, 1.7, 11.4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import key_settings
from domain.api_key import ApiKey
from domain.errors import DomainError

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SCOPES = ("inference:use", "models:read", "keys:read")


def patch(body, ceiling=None, is_admin=False):
    return key_settings.validate_patch(body, now=NOW, allowed_scopes=SCOPES, ceiling=ceiling,
                                       is_admin=is_admin)


def refused(body, **kwargs) -> DomainError:
    with pytest.raises(DomainError) as error:
        patch(body, **kwargs)
    return error.value


def key(expires_at=None) -> ApiKey:
    return ApiKey(key_id="key_1", account_id="acct_1", name="ci", environment="live",
                  prefix="gw_live_abcd", last4="wxyz", secret_hash="h", scopes=["*"],
                  expires_at=expires_at, max_requests=None, allowed_models=[],
                  created_by="staff:test")


# -- fields that may not be written ----------------------------------------------------------
@pytest.mark.parametrize("field", ["account_id", "hash", "secret_hash", "requests_used",
                                   "prefix", "last4", "created_by", "environment", "id", "key"])
def test_a_read_only_field_is_refused_naming_it(field):
    error = refused({"name": "fine", field: "x"})
    assert (error.code, error.param) == ("invalid_request", field)
    assert field in error.message


def test_an_unknown_field_is_refused_naming_it():
    error = refused({"nmae": "typo"})
    assert (error.code, error.param) == ("invalid_request", "nmae")


def test_a_setting_not_built_yet_is_refused_as_such():
    error = refused({"budgets": {"daily_micros": 1}})
    assert (error.code, error.param) == ("invalid_request", "budgets")
    assert "not support" in error.message


@pytest.mark.parametrize("body", [None, [], "name=x", 3])
def test_a_body_that_is_not_an_object_is_refused(body):
    assert refused(body).code == "invalid_request"


def test_an_empty_body_changes_nothing():
    assert patch({}) == {}


# -- each setting -----------------------------------------------------------------------------
def test_name_is_stripped_and_bounded():
    assert patch({"name": "  Prod  "}) == {"name": "Prod"}
    assert patch({"name": "x" * 64})["name"] == "x" * 64
    for bad in ("", "   ", "x" * 65, 7, None):
        assert refused({"name": bad}).param == "name"


def test_scopes_are_checked_against_the_allowed_set():
    assert patch({"scopes": ["models:read", "models:read", "*"]}) == \
        {"scopes": ["models:read", "*"]}
    assert refused({"scopes": ["billing:write"]}).code == "insufficient_scope"
    for bad in ([], "models:read", [1]):
        assert refused({"scopes": bad}).code == "invalid_request"


def test_expires_at_is_rfc3339_future_and_at_most_ten_years_ahead():
    assert patch({"expires_at": "2027-01-01T00:00:00Z"}) == \
        {"expires_at": "2027-01-01T00:00:00+00:00"}
    assert patch({"expires_at": "2027-01-01T02:00:00+02:00"})["expires_at"] == \
        "2027-01-01T00:00:00+00:00"
    assert patch({"expires_at": None}) == {"expires_at": None}
    assert patch({"expires_at": "2036-12-01T12:00:00Z"})["expires_at"].startswith("2036")
    for bad in ("2036-12-01T12:00:01Z", "2026-12-01T12:00:00Z", "2027-01-01T00:00:00",
                "2027-01-01", "tomorrow", 1767225600):
        assert refused({"expires_at": bad}).param == "expires_at", bad


def test_expires_in_days_becomes_expires_at():
    assert patch({"expires_in_days": 1}) == {"expires_at": (NOW + timedelta(days=1)).isoformat()}
    assert patch({"expires_in_days": 3650})["expires_at"].startswith("2036-11-28")
    for bad in (0, 3651, True, "3", 1.5):
        assert refused({"expires_in_days": bad}).param == "expires_in_days"
    both = refused({"expires_in_days": 3, "expires_at": "2027-01-01T00:00:00Z"})
    assert both.code == "invalid_request"


def test_max_requests_is_a_bounded_integer_or_null():
    assert patch({"max_requests": 1}) == {"max_requests": 1}
    assert patch({"max_requests": 1_000_000_000}) == {"max_requests": 1_000_000_000}
    assert patch({"max_requests": None}) == {"max_requests": None}
    for bad in (0, 1_000_000_001, True, "5", 2.0):
        assert refused({"max_requests": bad}).param == "max_requests"


def test_the_spec_ip_allowlist_is_kept_in_normal_form():
    body = {"ip_allowlist": ["192.168.1.1", "10.0.0.0/24", "2001:db8::/32", " 10.0.0.0/24",
                             "::ffff:10.0.0.5", "2001:DB8:0::1/128"]}
    assert patch(body) == {"ip_allowlist": ["192.168.1.1", "10.0.0.0/24", "2001:db8::/32",
                                            "10.0.0.5", "2001:db8::1"]}


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "10.0.0.7/24", "300.1.1.1", "example.com",
                                   "", 17, None])
def test_a_bad_ip_entry_is_refused_naming_it(entry):
    error = refused({"ip_allowlist": ["10.0.0.0/24", entry]})
    assert error.code == "invalid_ip_allowlist"
    assert repr(entry) in error.message
    assert error.details == {"entry": entry}


def test_ip_allowlist_holds_at_most_100_entries():
    entries = [f"10.0.{i}.0/24" for i in range(100)]
    assert len(patch({"ip_allowlist": entries})["ip_allowlist"]) == 100
    assert refused({"ip_allowlist": entries + ["10.1.0.0/24"]}).param == "ip_allowlist"
    assert refused({"ip_allowlist": "10.0.0.1"}).param == "ip_allowlist"


def test_referrer_entries_are_idna_lower_case_hosts_or_wildcards():
    body = {"referrer_allowlist": ["App.Example.COM", "*.Bücher.example", "example.com.",
                                   "127.0.0.1", "app.example.com"]}
    assert patch(body) == {"referrer_allowlist": ["app.example.com", "*.xn--bcher-kva.example",
                                                  "example.com", "127.0.0.1"]}


@pytest.mark.parametrize("entry", ["https://app.example.com", "app.example.com:443",
                                   "app.example.com/x", "*.com", "*", "a.*.example.com",
                                   "-bad.example.com", "exa mple.com", "*.10.0.0.1", "", 5])
def test_a_bad_referrer_entry_is_refused_naming_it(entry):
    error = refused({"referrer_allowlist": [entry]})
    assert error.code == "invalid_referrer_allowlist"
    assert repr(entry) in error.message


def test_referrer_allowlist_holds_at_most_50_entries():
    entries = [f"h{i}.example.com" for i in range(51)]
    assert refused({"referrer_allowlist": entries}).param == "referrer_allowlist"


def test_allowed_models_are_bounded_globs():
    assert patch({"allowed_models": ["openai/*", "anthropic/claude-?", "openai/*"]}) == \
        {"allowed_models": ["openai/*", "anthropic/claude-?"]}
    for bad in (["[ab]/x"], [""], ["x" * 257], ["a b"], [3], "openai/*",
                [f"m{i}" for i in range(51)]):
        assert refused({"allowed_models": bad}).param == "allowed_models"


def test_labels_are_an_object_and_key_value_strings_are_accepted():
    assert patch({"labels": ["team=search", "env=", "url=a=b"]}) == \
        {"labels": {"env": "", "team": "search", "url": "a=b"}}
    assert patch({"labels": {"team": "search"}}) == {"labels": {"team": "search"}}
    for bad in (["novalue"], ["a=1", "a=2"], {"": "x"}, {"k" * 65: "x"}, {"k": "v" * 65},
                {"k": 1}, {"bad key": "x"}, {f"k{i}": "v" for i in range(11)}, "a=b"):
        assert refused({"labels": bad}).param == "labels", bad


def test_rate_limits_may_only_lower_the_plan_unless_an_admin_sets_them():
    plan = {"requests_per_minute": 60, "tokens_per_day": 1_000_000}
    assert patch({"rate_limits": {"requests_per_minute": 30, "burst": 5}}, ceiling=plan) == \
        {"rate_limits": {"burst": 5, "requests_per_minute": 30}}
    above = {"rate_limits": {"requests_per_minute": 61}}
    assert refused(above, ceiling=plan).param == "rate_limits.requests_per_minute"
    assert patch(above, ceiling=plan, is_admin=True) == above
    assert patch({"rate_limits": {"concurrency": None}}) == {"rate_limits": {}}
    for bad in ({"per_second": 1}, {"burst": 0}, {"burst": True}, {"burst": "5"}, []):
        assert refused({"rate_limits": bad}).code == "invalid_request", bad


# -- change list ------------------------------------------------------------------------------
def test_the_change_list_names_old_and_new_and_omits_unchanged_fields():
    current = {"name": "ci", "scopes": ["*"], "ip_allowlist": []}
    new = {"name": "ci", "scopes": ["models:read"], "ip_allowlist": ["10.0.0.0/24"]}
    assert key_settings.changes(current, new) == [
        {"field": "scopes", "old": ["*"], "new": ["models:read"]},
        {"field": "ip_allowlist", "old": [], "new": ["10.0.0.0/24"]}]


settings_values = st.fixed_dictionaries({}, optional={
    "name": st.sampled_from(["a", "b"]), "max_requests": st.sampled_from([None, 1, 2]),
    "labels": st.sampled_from([{}, {"a": "1"}]), "scopes": st.sampled_from([["*"], ["x"]])})


@given(settings_values, settings_values)
def test_applying_the_changes_gives_the_new_values_and_each_entry_is_a_real_change(cur, new):
    listed = key_settings.changes(cur, new)
    after = dict(cur)
    for change in listed:
        assert change["old"] != change["new"]
        assert change["old"] == cur.get(change["field"])
        after[change["field"]] = change["new"]
    assert all(after.get(field) == value for field, value in new.items())
    assert key_settings.changes(after, new) == []


@given(st.lists(st.sampled_from(["10.0.0.0/24", "::ffff:1.2.3.4", "2001:db8::/32",
                                 "8.8.8.8"]), max_size=6))
def test_normal_forms_are_fixed_points(entries):
    once = patch({"ip_allowlist": entries})
    assert patch(once) == once


# -- the aggregate's verbs --------------------------------------------------------------------
def test_update_records_one_event_with_the_changes_and_none_when_empty():
    k = key()
    k.collect_events()
    assert not k.update([], "usr_1")
    assert k.collect_events() == []
    assert k.update([{"field": "name", "old": "ci", "new": "prod"}], "usr_1", NOW)
    (event,) = k.collect_events()
    assert isinstance(event, ApiKey.SettingsChanged)
    assert event.changes == [{"field": "name", "old": "ci", "new": "prod"}]
    assert k.settings["name"] == "prod"


def test_a_revoked_or_expired_key_cannot_be_updated():
    revoked = key()
    revoked.revoke("leaked", "usr_1")
    with pytest.raises(DomainError) as error:
        revoked.update([], "usr_1")
    assert error.value.code == "api_key_revoked"
    expired = key(expires_at=(NOW - timedelta(seconds=1)).isoformat())
    with pytest.raises(DomainError) as error:
        expired.update([{"field": "name", "old": "ci", "new": "x"}], "usr_1", NOW)
    assert error.value.code == "api_key_expired"


def test_expire_records_once_and_only_when_due_and_not_revoked():
    at = NOW.isoformat()
    k = key(expires_at=at)
    k.collect_events()
    assert not k.expire(NOW - timedelta(microseconds=1))
    assert k.expire(NOW)
    assert not k.expire(NOW + timedelta(days=1))
    (event,) = k.collect_events()
    assert isinstance(event, ApiKey.Expired) and event.expired_at == at
    assert not key().expire(NOW)  # no expiry at all
    revoked = key(expires_at=at)
    revoked.revoke("leaked", "usr_1")
    assert not revoked.expire(NOW)


@pytest.mark.parametrize("field", ["ip_allowlist", "referrer_allowlist"])
def test_a_refused_entry_is_echoed_at_most_100_characters(field):
    huge = "x" * 10_000
    with pytest.raises(DomainError) as error:
        key_settings.validate_patch({field: [huge]}, now=NOW, allowed_scopes=SCOPES)
    assert len(error.value.message) < 300
    assert error.value.details["entry"] == "x" * 100 + "..."
