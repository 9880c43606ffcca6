"""Tests for domain.network_rules: address classification and provider base URL validation."""

import socket
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.network_rules import (
    BaseUrlError,
    ParsedBaseUrl,
    blocked_reason,
    ip_literal,
    parse_base_url,
    parse_inet_aton,
)

# fmt: off
BLOCKED = {
    "loopback": ["127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.1", "64:ff9b::7f00:1", "::7f00:1"],
    "private": ["10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "fd12:3456::1", "fec0::1",
                "::ffff:10.0.0.1", "2002:a00:1::"],
    "link_local": ["169.254.1.1", "fe80::1", "fe80::1%eth0"],
    "carrier_grade_nat": ["100.64.0.1", "100.127.255.254"],
    "multicast": ["224.0.0.1", "ff02::1"],
    "metadata": ["169.254.169.254", "fd00:ec2::254", "100.100.100.200", "::ffff:169.254.169.254"],
    "unspecified": ["0.0.0.0", "0.1.2.3", "::"],
    "reserved": ["240.0.0.1", "255.255.255.255"],
    "not_global": ["192.0.2.1", "198.18.0.1", "2001:db8::1", "2001::1"],
}
PUBLIC = ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8",
          "64:ff9b::808:808", "2002:808:808::1"]
# fmt: on


@pytest.mark.parametrize(
    ("address", "reason"), [(a, reason) for reason, addrs in BLOCKED.items() for a in addrs]
)
def test_blocked_reason(address, reason):
    assert blocked_reason(ip_address(address)) == reason


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address):
    assert blocked_reason(ip_address(address)) is None


def test_mapped_ipv6_is_judged_as_its_ipv4():
    for last in range(0, 256, 7):
        v4 = IPv4Address(f"10.0.{last}.1")
        assert blocked_reason(IPv6Address(f"::ffff:{v4}")) == blocked_reason(v4) == "private"


# fmt: off
ATON_FORMS = {
    "127.0.0.1": "127.0.0.1", "2130706433": "127.0.0.1", "0x7f000001": "127.0.0.1", "127.1": "127.0.0.1",
    "0177.0.0.1": "127.0.0.1", "0x7f.1": "127.0.0.1", "10.0x10203": "10.1.2.3", "0": "0.0.0.0",
    "0X7F.0.0.01": "127.0.0.1",
}
NOT_ATON = ["", "1.2.3.4.5", "256.1.1.1", "1.2.3.256", "08.1.1.1", "0x", "4294967296", "1..1", "1.2.3.",
            "a.b.c.d", "1.2.65536", " 1.2.3.4"]
# fmt: on


@pytest.mark.parametrize(("text", "expected"), ATON_FORMS.items())
def test_parse_inet_aton_forms(text, expected):
    assert parse_inet_aton(text) == IPv4Address(expected)


@pytest.mark.parametrize("text", NOT_ATON)
def test_parse_inet_aton_rejects(text):
    assert parse_inet_aton(text) is None


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet="0123456789xXabcdefABCDEFg.", min_size=1, max_size=16))
def test_parse_inet_aton_agrees_with_the_c_library(text):
    try:
        expected = IPv4Address(socket.inet_aton(text))
    except OSError:
        expected = None
    assert parse_inet_aton(text) == expected


_aton_part = st.text("0123456789", min_size=1, max_size=11) | st.builds(
    "0{}{}".format, st.sampled_from("xX"), st.text("0123456789abcdefABCDEF", max_size=9)
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(_aton_part, min_size=1, max_size=5).map(".".join))
def test_parse_inet_aton_agrees_with_the_c_library_on_dotted_numbers(text):
    try:
        expected = IPv4Address(socket.inet_aton(text))
    except OSError:
        expected = None
    assert parse_inet_aton(text) == expected


@settings(max_examples=1000, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.sampled_from(["d", "x", "o"]))
def test_parse_inet_aton_finds_every_encoded_address(number, nparts, base):
    raw = number.to_bytes(4, "big")
    values = [*raw[: nparts - 1], int.from_bytes(raw[nparts - 1 :], "big")]
    fmt = {"d": str, "x": hex, "o": lambda v: "0" + format(v, "o")}[base]
    text = ".".join(fmt(v) for v in values)
    assert parse_inet_aton(text) == IPv4Address(number)


