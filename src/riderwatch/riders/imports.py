"""A platform's rider list imported from the spreadsheet it sends (XLSX or CSV): checked whole, then
stored all or nothing.

The first row names the columns, in Chinese or English: 姓名/name, 手机号/phone, 站点/station and,
optionally, 平台/platform (station and platform by code or name). Riders are matched by their mobile
number: a rider already on the list is updated (name, station) or left unchanged, so importing the same
file again creates nobody. A new rider's account has the mobile number as its login name and a one-time
code as its password (hashed before the transaction, shown once to whoever imported), which they replace
at first login; their membership starts as "applied" until their station activates it (after training).
A station manager imports riders of their own station only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import anyio
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from riderwatch import policy
from riderwatch.accounts import service as accounts
from riderwatch.audit.service import record
from riderwatch.db import atomic, in_transaction
from riderwatch.errors import N_, InvalidInput
from riderwatch.infra import sheets
from riderwatch.infra.clock import utcnow
from riderwatch.infra.sheets import RowProblem
from riderwatch.models import Platform, Station, User
from riderwatch.security import hash_one_time_code, new_one_time_code

MAX_ROWS = 5_000
MAX_FILE_BYTES = 5 * 1024 * 1024
# Codes are handed out by the station (printed, or sent by the platform's own channel): a fortnight.
CODE_TTL = timedelta(days=14)
IMPORT_STATUSES = ("applied", "active")

# Column names as platforms write them → the column.
HEADERS: dict[str, str] = {
    "姓名": "name",
    "name": "name",
    "手机号": "phone",
    "手机号码": "phone",
    "手机": "phone",
    "电话": "phone",
    "phone": "phone",
    "mobile": "phone",
    "平台": "platform",
    "platform": "platform",
    "站点": "station",
    "station": "station",
}
REQUIRED = ("name", "phone", "station")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")


class RidersRefused(InvalidInput):
    """Some rows are bad; nothing was stored. `errors` lists every problem of every bad row."""

    title = "Rider list refused"
    type_ = "/problems/riders-refused"

    def __init__(self, problems: Sequence[RowProblem], rows: int) -> None:
        bad = len({p.row for p in problems})
        super().__init__(
            N_("%(bad)d of %(rows)d rows are refused; nothing was imported"),
            bad=bad,
            rows=rows,
            errors=[p.as_dict() for p in problems],
        )
        self.problems = list(problems)


@dataclass(frozen=True)
class RiderRow:
    row: int
    name: str
    phone: str
    station: Station


@dataclass
class Plan:
    """What an import would do: new riders, changes to riders on the list, riders already as written."""

    rows: int
    create: list[RiderRow] = field(default_factory=list)
    update: list[tuple[RiderRow, User]] = field(default_factory=list)
    unchanged: int = 0


@dataclass(frozen=True)
class Issued:
    """A new rider's account and the one-time code to hand them."""

    row: int
    name: str
    username: str
    code: str
    expires_at: datetime


@dataclass(frozen=True)
class Imported:
    created: int
    updated: int
    unchanged: int
    accounts: list[Issued]


# --- reading ----------------------------------------------------------------------------------------


def read_records(data: bytes, *, filename: str, content_type: str) -> sheets.Records:
    fmt = sheets.file_format(data, filename=filename, content_type=content_type)
    if fmt == "xlsx":
        return sheets.xlsx_records(data, max_bytes=MAX_FILE_BYTES, max_rows=MAX_ROWS)
    return sheets.csv_records(data, max_bytes=MAX_FILE_BYTES)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a number typed into a spreadsheet: 13800138000.0
    return str(value).strip()


def normalise_phone(value: Any) -> str | None:
    """A mainland mobile number as 11 digits (spaces, dashes and a +86 prefix removed), or None."""
    digits = re.sub(r"[\s\-()]", "", _text(value))
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits if _MOBILE.match(digits) else None


