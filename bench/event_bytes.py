"""Bytes per request event before and after the 11.1 envelope (prints a small table).

Builds the two events every paid request writes (HoldPlaced, HoldSettled) with the field
values a typical chat request produces, and encodes them with the store's own mapper and
transcoder, without and with the envelope an API-key request carries.
"""

from __future__ import annotations

from eventsourcing.persistence import Mapper

from adapters.persistence.transcoder import MsgspecTranscoder
from application import envelope
from application.envelope import Actor, Envelope
from domain.ids import new_id
from domain.inference_request import InferenceRequest


def request_events() -> list:
    request = InferenceRequest(
        request_id=new_id("req"), account_id=new_id("acct"), key_id=new_id("key"),
        endpoint="chat.completions", requested_model="openai/gpt-4o-mini",
        candidate_models=["openai/gpt-4o-mini"],
        price_snapshot={"input": "0.15", "output": "0.6", "provider": "openai"},
        estimated_input_tokens=420, output_limit=1024, hold_micros=757,
        reserved_by_pool={"purchased": 757}, stream=True, worker_id=new_id("wrk"))
    request.settle(provider="openai", served_model="gpt-4o-mini-2024-07-18",
                   attempts=[{"provider": "openai", "outcome": "ok", "status": 200,
                              "latency_ms": 412}],
                   tokens={"input": 401, "output": 212}, token_source="provider",
                   cost_micros=188, charged_by_pool={"purchased": 188}, finish_reason="stop",
                   ttfb_ms=180, duration_ms=412, client_disconnected=False)
    return list(request.collect_events())


def sizes(with_envelope: bool) -> list[int]:
    mapper = Mapper(transcoder=MsgspecTranscoder())
    events = request_events()
    if with_envelope:
        envelope.stamp(events, Envelope(Actor("api_key", new_id("key"), "gw_live_AbC1"),
                                        correlation_id=new_id("req")).stored())
    return [len(mapper.to_stored_event(e).state) for e in events]


def main() -> None:
    before, after = sizes(False), sizes(True)
    print("| event | bytes before | bytes after | added |")
    print("|---|---:|---:|---:|")
    for name, b, a in zip(("Request.HoldPlaced", "Request.HoldSettled"), before, after,
                          strict=True):
        print(f"| {name} | {b} | {a} | +{a - b} ({(a - b) / b:.0%}) |")
    print(f"| per request | {sum(before)} | {sum(after)} | +{sum(after) - sum(before)} "
          f"({(sum(after) - sum(before)) / sum(before):.0%}) |")


if __name__ == "__main__":
    main()
