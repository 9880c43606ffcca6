"""Dispatch: call the offers in order, failing over, within the request's deadline (2.8, 6.5)."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import msgspec

from application.catalog_view import BUILTIN_PROVIDER, Offer
from application.crashpoints import crash_point
from application.exchange import Prepared
from application.fan_out import send_parts
from application.inference_call import Attempt, Call, InferenceResponse, ms_since
from application.messages_request import DEFAULT_VERSION
from application.ports import ProviderClient, ProviderTarget
from application.relay import Relay, response_headers
from application.settle import Settler
from application.upstream_errors import Failures, UpstreamRefusal, read_error
from application.usage_meter import estimated_usage
from domain.errors import DomainError

FAILOVER_STATUSES = {401, 403, 404, 408, 429} | set(range(500, 600))
SAME_PROVIDER_TRIES = 3  # 2.8: at most 3 attempts per model
BACKOFF_S = 0.25
MAX_RETRY_AFTER_S = 5
RETRY, NEXT, STOP = "retry", "next", "stop"
CLIENT_ERROR_STATUSES = {400, 413, 422}
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.encode


class Dispatcher:
    def __init__(self, clients: dict[str, ProviderClient], credentials: Callable[[str], str],
                 settler: Settler, health: Any = None) -> None:
        self.clients = clients
        self.health = health  # routing_health.RoutingHealth: breakers and passive capture
        self.credentials = credentials
        self.settler = settler
        self.relay = Relay(settler)

    def _target(self, call: Call, offer: Offer) -> ProviderTarget:
        p = offer.provider
        credential = self.credentials(p.slug) if p.slug != BUILTIN_PROVIDER else ""
        return ProviderTarget(p.slug, p.base_url, p.protocol, p.allow_private, p.timeout_ms,
                              credential, offer.native_model_id,
                              total_timeout_s=max(call.remaining(), 0.001))

    async def dispatch(self, call: Call) -> InferenceResponse:
        crash_point("after_hold_commit")
        failures = Failures()
        per_model = Counter(offer.model_id for offer in call.offers)
        for offer, prepared in zip(call.offers, call.prepared, strict=True):
            # 2.8: the same provider again only when it is its model's sole candidate.
            tries = SAME_PROVIDER_TRIES if per_model[offer.model_id] == 1 else 1
            for n in range(tries):
                if n and not await self._pause(call, n, failures):
                    break
                outcome = await self._attempt(call, offer, prepared, failures)
                if isinstance(outcome, InferenceResponse):
                    return outcome
                if outcome == STOP:
                    self.settler.void(call, failures.reason,
                                      "no provider answered successfully")
                    raise failures.error(time.time())
                if outcome != RETRY:
                    break
        self.settler.void(call, failures.reason, "no provider answered successfully")
        raise failures.error(time.time())

    async def _pause(self, call: Call, n: int, failures: Failures) -> bool:
        """250 ms x 2^n with +-20% jitter, or the provider's Retry-After up to 5 s (2.8);
        False when the request's deadline or a longer Retry-After forbids another try."""
        hint = failures.refusals[-1].retry_after if failures.refusals and \
            failures.kinds[-1] == str(failures.refusals[-1].status) else None
        if hint is not None and hint > MAX_RETRY_AFTER_S:
            return False
        wait = float(hint) if hint is not None else BACKOFF_S * 2 ** (n - 1) * \
            random.uniform(0.8, 1.2)
        if wait >= call.remaining():
            return False
        await asyncio.sleep(wait)
        return True

    async def _attempt(self, call: Call, offer: Offer, prepared: Prepared,
                       failures: Failures) -> InferenceResponse | str:
        """One provider call: the response, or what to do next (RETRY, NEXT or STOP)."""
        if call.remaining() <= 0:
            failures.timed_out()
            return STOP
        slug, builtin = offer.provider.slug, offer.provider.slug == BUILTIN_PROVIDER
        health = self.health if not builtin else None
        if health is not None:
            admission = health.admit(slug, offer.model_id)
            if not admission.allowed:
                failures.circuit_open(admission.retry_at)
                return NEXT
        client = self.clients["echo" if builtin else "http"]
        began = time.monotonic()
        try:
            upstream = await _send(client, self._target(call, offer), prepared)
        except TimeoutError:
            self._failed(call, offer, began, "timeout", 0, health)
            failures.timed_out()
            return RETRY
        except Exception:  # OSError and aiohttp client errors: a failed attempt
            self._failed(call, offer, began, "connection_error", 0, health)
            failures.unreachable()
            return RETRY
        if upstream.status == 200:
            latency = ms_since(began)
            call.attempts.append(Attempt(slug, "ok", 200, latency))
            if health is not None:
                health.observe(slug, offer.model_id, "success", 200, latency, latency,
                               account=call.principal.account_id)
            if call.chat.stream:
                return self.relay.response(call, offer, upstream, prepared)
            return await self._complete(call, offer, upstream, prepared)
        self._failed(call, offer, began, "http_error", upstream.status, health)
        refusal = await read_error(upstream)
        if upstream.status in CLIENT_ERROR_STATUSES:
            # The provider judged the request itself: its code, param and message are the
            # client's to see (9.8), and another provider would refuse it too.
            self.settler.void(call, "rejected", f"provider answered {upstream.status}")
            raise refusal
        failures.refused(refusal)
        if upstream.status not in FAILOVER_STATUSES:
            return STOP
        # 401/403/404 say this provider's configuration is wrong: another may serve, the
        # same one will not.
        return NEXT if upstream.status in (401, 403, 404) else RETRY

    def _failed(self, call: Call, offer: Offer, began: float, outcome: str, status: int,
                health) -> None:
        latency = ms_since(began)
        call.attempts.append(Attempt(offer.provider.slug, outcome, status, latency))
        if health is not None:
            # 400/413/422 are the request's fault: the provider answered, so a success.
            kind = ("timeout" if outcome == "timeout" or status == 408 else
                    "rate_limited" if status == 429 else
                    "success" if status in CLIENT_ERROR_STATUSES else "error")
            health.observe(offer.provider.slug, offer.model_id, kind, status, None, latency,
                           account=call.principal.account_id)

    async def count_tokens(self, chat: Any, offer: Offer) -> int | None:
        """An Anthropic upstream's own count of a request's input, or None if it cannot."""
        fields = ("messages", "system", "tools", "tool_choice", "thinking")
        body = {"model": offer.native_model_id,
                **{k: chat.body[k] for k in fields if chat.body.get(k) is not None}}
        target = ProviderTarget(offer.provider.slug, offer.provider.base_url, "anthropic",
                                offer.provider.allow_private, offer.provider.timeout_ms,
                                self.credentials(offer.provider.slug), offer.native_model_id,
                                total_timeout_s=offer.provider.timeout_ms / 1000)
        headers = {"anthropic-version": chat.anthropic_version or DEFAULT_VERSION}
        try:
            upstream = await self.clients["http"].send(target, "/messages/count_tokens",
                                                       _encode(body), headers)
        except Exception:  # unreachable: the estimate answers instead
            return None
        try:
            if upstream.status != 200:
                return None
            count = _decode(await upstream.read()).get("input_tokens")
        except Exception:
            return None
        finally:
            upstream.close()
        if isinstance(count, int) and not isinstance(count, bool) and 0 <= count <= 10**9:
            return count
        return None

    async def _complete(self, call: Call, offer: Offer, upstream: Any,
                        prepared: Prepared) -> InferenceResponse:
        ttfb = ms_since(call.started)
        began = time.monotonic()
        try:
            raw = await upstream.read()
            call.read_ms = ms_since(began)
            payload = _decode(raw)
        except TimeoutError:
            self.settler.void(call, "timeout", "the provider did not finish in time")
            raise DomainError("provider_timeout", "the provider did not answer in time") \
                from None
        except Exception:
            self.settler.void(call, "provider_error", "unreadable provider response")
            raise DomainError("provider_error", "the provider sent an unreadable response") \
                from None
        finally:
            upstream.close()
        chat = call.chat_for(offer)
        completed = prepared.exchange.complete(chat, payload)
        usage, source = completed.usage, "provider"
        if usage is None:
            source = "estimated"
            usage = estimated_usage(chat.messages, completed.text)
        # The hold is already durable; the settlement commits right behind the answer, as
        # for streams. A crash in between leaves the hold to the dead-worker sweep, which
        # charges 0: never a wrong charge, at worst an uncharged answer.
        self.settler.settle(call, offer, usage, source, completed.finish, ttfb, False)
        headers = response_headers(call, offer, upstream, prepared)
        headers["x-gatewayz-cost-micros"] = str(call.charged)
        return InferenceResponse(200, headers, _encode(completed.payload))


async def _send(client: ProviderClient, target: ProviderTarget, prepared: Prepared) -> Any:
    if not prepared.parts:
        return await client.send(target, prepared.path, prepared.body, prepared.headers)
    return await send_parts(client, target, prepared.parts)


__all__ = ["CLIENT_ERROR_STATUSES", "Dispatcher", "FAILOVER_STATUSES", "UpstreamRefusal"]
