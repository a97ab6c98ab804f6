"""Reading the spreadsheets people send: a CSV export (UTF-8 or GB 18030) or an Excel workbook (.xlsx),
told apart by content, as numbered records (the row numbers a spreadsheet shows), blank rows left out.

What a file's columns mean is its importer's business (incident files, rider lists); this module only
refuses what is not a readable sheet at all, with a reason a clerk can act on.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from openpyxl import load_workbook

from riderwatch.errors import N_, InvalidInput

# An .xlsx file is a ZIP archive; Excel 97-2003 (.xls) and password-protected workbooks are OLE files.
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# What an .xlsx upload may unpack to: a full 20 000-row sheet is a few tens of MiB of XML, and the
# bound keeps a small crafted archive from keeping a worker busy unpacking gigabytes.
MAX_XLSX_UNPACKED = 128 * 1024 * 1024

# (row number, cells) of each non-blank row of a sheet.
Records = list[tuple[int, Sequence[Any]]]


@dataclass(frozen=True)
class RowProblem:
    """What is wrong with one row (or the header, row 1), in words a clerk can act on."""

    row: int
    column: str
    message: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        return self.message % self.params if self.params else self.message

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.column, "reason": self.reason}


def decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidInput(N_("the file is neither UTF-8 nor GB 18030 text"))


def blank(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def trimmed(cells: Sequence[Any]) -> Sequence[Any]:
    """The cells without the empty ones at the end of the row (spreadsheets leave them behind)."""
    end = len(cells)
    while end and blank(cells[end - 1]):
        end -= 1
    return cells[:end]


def _check_size(data: bytes, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise InvalidInput(N_("the file is larger than %(mib)d MiB; split it"), mib=max_bytes // (1024 * 1024))


def csv_records(data: bytes, *, max_bytes: int) -> Records:
    """The non-blank rows of a CSV export; the header is row 1, as a spreadsheet shows it."""
    _check_size(data, max_bytes)
    if b"\x00" in data:
        raise InvalidInput(N_("the file is not CSV text (it holds NUL bytes); save the sheet as CSV or .xlsx"))
    text = decode(data)
    try:
        return [
            (number, cells)
            for number, cells in enumerate(csv.reader(io.StringIO(text, newline="")), start=1)
            if not all(blank(cell) for cell in cells)
        ]
    except csv.Error as exc:
        raise InvalidInput(N_("the file is not valid CSV: %(reason)s"), reason=str(exc)) from exc


def xlsx_records(data: bytes, *, max_bytes: int, max_rows: int) -> Records:
    """The non-blank rows of the first sheet of an Excel workbook (.xlsx), numbered as the sheet numbers
    them, cells with their types (numbers stay numbers, date cells are datetimes); reading stops once
    there are more than a header and `max_rows` rows."""
    _check_size(data, max_bytes)
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
    records: Records = []
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
                    if all(blank(cell) for cell in cells):
                        continue
                    records.append((number, cells))
                    if len(records) > max_rows + 1:
                        break  # one header and more rows than allowed: no need to read on
        finally:
            book.close()
    except Exception as exc:  # openpyxl raises assorted errors for a damaged or foreign archive
        raise InvalidInput(not_xlsx) from exc
    if not sheets:
        raise InvalidInput(N_("the workbook has no worksheet"))
    return records


def file_format(data: bytes, *, filename: str = "", content_type: str = "") -> str:
    """The file's format, "xlsx" or "csv": by its first bytes, else by its name or declared type.

    Magic bytes first: browsers on Windows often declare a CSV file as an Excel one.
    """
    if data.startswith((ZIP_MAGIC, OLE_MAGIC)):
        return "xlsx"
    if filename.lower().endswith((".xlsx", ".xls")) or content_type.split(";")[0].strip().lower() == XLSX_TYPE:
        return "xlsx"  # named a workbook but not one: the workbook reader says why
    return "csv"


# --- writing --------------------------------------------------------------------------------------------


def _cell_text(value: Any) -> str:
    """A cell as CSV text; text that a spreadsheet would run as a formula is quoted with an apostrophe."""
    text = "" if value is None else str(value)
    if isinstance(value, str) and text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def write_csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    """UTF-8 with a BOM (so Excel and WPS read Chinese right), CRLF line ends."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell_text(v) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


@dataclass(frozen=True)
class Sheet:
    name: str
    header: Sequence[str]
    rows: Sequence[Sequence[Any]]


def write_xlsx(header: Sequence[str], rows: Sequence[Sequence[Any]], *, sheet: str) -> bytes:
    """One sheet with a bold, frozen header row; numbers stay numbers, text stays text (never a formula)."""
    return write_workbook([Sheet(name=sheet, header=header, rows=rows)])


def write_workbook(pages: Sequence[Sheet]) -> bytes:
    """Sheets, each with a bold, frozen header row; numbers stay numbers, text stays text (never a formula)."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import TYPE_STRING
    from openpyxl.styles import Font

    book = Workbook(write_only=False)
    first = book.active
    assert first is not None
    for n, sheet in enumerate(pages):
        page = first if n == 0 else book.create_sheet()
        page.title = sheet.name[:31]
        page.append(list(sheet.header))
        for cell in page[1]:
            cell.font = Font(bold=True)
        for row in sheet.rows:
            page.append(list(row))
            for cell in page[page.max_row]:
                if isinstance(cell.value, str):
                    cell.data_type = TYPE_STRING  # "=…" typed by a reporter stays text
        page.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
