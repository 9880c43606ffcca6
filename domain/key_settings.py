"""A key's writable settings (1.1, 1.3, 1.6, 1.7): validation of a PATCH body and the
``{field, old, new}`` change list of 11.4.

Pure: the caller passes the time, the scopes a key may carry and the plan's rate limits.
Every value is returned in one normal form (stripped, de-duplicated, lower-case hosts, UTC
instants), so comparing stored and new values finds only real changes.

Labels are stored as an object ``{"team": "search"}``; a list of ``"key=value"`` strings
is accepted too and stored in that same object form.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.client_address import normalise_host, parse_network
from domain.errors import DomainError

# Order of the change list: the order a reader of the key sees its settings.
WRITABLE = ("name", "scopes", "expires_at", "max_requests", "ip_allowlist",
            "referrer_allowlist", "allowed_models", "labels", "rate_limits")
# Fields a key shows but no PATCH may set (1.3 "Must not"); named in the 400.
READ_ONLY = frozenset({"account_id", "hash", "secret_hash", "requests_used", "prefix",
                       "last4", "created_by", "environment", "id", "key", "key_id", "object",
                       "status", "created_at", "rotated_at", "revoked_at", "expired_at",
                       "last_used_at"})
# Writable in the spec (1.3) but not built yet: refused as such rather than as unknown.
NOT_BUILT = frozenset({"budgets", "guardrails", "semantic_cache", "default_system_prompt"})
RATE_LIMIT_FIELDS = ("requests_per_minute", "requests_per_hour", "requests_per_day",
                     "tokens_per_minute", "tokens_per_hour", "tokens_per_day", "burst",
                     "concurrency")
MAX_IP_ENTRIES = 100
MAX_REFERRER_ENTRIES = 50
MAX_MODEL_GLOBS = 50
MAX_GLOB_LENGTH = 256
MAX_LABELS = 10
MAX_LABEL_SIDE = 64
MAX_REQUESTS = 1_000_000_000
MAX_EXPIRY_DAYS = 3650
MAX_RATE_LIMIT = 10**12  # far above any plan; bounds what a BIGINT column must hold
_LABEL_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                             "0123456789_.-:/")


def _invalid(message: str, param: str) -> DomainError:
    return DomainError("invalid_request", message, param=param)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def shown(entry: object) -> object:
    """A refused entry as an error echoes it: as it was when short, else its first 100
    characters (the caller chose its length, so the echo is bounded)."""
    if isinstance(entry, int | float | bool) or entry is None:
        return entry
    text = entry if isinstance(entry, str) else repr(entry)
    return text if len(text) <= 100 else text[:100] + "..."


def _string_list(value: object, field: str, limit: int) -> list:
    if not isinstance(value, list):
        raise _invalid(f"{field} must be a list", field)
    if len(value) > limit:
        raise _invalid(f"{field} may hold at most {limit} entries", field)
    return value


def name(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= 64:
        raise _invalid("name must have 1 to 64 characters", "name")
    return value.strip()


def scopes(value: object, allowed: Collection[str]) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(s, str) for s in value):
        raise _invalid("scopes must be a non-empty list of strings", "scopes")
    for scope in value:
        if scope != "*" and scope not in allowed:
            # As at issue (application/access.py): a scope the creator cannot grant.
            raise DomainError("insufficient_scope", f"scope {scope!r} cannot be granted to a key",
                              param="scopes")
    return list(dict.fromkeys(value))


def ten_years_after(now: datetime) -> datetime:
    try:
        return now.replace(year=now.year + 10)
    except ValueError:  # 29 February
        return now.replace(year=now.year + 10, day=28)


def expires_at(value: object, now: datetime) -> str | None:
    """RFC 3339 with an offset, in the future, at most 10 years ahead; null removes it."""
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise ValueError
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _invalid("expires_at must be an RFC 3339 date-time", "expires_at") from None
    if moment.tzinfo is None:
        raise _invalid("expires_at needs a time zone offset (e.g. Z)", "expires_at")
    if moment <= now:
        raise _invalid("expires_at must be in the future", "expires_at")
    if moment > ten_years_after(now):
        raise _invalid("expires_at may be at most 10 years ahead", "expires_at")
    # UTC text like the issue path writes, so stored instants compare as text (expiry scan).
    return moment.astimezone(UTC).isoformat()


def expires_in_days(value: object, now: datetime) -> str:
    if not _is_int(value) or not 1 <= value <= MAX_EXPIRY_DAYS:  # type: ignore[operator]
        raise _invalid(f"expires_in_days must be an integer from 1 to {MAX_EXPIRY_DAYS}",
                       "expires_in_days")
    return (now + timedelta(days=value)).astimezone(UTC).isoformat()  # type: ignore[arg-type]


def max_requests(value: object) -> int | None:
    if value is None:
        return None
    if not _is_int(value) or not 1 <= value <= MAX_REQUESTS:  # type: ignore[operator]
        raise _invalid(f"max_requests must be an integer from 1 to {MAX_REQUESTS:,} or null",
                       "max_requests")
    return value  # type: ignore[return-value]


def ip_allowlist(value: object) -> list[str]:
    entries = _string_list(value, "ip_allowlist", MAX_IP_ENTRIES)
    out = []
    for entry in entries:
        try:
            network = parse_network(entry)
        except (ValueError, TypeError, AttributeError):
            raise DomainError("invalid_ip_allowlist",
                              f"ip_allowlist entry {shown(entry)!r} is not an IP address or "
                              "CIDR", param="ip_allowlist",
                              details={"entry": shown(entry)}) from None
        # A single host is shown as the address it is, a range in CIDR form.
        full = network.prefixlen == network.max_prefixlen
        out.append(str(network.network_address) if full else str(network))
    return list(dict.fromkeys(out))


def referrer_allowlist(value: object) -> list[str]:
    entries = _string_list(value, "referrer_allowlist", MAX_REFERRER_ENTRIES)
    out = []
    for entry in entries:
        text = entry.strip() if isinstance(entry, str) else ""
        wildcard = text.startswith("*.")
        host = normalise_host(text[2:] if wildcard else text) if text else None
        # Schemes, ports and paths fail normalise_host. A wildcard over a single label
        # (``*.com``) would admit a whole top-level domain, one over an IP nothing.
        if host is None or (wildcard and ("." not in host or _is_ip(host))):
            raise DomainError("invalid_referrer_allowlist",
                              f"referrer_allowlist entry {shown(entry)!r} is not a host name "
                              "or *.domain wildcard", param="referrer_allowlist",
                              details={"entry": shown(entry)})
        out.append("*." + host if wildcard else host)
    return list(dict.fromkeys(out))


def _is_ip(host: str) -> bool:
    return ":" in host or host.replace(".", "").isdigit()


def allowed_models(value: object) -> list[str]:
    globs = _string_list(value, "allowed_models", MAX_MODEL_GLOBS)
    for glob in globs:
        # fnmatch reads [ and ] as character classes; model ids have neither.
        if not isinstance(glob, str) or not 1 <= len(glob) <= MAX_GLOB_LENGTH or \
                not glob.isprintable() or any(c in glob for c in " []"):
            raise _invalid(f"allowed_models entry {glob!r} must be a model id glob of 1 to "
                           f"{MAX_GLOB_LENGTH} characters (* and ? as wildcards)",
                           "allowed_models")
    return list(dict.fromkeys(globs))


def labels(value: object) -> dict[str, str]:
    if isinstance(value, list):
        pairs = []
        for item in value:
            if not isinstance(item, str) or "=" not in item:
                raise _invalid(f"label {item!r} must be a key=value string", "labels")
            pairs.append(tuple(item.split("=", 1)))
        if len({k for k, _ in pairs}) != len(pairs):
            raise _invalid("labels repeat a key", "labels")
        value = dict(pairs)
    if not isinstance(value, dict):
        raise _invalid("labels must be an object of key: value strings", "labels")
    if len(value) > MAX_LABELS:
        raise _invalid(f"a key may carry at most {MAX_LABELS} labels", "labels")
    for key, text in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_LABEL_SIDE or \
                not set(key) <= _LABEL_KEY_CHARS:
            raise _invalid(f"label key {key!r} must be 1 to {MAX_LABEL_SIDE} letters, digits "
                           "or _.-:/", "labels")
        if not isinstance(text, str) or len(text) > MAX_LABEL_SIDE or not text.isprintable():
            raise _invalid(f"label {key!r} needs a printable value of at most "
                           f"{MAX_LABEL_SIDE} characters", "labels")
    return dict(sorted(value.items()))


def rate_limits(value: object, ceiling: Mapping[str, int] | None, is_admin: bool) -> dict:
    """Per-key limits (1.10); only an admin may set one above the plan's value (1.1)."""
    if not isinstance(value, dict):
        raise _invalid("rate_limits must be an object", "rate_limits")
    out = {}
    for field, limit in value.items():
        param = f"rate_limits.{field}"
        if field not in RATE_LIMIT_FIELDS:
            raise _invalid(f"unknown rate limit {field!r}; one of {', '.join(RATE_LIMIT_FIELDS)}",
                           param)
        if limit is None:
            continue  # null: this key follows the plan for that limit
        if not _is_int(limit) or not 1 <= limit <= MAX_RATE_LIMIT:
            raise _invalid(f"{field} must be a positive integer", param)
        plan = (ceiling or {}).get(field)
        if not is_admin and plan is not None and limit > plan:
            raise _invalid(f"{field} may only lower the plan's value ({plan}); an admin may "
                           "raise it", param)
        out[field] = limit
    return dict(sorted(out.items()))


