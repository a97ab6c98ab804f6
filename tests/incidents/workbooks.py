"""Excel workbooks (.xlsx) built in the test with openpyxl, as a police system's export would be."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook

HEADER = ("source", "external_ref", "category", "lat", "lon", "occurred_at", "note")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx(*sheets: Sequence[Sequence[Any]]) -> bytes:
    """A workbook with one sheet per argument, each a list of rows (None leaves a cell empty).

    datetime and date values become date cells, numbers number cells, text text cells.
    """
    book = Workbook()
    for n, rows in enumerate(sheets):
        sheet = book.active if n == 0 else book.create_sheet(f"Sheet{n + 1}")
        assert sheet is not None
        for row in rows:
            sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def zip_of(files: dict[str, bytes]) -> bytes:
    """A ZIP archive that is not a workbook."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()
