"""Anonymous use of free models (1.11): served with no account, no hold and no event.

A request without a credential may use a model whose id ends in ``:free`` and whose every
offer is priced at zero; nothing is charged, so nothing is held and nothing is recorded
(the spec keeps anonymous use out of the event store: metrics and daily counts only). The
provider call itself goes through the same dispatcher code, failover and relay as a paid
request; only its settlement writes nowhere.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from typing import Any

from application.chat_request import ChatRequest
from application.dispatch import Dispatcher
from application.inference import ENDPOINTS, prepare_offers
from application.inference_call import Call, InferenceResponse
from application.principals import KeyPrincipal, KeyRecord
from application.reserve import size_hold
from application.settle import Settler
from domain import pools
from domain.errors import DomainError
from domain.inference_request import InferenceRequest

FREE_SUFFIX = ":free"
ANONYMOUS = KeyPrincipal(KeyRecord(
    key_id="anonymous", account_id="anonymous", environment="live", status="active",
    expires_at=None, scopes=("inference:use",), allowed_models=(), secret_valid_until=None,
    prefix="anonymous"))


class _Unrecorded:
    """The writer of anonymous requests: their terminal event is never saved."""

    def submit(self, aggregate: Any) -> Future:
        done: Future = Future()
        done.set_result(None)
        return done


def missing_key() -> DomainError:
    return DomainError("missing_api_key", "an API key is required (Authorization: Bearer); "
                       "without one only free models (ids ending in :free) may be used")


def is_free_model(model: object) -> bool:
    return isinstance(model, str) and model.endswith(FREE_SUFFIX)


class AnonymousInference:
    def __init__(self, inference: Any) -> None:
        self.inference = inference  # the InferenceService: catalog, offers, request cap
        self.dispatcher = Dispatcher(inference.dispatcher.clients,
                                     inference.dispatcher.credentials,
                                     Settler(_Unrecorded()))  # type: ignore[arg-type]

    async def chat(self, request_id: str, chat: ChatRequest) -> InferenceResponse:
        """Serve one anonymous request; 401 ``missing_api_key`` unless the model is free."""
        if not is_free_model(chat.model):
            raise missing_key()
        resolution = self.inference.resolve(chat, ANONYMOUS)
        offers = resolution.offers
        if any(not offer.prices.is_free for offer in offers):
            raise missing_key()  # a ":free" name with a price is not free
        _, limits, estimated_input = size_hold(chat, offers)
        usable = prepare_offers(chat, offers, limits)
        offers = [offer for offer, _ in usable]
        started = time.monotonic()
        aggregate = InferenceRequest(
            request_id=request_id, account_id=ANONYMOUS.account_id,
            key_id=ANONYMOUS.key.key_id, endpoint=ENDPOINTS[chat.format],
            requested_model=resolution.requested, candidate_models=resolution.models,
            price_snapshot={},
            estimated_input_tokens=estimated_input, output_limit=max(limits),
            hold_micros=0, reserved_by_pool=pools.empty(), stream=chat.stream)
        call = Call(request_id, chat, ANONYMOUS, offers, limits, aggregate, started,
                    started + self.inference.request_cap_s, [p for _, p in usable])
        return await self.dispatcher.dispatch(call)
