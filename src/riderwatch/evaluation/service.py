"""Scoring riders for the delivery platforms' pay.

A scheme names the indicators in force with a weight and a difficulty factor each. For a month, every
indicator is measured per rider (indicators.py) and normalised to 0–1 across the riders scored:
(x − lowest) / (highest − lowest) where more is better, (highest − x) / (highest − lowest) where less
is better; when every rider has the same value each gets 1 (nobody is behind) — 0 if that value is 0 and
more is better; a rider with no value gets 0. A rider's score is

    score = 100 × Σ weight × difficulty × normalised value

with the weights summing to 1, so with every difficulty 1 the best possible score is 100; a difficulty
above 1 makes an indicator count for more than its weight. Ranks follow the score (equal scores share a
rank), grades its thresholds. A run keeps every input (the values, the weights, factors, ranges and
thresholds), so each line of a rider's score can be shown and the run scored again to the same result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch import policy
from riderwatch.audit.service import record
from riderwatch.errors import N_, Forbidden, InvalidInput, NotFound
from riderwatch.evaluation.indicators import BY_KEY, Values, measure
from riderwatch.evaluation.weights import ahp_weights, entropy_weights
from riderwatch.infra.clock import utcnow
from riderwatch.models import EvaluationRow, EvaluationRun, EvaluationScheme, Platform, Rider, User
from riderwatch.points.service import month_bounds

DEFAULT_WEIGHTS = {
    "verified_clues": 0.20,
    "verified_share": 0.10,
    "value_grades": 0.15,
    "report_minutes": 0.05,
    "duty_hours": 0.15,
    "tasks_done": 0.10,
    "alert_ack_share": 0.10,
    "alert_ack_minutes": 0.05,
    "training_score": 0.10,
}
DEFAULT_GRADES = {"A": 75.0, "B": 55.0, "C": 35.0}
GRADES = ("A", "B", "C", "D")
DIFFICULTY_RANGE = (0.5, 3.0)


# --- schemes --------------------------------------------------------------------------------------------


def default_scheme() -> EvaluationScheme:
    """The settings in force until an administrator saves their own (not stored until a run uses it)."""
    return EvaluationScheme(
        method="typed",
        indicators=[{"key": k, "weight": w, "difficulty": 1.0} for k, w in DEFAULT_WEIGHTS.items()],
        matrix=None,
        consistency=None,
        grades=dict(DEFAULT_GRADES),
        note="",
    )


def current_scheme(session: Session) -> EvaluationScheme:
    scheme = session.scalars(select(EvaluationScheme).order_by(EvaluationScheme.id.desc()).limit(1)).first()
    return scheme if scheme is not None else default_scheme()


def schemes(session: Session) -> list[EvaluationScheme]:
    return list(session.scalars(select(EvaluationScheme).order_by(EvaluationScheme.id.desc()).limit(50)))


def _check_grades(grades: dict[str, float]) -> dict[str, float]:
    try:
        a, b, c = (float(grades[g]) for g in ("A", "B", "C"))
    except (KeyError, TypeError, ValueError):
        raise InvalidInput(N_("give the lowest score of grades A, B and C")) from None
    if not 0 <= c < b < a <= 300:
        raise InvalidInput(N_("grade thresholds go down from A to C, between 0 and 300: A > B > C"))
    return {"A": a, "B": b, "C": c}


def save_scheme(
    session: Session,
    *,
    user: User,
    method: str,
    keys: Sequence[str],
    difficulties: Sequence[float],
    weights: Sequence[float] | None = None,
    matrix: Sequence[Sequence[float]] | None = None,
    grades: dict[str, float],
    note: str = "",
) -> EvaluationScheme:
    """A new version of the evaluation's settings. Typed weights are scaled to sum to 1; AHP weights come
    from the matrix (rows and columns in the order of `keys`), refused when its consistency ratio reaches
    0.1; entropy weights are derived from each month's data when it is scored."""
    keys = list(keys)
    if len(keys) < 2:
        raise InvalidInput(N_("an evaluation needs at least two indicators"))
    unknown = [k for k in keys if k not in BY_KEY]
    if unknown:
        raise InvalidInput(N_("no indicator %(key)r"), key=unknown[0])
    if len(set(keys)) != len(keys):
        raise InvalidInput(N_("each indicator is named once"))
    if len(difficulties) != len(keys):
        raise InvalidInput(N_("give a difficulty factor for each indicator"))
    low, high = DIFFICULTY_RANGE
    for key, factor in zip(keys, difficulties, strict=True):
        if not low <= factor <= high:
            raise InvalidInput(
                N_("the difficulty factor of %(indicator)s is from %(low)s to %(high)s, not %(value)s"),
                indicator=key,
                low=low,
                high=high,
                value=factor,
            )
    consistency: dict[str, float] | None = None
    stored_matrix: list[list[float]] | None = None
    final: list[float | None]
    if method == "typed":
        if weights is None or len(weights) != len(keys):
            raise InvalidInput(N_("give a weight for each indicator"))
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise InvalidInput(N_("weights are zero or more, and not all zero"))
        total = float(sum(weights))
        final = [round(w / total, 6) for w in weights]
    elif method == "ahp":
        if matrix is None:
            raise InvalidInput(N_("AHP needs the pairwise comparison matrix"))
        if len(matrix) != len(keys):
            raise InvalidInput(N_("the matrix has %(rows)s rows for %(n)s indicators"), rows=len(matrix), n=len(keys))
        result = ahp_weights(matrix)
        final = [round(w, 6) for w in result.weights]
        consistency = {"lambda_max": result.lambda_max, "ci": result.ci, "cr": result.cr}
        stored_matrix = [[float(v) for v in row] for row in matrix]
    elif method == "entropy":
        final = [None] * len(keys)
    else:
        raise InvalidInput(N_("weights are typed in, derived by AHP or by entropy, not %(method)r"), method=method)
    scheme = EvaluationScheme(
        method=method,
        indicators=[
            {"key": k, "weight": w, "difficulty": float(f)} for k, w, f in zip(keys, final, difficulties, strict=True)
        ],
        matrix=stored_matrix,
        consistency=consistency,
        grades=_check_grades(grades),
        note=note.strip(),
        created_by_id=user.id,
        created_at=utcnow(),
    )
    session.add(scheme)
    session.flush()
    record(
        session,
        actor=user,
        action="evaluation.scheme",
        object_type="evaluation_scheme",
        object_id=scheme.id,
        method=method,
    )
    return scheme


