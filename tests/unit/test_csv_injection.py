"""CSV downloads neutralise text a spreadsheet would run as a formula (issue 27, item 6).

A token's text is whatever the model wrote: "=HYPERLINK(...)", "+1", "-cmd", "@SUM(...)" or a text
starting with a tab or a carriage return would be read as a formula by Excel, LibreOffice or Google
Sheets. Such a text cell gets a leading single quote (OWASP's advice); numbers stay numbers
(-1.5 is a number, not a formula), and the JSON download keeps every text exact.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from playground import exports

FORMULAS = ["=HYPERLINK(\"http://x\",\"y\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)", "\tcell", "\rcell",
            "=", "-"]


def _table(values) -> exports.Table:
    return exports.Table("tokens", ("id", "text", "prob"),
                         [{"id": i, "text": text, "prob": -1.5 if i % 2 else 0.25} for i, text in enumerate(values)])


def _parsed(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.mark.parametrize("text", FORMULAS)
def test_text_cells_that_start_a_formula_get_a_quote(text):
    rows = _parsed(exports.to_csv(_table([text])))
    assert rows[1][1] == "'" + text


def test_numbers_and_ordinary_text_are_untouched():
    rows = _parsed(exports.to_csv(_table(["hello", " =not at the start", "a-b", "'quoted"])))
    assert [row[1] for row in rows[1:]] == ["hello", " =not at the start", "a-b", "'quoted"]
    assert [row[2] for row in rows[1:]] == ["0.25", "-1.5", "0.25", "-1.5"]  # negative numbers stay numbers
    assert exports.csv_cell(-3) == "-3" and exports.csv_cell(-0.5) == "-0.5"


def test_the_json_download_keeps_the_exact_text():
    data = json.loads(exports.to_json(_table(FORMULAS)))
    assert [row["text"] for row in data["tokens"]] == FORMULAS
