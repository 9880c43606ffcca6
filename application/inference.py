"""The inference use case: resolve, reserve, dispatch (with failover), relay, settle (6.4, 6.5).

Each step has its own module; this one runs them in order and owns the one rule that ties
them: a hold is durable before any provider call, and every hold ends with exactly one
terminal event, whatever happens to the client, the provider or this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace

from eventsourcing.persistence import IntegrityError

from application.catalog_view import CatalogView, Offer
from application.chat_request import ChatRequest
from application.crashpoints import crash_point
from application.dispatch import Dispatcher
from application.exchange import Prepared, exchange_for
from application.group_commit import GroupCommitWriter
from application.inference_call import REQUEST_CAP_S, Call, InferenceResponse
from application.ports import Clock, HoldStore, HoldStoreUnavailable, ProviderClient
from application.principals import KeyPrincipal
from application.reserve import Reserver, estimated_input_of, size_hold
from application.resolve import Resolution, Resolver
from application.routing_request import fallback_models, needs_of, preferences_of
from application.settle import Settler
from domain.errors import DomainError
from domain.hold_sizing import estimate_request_input_tokens, output_limit
from domain.inference_request import InferenceRequest

log = logging.getLogger("gatewayz.inference")
ENDPOINTS = {"openai": "chat.completions", "anthropic": "messages", "embeddings": "embeddings",
             "completions": "completions", "responses": "responses"}


def prepare_offers(chat: ChatRequest, offers: list[Offer],
                   limits: list[int]) -> list[tuple[Offer, Prepared]]:
    """Each offer with its upstream request; those that cannot take it are left out, and
    when none can, the first one's reason is the client's answer."""
    usable: list[tuple[Offer, Prepared]] = []
    first: DomainError | None = None
    for offer, limit in zip(offers, limits, strict=True):
        exchange = exchange_for(chat.format, offer.provider.protocol)
        try:
            prepared = exchange.prepare(chat, offer.native_model_id, limit)
            if prepared.dropped and _requires_parameters(chat):
                raise DomainError("unsupported_parameter",
                                  f"{prepared.dropped[0]} is not supported by the provider "
                                  "and provider.require_parameters is set",
                                  param=prepared.dropped[0])
            usable.append((offer, prepared))
        except DomainError as error:
            first = first or error
    if not usable:
        assert first is not None
        raise first
    return usable


def _requires_parameters(chat: ChatRequest) -> bool:
    """9.10: with ``provider.require_parameters`` a parameter is never dropped silently."""
    preferences = chat.body.get("provider")
    return isinstance(preferences, dict) and preferences.get("require_parameters") is True


class InferenceService:
    def __init__(self, catalog: CatalogView, holds: HoldStore, writer: GroupCommitWriter,
                 load_account: Callable[[str], object], clients: dict[str, ProviderClient],
                 credentials: Callable[[str], str], clock: Clock, worker_id: str = "",
                 request_cap_s: float = REQUEST_CAP_S, resolver: Resolver | None = None,
                 health: object = None) -> None:
        self.catalog = catalog
        self.resolver = resolver or Resolver(catalog)
        self.holds = holds
        self.writer = writer
        self.clients = clients  # the dispatcher reads this dict: tests swap a fake port in
        self.worker_id = worker_id
        self.request_cap_s = request_cap_s
        self.reserver = Reserver(holds, load_account, clock, worker_id)
        self.settler = Settler(writer)
        self.dispatcher = Dispatcher(clients, credentials, self.settler, health)

    def resolve(self, chat: ChatRequest, principal: KeyPrincipal,
                 estimated: int | None = None) -> Resolution:
        """The request's model string, provider preferences and fallback list, to offers."""
        body = chat.body
        if estimated is None:
            estimated = estimated_input_of(chat)
        needs = needs_of(body, estimated, output_limit(body, None) if chat.format !=
                         "embeddings" else 0)
        return self.resolver.resolve(chat.model, principal, needs, preferences_of(body),
                                     fallback_models(body), body)

    async def chat(self, request_id: str, chat: ChatRequest, principal: KeyPrincipal,
                   command_id: str | None = None) -> InferenceResponse:
        """Serve one chat request. ``command_id`` (derived from an Idempotency-Key) names the
        request in the event store, so a duplicate cannot place a second hold."""
        estimated = estimated_input_of(chat)  # once: routing and the hold both read it
        resolution = self.resolve(chat, principal, estimated)
        offers = resolution.offers
        if chat.model != resolution.models[0]:  # the canonical id answers (2.1)
            chat = replace(chat, model=resolution.models[0])
        hold, limits, estimated_input = size_hold(chat, offers, estimated)
        # Translation errors are the client's and come before any hold (9.11); an offer
        # whose format cannot carry the request is skipped (a routing constraint, 9.10).
        usable = prepare_offers(chat, offers, limits)
        if len(usable) < len(offers):
            offers = [offer for offer, _ in usable]
            hold, limits, estimated_input = size_hold(chat, offers, estimated)
        request_id = command_id or request_id
        account_id = principal.account_id
        started = time.monotonic()
        reserved = await self.reserver.reserve(account_id, request_id, hold)
        aggregate = InferenceRequest(
            request_id=request_id, account_id=account_id, key_id=principal.key.key_id,
            endpoint=ENDPOINTS[chat.format], requested_model=resolution.requested,
            candidate_models=list(resolution.models),
            price_snapshot={o.provider.slug: o.prices.to_json() for o in offers},
            estimated_input_tokens=estimated_input, output_limit=max(limits),
            hold_micros=hold, reserved_by_pool=reserved, stream=chat.stream,
            worker_id=self.worker_id)
        await self._record_hold(aggregate, command_id is not None)
        call = Call(request_id, chat, principal, offers, limits, aggregate, started,
                    started + self.request_cap_s, [prepared for _, prepared in usable],
                    resolution=resolution)
        try:
            return await self.dispatcher.dispatch(call)
        except BaseException:
            if aggregate.outcome is None:
                self.settler.void(call, "cancelled_before_output",
                                  "request ended before a response")
            raise

    async def count_tokens(self, chat: ChatRequest, principal: KeyPrincipal) -> tuple[int, bool]:
        """(input tokens, exact) for an Anthropic request: counted by the first Anthropic
        upstream that can, else the gateway's own (high) estimate. Never billed (9.6)."""
        offers = self.resolve(chat, principal).offers
        for offer in offers:
            if offer.provider.protocol != "anthropic":
                continue
            counted = await self.dispatcher.count_tokens(chat, offer)
            if counted is not None:
                return counted, True
        return estimate_request_input_tokens(chat.body), False

    async def _record_hold(self, aggregate: InferenceRequest, keyed: bool) -> None:
        """Commit HoldPlaced before any provider call (no store, no call: 503).

        The commit runs in the writer thread and cannot be taken back, so a client that
        leaves meanwhile must not abandon it: once it lands the hold is voided at once
        (charge 0), or the reservation cancelled if it failed. Nothing waits for the TTL.
        """
        crash_point("before_hold_commit")
        future = self.writer.submit(aggregate)
        try:
            await asyncio.shield(asyncio.wrap_future(future))
        except asyncio.CancelledError:
            future.add_done_callback(lambda f: self._end_abandoned(aggregate, f))
            raise
        except IntegrityError:
            self._cancel_reservation(aggregate)
            if keyed:
                raise DomainError("idempotency_in_progress",
                                  "a request with this Idempotency-Key was already "
                                  "made") from None
            raise DomainError("service_unavailable",
                              "billing is unavailable; the request was not sent") from None
        except Exception:
            self._cancel_reservation(aggregate)
            raise DomainError("service_unavailable",
                              "billing is unavailable; the request was not sent") from None

    def _end_abandoned(self, aggregate: InferenceRequest, future: Future) -> None:
        try:
            if future.exception() is not None:
                self._cancel_reservation(aggregate)
                return
            aggregate.void("cancelled_before_output", [],
                           "the client left while the hold was being recorded")
            self.writer.submit(aggregate)
        except Exception:  # runs in the writer thread: never let it escape there
            log.exception("could not end an abandoned hold; the dead-worker/TTL sweep will")

    def _cancel_reservation(self, aggregate: InferenceRequest) -> None:
        # If even this fails, the reconciler cancels it: no HoldPlaced was recorded.
        with contextlib.suppress(HoldStoreUnavailable):
            self.holds.cancel(aggregate.account_id, aggregate.request_id)