# --- scoring --------------------------------------------------------------------------------------------


def scaled(value: float | None, low: float | None, high: float | None, better: str) -> float:
    """One value on 0–1 between the month's lowest and highest (see the module's docstring)."""
    if value is None or low is None or high is None:
        return 0.0
    if high == low:
        return 0.0 if better == "higher" and high == 0 else 1.0
    return (value - low) / (high - low) if better == "higher" else (high - value) / (high - low)


def normalise(values: Sequence[float | None], better: str) -> tuple[float | None, float | None, list[float]]:
    """The lowest and highest value, and each rider's value on 0–1."""
    present = [v for v in values if v is not None]
    low, high = (min(present), max(present)) if present else (None, None)
    return low, high, [scaled(v, low, high, better) for v in values]


def grade_of(score: float, grades: dict[str, float]) -> str:
    for grade in ("A", "B", "C"):
        if score >= grades[grade] - 1e-9:
            return grade
    return "D"


@dataclass(frozen=True)
class Scored:
    indicators: list[dict[str, Any]]  # key, weight, difficulty, better, low, high
    rows: list[tuple[int, float, int, str]]  # rider, score, rank, grade


def score(values: Values, *, scheme_indicators: list[dict[str, Any]], grades: dict[str, float]) -> Scored:
    """Score riders from their measured values under a scheme (the weights of an entropy scheme are derived
    here from the normalised values)."""
    riders = sorted(values)
    normalised: dict[str, list[float]] = {}
    ranges: dict[str, tuple[float | None, float | None]] = {}
    for item in scheme_indicators:
        key = item["key"]
        low, high, column = normalise([values[r].get(key) for r in riders], BY_KEY[key].better)
        normalised[key], ranges[key] = column, (low, high)
    weights = [item["weight"] for item in scheme_indicators]
    if any(w is None for w in weights):
        table = [[normalised[i["key"]][n] for i in scheme_indicators] for n in range(len(riders))]
        weights = (
            [round(w, 6) for w in entropy_weights(table)]
            if riders
            else [round(1 / len(scheme_indicators), 6)] * len(scheme_indicators)
        )
    used = [
        {
            "key": item["key"],
            "weight": float(w),
            "difficulty": float(item["difficulty"]),
            "better": BY_KEY[item["key"]].better,
            "low": ranges[item["key"]][0],
            "high": ranges[item["key"]][1],
        }
        for item, w in zip(scheme_indicators, weights, strict=True)
    ]
    scores = [
        round(100 * sum(u["weight"] * u["difficulty"] * normalised[u["key"]][n] for u in used), 2)
        for n in range(len(riders))
    ]
    order = sorted(range(len(riders)), key=lambda n: (-scores[n], riders[n]))
    rows: list[tuple[int, float, int, str]] = []
    rank = 0
    for place, n in enumerate(order, start=1):
        if not rows or rows[-1][1] != scores[n]:
            rank = place
        rows.append((riders[n], scores[n], rank, grade_of(scores[n], grades)))
    return Scored(indicators=used, rows=rows)


