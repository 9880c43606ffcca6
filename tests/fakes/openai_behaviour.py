"""What FakeOpenAI is scripted to answer (``Behaviour``) and the error bodies it sends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

# (type, code, message) per status, modelled on what api.openai.com returns,
# so that SDKs and the gateway's error mapping see realistic bodies.
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory",
          "Country, region, or territory not supported."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    408: ("timeout", None, "Request timed out."),
    409: ("invalid_request_error", None, "Conflict."),
    422: ("invalid_request_error", None, "Unprocessable entity."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request."),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
    504: ("server_error", None, "Gateway timeout."),
}


@dataclass(frozen=True)
class Behaviour:
    status: int = 200
    delay_before_headers: float = 0.0
    content: str | None = None
    chunk_interval: float = 0.0
    words_per_chunk: int = 1
    prompt_tokens: int | None = None
    report_usage: bool = True
    empty_stream: bool = False
    fail_mid_stream_after: int | None = None
    close_connection: bool = False
    # (name, arguments JSON) per parallel tool call; overrides the default tool choice.
    tool_calls: tuple[tuple[str, str], ...] = ()
    reasoning: str | None = None
    cached_tokens: int = 0
    # Only used on an error status: the retry-after header and the error body's fields.
    retry_after: int | None = None
    error_code: str | None = None
    error_param: str | None = None
    error_message: str | None = None
    # Sent on success responses only, e.g. ("x-request-id", "req_1"), ("set-cookie", "a=b").
    extra_headers: tuple[tuple[str, str], ...] = ()


def _error_body(status: int, message: str | None = None, *, code: str | None = None,
                param: str | None = None) -> dict[str, Any]:
    kind, default_code, default_message = _ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None,
                 f"Upstream returned HTTP {status}.")
    )
    return {"error": {"message": message or default_message, "type": kind, "param": param,
                      "code": code or default_code}}


def _error(status: int, message: str | None = None) -> web.Response:
    return web.json_response(_error_body(status, message), status=status)


def _scripted_error(behaviour: Behaviour) -> web.Response:
    headers = {}
    if behaviour.retry_after is not None:
        headers["retry-after"] = str(behaviour.retry_after)
    body = _error_body(behaviour.status, behaviour.error_message, code=behaviour.error_code,
                       param=behaviour.error_param)
    return web.json_response(body, status=behaviour.status, headers=headers)
