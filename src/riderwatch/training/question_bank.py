"""A course's question bank imported from a spreadsheet (XLSX or CSV, UTF-8 or GB 18030): checked whole,
then added all or nothing.

The first row names the columns, in Chinese or English:
- 题目 / question (the question's text), and optionally 题目英文 / question_en;
- 选项A … 选项H / A … H (two options at least), and optionally 选项A英文 … / A_en …;
- 答案 / answer: the letters of the right options ("B", "AC", "A,C" or "A、C");
- optionally 类型 / type: 单选 / single or 多选 / multiple (without it, one letter means single choice).

A question whose text is already in the course's bank is left as it is, so importing the same file again
adds nothing. Each refusal names its spreadsheet row and column.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.audit.service import record
from riderwatch.db import atomic
from riderwatch.errors import N_, InvalidInput
from riderwatch.infra import sheets
from riderwatch.infra.sheets import RowProblem
from riderwatch.models import CourseQuestion, User
from riderwatch.training.service import MAX_OPTIONS, bank_size, check_question, course_of

MAX_ROWS = 2_000
MAX_FILE_BYTES = 5 * 1024 * 1024
LETTERS = string.ascii_uppercase[:MAX_OPTIONS]

HEADERS: dict[str, str] = {
    "题目": "text",
    "题干": "text",
    "问题": "text",
    "question": "text",
    "text": "text",
    "题目英文": "text_en",
    "题目(英文)": "text_en",
    "题目（英文）": "text_en",
    "question_en": "text_en",
    "答案": "answer",
    "正确答案": "answer",
    "answer": "answer",
    "类型": "type",
    "题型": "type",
    "type": "type",
}
for _letter in LETTERS:
    for _name in (f"选项{_letter}", _letter, f"option {_letter}", f"option_{_letter}"):
        HEADERS[_name.lower()] = f"option:{_letter}"
    for _name in (
        f"选项{_letter}英文",
        f"选项{_letter}(英文)",
        f"选项{_letter}（英文）",
        f"{_letter}_en",
        f"option_{_letter}_en",
    ):
        HEADERS[_name.lower()] = f"option_en:{_letter}"

TYPES = {"单选": False, "单选题": False, "single": False, "多选": True, "多选题": True, "multiple": True}
_ANSWER = re.compile(r"[\s,，、;；/]+")


class QuestionsRefused(InvalidInput):
    """Some rows are bad; nothing was added. `errors` names every problem of every bad row."""

    title = "Question bank refused"
    type_ = "/problems/questions-refused"

    def __init__(self, problems: list[RowProblem], rows: int) -> None:
        super().__init__(
            N_("%(bad)d of %(rows)d rows are refused; no question was added"),
            bad=len({p.row for p in problems}),
            rows=rows,
            errors=[p.as_dict() for p in problems],
        )
        self.problems = problems


@dataclass(frozen=True)
class Imported:
    added: int
    unchanged: int
    bank: int


def read_records(data: bytes, *, filename: str, content_type: str) -> sheets.Records:
    if sheets.file_format(data, filename=filename, content_type=content_type) == "xlsx":
        return sheets.xlsx_records(data, max_bytes=MAX_FILE_BYTES, max_rows=MAX_ROWS)
    return sheets.csv_records(data, max_bytes=MAX_FILE_BYTES)


def _text(cell: Any) -> str:
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


def _columns(header: tuple[int, Any]) -> tuple[dict[int, str], list[RowProblem]]:
    row, cells = header
    columns: dict[int, str] = {}
    problems: list[RowProblem] = []
    for index, cell in enumerate(cells):
        name = _text(cell).lower().replace(" ", "") if not sheets.blank(cell) else ""
        key = HEADERS.get(name) or HEADERS.get(_text(cell).lower())
        if key is None:
            continue  # a column of the school's own (notes, a chapter): not ours, left alone
        if key in columns.values():
            problems.append(RowProblem(row, _text(cell), N_("the column %(column)r is there twice"), {"column": key}))
        columns[index] = key
    for needed, label in (("text", "题目 / question"), ("answer", "答案 / answer")):
        if needed not in columns.values():
            problems.append(RowProblem(row, needed, N_("the header has no %(column)s column"), {"column": label}))
    if sum(1 for key in columns.values() if key.startswith("option:")) < 2:
        problems.append(RowProblem(row, "options", N_("the header needs two option columns at least (选项A, 选项B …)")))
    return columns, problems


def _question(row: int, cells: Any, columns: dict[int, str]) -> tuple[dict[str, Any] | None, list[RowProblem]]:
    values = {key: _text(cells[i]) if i < len(cells) else "" for i, key in columns.items()}
    problems: list[RowProblem] = []
    letters = [letter for letter in LETTERS if values.get(f"option:{letter}")]
    # Options are the filled option columns, in letter order; a gap (A, B, D) is a mistake to point at.
    if letters and letters != list(LETTERS[: len(letters)]):
        problems.append(RowProblem(row, "options", N_("fill the options from A on, without gaps")))
    answer = [part for part in _ANSWER.split(values.get("answer", "").upper()) if part]
    chosen = sorted({c for part in answer for c in part}) if answer else []
    if not chosen:
        problems.append(RowProblem(row, "answer", N_("give the right option's letter (e.g. B, or AC)")))
    unknown = [c for c in chosen if c not in letters]
    if unknown:
        problems.append(
            RowProblem(
                row, "answer", N_("the answer names %(letters)s, which has no option"), {"letters": "".join(unknown)}
            )
        )
    kind = values.get("type", "").lower()
    if kind and kind not in TYPES:
        problems.append(
            RowProblem(row, "type", N_("the type is 单选 (single) or 多选 (multiple), not %(value)r"), {"value": kind})
        )
    multiple = TYPES.get(kind, len(chosen) > 1)
    if not values.get("text"):
        problems.append(RowProblem(row, "text", N_("the question has no text")))
    if len(letters) < 2:
        problems.append(RowProblem(row, "options", N_("give two options at least")))
    if not multiple and len(chosen) > 1:
        problems.append(RowProblem(row, "answer", N_("a single-choice question has exactly one right option")))
    if problems:
        return None, problems
    question = {
        "text": values["text"],
        "text_en": values.get("text_en", ""),
        "multiple": multiple,
        "options": [{"text": values[f"option:{x}"], "text_en": values.get(f"option_en:{x}", "")} for x in letters],
        "correct": [letters.index(c) for c in chosen],
    }
    return question, []


@atomic
def import_questions(
    session: Session, *, actor: User, code: str, records: sheets.Records, dry_run: bool = False
) -> Imported:
    """Add the file's questions to the course's bank (those already there by their text are left alone)."""
    course = course_of(session, code)
    if not records:
        raise InvalidInput(N_("the file is empty; the first row names the columns"))
    columns, problems = _columns(records[0])
    if problems:
        raise QuestionsRefused(problems, rows=len(records) - 1)
    body = records[1:]
    if not body:
        raise InvalidInput(N_("the file has a header row but no question"))
    if len(body) > MAX_ROWS:
        raise InvalidInput(N_("the file has more than %(max)d questions; split it"), max=MAX_ROWS)
    known = set(session.scalars(select(CourseQuestion.text).where(CourseQuestion.course_id == course.id)))
    new: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    unchanged = 0
    for row, cells in body:
        question, found = _question(row, cells, columns)
        problems.extend(found)
        if question is None:
            continue
        text = question["text"]
        if text in seen:
            problems.append(
                RowProblem(row, "question", N_("the same question as row %(other)d"), {"other": seen[text]})
            )
            continue
        seen[text] = row
        if text in known:
            unchanged += 1
        else:
            new.append(question)
    if problems:
        raise QuestionsRefused(problems, rows=len(body))
    if not dry_run and new:
        rows = [check_question(i, q) for i, q in enumerate(new, start=1)]
        for question_row in rows:
            question_row.course_id = course.id
        session.add_all(rows)
        session.flush()
        record(
            session,
            actor=actor,
            action="course.questions",
            object_type="course",
            object_id=code,
            added=len(rows),
            unchanged=unchanged,
        )
    return Imported(
        added=len(new), unchanged=unchanged, bank=bank_size(session, course.id) + (len(new) if dry_run else 0)
    )
