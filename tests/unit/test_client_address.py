"""domain.client_address: client IP behind trusted proxies, IP and referrer allowlists
(spec 1.6, 1.7), with every Accept example of both sections verbatim."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.client_address import (
    client_ip,
    ip_allowed,
    parse_ip,
    referrer_allowed,
    referrer_host,
)

SPEC_LIST = ["192.168.1.1", "10.0.0.0/24", "2001:db8::/32"]
TRUSTED = ["10.0.0.0/8", "fd00::/8"]


# -- 1.6 Accept, verbatim --------------------------------------------------------------------
def test_spec_list_passes_inside_addresses_and_refuses_outside():
    assert ip_allowed("10.0.0.7", SPEC_LIST)
    assert ip_allowed("2001:db8::1", SPEC_LIST)
    assert not ip_allowed("10.0.1.7", SPEC_LIST)


def test_an_ipv4_mapped_ipv6_address_is_matched_as_ipv4():
    assert ip_allowed("::ffff:10.0.0.5", ["10.0.0.0/24"])


def test_an_untrusted_peer_is_judged_by_its_own_address():
    ip = client_ip("203.0.113.9", "10.0.0.7", TRUSTED)

    assert ip == "203.0.113.9"
    assert not ip_allowed(ip, SPEC_LIST)


# -- IP allowlists ----------------------------------------------------------------------------
def test_an_empty_list_is_no_restriction_even_for_an_unknown_address():
    assert ip_allowed(None, [])
    assert ip_allowed("8.8.8.8", ())


@pytest.mark.parametrize("ip", [None, "", "not an ip", "10.0.0.999"])
def test_an_unknown_address_never_passes_a_non_empty_list(ip):
    assert not ip_allowed(ip, ["0.0.0.0/0", "::/0"])


def test_a_single_address_entry_matches_only_itself():
    assert ip_allowed("192.168.1.1", SPEC_LIST)
    assert not ip_allowed("192.168.1.2", SPEC_LIST)


def test_a_mapped_entry_matches_the_ipv4_client():
    assert ip_allowed("10.0.0.5", ["::ffff:10.0.0.0/120"])
    assert not ip_allowed("10.0.1.5", ["::ffff:10.0.0.0/120"])


def test_versions_never_cross():
    assert not ip_allowed("::a00:7", ["10.0.0.0/8"])  # IPv4-compatible, not mapped
    assert not ip_allowed("10.0.0.7", ["::/0"])


@given(st.ip_addresses(v=4), st.integers(0, 32), st.ip_addresses(v=4))
def test_ipv4_cidr_passes_exactly_the_addresses_inside(base, prefix, probe):
    network = IPv4Network((base, prefix), strict=False)
    assert ip_allowed(str(probe), [str(network)]) == (probe in network)
    assert ip_allowed(f"::ffff:{probe}", [str(network)]) == (probe in network)


@given(st.ip_addresses(v=6), st.integers(0, 128), st.ip_addresses(v=6))
def test_ipv6_cidr_passes_exactly_the_addresses_inside(base, prefix, probe):
    network = IPv6Network((base, prefix), strict=False)
    mapped = probe.ipv4_mapped
    expected = probe in network if mapped is None else False  # judged as IPv4 then
    if mapped is not None and network.prefixlen >= 96 and \
            network.subnet_of(IPv6Network("::ffff:0:0/96")):
        expected = probe in network
    assert ip_allowed(str(probe), [str(network)]) == expected


# -- client address ---------------------------------------------------------------------------
def test_a_trusted_peer_gives_the_rightmost_untrusted_forwarded_address():
    assert client_ip("10.1.1.1", "6.6.6.6, 1.2.3.4, 10.0.0.7", TRUSTED) == "1.2.3.4"


def test_a_forged_leftmost_entry_cannot_win():
    assert client_ip("10.1.1.1", "10.9.9.9, 1.2.3.4", TRUSTED) == "1.2.3.4"


def test_several_headers_joined_and_ports_are_read():
    assert client_ip("10.1.1.1", "1.2.3.4:5555,[2001:db8::7]:443", TRUSTED) == "2001:db8::7"


def test_a_trusted_peer_without_the_header_is_its_own_client():
    assert client_ip("10.1.1.1", None, TRUSTED) == "10.1.1.1"
    assert client_ip("10.1.1.1", "  ", TRUSTED) == "10.1.1.1"


def test_only_trusted_hops_give_the_leftmost():
    assert client_ip("10.1.1.1", "10.2.2.2, 10.3.3.3", TRUSTED) == "10.2.2.2"


def test_garbage_on_the_walk_makes_the_client_unknown():
    assert client_ip("10.1.1.1", "1.2.3.4, garbage", TRUSTED) is None
    assert client_ip(None, "1.2.3.4", TRUSTED) is None
    assert client_ip("not-an-ip", None, TRUSTED) is None


def test_no_trusted_ranges_means_the_peer_always():
    assert client_ip("10.1.1.1", "1.2.3.4", []) == "10.1.1.1"


def test_a_mapped_peer_is_reported_as_ipv4():
    assert client_ip("::ffff:203.0.113.9", None, TRUSTED) == "203.0.113.9"
    assert parse_ip("::ffff:1.2.3.4") == IPv4Address("1.2.3.4")
    assert parse_ip("2001:db8::1") == IPv6Address("2001:db8::1")


@given(st.lists(st.ip_addresses(v=4), min_size=1, max_size=6), st.ip_addresses(v=4))
def test_the_answer_is_never_left_of_an_untrusted_hop(hops, peer):
    trusted = ["10.0.0.0/8"]
    header = ", ".join(str(h) for h in hops)
    answer = client_ip(str(peer), header, trusted)
    inside = IPv4Network("10.0.0.0/8")
    if peer not in inside:
        assert answer == str(peer)
        return
    untrusted = [h for h in hops if h not in inside]
    assert answer == str(untrusted[-1] if untrusted else hops[0])


# -- 1.7 Accept, verbatim --------------------------------------------------------------------
def test_a_wildcard_passes_subdomains_only():
    wildcard = ["*.example.com"]
    assert referrer_allowed(referrer_host(None, "https://api.example.com/x"), wildcard)
    assert referrer_allowed(referrer_host("https://api.example.com/x", None), wildcard)
    assert not referrer_allowed(referrer_host("https://example.com", None), wildcard)
    assert not referrer_allowed(referrer_host("https://evilexample.com", None), wildcard)


def test_no_header_fails_a_list_and_passes_an_empty_one():
    assert not referrer_allowed(referrer_host(None, None), ["example.com"])
    assert referrer_allowed(referrer_host(None, None), [])


# -- referrer hosts ---------------------------------------------------------------------------
def test_origin_comes_first_and_null_counts_as_absent():
    assert referrer_host("https://a.example.com", "https://b.example.com/p") == "a.example.com"
    assert referrer_host("null", "https://b.example.com/p") == "b.example.com"
    assert referrer_host("null", None) is None


@pytest.mark.parametrize("origin", ["not a url", "https://", "example.com", "https://exa mple.com",
                                    "http://[::1"])
def test_an_unparseable_origin_is_no_host_and_does_not_fall_back(origin):
    assert referrer_host(origin, "https://b.example.com/") is None
    assert not referrer_allowed(referrer_host(origin, "https://b.example.com/"),
                                ["b.example.com"])


def test_hosts_are_idna_normalised_and_lower_case():
    assert referrer_host("https://Bücher.Example:8443", None) == "xn--bcher-kva.example"
    assert referrer_host(None, "HTTPS://API.EXAMPLE.COM./x?y") == "api.example.com"
    assert referrer_allowed("xn--bcher-kva.example", ["bücher.example"])
    assert referrer_allowed("shop.xn--bcher-kva.example", ["*.BÜCHER.example"])
    assert referrer_host("http://[::1]:3000", None) == "::1"


def test_an_exact_entry_matches_only_that_host():
    assert referrer_allowed("app.example.com", ["app.example.com"])
    assert not referrer_allowed("x.app.example.com", ["app.example.com"])
    assert not referrer_allowed("example.com", ["app.example.com"])


label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)


@given(st.lists(label, min_size=1, max_size=4), st.lists(label, min_size=2, max_size=3))
def test_a_wildcard_matches_every_depth_but_never_the_bare_or_glued_domain(sub, base):
    domain = ".".join(base)
    wildcard = ["*." + domain]
    assert referrer_allowed(".".join(sub) + "." + domain, wildcard)
    assert not referrer_allowed(domain, wildcard)
    assert not referrer_allowed("".join(sub) + domain, wildcard)
