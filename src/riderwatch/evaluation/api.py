"""The platforms' evaluation under /api/v1: AHP weights from a comparison matrix, the settings, scoring a
month, and a month's results (each caller sees the riders they may: a platform only its own)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from sqlalchemy import select

from riderwatch.deps import DbSession, SettingsDep, require
from riderwatch.errors import N_, NotFound
from riderwatch.evaluation import service
from riderwatch.evaluation.indicators import INDICATORS
from riderwatch.evaluation.schemas import AhpMatrix, SchemeIn
from riderwatch.evaluation.weights import ahp
from riderwatch.i18n import gettext, request_locale
from riderwatch.models import EvaluationRun, EvaluationScheme, Platform, Station, User

router = APIRouter(prefix="/api/v1", tags=["evaluation"])

Manager = Annotated[User, Depends(require("evaluation.manage"))]
Reader = Annotated[User, Depends(require("evaluation.read"))]
PeriodPath = Annotated[str, Path(pattern=r"^\d{4}-\d{2}$", description="a month, YYYY-MM")]


@router.post("/evaluation/ahp", summary="Weights, λmax, CI and CR of a pairwise comparison matrix (nothing stored)")
def ahp_weights(body: AhpMatrix, user: Manager) -> dict[str, Any]:
    return ahp(body.matrix).as_dict()


@router.get("/evaluation/indicators", summary="The indicators an evaluation can use")
def indicators(request: Request, user: Reader) -> dict[str, Any]:
    locale = request_locale(request)
    return {
        "items": [
            {"key": i.key, "label": gettext(locale, i.label), "better": i.better, "unit": gettext(locale, i.unit)}
            for i in INDICATORS
        ]
    }


def present_scheme(scheme: EvaluationScheme) -> dict[str, Any]:
    return {
        "id": scheme.id,
        "method": scheme.method,
        "indicators": scheme.indicators,
        "matrix": scheme.matrix,
        "consistency": scheme.consistency,
        "grades": scheme.grades,
        "note": scheme.note,
        "created_at": scheme.created_at.isoformat() if scheme.created_at else None,
    }


@router.get("/evaluation/scheme", summary="The evaluation's settings in force")
def get_scheme(db: DbSession, user: Manager) -> dict[str, Any]:
    return present_scheme(service.current_scheme(db))


@router.post("/evaluation/scheme", status_code=201, summary="New settings: indicators, weights, difficulty, grades")
def save_scheme(body: SchemeIn, db: DbSession, user: Manager) -> dict[str, Any]:
    scheme = service.save_scheme(
        db,
        user=user,
        method=body.method,
        keys=[i.key for i in body.indicators],
        difficulties=[i.difficulty for i in body.indicators],
        weights=[i.weight or 0.0 for i in body.indicators] if body.method == "typed" else None,
        matrix=body.matrix,
        grades={str(k): v for k, v in body.grades.items()},
        note=body.note,
    )
    return present_scheme(scheme)


def present_run(run: EvaluationRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "period": run.period,
        "method": run.method,
        "indicators": run.indicators,
        "grades": run.grades,
        "riders": run.rider_count,
        "created_at": run.created_at.isoformat(),
    }


@router.post("/evaluations/{period}/runs", status_code=201, summary="Score a month now (it supersedes earlier runs)")
def score_month(period: PeriodPath, db: DbSession, user: Manager, settings: SettingsDep) -> dict[str, Any]:
    return present_run(service.run_period(db, period=period, timezone=settings.timezone, user=user))


@router.get("/evaluations/{period}", summary="A month's evaluation: one row per rider the caller may see")
def month(period: PeriodPath, db: DbSession, user: Reader) -> list[dict[str, Any]]:
    run = service.latest_run(db, period)
    if run is None:
        raise NotFound(N_("%(period)s has not been scored yet"), period=period)
    platforms = {k: v for k, v in db.execute(select(Platform.id, Platform.code))}
    stations = {k: v for k, v in db.execute(select(Station.id, Station.code))}
    out = []
    for row, person in service.visible_rows(db, user=user, run=run):
        lines = service.explain(run, row)
        out.append(
            {
                "period": run.period,
                "run_id": run.id,
                "rider_id": person.id,
                "username": person.username,
                "name": person.display_name or person.username,
                "platform": platforms.get(row.platform_id or 0),
                "station": stations.get(row.station_id or 0),
                "values": row.values,
                "score": row.score,
                "rank": row.rank,
                "grade": row.grade,
                "lines": [
                    {
                        "indicator": line.key,
                        "value": line.value,
                        "lowest": line.low,
                        "highest": line.high,
                        "normalised": line.normalised,
                        "weight": line.weight,
                        "difficulty": line.difficulty,
                        "points": line.points,
                    }
                    for line in lines
                ],
            }
        )
    return out
