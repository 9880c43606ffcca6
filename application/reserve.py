"""Reserve: size the worst case of a request and hold it in the hold store (6.4)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from application.catalog_view import Offer
from application.chat_request import ChatRequest
from application.ports import Clock, HoldStore, HoldStoreUnavailable
from domain.errors import DomainError
from domain.hold_sizing import estimate_embedding_input_tokens
from domain.pricing import estimate_request_input_tokens, hold_micros, output_limit


def estimated_input_of(chat: ChatRequest) -> int:
    """The request's input tokens as the hold counts them (one estimate per request: routing
    reads it too, for the token mix and the context length)."""
    if chat.format == "embeddings":
        return estimate_embedding_input_tokens(chat.body.get("input"))
    body = chat.body
    if "messages" not in body:  # a format served through chat: its prompts as messages
        body = {**body, "messages": chat.messages}
    return estimate_request_input_tokens(body)


def size_hold(chat: ChatRequest, offers: list[Offer],
              estimated: int | None = None) -> tuple[int, list[int], int]:
    """(hold micros, output limit per offer, estimated input tokens).

    The hold is the largest worst case across the offers: every estimated input token and
    ``n`` choices of the output limit each, at that offer's prices. The limit is the one the
    gateway sends upstream, so no provider can produce more than was held for.
    """
    estimated_input = estimated_input_of(chat) if estimated is None else estimated
    if chat.format == "embeddings":  # input only: nothing is generated (9.3)
        return (max(hold_micros(o.prices, estimated_input, 0) for o in offers),
                [0] * len(offers), estimated_input)
    limits = [output_limit(chat.body, o.max_output_tokens) for o in offers]
    for offer, limit in zip(offers, limits, strict=True):
        if offer.max_output_tokens and limit > offer.max_output_tokens:
            raise DomainError("invalid_request",
                              f"the output limit exceeds the model's maximum of "
                              f"{offer.max_output_tokens} tokens", param="max_tokens")
    hold = max(hold_micros(o.prices, estimated_input, lim, chat.n)
               for o, lim in zip(offers, limits, strict=True))
    return hold, limits, estimated_input


class Reserver:
    def __init__(self, holds: HoldStore, load_account: Callable[[str], object], clock: Clock,
                 worker_id: str) -> None:
        self.holds = holds
        self.load_account = load_account  # brings an unknown account in from durable facts
        self.clock = clock
        self.worker_id = worker_id

    async def reserve(self, account_id: str, request_id: str, amount: int) -> dict[str, int]:
        now = int(self.clock.now().timestamp())
        try:
            outcome = self.holds.place(account_id, request_id, amount, now, self.worker_id)
            if outcome.status == "unknown_account":
                await asyncio.to_thread(self.load_account, account_id)
                outcome = self.holds.place(account_id, request_id, amount, now,
                                           self.worker_id)
        except HoldStoreUnavailable:
            # Without the shared hold store no worker can prove the balance covers the
            # request: refuse (retryable) rather than risk spending money twice.
            raise DomainError("service_unavailable",
                              "billing holds are unavailable; retry shortly") from None
        if outcome.status == "duplicate":
            raise DomainError("idempotency_in_progress",
                              "a request with this Idempotency-Key is already in progress")
        if outcome.status == "unknown_account":
            raise DomainError("insufficient_credits", "this account has no balance yet",
                              details={"available_micros": 0, "required_micros": amount})
        if outcome.status != "reserved":
            raise DomainError("insufficient_credits",
                              "the balance does not cover this request's maximum cost",
                              details={"available_micros": outcome.available,
                                       "required_micros": amount})
        assert outcome.reserved_by_pool is not None
        return outcome.reserved_by_pool
