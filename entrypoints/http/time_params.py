"""Query parameters that carry instants: RFC 3339 in, fixed-width UTC text out."""

from __future__ import annotations

from datetime import UTC, datetime

from litestar import Request

from domain.errors import DomainError
from projections.base import stamp


def optional_time(request: Request, name: str, allow_future: bool = True) -> str | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise DomainError("invalid_request", f"{name} must be an RFC 3339 time",
                          param=name) from None
    if moment.tzinfo is None:
        raise DomainError("invalid_request", f"{name} must include a time zone", param=name)
    if not allow_future and moment > datetime.now(UTC):
        raise DomainError("invalid_request", f"{name} must not be in the future", param=name)
    return stamp(moment)


def as_of_params(request: Request) -> tuple[str | None, str | None]:
    """(``as_of`` as fixed-width UTC text, raw ``as_of_position``): at most one is given
    (11.10); the position text is parsed by projections.as_of against the query's contexts."""
    instant = optional_time(request, "as_of", allow_future=False)
    positions = request.query_params.get("as_of_position")
    if instant is not None and positions is not None:
        raise DomainError("invalid_request", "give as_of or as_of_position, not both",
                          param="as_of_position")
    return instant, positions
