"""Domain rule violations, each with a stable machine-readable code."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A command broke a business rule; ``code`` is part of the public API."""

    def __init__(self, code: str, message: str, *, param: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.details = details

