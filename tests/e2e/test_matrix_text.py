"""Matrix cells of plain text (spec 9.1, 9.6, 9.11): each SDK against each fake upstream,
JSON and streamed, with cache reads (and, from Anthropic, cache writes) in the usage."""

from __future__ import annotations

from e2e.matrix_support import matrix_fixtures

matrix_served, cell = matrix_fixtures()


def test_a_text_answer_keeps_its_content_usage_and_charge_across_formats(cell):
    # Anthropic reports cache reads and writes beside input_tokens; OpenAI reports reads
    # inside prompt_tokens and has no writes. Either way the prompt is 112 tokens.
    written = 5 if cell.up.kind == "anthropic" else 0
    reported = cell.up.script(text="alpha beta gamma", prompt=112, cached=100, written=written)

    reply = cell.ask([cell.client.user("Say three words")])

    assert reply.text == "alpha beta gamma"
    assert reply.calls == [] and reply.reasoning is None
    assert reply.stop == cell.client.STOP
    cell.check_usage(reply, reported)
    cell.check_bill(reply, reported)
    cell.check_ledger()
    sent = cell.up.last()
    assert len(cell.up.bodies()) == 1
    assert [m["content"] for m in sent["messages"] if m["role"] == "user"] in (
        ["Say three words"], [[{"type": "text", "text": "Say three words"}]])
    assert sent.get("stream", False) is cell.stream