def validate_patch(body: object, *, now: datetime, allowed_scopes: Collection[str],
                   ceiling: Mapping[str, int] | None = None,
                   is_admin: bool = False) -> dict[str, Any]:
    """The normalised new values of the fields present in ``body`` (a PATCH body).

    ``expires_in_days`` is turned into ``expires_at``; giving both is refused. Read-only
    and unknown fields are refused naming the field, so a typo never passes silently.
    """
    if not isinstance(body, dict):
        raise _invalid("the body must be a JSON object", "body")
    for field in body:
        if field in READ_ONLY:
            raise _invalid(f"{field} is not writable", field)
        if field in NOT_BUILT:
            raise _invalid(f"{field} cannot be set yet: this version does not support it",
                           field)
        if field not in WRITABLE and field != "expires_in_days":
            raise _invalid(f"unknown field {field!r}", str(field))
    if "expires_at" in body and "expires_in_days" in body:
        raise _invalid("give expires_at or expires_in_days, not both", "expires_in_days")
    checks = {"name": name, "max_requests": max_requests, "ip_allowlist": ip_allowlist,
              "referrer_allowlist": referrer_allowlist, "allowed_models": allowed_models,
              "labels": labels}
    new: dict[str, Any] = {}
    for field in WRITABLE:
        if field not in body:
            continue
        if field == "scopes":
            new[field] = scopes(body[field], allowed_scopes)
        elif field == "expires_at":
            new[field] = expires_at(body[field], now)
        elif field == "rate_limits":
            new[field] = rate_limits(body[field], ceiling, is_admin)
        else:
            new[field] = checks[field](body[field])
    if "expires_in_days" in body:
        new["expires_at"] = expires_in_days(body["expires_in_days"], now)
    return new


def changes(current: Mapping[str, Any], new: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``[{field, old, new}]`` for each field whose value differs (11.4), in WRITABLE order."""
    return [{"field": field, "old": current.get(field), "new": new[field]}
            for field in WRITABLE if field in new and current.get(field) != new[field]]
