"""Account limits and the bypass list over every event-store backend (1.9, 1.10, 11.4): each
command records one event with the old and new values (none when nothing changes or the
input is bad), its read model follows, and a key carries its account's profile at once."""

from __future__ import annotations

import json

import pytest

from domain.account import Account
from domain.config import IP_BYPASS, MAX_BYPASS_ENTRIES, Config
from domain.errors import DomainError
from integration.support import stream_events
from projections.config import ConfigQueries
from projections.rebuild import live_limits, project_into, scratch_database

REASON = "abuse report #1234, spec 1.10"
ACTOR = "staff:usr_limits-admin"


@pytest.fixture
def effects(gateway):
    """The side-effect flags of every projected batch, in order (the projector is running)."""
    seen: list[tuple[str, bool, bool]] = []
    original = gateway.projector.after_commit

    def spy(cur, batch):
        seen.append((batch.context, batch.access_changed, batch.config_changed))
        return original(cur, batch)

    gateway.projector.after_commit = spy
    return seen


def open_with_key(gateway, plan: str = "dev") -> tuple[str, str]:
    account_id = gateway.accounts.open_account(f"limits-{plan}@example.com", plan, ACTOR)
    issued = gateway.access.issue_key(account_id, "limits", "live", None, None, ACTOR)
    return account_id, issued.secret


def account_row(gateway, account_id: str) -> tuple:
    with gateway.db.transaction() as cur:
        cur.execute("SELECT restricted, rate_limits FROM accounts WHERE account_id = %s",
                    (account_id,))
        return cur.fetchone()


def account_events(gateway, account_id: str) -> list:
    return stream_events(gateway.stores.accounts, Account.create_id(account_id))[1:]


def refused(gateway, command, *args) -> DomainError:
    """The command's DomainError; no context's position moved."""
    before = gateway.stores.max_positions()
    with pytest.raises(DomainError) as error:
        command(*args)
    assert gateway.stores.max_positions() == before
    return error.value


def test_restricting_records_the_flag_with_its_reason_and_the_key_sees_it_at_once(
        gateway, effects):
    account_id, secret = open_with_key(gateway)
    assert gateway.access.authenticate_key(secret).key.restricted is False  # now cached

    assert gateway.accounts.set_restricted(account_id, True, f"  {REASON} ", ACTOR) is True

    events = account_events(gateway, account_id)
    assert [(e.type, e.data["enabled"], e.data["reason"], e.data["actor"]) for e in events] \
        == [("Account.RestrictedProfileSet", True, REASON, ACTOR)]
    assert account_row(gateway, account_id)[0] == 1
    # Within the key cache's 1 s: the projection dropped this worker's cached record.
    assert gateway.access.authenticate_key(secret).key.restricted is True
    assert ("accounts", True, False) in effects

    before = gateway.stores.max_positions()
    assert gateway.accounts.set_restricted(account_id, True, REASON, ACTOR) is False
    assert gateway.stores.max_positions() == before

    assert gateway.accounts.set_restricted(account_id, False, REASON, ACTOR) is True
    assert [e.data["enabled"] for e in account_events(gateway, account_id)] == [True, False]
    assert account_row(gateway, account_id)[0] == 0
    assert gateway.access.authenticate_key(secret).key.restricted is False


def test_a_bad_restriction_or_an_unknown_account_records_nothing(gateway):
    account_id, _ = open_with_key(gateway)
    set_restricted = gateway.accounts.set_restricted

    assert refused(gateway, set_restricted, account_id, True, "too short", ACTOR).param \
        == "reason"
    assert refused(gateway, set_restricted, account_id, "yes", REASON, ACTOR).param \
        == "enabled"
    unknown = refused(gateway, set_restricted, "acct_nobody", True, REASON, ACTOR)
    assert unknown.code == "not_found"
    assert account_events(gateway, account_id) == []


def test_explicit_limits_record_old_and_new_and_reach_the_key(gateway, effects):
    account_id, secret = open_with_key(gateway, "enterprise")
    gateway.access.authenticate_key(secret)  # cached before the change

    assert gateway.accounts.set_rate_limits(
        account_id, {"requests_per_minute": 1000, "burst": None}, REASON, ACTOR) is True
    assert gateway.accounts.set_rate_limits(
        account_id, {"requests_per_minute": 2000, "concurrency": 80}, REASON, ACTOR) is True

    events = account_events(gateway, account_id)
    assert [e.type for e in events] == ["Account.SettingsChanged"] * 2
    assert [e.data["changes"] for e in events] == [
        [{"field": "rate_limits", "old": {}, "new": {"requests_per_minute": 1000}}],
        [{"field": "rate_limits", "old": {"requests_per_minute": 1000},
          "new": {"concurrency": 80, "requests_per_minute": 2000}}]]
    assert {(e.data["reason"], e.data["actor"]) for e in events} == {(REASON, ACTOR)}
    assert json.loads(account_row(gateway, account_id)[1]) == {"concurrency": 80,
                                                               "requests_per_minute": 2000}
    key = gateway.access.authenticate_key(secret).key
    assert key.plan == "enterprise"
    assert key.account_limits == {"concurrency": 80, "requests_per_minute": 2000}
    assert ("accounts", True, False) in effects

    before = gateway.stores.max_positions()
    assert gateway.accounts.set_rate_limits(
        account_id, {"concurrency": 80, "requests_per_minute": 2000}, REASON, ACTOR) is False
    assert gateway.stores.max_positions() == before


