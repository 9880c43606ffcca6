"""Settle: end a request's hold with exactly one terminal event, handed to the writer."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future

from application.crashpoints import armed, crash_point
from application.group_commit import GroupCommitWriter
from application.inference_call import Call, ms_since
from application.principals import KeyPrincipal
from domain import pools
from domain.pricing import TokenUsage, cost_micros


class Settler:
    def __init__(self, writer: GroupCommitWriter) -> None:
        self.writer = writer
        # Told the tokens of each settled request (rate limits count them, 1.10); never
        # money: the charge is decided above, whatever the observer does.
        self.on_settled: Callable[[KeyPrincipal, int], None] | None = None

    def settle(self, call: Call, offer, usage: TokenUsage, source: str, finish: str | None,
               ttfb: int, disconnected: bool) -> Future | None:
        """Charge min(cost, hold). Usage arrives bounded (usage_meter): a count the provider
        claimed beyond the bound is recorded as the bound, with source "provider_clamped"."""
        aggregate = call.aggregate
        if aggregate.outcome is not None:
            return None
        cost = cost_micros(offer.prices, usage)
        charged = call.charged = min(cost, aggregate.hold_micros)
        aggregate.settle(
            provider=offer.provider.slug, served_model=offer.model_id,
            attempts=[a.as_dict() for a in call.attempts],
            tokens=_tokens(usage),
            token_source=source + "_clamped" if usage.clamped else source,
            cost_micros=cost,
            charged_by_pool=pools.settle(aggregate.reserved_by_pool, charged),
            finish_reason=finish if isinstance(finish, str) else None, ttfb_ms=ttfb,
            duration_ms=ms_since(call.started), client_disconnected=disconnected)
        crash_point("after_answer")
        if self.on_settled is not None:
            self.on_settled(call.principal, usage.prompt_tokens + usage.completion_tokens)
        # Submitted, not awaited here: settlement must happen even when the client has gone.
        future = self.writer.submit(aggregate)
        if armed("after_settle_commit"):
            future.add_done_callback(_after_settle_commit)
        return future

    def void(self, call: Call, reason: str, detail: str) -> None:
        if call.aggregate.outcome is not None:
            return
        call.aggregate.void(reason, [a.as_dict() for a in call.attempts], detail)
        self.writer.submit(call.aggregate)


def _after_settle_commit(future: Future) -> None:
    if not future.cancelled() and future.exception() is None:
        crash_point("after_settle_commit")


def _tokens(usage: TokenUsage) -> dict[str, int]:
    tokens = {"prompt_tokens": usage.prompt_tokens, "cached_tokens": usage.cached_tokens,
              "completion_tokens": usage.completion_tokens,
              "reasoning_tokens": usage.reasoning_tokens}
    if usage.cache_write_tokens:  # only Anthropic-format upstreams report cache writes
        tokens["cache_write_tokens"] = usage.cache_write_tokens
    return tokens
