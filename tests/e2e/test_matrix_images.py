"""Matrix cells of image input (spec 9.1, 9.6, 9.11): a base64 PNG from either SDK reaches
either upstream as that upstream's base64 image, unchanged, and is billed as reported."""

from __future__ import annotations

from e2e.matrix_support import PNG, matrix_fixtures

matrix_served, cell = matrix_fixtures()


def test_a_png_reaches_the_upstream_as_base64_and_the_answer_comes_back(cell):
    reported = cell.up.script(text="A red dot", prompt=50)

    reply = cell.ask([cell.client.user("What is in this picture?", image=PNG)])

    assert reply.text == "A red dot"
    assert reply.stop == cell.client.STOP
    cell.check_usage(reply, reported)
    cell.check_bill(reply, reported)
    cell.check_ledger()
    assert cell.up.images(cell.up.last()) == [("image/png", PNG)]
