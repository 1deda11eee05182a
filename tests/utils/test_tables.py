"""CSV files that spreadsheets show as text and never run (cbam3d.utils.tables)."""

from __future__ import annotations

import csv
import io

import pytest

from cbam3d.utils.tables import csv_text


@pytest.mark.parametrize("cell", ["=1+2", "+SUM(A1)", "-2+3+cmd|' /C calc'!A0", "@SUM(A1)", "\t=1", "\r=1"])
def test_a_text_cell_a_spreadsheet_would_run_is_written_as_text(cell):
    (_, row) = list(csv.reader(io.StringIO(csv_text(["label"], [[cell]]), newline="")))
    assert row == ["'" + cell]


@pytest.mark.parametrize("cell", ["walk", "-0.5", "+3", "1e-3", -2.5, 7, None, "café 🏃"])
def test_numbers_and_plain_text_are_written_as_they_are(cell):
    (_, row) = list(csv.reader(io.StringIO(csv_text(["value"], [[cell]]), newline="")))
    assert row == ["" if cell is None else str(cell)]


def test_a_header_that_a_spreadsheet_would_run_is_written_as_text_too():
    assert csv_text(["=cmd", "ok"], []) == "'=cmd,ok\r\n"
