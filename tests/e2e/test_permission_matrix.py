"""The permission matrix of 1.4: every route the app serves x each kind of principal.

Routes come from the app's own route table, each with the permission its guards demand
(``guard.requires``); that declaration is first checked against spec 12's table (a copy in
tests/fixtures/spec/endpoints.md), then every (route, principal) pair is called over HTTP.
Nothing here is listed by hand: a new route joins the matrix by existing.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from domain.permissions import USER_PERMISSIONS
from e2e.support import customer

SPEC = Path(__file__).parent.parent / "fixtures" / "spec" / "endpoints.md"
PRINCIPALS = ("owner", "admin", "finance", "auditor", "developer", "user", "scoped", "anonymous")
STAFF = {"owner": ("owner", ("finance:read", "audit:read", "audit:verify")),
         "admin": ("admin", ()), "finance": ("user", ("finance:read",)),
         "auditor": ("user", ("audit:read", "audit:verify"))}
REASON = "permission matrix principal"
_PARAM = re.compile(r"\{([a-z_]+)(?::[a-z]+)?\}")


def route_table(app) -> list[tuple[str, str, frozenset]]:
    """(method, path template, required permissions) of every route handler."""
    table = []
    for route in app.routes:
        for method, entry in getattr(route, "route_handler_map", {}).items():
            if method in ("OPTIONS", "HEAD"):
                continue
            handler = entry[0] if isinstance(entry, tuple) else entry
            required = frozenset(getattr(g, "requires", None) for g in handler.resolve_guards())
            table.append((method, route.path_format if hasattr(route, "path_format")
                          else route.path, required - {None}))
    return sorted(table, key=lambda row: (row[1], row[0]))


def spec_table() -> dict[tuple[str, str], str]:
    rows = {}
    for line in SPEC.read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) >= 4 and cells[2].startswith("`/"):
            rows[(cells[1], _shape(cells[2].strip("`")))] = cells[3]
    return rows


def _shape(path: str) -> str:
    return _PARAM.sub("{}", path)


def expected_from_spec(auth: str) -> frozenset:
    """Spec 12's auth column as the guards that implement it."""
    found = re.search(r"`([a-z]+:[a-z]+)`", auth)
    if auth.startswith("public"):
        return frozenset()
    if "key" in auth and found:  # "anon or key": anonymous :free use is not built (README)
        return frozenset({("key", found.group(1))})
    if auth.startswith("staff owner"):
        return frozenset({("staff", "admin"), ("staff", "owner")})
    if auth.startswith("staff admin"):
        return frozenset({("staff", "admin")})
    if auth.startswith("staff") and found:
        return frozenset({("staff", found.group(1))})
    raise AssertionError(f"unknown auth column {auth!r}")


def test_every_route_declares_the_permission_spec_12_gives_it(served):
    from entrypoints.http.app import create_litestar

    spec = spec_table()
    app = create_litestar(served.gateway)
    checked = 0
    for method, path, required in route_table(app):
        auth = spec.get((method, _shape(path)))
        if auth is None:
            continue  # a route spec 12 does not list (e.g. /admin/holds/verify)
        wanted = expected_from_spec(auth)
        if ("staff", "owner") in wanted and not path.startswith("/admin"):
            wanted = frozenset({("staff", "owner")})
        assert required == wanted, (method, path, auth, required)
        checked += 1
    assert checked >= 50, checked


@pytest.fixture
def principals(served) -> dict[str, str | None]:
    tokens: dict[str, str | None] = {"owner": served.owner_token, "anonymous": None}
    for name, (role, granted) in STAFF.items():
        if name == "owner":
            continue
        user = served.admin("POST", "/admin/users", json={"email": f"{name}@example.com",
                                                          "role": role}).json()
        for permission in granted:
            answer = served.admin("POST", f"/admin/users/{user['id']}/permissions",
                                  json={"permission": permission, "reason": REASON})
            assert answer.status_code == 200, answer.text
        answer = served.admin("POST", "/admin/staff-tokens", json={"user_id": user["id"]})
        assert answer.status_code == 201, answer.text
        tokens[name] = answer.json()["token"]
    tokens["developer"] = customer(served, scopes=["*"]).key
    tokens["user"] = customer(served, scopes=sorted(USER_PERMISSIONS)).key
    tokens["scoped"] = customer(served, scopes=["inference:use"]).key
    return tokens


def allowed(principal: str, required: frozenset, path: str) -> bool:
    if not required:  # public; but a staff token is never taken on /v1 (spec 12)
        return not (path.startswith("/v1/") and principal in STAFF)
    kinds = {kind for kind, _ in required}
    if kinds == {"key"}:
        (_, permission), = required
        scopes = {"developer": "*", "user": USER_PERMISSIONS,
                  "scoped": {"inference:use"}}.get(principal)
        return scopes is not None and (scopes == "*" or permission in scopes)
    if principal not in STAFF:
        return False
    role, granted = STAFF[principal]
    for _, permission in required:
        if permission in ("admin", "owner"):
            if role not in ("admin", "owner") or (permission == "owner" and role != "owner"):
                return False
        elif permission not in granted:
            return False
    return True


def denial(principal: str, required: frozenset) -> tuple[int, str]:
    if not required:
        return 403, "wrong_credential_type"
    staff_route = any(kind == "staff" for kind, _ in required)
    if principal == "anonymous":
        return 401, "missing_api_key"
    if staff_route != (principal in STAFF):
        return 403, "wrong_credential_type"
    return 403, "forbidden" if staff_route else "insufficient_scope"


_VALUES = {"model_path": "acme/none/prices", "model_id": "acme/none", "seq": "999999"}


def concrete(path: str) -> str:
    return _PARAM.sub(lambda m: _VALUES.get(m.group(1), f"{m.group(1)}_none"), path)


def test_every_route_answers_each_principal_as_its_permission_says(served, principals):
    from entrypoints.http.app import create_litestar

    table = route_table(create_litestar(served.gateway))
    outcomes: Counter = Counter()
    unexpected = []
    staff_denials = 0
    for method, path, required in table:
        for principal in PRINCIPALS:
            token = principals[principal]
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            kwargs = {"json": {}} if method in ("POST", "PUT", "PATCH", "DELETE") else {}
            answer = served.http.request(method, concrete(path), headers=headers, **kwargs)
            if allowed(principal, required, path):
                outcomes["allowed"] += 1
                if answer.status_code in (401, 403):
                    unexpected.append((method, path, principal, answer.status_code,
                                       answer.text[:200]))
                continue
            outcomes["denied"] += 1
            status, code = denial(principal, required)
            got = answer.json().get("error", {}).get("code") if answer.content else None
            if (answer.status_code, got) != (status, code):
                unexpected.append((method, path, principal, answer.status_code, got))
            if code == "forbidden":
                staff_denials += 1
    assert not unexpected, unexpected
    assert outcomes["allowed"] > 100 and outcomes["denied"] > 300, outcomes
    # One Security.AccessDenied per refused staff call (1.4), no more, no less.
    gw = served.gateway
    assert gw.security.wait_idle()
    assert gw.projector.wait_for("access", gw.stores.access.recorder.max_notification_id())
    denied = served.admin("GET", "/audit/security-events",
                          params={"kind": "access_denied", "limit": 1000}).json()["data"]
    # Refusals of an authenticated staff user name who was refused (wrong credential types
    # are counted per address and minute instead, as failed authentications are).
    by_staff = [e for e in denied if e["reason"] == "missing_permission"]
    assert all(e["principal"]["id"] for e in by_staff)
    assert len(by_staff) == staff_denials
