"""Matrix cells of thinking across two tool turns (spec 9.6, 9.11).

The first turn thinks and calls two tools; the client sends that turn back with the tool
results, as each SDK's users do. An Anthropic upstream must get the thinking block back
with its original signature (the fake refuses the turn otherwise, as the real API does); an
OpenAI-format upstream must get the reasoning text back on the assistant message.
"""

from __future__ import annotations

from fakes.anthropic_reply import thinking_signature

from e2e.matrix_support import CALLS, REASONING_FORMAT, THOUGHT, TOOLS, matrix_fixtures

SIGNATURE = thinking_signature(THOUGHT)
REDACTED = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT"  # opaque to everyone but Anthropic


matrix_served, cell = matrix_fixtures()


def _expected_thinking(cell) -> list[dict]:
    """The thinking the client sees on the first turn, in its own format."""
    if cell.up.kind == "openai":
        # An OpenAI-format upstream gives reasoning text only: there is no signature to keep.
        return [] if cell.client.name == "openai" else [
            {"type": "thinking", "thinking": THOUGHT, "signature": ""}]
    if cell.client.name == "anthropic":
        return [{"type": "thinking", "thinking": THOUGHT, "signature": SIGNATURE},
                {"type": "redacted_thinking", "data": REDACTED}]
    return [{"type": "reasoning.text", "text": THOUGHT, "signature": SIGNATURE,
             "format": REASONING_FORMAT, "index": 0},
            {"type": "reasoning.encrypted", "data": REDACTED, "format": REASONING_FORMAT,
             "index": 1}]


def test_thinking_and_tool_ids_survive_two_tool_turns(cell):
    options = {**cell.client.tools(TOOLS), **cell.client.thinking()}
    history = [cell.client.user("Weather and time in Paris?")]
    # Anthropic may also answer with a redacted block, which must go back untouched too.
    redacted = REDACTED if cell.up.kind == "anthropic" else None
    reported = cell.up.script(calls=CALLS, thinking=THOUGHT, redacted=redacted, prompt=40)

    first = cell.ask(history, **options)

    assert first.reasoning == THOUGHT
    assert first.details == _expected_thinking(cell)
    assert [(name, args) for _, name, args in first.calls] == list(CALLS)
    ids = [call_id for call_id, _, _ in first.calls]
    assert len(set(ids)) == 2 and set(ids) <= set(cell.up.made_ids)
    assert first.stop == cell.client.TOOLS
    cell.check_usage(first, reported)
    cell.check_bill(first, reported)
    effort = cell.up.thinking_param(cell.up.last())
    assert effort == ("low" if cell.up.kind == "openai"
                      else {"type": "enabled", "budget_tokens": 1024})

    history += [first.echo, *cell.client.tool_results([(ids[0], "sunny"), (ids[1], "12:00")])]
    reported = cell.up.script(text="Sunny at noon in Paris", prompt=60)
    second = cell.ask(history, **options)

    assert second.text == "Sunny at noon in Paris"
    assert second.stop == cell.client.STOP
    cell.check_usage(second, reported)
    cell.check_bill(second, reported)
    cell.check_ledger()
    sent = cell.up.last()
    assert cell.up.thinking_param(sent) == effort
    assert cell.up.sent_calls(sent) == first.calls
    assert cell.up.sent_results(sent) == [(ids[0], "sunny"), (ids[1], "12:00")]
    if cell.up.kind == "anthropic":
        assert cell.up.assistant(sent)["content"][:2] == [
            {"type": "thinking", "thinking": THOUGHT, "signature": SIGNATURE},
            {"type": "redacted_thinking", "data": REDACTED}]
    else:
        assert cell.up.sent_reasoning(sent) == THOUGHT