def _columns(records: sheets.Records) -> tuple[list[str | None], list[RowProblem]]:
    header_row, cells = records[0]
    names = [_text(c).lower() for c in sheets.trimmed(cells)]
    columns = [HEADERS.get(n) for n in names]
    problems = []
    unknown = [n or "?" for n, c in zip(names, columns, strict=True) if c is None]
    if unknown:
        problems.append(
            RowProblem(
                header_row,
                "header",
                N_("unknown columns: %(columns)s (known: 姓名/name, 手机号/phone, 平台/platform, 站点/station)"),
                {"columns": ", ".join(unknown)},
            )
        )
    twice = sorted({c for c in columns if c and columns.count(c) > 1})
    if twice:
        problems.append(
            RowProblem(header_row, "header", N_("columns named twice: %(columns)s"), {"columns": ", ".join(twice)})
        )
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        problems.append(
            RowProblem(header_row, "header", N_("missing columns: %(columns)s"), {"columns": ", ".join(missing)})
        )
    return columns, problems


# --- checking ---------------------------------------------------------------------------------------


def _by_code_or_name(rows: Sequence[Any], value: str) -> Any | None:
    folded = value.casefold()
    for row in rows:
        if row.code.casefold() == folded or row.name == value or (row.name_en and row.name_en.casefold() == folded):
            return row
    return None


def plan(session: Session, records: sheets.Records, *, importer: User | None) -> Plan:
    """Check every row against the district and the riders on the list; refuse (RidersRefused) if any is bad."""
    if not records:
        raise InvalidInput(N_("the file is empty; the first row must name the columns: 姓名, 手机号, 平台, 站点"))
    rows = len(records) - 1
    if rows > MAX_ROWS:
        raise InvalidInput(N_("at most %(max)d riders per import; the file has more"), max=MAX_ROWS)
    if rows == 0:
        raise InvalidInput(N_("the file names its columns but lists no rider"))
    columns, problems = _columns(records)
    if problems:
        raise RidersRefused(problems, rows)
    stations = list(session.scalars(select(Station).where(Station.retired_at.is_(None))))
    platforms = {p.id: p for p in session.scalars(select(Platform))}
    checked: list[RiderRow] = []
    first_row_of: dict[str, int] = {}
    for number, raw in records[1:]:
        cells = sheets.trimmed(raw)
        if len(cells) > len(columns):
            problems.append(
                RowProblem(
                    number,
                    "",
                    N_("%(cells)d cells but the header names %(columns)d columns"),
                    {"cells": len(cells), "columns": len(columns)},
                )
            )
            continue
        values = {c: _text(v) for c, v in zip(columns, cells, strict=False) if c}
        before = len(problems)
        name = values.get("name", "")
        if not name or len(name) > 200 or any(ord(ch) < 32 for ch in name):
            problems.append(RowProblem(number, "name", N_("the name must be 1 to 200 characters")))
        phone = normalise_phone(values.get("phone"))
        if phone is None:
            problems.append(
                RowProblem(
                    number,
                    "phone",
                    N_("%(value)r is not a mainland mobile number (11 digits starting with 1)"),
                    {"value": values.get("phone", "")},
                )
            )
        elif phone in first_row_of:
            problems.append(
                RowProblem(
                    number, "phone", N_("the same mobile number is on row %(row)d"), {"row": first_row_of[phone]}
                )
            )
        else:
            first_row_of[phone] = number
        station = _by_code_or_name(stations, values.get("station", ""))
        if station is None:
            problems.append(
                RowProblem(number, "station", N_("no station %(value)r"), {"value": values.get("station", "")})
            )
        elif importer is not None and not policy.may_manage_station(importer, station.id):
            problems.append(
                RowProblem(number, "station", N_("%(value)r is not your station"), {"value": values.get("station", "")})
            )
        platform_given = values.get("platform", "")
        if station is not None and platform_given:
            platform = platforms.get(station.platform_id) if station.platform_id else None
            if _by_code_or_name([platform] if platform else [], platform_given) is None:
                problems.append(
                    RowProblem(
                        number,
                        "platform",
                        N_("the station %(station)s is not of the platform %(platform)r"),
                        {"station": station.name, "platform": platform_given},
                    )
                )
        if len(problems) == before and phone is not None and station is not None:
            checked.append(RiderRow(number, name, phone, station))
    existing = _existing(session, [r.phone for r in checked], problems, {r.phone: r.row for r in checked})
    if importer is not None and importer.role != "admin":
        # A station manager moves nobody over from another station: that takes an administrator.
        for item in checked:
            user = existing.get(item.phone)
            if user is not None and user.station_id is not None and user.station_id != importer.station_id:
                problems.append(
                    RowProblem(
                        item.row,
                        "station",
                        N_("this rider belongs to another station; an administrator can move them"),
                    )
                )
    if problems:
        raise RidersRefused(sorted(problems, key=lambda p: p.row), rows)
    result = Plan(rows=rows)
    for item in checked:
        user = existing.get(item.phone)
        if user is None:
            result.create.append(item)
        elif user.display_name != item.name or user.station_id != item.station.id:
            result.update.append((item, user))
        else:
            result.unchanged += 1
    return result


