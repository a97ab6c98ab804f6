"""The evaluation pages: the administrator's settings — indicators, weights typed in, by AHP (a pairwise
comparison matrix whose consistency shows as it is filled in) or by entropy, difficulty factors, grades —
and the scored months (/admin/evaluation); a month's results with charts and files for the platforms,
station managers and the command centre (/evaluation/{YYYY-MM}), each rider's score line by line; and a
rider's own months (/my/evaluation).

Thin like the other pages: the rules are evaluation.service, behind /api/v1 too.
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from riderwatch import policy
from riderwatch.deps import DbSession, PathId, require
from riderwatch.errors import N_, DomainError, Forbidden, InvalidInput, NotFound
from riderwatch.evaluation import service
from riderwatch.evaluation.export import BETTER_LABELS, METHOD_LABELS, evaluation_file
from riderwatch.evaluation.indicators import INDICATORS
from riderwatch.evaluation.weights import Ahp, ahp
from riderwatch.infra import sheets
from riderwatch.models import EvaluationRun, Platform, Station, User
from riderwatch.points.service import current_period
from riderwatch.web.forms import done_message, formatter, labels_in, refusal, see_other
from riderwatch.web.templating import render

router = APIRouter(include_in_schema=False)

Manager = Annotated[User, Depends(require("evaluation.manage"))]
Reader = Annotated[User, Depends(require("evaluation.read"))]

# Saaty's scale, as the matrix editor offers it: how much more important the row is than the column.
SCALE = [9, 8, 7, 6, 5, 4, 3, 2, 1, 1 / 2, 1 / 3, 1 / 4, 1 / 5, 1 / 6, 1 / 7, 1 / 8, 1 / 9]
SCALE_WORDS = {
    1: N_("equally important"),
    3: N_("moderately more important"),
    5: N_("strongly more important"),
    7: N_("very strongly more important"),
    9: N_("extremely more important"),
}
DONE = {
    "scheme": N_("The settings are saved; they apply to the next month scored."),
    "scored": N_("The month is scored."),
}
GRADE_LABELS = {"A": N_("Excellent"), "B": N_("Good"), "C": N_("Satisfactory"), "D": N_("Needs improvement")}


def scale_text(value: float) -> str:
    fraction = Fraction(value).limit_denominator(9)
    return str(fraction.numerator) if fraction.denominator == 1 else f"1/{fraction.denominator}"


def _labels(request: Request) -> dict[str, Any]:
    _ = formatter(request)._
    return {
        "indicators": {i.key: _(i.label) for i in INDICATORS},
        "units": {i.key: _(i.unit) for i in INDICATORS},
        "better": {i.key: _(BETTER_LABELS[i.better]) for i in INDICATORS},
        "methods": labels_in(request, METHOD_LABELS),
        "grades": labels_in(request, GRADE_LABELS),
        "scale": labels_in(request, {str(k): v for k, v in SCALE_WORDS.items()}),
    }


# --- the settings ---------------------------------------------------------------------------------------


def _form_of(scheme: Any) -> dict[str, Any]:
    """The settings as the form holds them."""
    included = [i["key"] for i in scheme.indicators]
    matrix: dict[str, float] = {}
    if scheme.matrix:
        for a, ka in enumerate(included):
            for b, kb in enumerate(included):
                if a < b:
                    matrix[f"{ka}|{kb}"] = scheme.matrix[a][b]
    return {
        "method": scheme.method,
        "included": included,
        # In per cent, as typed in (the service scales typed weights to add up to 1).
        "weights": {
            i["key"]: round(100 * i["weight"], 2) if i["weight"] is not None else None for i in scheme.indicators
        },
        "difficulty": {i["key"]: i["difficulty"] for i in scheme.indicators},
        "matrix": matrix,
        "grades": dict(scheme.grades),
        "note": "",
    }


def _read_form(form: FormData) -> dict[str, Any]:
    """The settings form as sent (nothing checked yet: the service checks)."""

    def number(name: str, default: float | None) -> float | None:
        raw = str(form.get(name, "") or "").strip()
        if not raw:
            return default
        try:
            return float(Fraction(raw)) if "/" in raw else float(raw)
        except (ValueError, ZeroDivisionError):
            raise InvalidInput(N_("%(field)s: %(value)r is not a number"), field=name, value=raw) from None

    included = [i.key for i in INDICATORS if i.key in form.getlist("include")]
    matrix: dict[str, float] = {}
    for a, ka in enumerate(included):
        for kb in included[a + 1 :]:
            matrix[f"{ka}|{kb}"] = number(f"m|{ka}|{kb}", 1.0) or 1.0
    return {
        "method": str(form.get("method", "typed")),
        "included": included,
        "weights": {k: number(f"weight|{k}", 0.0) for k in included},
        "difficulty": {k: number(f"difficulty|{k}", 1.0) for k in included},
        "matrix": matrix,
        "grades": {g: number(f"grade|{g}", None) for g in ("A", "B", "C")},
        "note": str(form.get("note", ""))[:500],
    }


def _square(values: dict[str, Any]) -> list[list[float]]:
    keys = values["included"]
    out = [[1.0] * len(keys) for _ in keys]
    for a, ka in enumerate(keys):
        for b, kb in enumerate(keys):
            if a < b:
                v = float(values["matrix"].get(f"{ka}|{kb}", 1.0))
                out[a][b], out[b][a] = v, 1 / v
    return out


def _consistency(values: dict[str, Any]) -> tuple[Ahp | None, str]:
    if values["method"] != "ahp" or len(values["included"]) < 2:
        return None, ""
    try:
        return ahp(_square(values)), ""
    except DomainError as exc:
        return None, exc.detail


def _admin_page(
    request: Request, db: Session, *, values: dict[str, Any] | None = None, status: int = 200, **extra: Any
) -> HTMLResponse:
    tz = request.app.state.settings.timezone
    scheme = service.current_scheme(db)
    values = values or _form_of(scheme)
    result, problem = _consistency(values)
    context = {
        "values": values,
        "scheme": scheme,
        "indicators": INDICATORS,
        "scale": [(scale_text(v), v) for v in SCALE],
        "scale_text": scale_text,
        "ahp": result,
        "ahp_problem": problem,
        "runs": service.runs(db),
        "this_month": current_period(tz),
        "last_month": service.previous_period(tz),
        "labels": _labels(request),
        **extra,
    }
    return render(request, "evaluation/admin.html", context, status=status)


@router.get("/admin/evaluation")
def admin_page(request: Request, db: DbSession, user: Manager, done: str = "") -> HTMLResponse:
    return _admin_page(request, db, **done_message(request, done, DONE))


@router.post("/admin/evaluation/consistency")
async def consistency(
    request: Request, user: Manager, part: Annotated[Literal["matrix", "result"], Query()] = "matrix"
) -> HTMLResponse:
    """The matrix and its consistency as the form stands (when indicators or the method change), or only
    the consistency and weights (when a judgement changes: the selects the user is working in stay)."""
    try:
        values = _read_form(await request.form())
    except DomainError as exc:
        message, status = refusal(request, exc)
        return render(request, "evaluation/_matrix.html", {"values": None, **message}, status=status)
    result, problem = _consistency(values)
    context = {
        "values": values,
        "scale": [(scale_text(v), v) for v in SCALE],
        "scale_text": scale_text,
        "ahp": result,
        "ahp_problem": problem,
        "labels": _labels(request),
    }
    return render(request, "evaluation/_matrix.html" if part == "matrix" else "evaluation/_ahp_result.html", context)


@router.post("/admin/evaluation/scheme")
async def save_scheme(request: Request, db: DbSession, user: Manager) -> Response:
    values: dict[str, Any] | None = None
    try:
        values = _read_form(await request.form())
        keys = values["included"]
        service.save_scheme(
            db,
            user=user,
            method=values["method"],
            keys=keys,
            difficulties=[values["difficulty"][k] for k in keys],
            weights=[values["weights"][k] for k in keys] if values["method"] == "typed" else None,
            matrix=_square(values) if values["method"] == "ahp" else None,
            grades=values["grades"],
            note=values["note"],
        )
    except DomainError as exc:
        message, status = refusal(request, exc)
        return _admin_page(request, db, values=values, status=status, **message)
    return see_other("/admin/evaluation?done=scheme")


@router.post("/admin/evaluation/runs")
async def score_month(request: Request, db: DbSession, user: Manager) -> Response:
    form = await request.form()
    period = str(form.get("period", "")).strip()
    try:
        service.run_period(db, period=period, timezone=request.app.state.settings.timezone, user=user)
    except DomainError as exc:
        message, status = refusal(request, exc)
        return _admin_page(request, db, status=status, **message)
    return see_other(f"/evaluation/{period}?done=scored")


# --- a month's results ----------------------------------------------------------------------------------


def _names(db: Session) -> tuple[dict[int, str], dict[int, str]]:
    platforms = {k: v for k, v in db.execute(select(Platform.id, Platform.name))}
    stations = {k: v for k, v in db.execute(select(Station.id, Station.name))}
    return platforms, stations


@router.get("/evaluation")
def months(request: Request, db: DbSession, user: Reader) -> Response:
    if user.role == "rider":
        return see_other("/my/evaluation")
    seen: dict[str, EvaluationRun] = {}
    for run in service.runs(db, limit=200):
        seen.setdefault(run.period, run)
    return render(request, "evaluation/months.html", {"runs": list(seen.values()), "labels": _labels(request)})


def _distribution(scores: list[float]) -> list[tuple[str, int]]:
    """Riders per band of ten points, in order (the last band takes everything from 100 on); a list, as the
    page's JSON would sort a mapping's keys."""
    bands: Counter[str] = Counter()
    for value in scores:
        low = min(int(value // 10) * 10, 100)
        bands[f"{low}–{low + 9}" if low < 100 else "100+"] += 1
    order = [f"{b}–{b + 9}" for b in range(0, 100, 10)] + ["100+"]
    return [(band, bands.get(band, 0)) for band in order]


@router.get("/evaluation/{period}")
def month_page(request: Request, period: str, db: DbSession, user: Reader, done: str = "") -> Response:
    if user.role == "rider":
        return see_other(f"/my/evaluation/{period}")
    run = service.latest_run(db, period)
    rows = service.visible_rows(db, user=user, run=run) if run else []
    platforms, stations = _names(db)
    labels = _labels(request)
    contributions: dict[str, float] = {}
    if run and rows:
        totals: dict[str, float] = {item["key"]: 0.0 for item in run.indicators}
        for row, _ in rows:
            for line in service.explain(run, row):
                totals[line.key] += line.points
        contributions = {labels["indicators"][key]: round(total / len(rows), 2) for key, total in totals.items()}
    context = {
        "period": period,
        "run": run,
        "rows": rows,
        "platforms": platforms,
        "stations": stations,
        "labels": labels,
        "charts": {
            "distribution": _distribution([row.score for row, _ in rows]),
            "contributions": contributions,
        },
        "grade_counts": Counter(row.grade for row, _ in rows),
        "may_score": policy.has_permission(user, "evaluation.manage"),
        **done_message(request, done, DONE),
    }
    return render(request, "evaluation/month.html", context, status=200 if run else 404)


@router.get("/evaluation/{period}/file.{file_format}")
def month_file(request: Request, period: str, file_format: str, db: DbSession, user: Reader) -> Response:
    if file_format not in ("csv", "xlsx"):
        raise InvalidInput(N_("a file is CSV or XLSX, not %(format)r"), format=file_format)
    run = service.latest_run(db, period)
    if run is None:
        raise NotFound(N_("%(period)s has not been scored yet"), period=period)
    if user.role == "rider":
        raise Forbidden(N_("the month's file is for the platforms and the stations"))
    data = evaluation_file(
        db, run=run, user=user, platform_id=None, file_format=file_format, locale=formatter(request).locale
    )
    media = sheets.XLSX_TYPE if file_format == "xlsx" else "text/csv; charset=utf-8"
    name = f"riderwatch-evaluation-{period}.{file_format}"
    return Response(data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _explained(request: Request, run: EvaluationRun, row: Any, person: User, db: Session, back: str) -> HTMLResponse:
    platforms, stations = _names(db)
    return render(
        request,
        "evaluation/rider.html",
        {
            "run": run,
            "row": row,
            "person": person,
            "lines": service.explain(run, row),
            "platform": platforms.get(row.platform_id or 0, ""),
            "station": stations.get(row.station_id or 0, ""),
            "labels": _labels(request),
            "back": back,
        },
    )


@router.get("/evaluation/{period}/riders/{rider_id}")
def rider_page(request: Request, period: str, rider_id: PathId, db: DbSession, user: Reader) -> Response:
    run = service.latest_run(db, period)
    if run is None:
        raise NotFound(N_("%(period)s has not been scored yet"), period=period)
    row = service.row_of(db, user=user, run=run, rider_id=rider_id)
    person = db.get(User, rider_id)
    assert person is not None
    return _explained(request, run, row, person, db, back=f"/evaluation/{period}")


# --- a rider's own ----------------------------------------------------------------------------------------


Rider = Annotated[User, Depends(require("evaluation.read"))]


@router.get("/my/evaluation")
def my_months(request: Request, db: DbSession, user: Rider) -> HTMLResponse:
    if user.role != "rider":
        raise Forbidden(N_("this page is a rider's own; see the months' results instead"))
    mine = []
    for period in sorted({run.period for run in service.runs(db, limit=200)}, reverse=True):
        found = service.own_row(db, rider=user, period=period)
        if found is not None:
            mine.append(found)
    return render(request, "evaluation/mine.html", {"mine": mine, "labels": _labels(request)})


@router.get("/my/evaluation/{period}")
def my_month(request: Request, period: str, db: DbSession, user: Rider) -> HTMLResponse:
    if user.role != "rider":
        raise Forbidden(N_("this page is a rider's own; see the months' results instead"))
    found = service.own_row(db, rider=user, period=period)
    if found is None:
        return render(request, "evaluation/mine.html", {"mine": [], "missing": period, "labels": _labels(request)})
    run, row = found
    return _explained(request, run, row, user, db, back="/my/evaluation")
