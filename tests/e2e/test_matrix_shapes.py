"""Identical response shapes whatever the upstream (spec 9.1 accept, 9.6, 9.7): the ids a
client sees have its format's documented shape, JSON and streamed, the same from both fakes,
and an Anthropic stream keeps its blocks in order (start, deltas, stop, one at a time)."""

from __future__ import annotations

import re

import pytest

from e2e.matrix_clients import block_order_problems
from e2e.matrix_support import CALLS, THOUGHT, TOOLS, matrix_fixtures, open_cell

# Same-format answers keep the provider's own id (the answer is the provider's, as if called
# directly); a translated answer gets the gateway's, shaped as the client's format has it.
ID_SHAPE = {"openai": re.compile(r"chatcmpl-[A-Za-z0-9]+"),
            "anthropic": re.compile(r"msg_[A-Za-z0-9]+")}
TRANSLATED_ID = {"openai": re.compile(r"chatcmpl-[A-Za-z0-9]{29}"),
                 "anthropic": re.compile(r"msg_[A-Za-z0-9]{26}")}


matrix_served, cell = matrix_fixtures()


def test_the_answer_id_has_the_client_formats_shape(cell):
    cell.up.script(text="alpha beta", prompt=3)

    reply = cell.ask([cell.client.user("hello")])

    assert reply.text == "alpha beta"
    assert ID_SHAPE[cell.client.name].fullmatch(reply.id), reply.id
    if cell.client.name != cell.up.kind:
        assert TRANSLATED_ID[cell.client.name].fullmatch(reply.id), reply.id


@pytest.mark.parametrize("upstream", ["openai", "anthropic"])
def test_an_anthropic_sdk_stream_of_thinking_and_tools_keeps_block_order(
        matrix_served, fake_openai, fake_anthropic, monkeypatch, upstream):
    cell = open_cell(matrix_served, fake_openai, fake_anthropic, monkeypatch, "anthropic",
                     upstream, "stream", priced=True)
    cell.up.script(calls=CALLS, thinking=THOUGHT, prompt=40)

    reply = cell.ask([cell.client.user("Weather and time in Paris?")],
                     **cell.client.tools(TOOLS), **cell.client.thinking())

    starts = [e["content_block"]["type"] for e in reply.chunks
              if e["type"] == "content_block_start"]
    assert starts == ["thinking", "tool_use", "tool_use"]
    assert block_order_problems(reply.chunks) == []
