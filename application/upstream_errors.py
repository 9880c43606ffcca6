"""What a provider's refusal means for the client (9.8): its code, param and message pass
through; when every candidate refused for the same reason, the client hears that reason."""

from __future__ import annotations

import math
from typing import Any

import msgspec

from domain.errors import DomainError

_decode = msgspec.json.Decoder().decode
MAX_RETRY_AFTER_S = 3600  # a provider's hint is bounded like every number from outside
# Anthropic's error types (and OpenAI's when its code is null) as the gateway's codes.
_CODE_OF_TYPE = {"invalid_request_error": "invalid_request", "not_found_error": "not_found",
                 "request_too_large": "request_too_large",
                 "rate_limit_error": "rate_limit_exceeded", "overloaded_error": "overloaded"}
_CODE_OF_STATUS = {400: "invalid_request", 404: "model_not_found", 413: "request_too_large",
                   422: "invalid_request", 429: "rate_limit_exceeded"}


class UpstreamRefusal(DomainError):
    """A provider's error answer, with the status the client gets for it."""

    def __init__(self, status: int, code: str, message: str, param: str | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(code, message, param=param)
        self.status = status
        self.retry_after = retry_after


def retry_after(headers: dict[str, str]) -> int | None:
    """Seconds from ``retry-after`` (or ``retry-after-ms``), rounded up and bounded."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            continue  # an HTTP date: rare from providers; the default applies
        if seconds == seconds and seconds >= 0:  # not NaN
            return min(math.ceil(seconds), MAX_RETRY_AFTER_S)
    return None


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


async def read_error(upstream: Any) -> UpstreamRefusal:
    """The provider's error answer as a refusal; never raises, whatever the body."""
    status = upstream.status
    code = message = param = None
    try:
        payload = _decode(await upstream.read())
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, dict):
            message = _text(error.get("message"), 500)
            param = _text(error.get("param"), 200)
            code = _text(error.get("code"), 100) or _CODE_OF_TYPE.get(error.get("type"))
    except Exception:  # unreadable or not JSON: the status alone speaks
        pass
    finally:
        upstream.close()
    if status == 404 and code in (None, "not_found"):
        code = "model_not_found"
    code = code or _CODE_OF_STATUS.get(status, "provider_error")
    return UpstreamRefusal(status, code, message or f"the provider answered {status}", param,
                           retry_after(getattr(upstream, "headers", {}) or {}))


class Failures:
    """Why each attempt failed, to answer the client once every candidate has."""

    def __init__(self) -> None:
        self.kinds: list[str] = []
        self.refusals: list[UpstreamRefusal] = []
        self.skipped = 0
        self.soonest: float | None = None  # wall-clock time the first open breaker half-opens

    def circuit_open(self, retry_at: float | None) -> None:
        """A candidate skipped because its breaker is open (3.3): not an attempt."""
        if retry_at is not None:
            self.soonest = retry_at if self.soonest is None else min(self.soonest, retry_at)
        self.skipped += 1

    def timed_out(self) -> None:
        self.kinds.append("timeout")

    def unreachable(self) -> None:
        self.kinds.append("provider_error")

    def refused(self, refusal: UpstreamRefusal) -> None:
        self.kinds.append("timeout" if refusal.status == 408 else str(refusal.status))
        self.refusals.append(refusal)

    @property
    def reason(self) -> str:
        """The void reason recorded on the request: the last attempt's."""
        return "timeout" if self.kinds and self.kinds[-1] == "timeout" else "provider_error"

    def error(self, now: float = 0.0) -> DomainError:
        if not self.kinds and self.skipped:  # 2.7: every circuit open, nothing tried
            wait = max(1, math.ceil((self.soonest or now + 1) - now)) if now else 1
            return UpstreamRefusal(503, "no_provider_available",
                                   "every provider of this model is unavailable (circuit "
                                   f"open); retry after {wait} s", retry_after=wait)
        if self.kinds and all(k == "429" for k in self.kinds):
            wait = max((r.retry_after or 1 for r in self.refusals), default=1)
            return UpstreamRefusal(429, "rate_limit_exceeded",
                                   "every provider of this model is rate-limiting requests; "
                                   f"retry after {wait} s", retry_after=wait)
        if self.kinds and all(k == "404" for k in self.kinds):
            last = self.refusals[-1]
            return UpstreamRefusal(404, last.code, last.message, last.param or "model")
        if self.reason == "timeout":
            return DomainError("provider_timeout", "the provider did not answer in time")
        return DomainError("provider_error", "no provider could serve this request")
