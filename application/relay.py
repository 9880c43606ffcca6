"""Relay: pass a provider's stream to the client and settle it when it ends (6.5, 9.7).

- complete stream: settle by usage (always requested upstream; estimated if still absent);
- client left: charge what was generated so far (nothing if no output yet);
- the request cap reached mid-stream: end with an error event and charge what was delivered
  (the client has it; voiding would make an over-long stream free);
- provider error, broken or empty stream: void.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

from application.catalog_view import Offer
from application.crashpoints import crash_point
from application.exchange import Prepared
from application.inference_call import Call, InferenceResponse, ms_since
from application.settle import Settler
from application.usage_meter import estimated_usage


class StreamCut(Exception):
    """The provider's stream broke off (or the request cap cut it): the client's connection
    is cut too, after the error event, so an SDK reports a connection failure as it would
    from the provider itself. ``charged``: output was charged (the cap), so a retry under
    the same Idempotency-Key must not run again."""

    def __init__(self, charged: bool) -> None:
        super().__init__("the provider stream broke off")
        self.charged = charged


def unterminated(event: bytes) -> bytes:
    """An error event without its closing blank line: its bytes reach a client that reads
    them, but an SSE parser (the SDKs') sees the connection cut before it, not an answer."""
    return event[:-1] if event.endswith(b"\n\n") else event


class Relay:
    def __init__(self, settler: Settler) -> None:
        self.settler = settler

    def response(self, call: Call, offer: Offer, upstream: Any,
                 prepared: Prepared) -> InferenceResponse:
        def abandon() -> None:
            upstream.close()
            self.settler.void(call, "cancelled_before_output",
                              "the stream was dropped before it was read")

        return InferenceResponse(200, response_headers(call, offer, upstream, prepared) |
                                 {"content-type": "text/event-stream",
                                  "cache-control": "no-cache"},
                                 stream=RelayStream(self.relay(call, offer, upstream, prepared),
                                                    abandon))

    async def relay(self, call: Call, offer: Offer, upstream: Any,
                    prepared: Prepared) -> AsyncIterator[bytes]:
        meter = prepared.exchange.meter(call.chat_for(offer), call.request_id)
        # A meter that knows its stream's state (Responses' sequence numbers) ends it itself.
        error_event = getattr(meter, "error_event", None) or prepared.exchange.error_event
        ttfb = 0
        disconnected = failed = cut = False
        try:
            async for data in upstream.chunks():
                if not data:  # the provider is quiet: keep the client's connection alive
                    yield prepared.exchange.keep_alive()
                    continue
                if not ttfb:
                    ttfb = ms_since(call.started)
                out = meter.feed(data)
                if out:
                    yield out
                    crash_point("mid_stream")
            tail = meter.flush()
            if tail:
                yield tail
            if not meter.done and not meter.error:
                failed = True
                yield unterminated(error_event(call.request_id))
                raise StreamCut(charged=False)
        except StreamCut:
            raise
        except (GeneratorExit, asyncio.CancelledError):
            # A client that closes once [DONE] went out left a finished stream, not a
            # cut one (the server may only notice at the generator's last yield).
            disconnected = not meter.done
            raise
        except Exception:
            # The aiohttp total timeout is the request cap: past it, the stream was cut.
            cut = time.monotonic() >= call.deadline - 0.05
            failed = not cut
            # 9.7: once bytes have gone out, end with an error event and no [DONE].
            yield unterminated(error_event(call.request_id))
            raise StreamCut(charged=cut) from None
        finally:
            upstream.close()
            self._finish(call, offer, meter, ttfb, disconnected or cut, failed, disconnected)

    def _finish(self, call: Call, offer: Offer, meter: Any, ttfb: int,
                partial: bool, failed: bool, disconnected: bool) -> None:
        if call.aggregate.outcome is not None:
            return
        settler = self.settler
        if partial:
            if meter.content_chunks == 0:
                settler.void(call, "cancelled_before_output", "client left before any output")
                return
            usage, source = meter.usage, "provider"
            if usage is None:
                usage, source = estimated_usage(call.chat.messages, meter.output_text), \
                    "estimated"
            settler.settle(call, offer, usage, source, meter.finish_reason, ttfb, disconnected)
        elif failed or meter.error or not meter.done:
            settler.void(call, "provider_error", "the stream ended with a provider error")
        elif meter.content_chunks == 0:
            settler.void(call, "empty_stream", "the provider sent no output")
        else:
            usage, source = meter.usage, "provider"
            if usage is None:
                usage, source = estimated_usage(call.chat.messages, meter.output_text), \
                    "estimated"
            settler.settle(call, offer, usage, source, meter.finish_reason, ttfb, False)


class RelayStream:
    """The relay as the HTTP layer iterates it. A generator closed (or dropped) before its
    first step runs none of its code, so its ``finally`` would never end the hold: this
    wrapper does, at once, instead of leaving it to the TTL sweep."""

    def __init__(self, generator: AsyncIterator[bytes], abandon: Callable[[], None]) -> None:
        self._generator = generator
        self._abandon: Callable[[], None] | None = abandon

    def __aiter__(self) -> RelayStream:
        return self

    async def __anext__(self) -> bytes:
        self._abandon = None  # started: the generator's own clean-up ends the hold now
        return await self._generator.__anext__()

    async def aclose(self) -> None:
        self._drop()
        await self._generator.aclose()  # type: ignore[attr-defined]

    def _drop(self) -> None:
        abandon, self._abandon = self._abandon, None
        if abandon is not None:
            abandon()

    def __del__(self) -> None:  # dropped without a close: a wrapper failed in between
        try:
            self._drop()
        except Exception:  # never raise from a finaliser; the TTL sweep remains
            pass


def response_headers(call: Call, offer: Offer, upstream: Any,
                     prepared: Prepared) -> dict[str, str]:
    """The inference headers of 9.9 known before the first byte."""
    provider_ms = sum(a.latency_ms for a in call.attempts) + call.read_ms
    headers = {"x-gatewayz-provider": offer.provider.slug, "x-gatewayz-model": offer.model_id,
               "x-gatewayz-attempts": str(len(call.attempts)),
               # 9.9: the gateway's own time so far, the provider's excluded.
               "x-gatewayz-overhead-ms": str(max(0, ms_since(call.started) - provider_ms))}
    resolution = call.resolution
    if resolution is not None and resolution.router:
        headers["x-gatewayz-router"] = resolution.router
    if resolution is not None and resolution.route_target:
        headers["x-gatewayz-route-target"] = resolution.route_target
    if prepared.dropped:
        headers["x-gatewayz-dropped-params"] = param_list(prepared.dropped)
    if prepared.adjusted:
        headers["x-gatewayz-adjusted-params"] = param_list(prepared.adjusted)
    passed = getattr(upstream, "headers", None) or {}
    upstream_id = passed.get("x-request-id") or passed.get("request-id")
    if upstream_id:
        upstream_id = upstream_id[:200]
        headers["x-upstream-request-id"] = upstream_id
        headers["x-gatewayz-upstream-request-id"] = upstream_id
    processing = passed.get("openai-processing-ms")
    if processing and processing.isdigit():
        headers["openai-processing-ms"] = processing[:12]
    return headers


MAX_PARAM_HEADER = 2048  # bytes; SDKs refuse response heads far smaller than a body can make


def param_list(names: list[str]) -> str:
    """Parameter names for a header: any name the client sent, so each is percent-encoded
    outside printable ASCII (no CR/LF, nothing Latin-1 cannot carry), at most 64 characters,
    and the list ends with "..." where it would pass MAX_PARAM_HEADER."""
    out: list[str] = []
    size = 0
    for name in names:
        safe = quote(name[:64], safe="!#$&'*+-.^_`|~:/@[]")
        if size + len(safe) + 2 > MAX_PARAM_HEADER - 5:
            out.append("...")
            break
        out.append(safe)
        size += len(safe) + 2
    return ", ".join(out)