@pytest.mark.parametrize(("limits", "param"), [
    ({"requests_per_fortnight": 5}, "rate_limits.requests_per_fortnight"),
    ({"burst": 0}, "rate_limits.burst"),
    ({"concurrency": True}, "rate_limits.concurrency"),
    ({"tokens_per_day": "lots"}, "rate_limits.tokens_per_day"),
    ({"tokens_per_day": 10**13}, "rate_limits.tokens_per_day"),
    ([1000], "rate_limits"),
])
def test_bad_explicit_limits_are_refused_naming_the_field(gateway, limits, param):
    account_id, _ = open_with_key(gateway, "enterprise")

    error = refused(gateway, gateway.accounts.set_rate_limits, account_id, limits, REASON,
                    ACTOR)

    assert (error.code, error.param) == ("invalid_request", param)


def test_explicit_limits_on_an_account_that_is_not_enterprise_are_refused(gateway):
    account_id, secret = open_with_key(gateway, "team")

    error = refused(gateway, gateway.accounts.set_rate_limits, account_id,
                    {"requests_per_minute": 1000}, REASON, ACTOR)

    assert error.code == "conflict"
    assert gateway.access.authenticate_key(secret).key.account_limits == {}


def test_the_bypass_list_is_one_config_stream_with_old_and_new(gateway, effects):
    queries = ConfigQueries(gateway.db)
    assert queries.ip_bypass() == []

    assert gateway.accounts.set_ip_bypass(
        ["2001:db8::/32", " 10.0.0.0/8", "127.0.0.1", "10.0.0.0/8"], REASON, ACTOR) is True
    first = ["10.0.0.0/8", "127.0.0.1/32", "2001:db8::/32"]
    assert queries.ip_bypass() == first
    assert ("access", False, True) in effects

    before = gateway.stores.max_positions()
    assert gateway.accounts.set_ip_bypass(list(reversed(first)), REASON, ACTOR) is False
    assert gateway.stores.max_positions() == before

    assert gateway.accounts.set_ip_bypass(["::ffff:192.0.2.0/120"], REASON, ACTOR) is True
    assert queries.ip_bypass() == ["192.0.2.0/24"]  # mapped IPv6 compared as IPv4
    events = stream_events(gateway.stores.access, Config.create_id(IP_BYPASS))
    assert [e.type for e in events] == ["Config.Opened", "Config.Changed", "Config.Changed"]
    assert [(e.data["name"], e.data["old"], e.data["new"], e.data["reason"],
             e.data["actor"]) for e in events[1:]] == [
        (IP_BYPASS, [], first, REASON, ACTOR),
        (IP_BYPASS, first, ["192.0.2.0/24"], REASON, ACTOR)]


@pytest.mark.parametrize(("networks", "param"), [
    (["10.0.0.0/8", "10.0.0.7/24"], "networks[1]"),  # host bits: meant one host?
    (["not-a-network"], "networks[0]"),
    (["127.0.0.1", 42], "networks[1]"),
    (["300.1.1.1"], "networks[0]"),
    ("10.0.0.0/8", "networks"),
    ([f"10.0.{n // 256}.{n % 256}" for n in range(MAX_BYPASS_ENTRIES + 1)], "networks"),
])
def test_a_bad_bypass_list_is_refused_naming_the_entry(gateway, networks, param):
    error = refused(gateway, gateway.accounts.set_ip_bypass, networks, REASON, ACTOR)

    assert (error.code, error.param) == ("invalid_request", param)
    if param != "networks":
        assert error.details["entry"] == networks[int(param[9:-1])]
    assert ConfigQueries(gateway.db).ip_bypass() == []


def test_an_empty_list_before_any_change_records_nothing(gateway):
    before = gateway.stores.max_positions()
    assert gateway.accounts.set_ip_bypass([], REASON, ACTOR) is False
    assert gateway.stores.max_positions() == before
    assert refused(gateway, gateway.accounts.set_ip_bypass, ["10.0.0.0/8"], "short",
                   ACTOR).param == "reason"


def test_a_rebuild_writes_the_same_accounts_and_config_rows(gateway):
    account_id, _ = open_with_key(gateway, "enterprise")
    gateway.accounts.set_restricted(account_id, True, REASON, ACTOR)
    gateway.accounts.set_rate_limits(account_id, {"burst": 500}, REASON, ACTOR)
    gateway.accounts.set_ip_bypass(["198.51.100.0/24"], REASON, ACTOR)
    gateway.accounts.set_ip_bypass(["198.51.100.0/24", "::1"], REASON, ACTOR)
    for context, position in gateway.stores.max_positions().items():
        assert gateway.projector.wait_for(context, position, timeout=10)

    query = ("SELECT name, value, changed_at FROM gateway_config UNION ALL "
             "SELECT account_id, rate_limits, CAST(restricted AS TEXT) FROM accounts "
             "ORDER BY 1")
    with gateway.db.transaction() as cur:
        cur.execute(query)
        live = cur.fetchall()
    with scratch_database(gateway.config, gateway.db) as (scratch, _):
        project_into(gateway.stores, scratch, live_limits(gateway.db), ["accounts", "access"])
        with scratch.transaction() as cur:
            cur.execute(query)
            rebuilt = cur.fetchall()

    assert rebuilt == live
    assert (account_id, '{"burst":500}', "1") in live
    assert ("ip_bypass", '["198.51.100.0/24","::1/128"]') in [row[:2] for row in live]


def test_the_audit_trail_names_the_setting_it_changed(gateway):
    gateway.accounts.set_ip_bypass(["198.51.100.0/24"], REASON, ACTOR)
    for context, position in gateway.stores.max_positions().items():
        assert gateway.projector.wait_for(context, position, timeout=10)

    with gateway.db.transaction() as cur:
        cur.execute("SELECT event_type, target_type, target_id FROM audit_entries "
                    "WHERE target_type = 'config' ORDER BY seq")
        rows = cur.fetchall()

    assert rows == [("Config.Opened", "config", IP_BYPASS),
                    ("Config.Changed", "config", IP_BYPASS)]
