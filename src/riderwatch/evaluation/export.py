"""An evaluation as a file for a platform's payroll: CSV, or XLSX with a sheet of results (one row per
rider: the indicators' values, the weighted score, the rank and the grade) and a sheet of the weights and
the method. Headers in the reader's language (Chinese first)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.errors import N_
from riderwatch.evaluation.indicators import BY_KEY
from riderwatch.evaluation.service import visible_rows
from riderwatch.i18n import gettext
from riderwatch.infra import sheets
from riderwatch.models import EvaluationRun, Platform, Station, User

METHOD_LABELS = {
    "typed": N_("weights typed in"),
    "ahp": N_("weights by AHP (pairwise comparison)"),
    "entropy": N_("weights by the entropy weight method"),
}
BETTER_LABELS = {"higher": N_("higher is better"), "lower": N_("lower is better")}


def evaluation_file(
    session: Session,
    *,
    run: EvaluationRun,
    user: User | None,
    platform_id: int | None,
    file_format: str,
    locale: str = "zh",
) -> bytes:
    def _(message: str) -> str:
        return gettext(locale, message)

    rows = visible_rows(session, user=user, run=run, platform_id=platform_id)
    keys = [i["key"] for i in run.indicators]
    platforms = {k: v for k, v in session.execute(select(Platform.id, Platform.name))}
    stations = {k: v for k, v in session.execute(select(Station.id, Station.name))}
    header = [
        _("Month"),
        _("Rider"),
        _("Username"),
        _("Platform"),
        _("Station"),
        *(_(BY_KEY[k].label) for k in keys),
        _("Weighted score"),
        _("Rank"),
        _("Grade"),
    ]
    body = [
        [
            run.period,
            person.display_name or person.username,
            person.username,
            platforms.get(row.platform_id or 0, ""),
            stations.get(row.station_id or 0, ""),
            *(row.values.get(k) for k in keys),
            row.score,
            row.rank,
            row.grade,
        ]
        for row, person in rows
    ]
    if file_format == "csv":
        return sheets.write_csv(header, body)
    weights_header = [_("Indicator"), _("Direction"), _("Weight"), _("Difficulty factor"), _("Lowest"), _("Highest")]
    weights_body: list[list[object]] = [
        [_(BY_KEY[i["key"]].label), _(BETTER_LABELS[i["better"]]), i["weight"], i["difficulty"], i["low"], i["high"]]
        for i in run.indicators
    ]
    weights_body.append([])
    weights_body.append([_("Method"), _(METHOD_LABELS[run.method])])
    weights_body.append([_("Score"), _("100 × Σ weight × difficulty factor × normalised value")])
    weights_body.append(
        [
            _("Normalised value"),
            _("(value − lowest) / (highest − lowest); lower is better: (highest − value) / (highest − lowest)"),
        ]
    )
    weights_body.append([_("Grades"), "  ".join(f"{g} ≥ {v:g}" for g, v in run.grades.items())])
    weights_body.append([_("Run"), run.id])
    return sheets.write_workbook(
        [
            sheets.Sheet(name=_("Evaluation"), header=header, rows=body),
            sheets.Sheet(name=_("Weights and method"), header=weights_header, rows=weights_body),
        ]
    )
