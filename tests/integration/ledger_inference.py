"""The inference rules of the ledger state machine (test_ledger_state_machine.py), mixed into
it: requests of every kind sent through ``gw.inference.chat`` to the fake provider port, and
streams left open across steps that the client later finishes or abandons.
"""

from __future__ import annotations

import uuid
from typing import Any

from fakes.provider_port import (
    connection_error,
    json_answer,
    status_answer,
    stream_answer,
    timeout_answer,
)
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule
from service.support import (
    DUO,
    SOLO,
    consume_until_cut,
    content_of,
    cost,
    estimated_tokens,
    sse_events,
)

from domain.errors import DomainError
from integration.ledger_checks import LedgerChecks
from integration.ledger_model import KINDS, PROMPT, OpenStream


class InferenceRules(LedgerChecks):
    """Rules that send inference requests; each checks its hold and its terminal event."""

    # -- inference ------------------------------------------------------------------------
    @rule(data=st.data(), count=st.integers(1, 3))
    def requests(self, data, count: int) -> None:
        """One to three inference requests, one after the other (the read model lags)."""
        for _ in range(count):
            self.infer(
                data.draw(st.integers(0, 2), label="who"), data,
                data.draw(st.sampled_from(KINDS), label="kind"),
                data.draw(st.one_of(st.integers(1, 2_000), st.integers(1, 1_000_000)),
                          label="max_tokens"),
                data.draw(st.sampled_from([1, 1, 1, 2, 4]), label="n"))

    def infer(self, who: int, data, kind: str, max_tokens: int, n: int) -> None:
        account = self.by_id(who)
        prompt = data.draw(st.integers(0, 300), label="prompt_tokens")
        most = n * max_tokens  # what the hold covers; usage may go past it
        completion = data.draw(st.one_of(st.integers(0, most),
                                         st.integers(most, 3 * most + 50)),
                               label="completion_tokens")
        words = [f"w{i} " for i in range(data.draw(st.integers(1, 6), label="words"))]
        text = "".join(words)
        stream = kind.startswith("stream")
        model = DUO if kind in ("failover", "all_fail") else SOLO
        self.port.reset()
        if kind == "json":
            self.port.will(json_answer(text, prompt_tokens=prompt,
                                       completion_tokens=completion))
        elif kind == "json_estimated":
            self.port.will(json_answer(text, prompt_tokens=None))
        elif kind == "failover":
            first = data.draw(st.sampled_from([status_answer(500), status_answer(429),
                                               connection_error(), timeout_answer()]),
                              label="first")
            self.port.will(first, provider="alpha")
            self.port.will(json_answer(text, prompt_tokens=prompt,
                                       completion_tokens=completion), provider="beta")
        elif kind == "all_fail":
            self.port.will(status_answer(500), provider="alpha")
            self.port.will(status_answer(503), provider="beta")
        elif kind == "rejected":
            self.port.will(status_answer(400, "bad request"))
        elif kind == "stream":
            self.port.will(stream_answer(words, usage=(prompt, completion)))
        elif kind == "stream_estimated":
            self.port.will(stream_answer(words, usage=None))
        elif kind == "stream_broken":
            self.port.will(stream_answer(words, usage=(prompt, completion),
                                         break_after=data.draw(
                                             st.integers(0, len(words) + 1),
                                             label="break_after")))
        else:
            self.port.will(stream_answer([], usage=None))
        request_id = f"req_{uuid.uuid4().hex}"
        received_before = len(self.port.received)
        error: Any = None
        try:
            response = self.run(self.gw.inference.chat(
                request_id, self.request(model, max_tokens, stream, n), account.principal))
            if stream:
                raw = self.run(consume_until_cut(response.stream))
                events = sse_events(raw)
                if kind in ("stream", "stream_estimated"):
                    assert events[-1] == "[DONE]" and content_of(events) == text
        except DomainError as refused:
            error = refused
        placed = self.check_placement(account, request_id, error, received_before)
        if placed is None:
            return
        hold, reserved = placed
        if kind in ("json", "stream"):
            full = cost("alpha", prompt, completion)
            self.check_end(account, request_id, reserved, charge=min(full, hold),
                           provider="alpha", cost_micros=full)
        elif kind == "failover":
            full = cost("beta", prompt, completion)
            self.check_end(account, request_id, reserved, charge=min(full, hold),
                           provider="beta", cost_micros=full)
        elif kind in ("json_estimated", "stream_estimated"):
            full = cost("alpha", estimated_tokens(PROMPT), estimated_tokens(text))
            self.check_end(account, request_id, reserved, charge=min(full, hold),
                           cost_micros=full)
        elif kind == "all_fail":
            assert error is not None and error.code == "provider_error"
            self.check_end(account, request_id, reserved, reason="provider_error")
        elif kind == "rejected":
            assert error is not None and error.code == "invalid_request"
            self.check_end(account, request_id, reserved, reason="rejected")
        elif kind == "stream_broken":
            self.check_end(account, request_id, reserved, reason="provider_error")
        else:
            self.check_end(account, request_id, reserved, reason="empty_stream")
        assert error is None or kind in ("all_fail", "rejected"), error

    @precondition(lambda self: len(self.streams) < 3)
    @rule(who=st.integers(0, 2), data=st.data(),
          max_tokens=st.one_of(st.integers(1, 2_000), st.integers(1, 1_000_000)))
    def start_a_stream(self, who: int, data, max_tokens: int) -> None:
        """A stream the client reads partly, left open across steps."""
        account = self.by_id(who)
        prompt = data.draw(st.integers(0, 300), label="prompt_tokens")
        completion = data.draw(st.integers(0, 3 * max_tokens + 50), label="completion")
        words = [f"w{i} " for i in range(data.draw(st.integers(1, 6), label="words"))]
        answer = stream_answer(words, usage=(prompt, completion))
        read = data.draw(st.integers(1, len(answer.chunks)), label="events_read")
        self.port.reset()
        self.port.will(answer)
        request_id = f"req_{uuid.uuid4().hex}"
        received_before = len(self.port.received)
        error: Any = None
        try:
            response = self.run(self.gw.inference.chat(
                request_id, self.request(SOLO, max_tokens, True), account.principal))
        except DomainError as refused:
            error = refused
        placed = self.check_placement(account, request_id, error, received_before)
        if placed is None:
            return
        assert error is None
        hold, reserved = placed
        opened = OpenStream(account, request_id, response.stream, reserved, hold,
                            (prompt, completion))
        for _ in range(read):
            opened.received.append(self.run(opened.stream.__anext__()))
        self.streams[request_id] = opened

    def close_stream(self, opened: OpenStream, finish: bool) -> None:
        del self.streams[opened.request_id]
        account, request_id = opened.account, opened.request_id
        if finish:
            opened.received.append(self.run(consume_until_cut(opened.stream)))
        else:
            self.run(opened.stream.aclose())  # the client went away
        if request_id not in account.open:  # the sweeper expired it meanwhile
            self.wait_for_writer()
            types = [e.type for e in self.request_events(request_id)]
            assert types == ["InferenceRequest.HoldPlaced",
                             "InferenceRequest.HoldExpired"], types
            return
        events = sse_events(b"".join(opened.received))
        prompt, completion = opened.usage
        usage_seen = any(isinstance(e, dict) and e.get("usage") for e in events)
        content = content_of(events)
        if not finish and not content:
            self.check_end(account, request_id, opened.reserved,
                           reason="cancelled_before_output")
            return
        if finish or usage_seen:
            full = cost("alpha", prompt, completion)
        else:
            full = cost("alpha", estimated_tokens(PROMPT), estimated_tokens(content))
        self.check_end(account, request_id, opened.reserved,
                       charge=min(full, opened.hold), cost_micros=full)

    @precondition(lambda self: self.streams)
    @rule(data=st.data(), finish=st.booleans())
    def end_a_stream(self, data, finish: bool) -> None:
        request_id = data.draw(st.sampled_from(sorted(self.streams)), label="stream")
        self.close_stream(self.streams[request_id], finish)

