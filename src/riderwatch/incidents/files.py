"""Reading an incident file: a CSV export (UTF-8 or GB 18030) or an Excel workbook (.xlsx), told by content."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Sequence
from typing import Any

from openpyxl import load_workbook

from riderwatch.errors import N_, InvalidInput
from riderwatch.incidents.rows import (
    COLUMNS,
    MAX_FILE_BYTES,
    MAX_ROWS,
    REQUIRED,
    ImportRefused,
    RowError,
)

# An .xlsx file is a ZIP archive; Excel 97-2003 (.xls) and password-protected workbooks are OLE files.
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# What an .xlsx upload may unpack to: a full 20 000-row sheet is a few tens of MiB of XML, and the
# bound keeps a small crafted archive from keeping a worker busy unpacking gigabytes.
MAX_XLSX_UNPACKED = 128 * 1024 * 1024

# --- reading files -------------------------------------------------------------------------------

# (row number, cells by column) of each record of a file, and the rows that are not even records.
Table = tuple[list[tuple[int, dict[str, Any]]], list[RowError]]
# Columns read as text: a case number typed into a spreadsheet as a number is still that number.
TEXT_COLUMNS = ("source", "external_ref", "category", "note", "crs")


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidInput(N_("the file is neither UTF-8 nor GB 18030 text"))


def _blank(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _trimmed(cells: Sequence[Any]) -> Sequence[Any]:
    """The cells without the empty ones at the end of the row (spreadsheets leave them behind)."""
    end = len(cells)
    while end and _blank(cells[end - 1]):
        end -= 1
    return cells[:end]


def _table(records: Sequence[tuple[int, Sequence[Any]]], *, default_source: str | None, empty: str) -> Table:
    """The rows of a sheet whose first record names the columns; `records` leaves out blank rows.

    A bad header refuses the whole file (ImportRefused, at the header's row). The `source` column
    may be left out when a default source is given. `empty` is the refusal for no records at all, a
    message with the `columns` parameter.
    """
    if not records:
        raise InvalidInput(empty, columns=",".join(REQUIRED))
    header_row, header_cells = records[0]
    header = [("" if cell is None else str(cell)).strip().lower() for cell in _trimmed(header_cells)]
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
        cells = _trimmed(raw_cells)
        if len(cells) > len(header):
            errors.append(RowError(number, "", f"{len(cells)} cells but the header names {len(header)} columns"))
            continue
        rows.append((number, dict(zip(header, cells, strict=False))))
    return rows, errors


def parse_csv(data: bytes, *, default_source: str | None = None) -> Table:
    """(row number, cells by column) of a CSV export, and the rows that are not even records.

    The header is row 1, as a spreadsheet shows it.
    """
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput(N_("the file is larger than %(mib)d MiB; split it"), mib=MAX_FILE_BYTES // (1024 * 1024))
    if b"\x00" in data:
        raise InvalidInput(N_("the file is not CSV text (it holds NUL bytes); save the sheet as CSV or .xlsx"))
    text = _decode(data)
    try:
        records = [
            (number, cells)
            for number, cells in enumerate(csv.reader(io.StringIO(text, newline="")), start=1)
            if not all(_blank(cell) for cell in cells)
        ]
    except csv.Error as exc:
        raise InvalidInput(N_("the file is not valid CSV: %(reason)s"), reason=str(exc)) from exc
    return _table(
        records,
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
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput(N_("the file is larger than %(mib)d MiB; split it"), mib=MAX_FILE_BYTES // (1024 * 1024))
    if data.startswith(OLE_MAGIC):
        raise InvalidInput(
            N_(
                "the file is an Excel 97-2003 (.xls) or password-protected workbook; "
                "save it as .xlsx without a password, or as CSV"
            )
        )
    not_xlsx = N_("the file is not a valid Excel workbook (.xlsx); save the sheet as .xlsx or CSV")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise InvalidInput(not_xlsx) from exc
    if unpacked > MAX_XLSX_UNPACKED:
        raise InvalidInput(
            N_("the workbook unpacks to more than %(mib)d MiB; split it"), mib=MAX_XLSX_UNPACKED // (1024 * 1024)
        )
    records: list[tuple[int, Sequence[Any]]] = []
    sheets = 0
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            sheets = len(book.worksheets)
            if sheets:
                sheet = book.worksheets[0]
                # The size a workbook declares may be wrong; read the rows that are there.
                sheet.reset_dimensions()
                for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
                    if all(_blank(cell) for cell in cells):
                        continue
                    records.append((number, cells))
                    if len(records) > MAX_ROWS + 1:
                        break  # one header and more rows than allowed: no need to read on
        finally:
            book.close()
    except Exception as exc:  # openpyxl raises assorted errors for a damaged or foreign archive
        raise InvalidInput(not_xlsx) from exc
    if not sheets:
        raise InvalidInput(N_("the workbook has no worksheet"))
    rows, errors = _table(
        records,
        default_source=default_source,
        empty=N_("the workbook's first sheet is empty; the first row must name the columns: %(columns)s"),
    )
    return [(number, {k: _xlsx_cell(k, v) for k, v in cells.items()}) for number, cells in rows], errors


def file_format(data: bytes, *, filename: str = "", content_type: str = "") -> str:
    """The file's format, "xlsx" or "csv": by its first bytes, else by its name or declared type.

    Magic bytes first: browsers on Windows often declare a CSV file as an Excel one.
    """
    if data.startswith((ZIP_MAGIC, OLE_MAGIC)):
        return "xlsx"
    if filename.lower().endswith((".xlsx", ".xls")) or content_type.split(";")[0].strip().lower() == XLSX_TYPE:
        return "xlsx"  # named a workbook but not one: the workbook reader says why
    return "csv"
