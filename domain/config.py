"""Config: gateway-wide settings an admin changes, one stream per setting (``config:{name}``).

Every change is a ``Config.Changed`` with the old and new values and a reason (11.4), so the
history of, say, the layer-1 bypass list (1.9) is in the event store like any other
command's. A setting's stream opens (``Config.Opened``) with its first change, as wallets
and grant logs open with theirs.
"""

from __future__ import annotations

import copy
from ipaddress import IPv4Network, IPv6Network

from eventsourcing.domain import Aggregate, event

from domain.client_address import parse_network
from domain.errors import DomainError
from domain.ids import stream_uuid
from domain.key_settings import shown

IP_BYPASS = "ip_bypass"  # networks layer 1 never limits (1.9)
MAX_BYPASS_ENTRIES = 1000
# Each setting's value before its first change: what the gateway does with no event.
DEFAULTS: dict[str, list] = {IP_BYPASS: []}

# A setting's value as JSON (the published schema lists these types).
Value = list | dict | str | int | bool | None


class Config(Aggregate):
    class Opened(Aggregate.Created):
        name: str

    class Changed(Aggregate.Event):
        name: str
        old: Value
        new: Value
        reason: str
        actor: str

    @staticmethod
    def create_id(name: str, **_: object):
        return stream_uuid(f"config:{name}")

    @event(Opened)
    def __init__(self, name: str) -> None:
        if name not in DEFAULTS:
            raise DomainError("invalid_request", f"unknown setting {name!r}", param="name")
        self.name = name
        self.value: Value = copy.deepcopy(DEFAULTS[name])

    def change(self, new: Value, reason: str, actor: str) -> bool:
        """Record a new value (already validated); False, and no event, when it is the same."""
        if new == self.value:
            return False
        self._change(self.name, copy.deepcopy(self.value), new, reason, actor)
        return True

    @event(Changed)
    def _change(self, name: str, old: Value, new: Value, reason: str, actor: str) -> None:
        self.value = copy.deepcopy(new)  # state must not share a list with the stored event


def bypass_networks(value: object) -> list[str]:
    """The bypass list from a request body in one normal form: CIDR text (a single address
    as /32 or /128), de-duplicated and sorted, so an unchanged list records no event.

    An entry with host bits set (``10.0.0.7/24``) is refused rather than widened: the admin
    may have meant one host. The 400 names the entry and its index."""
    if not isinstance(value, list):
        raise DomainError("invalid_request", "networks must be a list of IP networks",
                          param="networks")
    if len(value) > MAX_BYPASS_ENTRIES:
        raise DomainError("invalid_request",
                          f"networks may hold at most {MAX_BYPASS_ENTRIES} entries",
                          param="networks")
    found: set[IPv4Network | IPv6Network] = set()
    for index, entry in enumerate(value):
        try:
            found.add(parse_network(entry))
        except (ValueError, TypeError, AttributeError):
            raise DomainError("invalid_request",
                              f"networks entry {shown(entry)!r} is not an IPv4 or IPv6 network",
                              param=f"networks[{index}]",
                              details={"entry": shown(entry), "index": index}) from None
    ordered = sorted(found, key=lambda n: (n.version, int(n.network_address), n.prefixlen))
    return [str(network) for network in ordered]
