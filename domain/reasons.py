"""The one rule for the reason an admin or owner gives for a change (11.4: who and why)."""

from __future__ import annotations

from domain.errors import DomainError

MIN_REASON_CHARS = 10


def reason_text(reason: object) -> str:
    """The stripped reason; 400 ``invalid_request`` naming ``reason`` when it is shorter
    than 10 characters (or not text)."""
    if not isinstance(reason, str) or len(reason.strip()) < MIN_REASON_CHARS:
        raise DomainError("invalid_request",
                          f"reason must have at least {MIN_REASON_CHARS} characters",
                          param="reason")
    return reason.strip()