def _existing(session: Session, phones: list[str], problems: list[RowProblem], rows: dict[str, int]) -> dict[str, User]:
    """The riders already on the list, by mobile number; a number or login name another account holds is a problem."""
    found: dict[str, User] = {}
    for start in range(0, len(phones), 500):
        chunk = phones[start : start + 500]
        for user in session.scalars(select(User).where((User.phone.in_(chunk)) | (User.username.in_(chunk)))):
            key = user.phone if user.phone in rows else user.username
            if user.role != "rider":
                problems.append(
                    RowProblem(rows[key], "phone", N_("the mobile number belongs to an account that is not a rider"))
                )
            elif user.phone in rows:
                found[user.phone] = user
            else:
                problems.append(
                    RowProblem(rows[key], "phone", N_("a rider signs in with this number but has another on record"))
                )
    return found


# --- storing ----------------------------------------------------------------------------------------


@atomic
def apply(
    session: Session,
    *,
    importer: User | None,
    records: sheets.Records,
    hashes: dict[str, tuple[str, str]],
    rider_status: str,
    filename: str,
) -> Imported:
    """Check again (the list may have changed since the codes were hashed) and store everything.

    `hashes` holds, for each mobile number planned as new, its one-time code and the code's hash.
    """
    if rider_status not in IMPORT_STATUSES:
        raise InvalidInput(
            N_("imported riders start as %(choices)s, not %(status)r"),
            choices=" / ".join(IMPORT_STATUSES),
            status=rider_status,
        )
    todo = plan(session, records, importer=importer)
    expires = utcnow() + CODE_TTL
    issued = []
    for item in todo.create:
        if item.phone not in hashes:
            raise InvalidInput(N_("the rider list changed during the import; import the file again"))
        code, code_hash = hashes[item.phone]
        user = accounts.create_user(
            session,
            username=item.phone,
            role="rider",
            password_hash=code_hash,
            password_expires_at=expires,
            must_change_password=True,
            display_name=item.name,
            phone=item.phone,
            rider_status=rider_status,
            links={"station": item.station.code},
            actor=importer,
        )
        issued.append(Issued(item.row, item.name, user.username, code, expires))
    for item, user in todo.update:
        accounts.update_user(
            session,
            actor=importer,
            user_id=user.id,
            values={"display_name": item.name, "station": item.station.code},
        )
    record(
        session,
        actor=importer,
        action="rider.import",
        object_type="rider_list",
        object_id=filename[:64] or "-",
        created=len(todo.create),
        updated=len(todo.update),
        unchanged=todo.unchanged,
    )
    session.flush()
    return Imported(len(todo.create), len(todo.update), todo.unchanged, issued)


async def import_riders(
    factory: sessionmaker[Session],
    read_factory: sessionmaker[Session],
    hashes: anyio.CapacityLimiter,
    *,
    importer: User | None,
    data: bytes,
    filename: str,
    content_type: str,
    dry_run: bool,
    rider_status: str,
) -> Imported:
    """Read and check the file in a read-only transaction; on a real import, hash a one-time code for each
    new rider outside any transaction, then store everything in one short one."""
    records = await anyio.to_thread.run_sync(partial(read_records, data, filename=filename, content_type=content_type))
    planned = await anyio.to_thread.run_sync(
        in_transaction, read_factory, partial(plan, records=records, importer=importer)
    )
    if dry_run:
        return Imported(len(planned.create), len(planned.update), planned.unchanged, [])
    codes = {item.phone: new_one_time_code() for item in planned.create}
    hashed = await anyio.to_thread.run_sync(
        lambda: {phone: (code, hash_one_time_code(code)) for phone, code in codes.items()}, limiter=hashes
    )
    return await anyio.to_thread.run_sync(
        in_transaction,
        factory,
        partial(apply, importer=importer, records=records, hashes=hashed, rider_status=rider_status, filename=filename),
    )
