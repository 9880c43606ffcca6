"""The last owner (1.4) over every event-store backend: never demoted or deactivated, not
even by two owners demoting each other at the same moment."""

from __future__ import annotations

import threading

import pytest
from eventsourcing.persistence import IntegrityError

from domain.errors import DomainError
from domain.user import OwnerRoster
from integration.test_staff_users import REASON, member, refused, staff_service, types


@pytest.fixture
def staff(gateway):
    return staff_service(gateway)


@pytest.fixture
def owner(gateway):
    _, token = gateway.access.bootstrap_owner("owner@example.com")
    return gateway.access.authenticate_staff(token)


def owners(gateway) -> list[str]:
    """The owners as the event store has them (the roster) and as the read model has them."""
    roster = gateway.stores.access.repository.get(OwnerRoster.create_id()).owner_ids
    assert sorted(roster) == gateway.access_queries.owner_ids()
    return sorted(roster)


def second_owner(gateway, staff, owner):
    user_id, token = member(gateway, staff, owner, role="owner")
    return gateway.access.authenticate_staff(token)


def test_the_only_owner_can_neither_be_demoted_nor_deactivated(gateway, staff, owner):
    refused(lambda: staff.change_role(owner.user_id, "admin", REASON, owner), "last_owner",
            gateway)
    refused(lambda: staff.deactivate(owner.user_id, REASON, owner), "last_owner", gateway)

    assert gateway.access_queries.owner_ids() == [owner.user_id]


def test_with_two_owners_one_may_go_and_then_the_other_is_the_last(gateway, staff, owner):
    other = second_owner(gateway, staff, owner)
    assert owners(gateway) == sorted([owner.user_id, other.user_id])

    staff.change_role(owner.user_id, "admin", "handing the installation over", other)

    assert owners(gateway) == [other.user_id]
    refused(lambda: staff.deactivate(other.user_id, REASON, other), "last_owner", gateway)
    staff.change_role(owner.user_id, "owner", "taking the installation back", other)
    staff.deactivate(other.user_id, "left the company on friday", owner)
    assert owners(gateway) == [owner.user_id]
    assert types(gateway, other.user_id)[-1] == "User.Deactivated"


def test_two_owners_demoting_each_other_interleaved_leave_exactly_one(
        gateway, staff, owner, monkeypatch):
    """Deterministic interleaving: A decides (both are owners), then B's demotion of A
    commits, then A saves. A's save must conflict on the roster, and A's retry must see
    that it is no longer an owner."""
    other = second_owner(gateway, staff, owner)
    app = gateway.stores.access
    save, b_done, conflicts = app.save, threading.Event(), []
    a_decided = threading.Event()  # A has loaded and decided; B may only start then

    def save_after_b(*objs, **kwargs):
        if threading.current_thread().name == "A" and not b_done.is_set():
            a_decided.set()
            assert b_done.wait(10)
            try:
                return save(*objs, **kwargs)
            except IntegrityError:
                conflicts.append(True)
                raise
        return save(*objs, **kwargs)

    monkeypatch.setattr(app, "save", save_after_b)
    outcome: dict[str, object] = {}

    def a() -> None:
        try:
            outcome["A"] = staff.change_role(other.user_id, "admin", REASON, owner)
        except DomainError as error:
            outcome["A"] = error.code

    thread = threading.Thread(target=a, name="A")
    thread.start()
    assert a_decided.wait(10)
    outcome["B"] = staff.change_role(owner.user_id, "admin", REASON, other)
    b_done.set()
    thread.join(30)

    assert conflicts == [True]
    assert outcome["A"] in ("forbidden", "last_owner")
    assert owners(gateway) == [other.user_id]


def race(staff, one, two) -> dict[str, object]:
    """``one`` and ``two`` demote each other, released together by a barrier."""
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def demote(actor, target) -> None:
        barrier.wait()
        try:
            results[actor.user_id] = staff.change_role(target.user_id, "developer", REASON,
                                                       actor)
        except DomainError as error:
            results[actor.user_id] = error.code

    threads = [threading.Thread(target=demote, args=pair) for pair in ((one, two), (two, one))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_two_owners_racing_to_demote_each_other_always_leave_one(gateway, staff, owner):
    last = owner
    for _ in range(3):
        other = second_owner(gateway, staff, last)

        results = race(staff, last, other)

        succeeded = [r for r in results.values() if isinstance(r, dict)]
        failed = [r for r in results.values() if not isinstance(r, dict)]
        assert len(succeeded) == 1 and failed[0] in ("forbidden", "last_owner"), results
        [survivor] = owners(gateway)
        last = last if survivor == last.user_id else other


def test_an_owner_added_or_promoted_joins_the_roster_in_the_same_save(gateway, staff, owner):
    admin_id, _ = member(gateway, staff, owner)

    staff.change_role(admin_id, "owner", "second owner for the holidays", owner)

    assert owners(gateway) == sorted([owner.user_id, admin_id])
    roster_events = [e.type for e in _roster_stream(gateway)]
    assert roster_events == ["OwnerRoster.Seeded", "OwnerRoster.OwnerAdded"]


def _roster_stream(gateway):
    from integration.support import stream_events

    return stream_events(gateway.stores.access, OwnerRoster.create_id())


def test_a_rebuild_of_the_access_read_model_matches_after_every_user_command(
        gateway, staff, owner):
    """The new user and token rows are a pure fold of the events (11.9)."""
    from projections.verify import verify

    admin_id, token = member(gateway, staff, owner, permissions=("finance:read",))
    staff.revoke_permission(admin_id, "finance:read", REASON, owner)
    staff.revoke_staff_token(gateway.access.authenticate_staff(token).staff.token_id, owner)
    staff.change_role(admin_id, "owner", REASON, owner)
    staff.deactivate(admin_id, REASON, owner)

    reports = verify(gateway.config, gateway.stores, gateway.db)

    assert [r.table for r in reports if not r.match] == []
    assert {"users", "staff_tokens"} <= {r.table for r in reports}