def run_period(session: Session, *, period: str, timezone: str, user: User | None = None) -> EvaluationRun:
    """Score every rider for a month under the scheme in force, and keep the run (a run for the same month
    made again supersedes the earlier one; both are kept)."""
    start, end = month_bounds(period, timezone)
    if start >= utcnow():
        raise InvalidInput(
            N_("%(period)s has not begun: a month is scored once it is under way or over"), period=period
        )
    scheme = current_scheme(session)
    if scheme.id is None:
        session.add(scheme)
        session.flush()
    values = measure(session, start=start, end=end)
    scored = score(values, scheme_indicators=scheme.indicators, grades=scheme.grades)
    run = EvaluationRun(
        period=period,
        scheme_id=scheme.id,
        method=scheme.method,
        indicators=scored.indicators,
        grades=dict(scheme.grades),
        rider_count=len(scored.rows),
        created_by_id=user.id if user else None,
        created_at=utcnow(),
    )
    session.add(run)
    session.flush()
    where = (
        {
            r.user_id: (r.platform_id, r.station_id)
            for r in session.scalars(select(Rider).where(Rider.user_id.in_(list(values))))
        }
        if values
        else {}
    )
    keys = [i["key"] for i in scored.indicators]
    session.add_all(
        EvaluationRow(
            run_id=run.id,
            rider_id=rider,
            platform_id=where.get(rider, (None, None))[0],
            station_id=where.get(rider, (None, None))[1],
            values={k: values[rider].get(k) for k in keys},
            score=points,
            rank=rank,
            grade=grade,
        )
        for rider, points, rank, grade in scored.rows
    )
    session.flush()
    record(
        session,
        actor=user,
        action="evaluation.run",
        object_type="evaluation_run",
        object_id=run.id,
        period=period,
        riders=run.rider_count,
    )
    return run


