"""Dispatch: call the offers in order, failing over, within the request's deadline (2.8, 6.5)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgspec

from application.catalog import BUILTIN_PROVIDER, Offer
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
CLIENT_ERROR_STATUSES = {400, 413, 422}
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.encode


class Dispatcher:
    def __init__(self, clients: dict[str, ProviderClient], credentials: Callable[[str], str],
                 settler: Settler) -> None:
        self.clients = clients
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
        for offer, prepared in zip(call.offers, call.prepared, strict=True):
            if call.remaining() <= 0:
                failures.timed_out()
                break
            client = self.clients["echo" if offer.provider.slug == BUILTIN_PROVIDER else "http"]
            began = time.monotonic()
            try:
                upstream = await _send(client, self._target(call, offer), prepared)
            except TimeoutError:
                call.attempts.append(Attempt(offer.provider.slug, "timeout", 0, ms_since(began)))
                failures.timed_out()
                continue
            except Exception:  # OSError and aiohttp client errors: a failed attempt
                call.attempts.append(Attempt(offer.provider.slug, "connection_error", 0,
                                             ms_since(began)))
                failures.unreachable()
                continue
            if upstream.status == 200:
                call.attempts.append(Attempt(offer.provider.slug, "ok", 200, ms_since(began)))
                if call.chat.stream:
                    return self.relay.response(call, offer, upstream, prepared)
                return await self._complete(call, offer, upstream, prepared)
            call.attempts.append(Attempt(offer.provider.slug, "http_error", upstream.status,
                                         ms_since(began)))
            refusal = await read_error(upstream)
            if upstream.status in CLIENT_ERROR_STATUSES:
                # The provider judged the request itself: its code, param and message are the
                # client's to see (9.8), and another provider would refuse it too.
                self.settler.void(call, "rejected", f"provider answered {upstream.status}")
                raise refusal
            failures.refused(refusal)
            if upstream.status not in FAILOVER_STATUSES:
                break
        self.settler.void(call, failures.reason, "no provider answered successfully")
        raise failures.error()

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
        completed = prepared.exchange.complete(call.chat, payload)
        usage, source = completed.usage, "provider"
        if usage is None:
            source = "estimated"
            usage = estimated_usage(call.chat.messages, completed.text)
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
