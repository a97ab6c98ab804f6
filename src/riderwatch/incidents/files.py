"""Reading an incident file: its columns checked on the rows of a CSV export or a workbook (infra/sheets.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from riderwatch.errors import N_, InvalidInput
from riderwatch.incidents.rows import (
    COLUMNS,
    MAX_FILE_BYTES,
    MAX_ROWS,
    REQUIRED,
    ImportRefused,
    RowError,
)
from riderwatch.infra import sheets

# --- reading files -------------------------------------------------------------------------------

# (row number, cells by column) of each record of a file, and the rows that are not even records.
Table = tuple[list[tuple[int, dict[str, Any]]], list[RowError]]
# Columns read as text: a case number typed into a spreadsheet as a number is still that number.
TEXT_COLUMNS = ("source", "external_ref", "category", "note", "crs")


def _table(records: Sequence[tuple[int, Sequence[Any]]], *, default_source: str | None, empty: str) -> Table:
    """The rows of a sheet whose first record names the columns; `records` leaves out blank rows.

    A bad header refuses the whole file (ImportRefused, at the header's row). The `source` column
    may be left out when a default source is given. `empty` is the refusal for no records at all, a
    message with the `columns` parameter.
    """
    if not records:
        raise InvalidInput(empty, columns=",".join(REQUIRED))
    header_row, header_cells = records[0]
    header = [("" if cell is None else str(cell)).strip().lower() for cell in sheets.trimmed(header_cells)]
    data_rows = len(records) - 1
    if data_rows > MAX_ROWS:
        raise InvalidInput(N_("at most %(max)d rows per import; the file has more"), max=MAX_ROWS)
    problems = []
    unknown = [h or "(no name)" for h in header if h not in COLUMNS]
    if unknown:
        problems.append(
            RowError(header_row, "header", f"unknown columns: {', '.join(unknown)} (known: {', '.join(COLUMNS)})")
        )
    repeated = sorted({h for h in header if h and header.count(h) > 1})
    if repeated:
        problems.append(RowError(header_row, "header", f"columns named twice: {', '.join(repeated)}"))
    optional = ("source",) if default_source else ()
    missing = [c for c in REQUIRED if c not in header and c not in optional]
    if missing:
        problems.append(RowError(header_row, "header", f"missing columns: {', '.join(missing)}"))
    if problems:
        raise ImportRefused(problems, rows=data_rows)
    rows: list[tuple[int, dict[str, Any]]] = []
    errors: list[RowError] = []
    for number, raw_cells in records[1:]:
        cells = sheets.trimmed(raw_cells)
        if len(cells) > len(header):
            errors.append(RowError(number, "", f"{len(cells)} cells but the header names {len(header)} columns"))
            continue
        rows.append((number, dict(zip(header, cells, strict=False))))
    return rows, errors


def parse_csv(data: bytes, *, default_source: str | None = None) -> Table:
    """(row number, cells by column) of a CSV export, and the rows that are not even records.

    The header is row 1, as a spreadsheet shows it.
    """
    return _table(
        sheets.csv_records(data, max_bytes=MAX_FILE_BYTES),
        default_source=default_source,
        empty=N_("the file is empty; the first row must name the columns: %(columns)s"),
    )


def _xlsx_cell(column: str, value: Any) -> Any:
    """A workbook cell as the checks take it: whole numbers in text columns as their digits."""
    if column in TEXT_COLUMNS and isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value


def parse_xlsx(data: bytes, *, default_source: str | None = None) -> Table:
    """(row number, cells by column) of the first sheet of an Excel workbook (.xlsx), as for a CSV file.

    Row numbers are the sheet's own. Cells keep their types: numbers stay numbers, date cells are
    datetimes (read as local time of the station, like a time written without an offset).
    """
    rows, errors = _table(
        sheets.xlsx_records(data, max_bytes=MAX_FILE_BYTES, max_rows=MAX_ROWS),
        default_source=default_source,
        empty=N_("the workbook's first sheet is empty; the first row must name the columns: %(columns)s"),
    )
    return [(number, {k: _xlsx_cell(k, v) for k, v in cells.items()}) for number, cells in rows], errors


file_format = sheets.file_format
