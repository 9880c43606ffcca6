"""Dispatch: call the offers in order, failing over, within the request's deadline (2.8, 6.5)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgspec

from application.catalog import BUILTIN_PROVIDER, Offer
from application.chat_request import upstream_chat_body
from application.crashpoints import crash_point
from application.inference_call import Attempt, Call, InferenceResponse, ms_since
from application.ports import ProviderClient, ProviderTarget
from application.relay import Relay
from application.settle import Settler
from application.usage_meter import estimated_usage, usage_from
from domain.errors import DomainError

FAILOVER_STATUSES = {401, 403, 404, 408, 429} | set(range(500, 600))
CLIENT_ERROR_STATUSES = {400, 413, 422}
_encode = msgspec.json.encode
_decode = msgspec.json.Decoder().decode


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
        last_failure = "provider_error"
        for offer, limit in zip(call.offers, call.limits, strict=True):
            if call.remaining() <= 0:
                last_failure = "timeout"
                break
            body = upstream_chat_body(call.chat, offer.native_model_id, limit)
            client = self.clients["echo" if offer.provider.slug == BUILTIN_PROVIDER else "http"]
            began = time.monotonic()
            try:
                upstream = await client.send(self._target(call, offer), "/chat/completions",
                                             _encode(body))
            except TimeoutError:
                call.attempts.append(Attempt(offer.provider.slug, "timeout", 0, ms_since(began)))
                last_failure = "timeout"
                continue
            except Exception:  # OSError and aiohttp client errors: a failed attempt
                call.attempts.append(Attempt(offer.provider.slug, "connection_error", 0,
                                             ms_since(began)))
                last_failure = "provider_error"
                continue
            if upstream.status == 200:
                call.attempts.append(Attempt(offer.provider.slug, "ok", 200, ms_since(began)))
                if call.chat.stream:
                    return self.relay.response(call, offer, upstream)
                return await self._complete(call, offer, upstream)
            call.attempts.append(Attempt(offer.provider.slug, "http_error", upstream.status,
                                         ms_since(began)))
            if upstream.status in CLIENT_ERROR_STATUSES:
                detail = await _upstream_message(upstream)
                self.settler.void(call, "rejected", f"provider answered {upstream.status}")
                raise DomainError("invalid_request",
                                  f"the provider rejected the request: {detail}"[:500])
            upstream.close()
            last_failure = "timeout" if upstream.status == 408 else "provider_error"
            if upstream.status not in FAILOVER_STATUSES:
                break
        self.settler.void(call, last_failure, "no provider answered successfully")
        if last_failure == "timeout":
            raise DomainError("provider_timeout", "the provider did not answer in time")
        raise DomainError("provider_error", "no provider could serve this request")

    async def _complete(self, call: Call, offer: Offer, upstream: Any) -> InferenceResponse:
        ttfb = ms_since(call.started)
        try:
            raw = await upstream.read()
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
        # for streams. A crash in between leaves the hold to the dead-worker sweep, which
        # charges 0: never a wrong charge, at worst an uncharged answer.
        self.settler.settle(call, offer, usage, source, finish, ttfb, False)
        return InferenceResponse(200, headers(call, offer), _encode(payload))


def headers(call: Call, offer: Offer) -> dict[str, str]:
    return {"x-gatewayz-provider": offer.provider.slug, "x-gatewayz-model": call.chat.model}


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
