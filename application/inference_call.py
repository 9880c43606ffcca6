"""The state one inference request carries through resolve, reserve, dispatch, relay, settle."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

from application.catalog_view import Offer
from application.chat_request import ChatRequest
from application.principals import KeyPrincipal
from domain.inference_request import InferenceRequest

# Spec 6.4: a request may run 600 s; its hold lives 660 s, so the settlement always lands
# before the sweeper could expire it.
REQUEST_CAP_S = 600.0


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
class Call:
    request_id: str
    chat: ChatRequest
    principal: KeyPrincipal
    offers: list[Offer]
    limits: list[int]  # the output limit sent to each offer, in order
    aggregate: InferenceRequest
    started: float
    deadline: float  # time.monotonic() by which the whole request must be over
    prepared: list = field(default_factory=list)  # exchange.Prepared per offer, in order
    attempts: list[Attempt] = field(default_factory=list)
    resolution: Any = None  # resolve.Resolution: router and route target for the headers
    charged: int = 0  # micros, once settled
    read_ms: int = 0  # reading a JSON answer's body: provider time, not the gateway's

    def chat_for(self, offer: Offer) -> ChatRequest:
        """The request as the offer's model answers it: a fallback model (2.9) names itself."""
        if offer.model_id == self.chat.model:
            return self.chat
        return replace(self.chat, model=offer.model_id)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


def ms_since(since: float) -> int:
    return int((time.monotonic() - since) * 1000)