def previous_period(timezone: str, *, now: datetime | None = None) -> str:
    today = (now or utcnow()).astimezone(ZoneInfo(timezone)).date()
    return (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")


def score_last_month(session: Session, *, timezone: str) -> int:
    """The month-end job: the month just ended is scored once (an administrator may score it again)."""
    period = previous_period(timezone)
    if session.scalars(select(EvaluationRun.id).where(EvaluationRun.period == period).limit(1)).first():
        return 0
    return run_period(session, period=period, timezone=timezone).rider_count


# --- reading --------------------------------------------------------------------------------------------


def latest_run(session: Session, period: str) -> EvaluationRun | None:
    month_bounds(period, "UTC")  # refuses what is not a month
    return session.scalars(
        select(EvaluationRun).where(EvaluationRun.period == period).order_by(EvaluationRun.id.desc()).limit(1)
    ).first()


def get_run(session: Session, run_id: int) -> EvaluationRun:
    run = session.get(EvaluationRun, run_id)
    if run is None:
        raise NotFound(N_("no evaluation run %(id)s"), id=run_id)
    return run


def runs(session: Session, *, limit: int = 60) -> list[EvaluationRun]:
    return list(session.scalars(select(EvaluationRun).order_by(EvaluationRun.id.desc()).limit(limit)))


def platform_by_name(session: Session, name: str) -> Platform:
    """A platform by its code or its name (the CLI's --platform)."""
    found = session.scalars(select(Platform).where((Platform.code == name) | (Platform.name == name))).first()
    if found is None:
        raise NotFound(N_("no platform %(name)r"), name=name)
    return found


def visible_rows(
    session: Session, *, user: User | None, run: EvaluationRun, platform_id: int | None = None
) -> list[tuple[EvaluationRow, User]]:
    """The run's rows the caller may see, best first: a platform its own riders, a station manager their
    station's, a rider their own; the command centre and administrators all (`user` None: the CLI)."""
    query = (
        select(EvaluationRow, User)
        .join(User, User.id == EvaluationRow.rider_id)
        .where(EvaluationRow.run_id == run.id)
        .order_by(EvaluationRow.rank, EvaluationRow.rider_id)
    )
    if user is not None:
        query = query.where(policy.visible_evaluation_rows(user))
    if platform_id is not None:
        query = query.where(EvaluationRow.platform_id == platform_id)
    return [(row, person) for row, person in session.execute(query).all()]


@dataclass(frozen=True)
class Line:
    key: str
    label: str
    better: str
    unit: str
    value: float | None
    low: float | None
    high: float | None
    normalised: float
    weight: float
    difficulty: float
    points: float


def explain(run: EvaluationRun, row: EvaluationRow) -> list[Line]:
    """A rider's score line by line: each indicator's value, where it stands between the month's lowest
    and highest, and what it adds (100 × weight × difficulty × normalised). The lines add up to the score."""
    lines: list[Line] = []
    for item in run.indicators:
        key = item["key"]
        value = row.values.get(key)
        low, high = item["low"], item["high"]
        norm = scaled(value, low, high, item["better"])
        lines.append(
            Line(
                key=key,
                label=BY_KEY[key].label,
                better=item["better"],
                unit=BY_KEY[key].unit,
                value=value,
                low=low,
                high=high,
                normalised=round(norm, 4),
                weight=item["weight"],
                difficulty=item["difficulty"],
                points=round(100 * item["weight"] * item["difficulty"] * norm, 2),
            )
        )
    return lines


def own_row(session: Session, *, rider: User, period: str) -> tuple[EvaluationRun, EvaluationRow] | None:
    run = latest_run(session, period)
    if run is None:
        return None
    row = session.scalars(
        select(EvaluationRow).where(EvaluationRow.run_id == run.id, EvaluationRow.rider_id == rider.id)
    ).first()
    return (run, row) if row is not None else None


def row_of(session: Session, *, user: User, run: EvaluationRun, rider_id: int) -> EvaluationRow:
    row = session.scalars(
        select(EvaluationRow).where(EvaluationRow.run_id == run.id, EvaluationRow.rider_id == rider_id)
    ).first()
    if row is None:
        raise NotFound(N_("rider %(id)s is not in this evaluation"), id=rider_id)
    if not policy.may_see_evaluation_row(user, row):
        raise Forbidden(N_("this rider's evaluation is not yours to see"))
    return row