# fmt: off
REFUSED_URLS = [
    "http://127.0.0.1", "https://127.0.0.1", "https://169.254.169.254", "https://[::1]", "https://[::1]:8443/v1",
    "https://169.254.169.254/latest/meta-data", "https://2130706433", "https://0x7f000001", "https://127.1",
    "https://017700000001", "https://127.0.0.1.", "https://10.1.2.3", "https://[::ffff:10.1.2.3]",
    "https://[::ffff:7f00:1]", "https://100.100.100.200", "https://[fd00:ec2::254]", "https://0.0.0.0",
    "https://localhost", "https://api.localhost/v1", "https://LOCALHOST.", "https://metadata.google.internal",
    "file://localhost/x", "ftp://api.openai.com", "api.openai.com/v1", "//api.openai.com",
    "https://api.openai.com/v1?key=1", "https://api.openai.com/v1?", "https://api.openai.com/v1#frag",
    "https://user:pw@api.openai.com", "https://user@api.openai.com", "https://api.openai.com:0",
    "https://api.openai.com:65536", "https://api.openai.com:+443", "https://api.openai.com:abc", "https://",
    "https:///v1", "https://[]/", "https://1.2.3.999", "https://999", "https://api.openai.com\t/v1",
    "https://api.open\nai.com", "https://api.openai.com\\@127.0.0.1", "https://exa mple.com",
    "https://%31%32%37.0.0.1", "https://[fe80::1%25eth0]", "https://b\u00fccher.de", "https://-bad-.com",
    "https://a..b", "https://" + "a" * 64 + ".com", "", "https://[127.0.0.1]",
    "https://api.openai.com/" + "x" * 3000,
]
# fmt: on


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_refused_urls(url):
    with pytest.raises(BaseUrlError):
        parse_base_url(url, allow_private=False)


@pytest.mark.parametrize(
    ("url", "host"),
    [("https://127.0.0.1", "127.0.0.1"), ("https://2130706433", "127.0.0.1"), ("https://[::1]", "::1"),
     ("https://localhost", "localhost"), ("https://10.1.2.3", "10.1.2.3")],
)  # fmt: skip
def test_private_urls_pass_only_when_allowed(url, host):
    with pytest.raises(BaseUrlError):
        parse_base_url(url, allow_private=False)
    assert parse_base_url(url, allow_private=True).host == host


def test_refusal_names_the_reason():
    with pytest.raises(BaseUrlError, match="metadata"):
        parse_base_url("https://169.254.169.254", allow_private=False)
    with pytest.raises(BaseUrlError, match="loopback"):
        parse_base_url("https://2130706433", allow_private=False)
    with pytest.raises(BaseUrlError, match="https"):
        parse_base_url("http://api.openai.com", allow_private=False)
    with pytest.raises(BaseUrlError, match="query"):
        parse_base_url("https://api.openai.com/?a", allow_private=False)


@pytest.mark.parametrize(
    ("url", "allow_private", "expected"),
    [
        ("https://api.openai.com/v1", False, ParsedBaseUrl("https", "api.openai.com", 443, "/v1")),
        ("https://api.openai.com/v1/", False, ParsedBaseUrl("https", "api.openai.com", 443, "/v1")),
        ("HTTPS://API.OpenAI.com", False, ParsedBaseUrl("https", "api.openai.com", 443, "")),
        ("https://api.openai.com:", False, ParsedBaseUrl("https", "api.openai.com", 443, "")),
        (
            "https://openrouter.ai:8443/api/v1",
            False,
            ParsedBaseUrl("https", "openrouter.ai", 8443, "/api/v1"),
        ),
        ("https://8.8.8.8/x", False, ParsedBaseUrl("https", "8.8.8.8", 443, "/x")),
        (
            "https://[2606:4700:0:0::1]:9/v1",
            False,
            ParsedBaseUrl("https", "2606:4700::1", 9, "/v1"),
        ),
        (
            "https://my_service.internal",
            False,
            ParsedBaseUrl("https", "my_service.internal", 443, ""),
        ),
        ("http://127.0.0.1:9999/v1", True, ParsedBaseUrl("http", "127.0.0.1", 9999, "/v1")),
        ("http://0x7f000001:9999", True, ParsedBaseUrl("http", "127.0.0.1", 9999, "")),
        ("http://[::1]", True, ParsedBaseUrl("http", "::1", 80, "")),
    ],
)
def test_accepted_urls_are_normalised(url, allow_private, expected):
    assert parse_base_url(url, allow_private) == expected


def test_url_property_rebuilds_a_canonical_url():
    assert (
        parse_base_url("https://api.openai.com:443/v1/", False).url == "https://api.openai.com/v1"
    )
    assert (
        parse_base_url("https://[2606:4700::1]:8443/v1", False).url
        == "https://[2606:4700::1]:8443/v1"
    )
    assert parse_base_url("http://127.1:80", True).url == "http://127.0.0.1"


def test_ip_literal():
    assert ip_literal("api.openai.com") is None
    assert ip_literal("[::1]") == IPv6Address("::1")
    assert ip_literal("0x7f000001") == IPv4Address("127.0.0.1")
    with pytest.raises(BaseUrlError):
        ip_literal("1.2.3.4.5")


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60))
def test_parse_base_url_only_raises_base_url_error(text):
    for allow in (False, True):
        for url in (text, "https://" + text):
            try:
                parsed = parse_base_url(url, allow)
            except BaseUrlError:
                continue
            assert parsed.scheme in (("http", "https") if allow else ("https",))
            assert not parsed.path.endswith("/")
