"""The one place where error codes become HTTP statuses and JSON bodies (spec 9.8)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException

from domain.errors import DomainError

STATUS = {
    400: ("invalid_json", "invalid_request", "unsupported_parameter", "invalid_model",
          "credentials_in_url", "ambiguous_credentials", "idempotency_key_required",
          "invalid_base_url", "guardrail_blocked", "context_length_exceeded"),
    401: ("missing_api_key", "invalid_api_key", "api_key_revoked", "api_key_expired"),
    402: ("insufficient_credits", "budget_exceeded", "trial_expired", "account_in_arrears"),
    403: ("ip_not_allowed", "referrer_not_allowed", "insufficient_scope", "model_not_allowed",
          "forbidden", "wrong_credential_type", "account_suspended"),
    404: ("model_not_found", "not_found"),
    405: ("method_not_allowed",),
    408: ("request_timeout",),
    409: ("idempotency_in_progress", "conflict", "key_name_taken", "key_limit_reached",
          "last_owner", "already_erased"),
    413: ("request_too_large",),
    422: ("model_pricing_missing", "idempotency_key_reused", "grant_limit_exceeded"),
    429: ("rate_limit_exceeded", "concurrency_limit_exceeded", "key_request_quota_exhausted"),
    500: ("internal_error",),
    502: ("provider_error",),
    503: ("no_provider_available", "service_unavailable", "overloaded"),
    504: ("provider_timeout",),
}
CODE_STATUS = {code: status for status, codes in STATUS.items() for code in codes}
OPENAI_TYPE = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
               403: "permission_error", 404: "not_found_error", 405: "invalid_request_error",
               408: "invalid_request_error",
               409: "conflict_error", 413: "invalid_request_error",
               422: "invalid_request_error", 429: "rate_limit_error"}
# 9.8's Anthropic column, for /v1/messages* and Anthropic-shaped model requests.
ANTHROPIC_TYPE = {400: "invalid_request_error", 401: "authentication_error",
                  402: "billing_error", 403: "permission_error", 404: "not_found_error",
                  413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
                  502: "api_error", 503: "overloaded_error", 504: "api_error"}


def anthropic_style(request: Request) -> bool:
    """Whether the caller speaks Anthropic's API: its routes, or a models request that
    carries ``anthropic-version`` (9.5, 9.8)."""
    path = request.scope.get("path", "")
    return path.startswith("/v1/messages") or (
        path.startswith("/v1/models") and "anthropic-version" in request.headers)


def _openai_type(status: int, path: str) -> str:
    # As api.openai.com answers on /v1 (an SDK shows it): a bad key is an invalid request.
    if status == 401 and path.startswith("/v1/"):
        return "invalid_request_error"
    return OPENAI_TYPE.get(status, "server_error")


def error_response(request_id: str, code: str, message: str, param: str | None = None,
                   details: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None, *, status: int | None = None,
                   request: Request | None = None, openai_type: str | None = None) -> Response:
    status = status or CODE_STATUS.get(code, 400)
    extra = dict(headers or {})
    if status in (429, 503) or code == "idempotency_in_progress":  # 9.8, 11.2
        extra.setdefault("retry-after", "1")
    path = request.scope.get("path", "") if request is not None else ""
    body = error_body(request_id, code, message, status, path,
                      anthropic=request is not None and anthropic_style(request),
                      param=param, details=details, openai_type=openai_type)
    return Response(content=body, status_code=status, media_type="application/json",
                    headers=extra)


def error_body(request_id: str, code: str, message: str, status: int, path: str, *,
               anthropic: bool, param: str | None = None,
               details: dict[str, Any] | None = None, openai_type: str | None = None) -> bytes:
    """The JSON error body of 9.8: Anthropic's shape for its callers, else OpenAI's. Also
    used by the ASGI edge, which answers some requests before Litestar sees them."""
    message = message[:500]
    if anthropic:
        return msgspec.json.encode({"type": "error", "error": {
            "type": ANTHROPIC_TYPE.get(status, "invalid_request_error"), "message": message,
            "code": code}, "request_id": request_id})
    error: dict[str, Any] = {"message": message,
                             "type": openai_type or _openai_type(status, path),
                             "param": param, "code": code, "request_id": request_id}
    if details:
        error["details"] = details
    return msgspec.json.encode({"error": error})


def request_id_of(request: Request) -> str:
    return request.scope.get("state", {}).get("request_id", "")


def domain_error_handler(request: Request, error: DomainError) -> Response:
    status = getattr(error, "status", None)  # a provider's refusal keeps its status
    retry = getattr(error, "retry_after", None)
    return error_response(request_id_of(request), error.code, error.message, error.param,
                          error.details,
                          {"retry-after": str(retry)} if retry is not None else None,
                          status=status, request=request)


_HTTP_CODES = {400: "invalid_request", 401: "missing_api_key", 403: "forbidden",
               404: "not_found", 405: "method_not_allowed", 413: "request_too_large",
               429: "rate_limit_exceeded", 503: "service_unavailable"}


def http_error_handler(request: Request, error: HTTPException) -> Response:
    code = _HTTP_CODES.get(error.status_code, "invalid_request")
    message = {404: "no such route", 405: "method not allowed on this route",
               413: "the request body is larger than the limit"}.get(
        error.status_code, "the request could not be processed")
    path = request.scope.get("path", "")
    if error.status_code in (404, 405) and path.startswith("/v1/"):
        # As OpenAI answers a route it does not have (the SDKs show this message).
        message = f"Invalid URL ({request.method} {path[:200]})"
    status = error.status_code if error.status_code < 500 else 500
    unrouted = error.status_code in (404, 405) and path.startswith("/v1/")
    return error_response(request_id_of(request), code, message, status=status,
                          request=request,
                          openai_type="invalid_request_error" if unrouted else None)


def internal_error_handler(request: Request, error: Exception) -> Response:
    import logging

    logging.getLogger("gatewayz.http").exception("unhandled error", exc_info=error)
    return error_response(request_id_of(request), "internal_error",
                          "an internal error occurred; it has been logged", request=request)
