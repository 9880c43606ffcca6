"""The inference use case: resolve, hold, call with failover, settle exactly once (6.4, 6.5)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import msgspec

from application.access import model_allowed
from application.catalog import BUILTIN_PROVIDER, ECHO_MODEL, CatalogView, Offer, ProviderInfo
from application.chat_request import ChatRequest
from application.group_commit import GroupCommitWriter
from application.ports import (
    Clock,
    HoldStore,
    HoldStoreUnavailable,
    ProviderClient,
    ProviderTarget,
)
from application.principals import KeyPrincipal
from application.sse_relay import SseRelay, stream_error_event
from application.usage_meter import estimated_usage, usage_from
from domain import pools
from domain.errors import DomainError
from domain.inference_request import InferenceRequest
from domain.pricing import (
    Prices,
    TokenUsage,
    cost_micros,
    estimate_input_tokens,
    fallback_prices,
    hold_micros,
    is_premium_model,
    output_limit,
)

FAILOVER_STATUSES = {401, 403, 404, 408, 429} | set(range(500, 600))
CLIENT_ERROR_STATUSES = {400, 413, 422}
_encode = msgspec.json.encode
_decode = msgspec.json.Decoder().decode


@dataclass
class Attempt:
    provider: str
    outcome: str
    status: int
    latency_ms: int

    def as_dict(self) -> dict:
        return {"provider": self.provider, "outcome": self.outcome, "status": self.status,
                "latency_ms": self.latency_ms}


@dataclass
class InferenceResponse:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None


@dataclass
class _Call:
    request_id: str
    chat: ChatRequest
    principal: KeyPrincipal
    offers: list[Offer]
    aggregate: InferenceRequest
    started: float
    attempts: list[Attempt] = field(default_factory=list)


class InferenceService:
    def __init__(self, catalog: CatalogView, holds: HoldStore, writer: GroupCommitWriter,
                 seed_balance: Callable[[str], Any], clients: dict[str, ProviderClient],
                 credentials: Callable[[str], str], clock: Clock) -> None:
        self.catalog = catalog
        self.holds = holds
        self.writer = writer
        self.seed_balance = seed_balance
        self.clients = clients
        self.credentials = credentials
        self.clock = clock

    # -- resolution -----------------------------------------------------------------------
    def resolve(self, model: str, principal: KeyPrincipal) -> list[Offer]:
        if model == ECHO_MODEL:
            if principal.key.environment != "test":
                raise DomainError("model_not_allowed",
                                  "gatewayz/echo is served to test keys only", param="model")
            echo = ProviderInfo(BUILTIN_PROVIDER, "Gatewayz", "echo", "", False, True, 0, 60_000,
                                "")
            return [Offer(ECHO_MODEL, echo, ECHO_MODEL, Prices.from_json(
                {"input": "0", "output": "0"}), None)]
        offers = self.catalog.offers_for(model)
        if not offers:
            org, _, rest = model.partition("/")
            pinned = self.catalog.provider(org)
            if pinned is None or not pinned.enabled or not rest:
                raise DomainError("model_not_found", f"the model {model!r} does not exist",
                                  param="model")
            if is_premium_model(model):
                raise DomainError("model_pricing_missing",
                                  f"{model} has no price set; refusing to guess a premium price",
                                  param="model")
            offers = [Offer(model, pinned, rest, fallback_prices(), None)]
        if not model_allowed(principal.key, model):
            raise DomainError("model_not_allowed", "this key may not use that model",
                              param="model")
        return offers

    # -- the request ----------------------------------------------------------------------
    async def chat(self, request_id: str, chat: ChatRequest,
                   principal: KeyPrincipal) -> InferenceResponse:
        offers = self.resolve(chat.model, principal)
        estimated_input = estimate_input_tokens(chat.messages)
        limits = [output_limit(chat.body, o.max_output_tokens) for o in offers]
        for offer, limit in zip(offers, limits, strict=True):
            if offer.max_output_tokens and limit > offer.max_output_tokens:
                raise DomainError("invalid_request",
                                  f"the output limit exceeds the model's maximum of "
                                  f"{offer.max_output_tokens} tokens", param="max_tokens")
        hold = max(hold_micros(o.prices, estimated_input, lim)
                   for o, lim in zip(offers, limits, strict=True))
        account_id = principal.account_id
        reserved = await self._reserve(account_id, request_id, hold)
        aggregate = InferenceRequest(
            request_id=request_id, account_id=account_id, key_id=principal.key.key_id,
            endpoint="chat.completions", requested_model=chat.model,
            candidate_models=[chat.model],
            price_snapshot={o.provider.slug: o.prices.to_json() for o in offers},
            estimated_input_tokens=estimated_input, output_limit=max(limits),
            hold_micros=hold, reserved_by_pool=reserved, stream=chat.stream)
        try:
            await self.writer.save(aggregate)
        except Exception:
            with contextlib.suppress(HoldStoreUnavailable):  # else the orphan sweep frees it
                self.holds.cancel(account_id, request_id)
            raise DomainError("service_unavailable",
                              "billing is unavailable; the request was not sent") from None
        call = _Call(request_id, chat, principal, offers, aggregate, time.monotonic())
        try:
            return await self._dispatch(call)
        except BaseException:
            if aggregate.outcome is None:
                self._void(call, "cancelled_before_output", "request ended before a response")
            raise

    async def _reserve(self, account_id: str, request_id: str, amount: int) -> dict[str, int]:
        now = int(self.clock.now().timestamp())
        try:
            outcome = self.holds.place(account_id, request_id, amount, now)
            if outcome.status == "unknown_account":
                snapshot = await asyncio.to_thread(self.seed_balance, account_id)
                if snapshot is None:
                    raise DomainError("insufficient_credits",
                                      "this account has no balance yet",
                                      details={"available_micros": 0, "required_micros": amount})
                self.holds.seed(account_id, snapshot)
                outcome = self.holds.place(account_id, request_id, amount, now)
        except HoldStoreUnavailable:
            # Without the shared hold store no worker can prove the balance covers the
            # request: refuse (retryable) rather than risk spending money twice.
            raise DomainError("service_unavailable",
                              "billing holds are unavailable; retry shortly") from None
        if outcome.status != "reserved":
            raise DomainError("insufficient_credits",
                              "the balance does not cover this request's maximum cost",
                              details={"available_micros": outcome.available,
                                       "required_micros": amount})
        assert outcome.reserved_by_pool is not None
        return outcome.reserved_by_pool

    def _target(self, offer: Offer) -> ProviderTarget:
        p = offer.provider
        credential = self.credentials(p.slug) if p.slug != BUILTIN_PROVIDER else ""
        return ProviderTarget(p.slug, p.base_url, p.protocol, p.allow_private, p.timeout_ms,
                              credential, offer.native_model_id)

    async def _dispatch(self, call: _Call) -> InferenceResponse:
        last_failure = "provider_error"
        for offer in call.offers:
            body = dict(call.chat.body)
            body["model"] = offer.native_model_id
            client = self.clients["echo" if offer.provider.slug == BUILTIN_PROVIDER else "http"]
            began = time.monotonic()
            try:
                upstream = await client.send(self._target(offer), "/chat/completions",
                                             _encode(body))
            except TimeoutError:
                call.attempts.append(Attempt(offer.provider.slug, "timeout", 0, _ms(began)))
                last_failure = "timeout"
                continue
            except OSError as error:
                call.attempts.append(Attempt(offer.provider.slug, "connection_error", 0,
                                             _ms(began)))
                last_failure = "provider_error" if not isinstance(error, TimeoutError) \
                    else "timeout"
                continue
            except Exception:  # aiohttp client errors: a failed attempt, never a crash
                call.attempts.append(Attempt(offer.provider.slug, "connection_error", 0,
                                             _ms(began)))
                continue
            if upstream.status == 200:
                call.attempts.append(Attempt(offer.provider.slug, "ok", 200, _ms(began)))
                if call.chat.stream:
                    return self._stream(call, offer, upstream)
                return await self._complete(call, offer, upstream)
            call.attempts.append(Attempt(offer.provider.slug, "http_error", upstream.status,
                                         _ms(began)))
            if upstream.status in CLIENT_ERROR_STATUSES:
                detail = await _upstream_message(upstream)
                self._void(call, "rejected", f"provider answered {upstream.status}")
                raise DomainError("invalid_request",
                                  f"the provider rejected the request: {detail}"[:500])
            upstream.close()
            last_failure = "timeout" if upstream.status == 408 else "provider_error"
            if upstream.status not in FAILOVER_STATUSES:
                break
        self._void(call, last_failure, "no provider answered successfully")
        if last_failure == "timeout":
            raise DomainError("provider_timeout", "the provider did not answer in time")
        raise DomainError("provider_error", "no provider could serve this request")

    # -- non-streaming --------------------------------------------------------------------
    async def _complete(self, call: _Call, offer: Offer, upstream: Any) -> InferenceResponse:
        ttfb = _ms(call.started)
        try:
            raw = await upstream.read()
            payload = _decode(raw)
        except Exception:
            self._void(call, "provider_error", "unreadable provider response")
            raise DomainError("provider_error", "the provider sent an unreadable response") \
                from None
        finally:
            upstream.close()
        usage = usage_from(payload)
        source = "provider"
        if usage is None:
            source = "estimated"
            usage = estimated_usage(call.chat.messages, _choice_text(payload))
        finish = None
        if isinstance(payload, dict):
            payload["model"] = call.chat.model
            choices = payload.get("choices") or [{}]
            finish = choices[0].get("finish_reason") if isinstance(choices[0], dict) else None
        # The hold is already durable; the settlement commits right behind the answer, as
        # for streams. A crash in between leaves the hold to the sweeper, which charges 0:
        # never a wrong charge, at worst an uncharged answer.
        self._settle(call, offer, usage, source, finish, ttfb, False)
        return InferenceResponse(200, self._headers(call, offer), _encode(payload))

    # -- streaming ------------------------------------------------------------------------
    def _stream(self, call: _Call, offer: Offer, upstream: Any) -> InferenceResponse:
        return InferenceResponse(200, self._headers(call, offer) |
                                 {"content-type": "text/event-stream",
                                  "cache-control": "no-cache"},
                                 stream=self._relay(call, offer, upstream))

    async def _relay(self, call: _Call, offer: Offer, upstream: Any) -> AsyncIterator[bytes]:
        meter = SseRelay(call.chat.model)
        ttfb = 0
        disconnected = False
        failed = False
        try:
            async for data in upstream.chunks():
                if not ttfb:
                    ttfb = _ms(call.started)
                out = meter.feed(data)
                if out:
                    yield out
            tail = meter.flush()
            if tail:
                yield tail
            if not meter.done and not meter.error:
                failed = True
                yield stream_error_event(call.request_id)
        except (GeneratorExit, asyncio.CancelledError):
            disconnected = True
            raise
        except Exception:
            failed = True
            # 9.7: once bytes have gone out, end with an error event and no [DONE].
            yield stream_error_event(call.request_id)
        finally:
            upstream.close()
            self._finish_stream(call, offer, meter, ttfb, disconnected, failed)

    def _finish_stream(self, call: _Call, offer: Offer, meter: SseRelay, ttfb: int,
                       disconnected: bool, failed: bool) -> None:
        if call.aggregate.outcome is not None:
            return
        if disconnected:
            if meter.content_chunks == 0:
                self._void(call, "cancelled_before_output", "client left before any output")
                return
            usage, source = meter.usage, "provider"
            if usage is None:
                usage, source = estimated_usage(call.chat.messages, meter.output_text), \
                    "estimated"
            self._settle(call, offer, usage, source, meter.finish_reason, ttfb, True)
        elif failed or meter.error or not meter.done:
            self._void(call, "provider_error", "the stream ended with a provider error")
        elif meter.content_chunks == 0:
            self._void(call, "empty_stream", "the provider sent no output")
        else:
            usage, source = meter.usage, "provider"
            if usage is None:
                usage, source = estimated_usage(call.chat.messages, meter.output_text), \
                    "estimated"
            self._settle(call, offer, usage, source, meter.finish_reason, ttfb, False)

    # -- settlement -----------------------------------------------------------------------
    def _settle(self, call: _Call, offer: Offer, usage: TokenUsage, source: str,
                finish: str | None, ttfb: int, disconnected: bool) -> Future:
        aggregate = call.aggregate
        cost = cost_micros(offer.prices, usage)
        charged = min(cost, aggregate.hold_micros)
        aggregate.settle(
            provider=offer.provider.slug, served_model=call.chat.model,
            attempts=[a.as_dict() for a in call.attempts],
            tokens={"prompt_tokens": usage.prompt_tokens, "cached_tokens": usage.cached_tokens,
                    "completion_tokens": usage.completion_tokens,
                    "reasoning_tokens": usage.reasoning_tokens},
            token_source=source, cost_micros=cost,
            charged_by_pool=pools.settle(aggregate.reserved_by_pool, charged),
            finish_reason=finish if isinstance(finish, str) else None, ttfb_ms=ttfb,
            duration_ms=_ms(call.started), client_disconnected=disconnected)
        # Submitted, not awaited here: settlement must happen even when the client has gone.
        return self.writer.submit(aggregate)

    def _void(self, call: _Call, reason: str, detail: str) -> None:
        if call.aggregate.outcome is not None:
            return
        call.aggregate.void(reason, [a.as_dict() for a in call.attempts], detail)
        self.writer.submit(call.aggregate)

    def _headers(self, call: _Call, offer: Offer) -> dict[str, str]:
        return {"x-gatewayz-provider": offer.provider.slug, "x-gatewayz-model": call.chat.model}


def _ms(since: float) -> int:
    return int((time.monotonic() - since) * 1000)


def _choice_text(payload: Any) -> str:
    try:
        return payload["choices"][0]["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        return ""


async def _upstream_message(upstream: Any) -> str:
    try:
        payload = _decode(await upstream.read())
        message = payload["error"]["message"]
        return str(message)[:300]
    except Exception:
        return "no detail"
    finally:
        upstream.close()
