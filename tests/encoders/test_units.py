"""Reading units: sentences and table rows, exact spans, in document order, rows framed by their table."""

from __future__ import annotations

from encoders.units import section_units

PDF_TABLE = """CONSOLIDATED STATEMENTS OF INCOME
(In thousands)
Years Ended
November 27,
2015
November 28,
2014
Net income.......................................... $
629,551
$
268,395
Unrealized gains / losses on available-for-sale securities ............
(9,226)
2,315
Reclassification adjustment for recognized gains / losses on available-
for-sale securities ...................................................
(2,955)
(3,928)
Net income rose because revenue grew. Costs were flat.
"""

PIPES = """Segment results were as follows.
Segment | 2023 | 2022
Cloud | 1,200 | 950
Devices | 400 | 410
The cloud segment grew."""


def test_pdf_table_rows_carry_their_title_and_headers():
    units = section_units(PDF_TABLE, path=("Item 8",))
    text = lambda u: PDF_TABLE[u.start:u.end]  # noqa: E731
    rows = [u for u in units if u.kind == "row"]
    assert [text(u).split(".")[0].split("\n")[0] for u in rows] == [
        "Net income", "Unrealized gains / losses on available-for-sale securities ",
        "Reclassification adjustment for recognized gains / losses on available-"]
    assert "629,551" in text(rows[0]) and "268,395" in text(rows[0])  # the label with its figures
    assert text(rows[2]).endswith("(3,928)")  # a label broken over two lines keeps both
    assert rows[0].context.startswith("CONSOLIDATED STATEMENTS OF INCOME")
    assert "November 27, 2015" in rows[0].context
    sentences = [text(u) for u in units if u.kind == "sentence"]
    assert sentences[-2:] == ["Net income rose because revenue grew.", "Costs were flat."]
    assert all(u.context == "Item 8" for u in units if u.kind == "sentence")


def test_cell_rows_and_sentences_in_document_order_with_exact_spans():
    units = section_units(PIPES)
    assert [u.kind for u in units] == ["sentence", "row", "row", "row", "sentence"]
    assert [u.start for u in units] == sorted(u.start for u in units)
    for u in units:
        assert PIPES[u.start:u.end] == PIPES[u.start:u.end].strip() and u.end > u.start
    assert PIPES[units[2].start:units[2].end] == "Cloud | 1,200 | 950"


def test_prose_with_numbers_is_not_a_table():
    prose = ("For fiscal 2015, net cash provided by operating activities of $1.47 billion was\n"
             "primarily comprised of net income of 629 and 268 in non-cash items.")
    assert {u.kind for u in section_units(prose)} == {"sentence"}
