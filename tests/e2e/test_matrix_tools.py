"""Matrix cells of a tool round trip with two parallel calls (spec 9.1, 9.6, 9.7, 9.11).

The ids the upstream made are the ids the client sees (the fakes are spied on), and the ids
the client sends back, on its assistant turn and its tool results, reach the upstream.
"""

from __future__ import annotations

from e2e.matrix_support import CALLS, TOOLS, matrix_fixtures

matrix_served, cell = matrix_fixtures()


def test_two_parallel_tool_calls_round_trip_with_their_ids(cell):
    tools = cell.client.tools(TOOLS)
    history = [cell.client.user("Weather and time in Paris?")]
    reported = cell.up.script(calls=CALLS, prompt=20)

    first = cell.ask(history, **tools)

    assert [(name, args) for _, name, args in first.calls] == list(CALLS)
    ids = [call_id for call_id, _, _ in first.calls]
    assert len(set(ids)) == 2 and set(ids) <= set(cell.up.made_ids), (ids, cell.up.made_ids)
    assert first.text is None
    assert first.stop == cell.client.TOOLS
    cell.check_usage(first, reported)
    cell.check_bill(first, reported)
    assert cell.up.tool_names(cell.up.last()) == ["get_weather", "get_time"]

    history += [first.echo, *cell.client.tool_results([(ids[0], "sunny"), (ids[1], "12:00")])]
    reported = cell.up.script(text="Sunny at noon in Paris", prompt=30)
    second = cell.ask(history, **tools)

    assert second.text == "Sunny at noon in Paris"
    assert second.calls == []
    assert second.stop == cell.client.STOP
    cell.check_usage(second, reported)
    cell.check_bill(second, reported)
    cell.check_ledger()
    sent = cell.up.last()
    assert cell.up.sent_calls(sent) == first.calls
    assert cell.up.sent_results(sent) == [(ids[0], "sunny"), (ids[1], "12:00")]
