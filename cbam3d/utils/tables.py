"""CSV text that a spreadsheet shows as text, never runs: the one CSV writer of the commands' files.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to Excel,
LibreOffice and Google Sheets (CSV injection); a class name such as ``=HYPERLINK(...)`` would run when a
results file is opened. As OWASP recommends, such a text cell is written with a leading ``'``, which the
spreadsheet takes as "text follows" and does not show. Numbers, also negative ones, are written as they are.

Lines end in ``\r\n`` (RFC 4180), so that a carriage return inside a cell is quoted too (Python's writer
quotes only the characters of its line end).

>>> csv_text(["label", "score"], [["=1+2", -0.5], ["walk", "0.25"]]).splitlines()
['label,score', "'=1+2,-0.5", 'walk,0.25']
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["FORMULA_STARTS", "csv_text", "spreadsheet_cell"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""The first characters that make a spreadsheet read a cell as a formula."""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def spreadsheet_cell(value: Any) -> Any:
    """``value`` as a CSV cell: a text that a spreadsheet would run gets a leading ``'``; anything else as is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _is_number(value):
        return "'" + value
    return value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """The CSV text (``\\r\\n`` line ends) of ``header`` and ``rows``, every cell through :func:`spreadsheet_cell`;
    ``None`` is an empty cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([spreadsheet_cell(name) for name in header])
    writer.writerows([spreadsheet_cell(value) for value in row] for row in rows)
    return buffer.getvalue()
