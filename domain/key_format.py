"""Format, checksum and hashing of customer API keys (gw_live_/gw_test_) and staff tokens (gw_staff_)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import zlib

BASE62_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ENVIRONMENTS = ("live", "test")

_SECRET_BYTES = 32
_BODY_CHARS = 43  # 32 bytes in unpadded base64url
_CHECKSUM_CHARS = 6  # 62**6 > 2**32, so any CRC32 fits
API_KEY_LENGTH = len("gw_live_") + _BODY_CHARS + 1 + _CHECKSUM_CHARS  # 58
STAFF_TOKEN_LENGTH = len("gw_staff_") + _BODY_CHARS + 1 + _CHECKSUM_CHARS  # 59
DISPLAY_PREFIX_CHARS = 12

_CREDENTIAL_RE = re.compile(r"gw_(live|test|staff)_[A-Za-z0-9_-]{43}_[0-9A-Za-z]{6}")


def base62(n: int, width: int) -> str:
    """Render a non-negative int in base62 (0-9A-Za-z), left-padded with '0' to exactly `width` characters."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError("base62 needs a non-negative integer")
    if width < 1:
        raise ValueError("width must be positive")
    digits = []
    while n:
        n, rem = divmod(n, 62)
        digits.append(BASE62_ALPHABET[rem])
    if len(digits) > width:
        raise ValueError(f"value does not fit in {width} base62 digits")
    return "".join(reversed(digits)).rjust(width, "0")


def _checksum(payload: str) -> str:
    return base62(zlib.crc32(payload.encode("ascii")), _CHECKSUM_CHARS)


def _random_body() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(_SECRET_BYTES)).rstrip(b"=").decode("ascii")


def _with_checksum(payload: str) -> str:
    return f"{payload}_{_checksum(payload)}"


def generate_api_key(environment: str) -> str:
    """Create a new customer API key for the "live" or "test" environment."""
    if environment not in ENVIRONMENTS:
        raise ValueError(f"environment must be one of {ENVIRONMENTS}, got {environment!r}")
    return _with_checksum(f"gw_{environment}_{_random_body()}")


def generate_staff_token() -> str:
    """Create a new staff (operator) token."""
    return _with_checksum(f"gw_staff_{_random_body()}")


def credential_kind(text: str) -> str | None:
    """Return "live", "test" or "staff" for a well-formed credential with a valid checksum, else None."""
    # Cheap shape checks first: this runs on every request before any lookup.
    if not isinstance(text, str) or len(text) not in (API_KEY_LENGTH, STAFF_TOKEN_LENGTH):
        return None
    match = _CREDENTIAL_RE.fullmatch(text)
    if match is None:
        return None
    payload, _, checksum = text.rpartition("_")
    if _checksum(payload) != checksum:
        return None
    return match.group(1)


def secret_hash(pepper: bytes, credential: str) -> str:
    """Hex HMAC-SHA256 of a credential under the server-side pepper: what gets stored and looked up."""
    if not isinstance(pepper, bytes) or not pepper:
        raise ValueError("pepper must be non-empty bytes")
    return hmac.new(pepper, credential.encode("utf-8"), hashlib.sha256).hexdigest()


def display_prefix(credential: str) -> str:
    """The non-secret leading characters shown to users to tell keys apart."""
    return credential[:DISPLAY_PREFIX_CHARS]


def last4(credential: str) -> str:
    """The last four characters, shown alongside the prefix."""
    return credential[-4:]
