"""An evaluation end to end: a month of activity through the API, scored, ranked and graded; each rider's
score explained line by line; AHP and entropy weights; the platform's file read back; who sees what."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from riderwatch.accounts.service import create_user
from riderwatch.cli import app as cli
from riderwatch.evaluation import service as evaluation
from riderwatch.infra import clock
from riderwatch.infra.clock import utcnow
from riderwatch.models import DutyShift, EvaluationRow, Platform, Station
from tests.api.helpers import Api
from tests.factories import PASSWORD, District

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _month_ago() -> tuple[str, datetime]:
    """A month wholly in the past, and an instant on its 10th at noon (Shanghai)."""
    local = utcnow().astimezone(SHANGHAI).replace(day=1) - timedelta(days=20)
    at = local.replace(day=10, hour=12, minute=0, second=0, microsecond=0)
    return at.strftime("%Y-%m"), at.astimezone(ZoneInfo("UTC"))


def _handle(api: Api, clue_id: int, grade: str) -> None:
    api.ok("dispatcher", clue_id, "verify")
    api.ok("dispatcher", clue_id, "dispatch", {"assignee": "police"})
    api.ok("police", clue_id, "accept")
    api.ok("police", clue_id, "resolve", {"outcome": "已处理"})
    api.ok("dispatcher", clue_id, "close", {"value_grade": grade})


@pytest.fixture
def month(api: Api, district: District, db: Session) -> Iterator[str]:
    """rider: three clues (two verified, one closed A, one rejected), 10 h on duty; rider2: one clue closed
    B, 5 h on duty. Every clue seen 30 minutes before it was reported."""
    period, at = _month_ago()
    rider, rider2 = district.users["rider"], district.users["rider2"]
    with clock.frozen(at):
        a = api.report("rider")
        _handle(api, a, "A")
        b = api.report("rider")
        api.ok("dispatcher", b, "verify")
        c = api.report("rider")
        api.ok("dispatcher", c, "reject", {"reason": "无法核实"})
        d = api.report("rider2")
        _handle(api, d, "B")
    db.add_all(
        [
            DutyShift(rider_id=rider.id, started_at=at, ended_at=at + timedelta(hours=10)),
            DutyShift(rider_id=rider2.id, started_at=at, ended_at=at + timedelta(hours=5)),
        ]
    )
    db.commit()
    yield period


def test_a_month_is_scored_ranked_graded_and_explained(api: Api, district: District, db: Session, month: str) -> None:
    scored = api.client.post(f"/api/v1/evaluations/{month}/runs", headers=api.auth("admin"))
    assert scored.status_code == 201, scored.text
    assert scored.json()["riders"] == 2
    rows = api.client.get(f"/api/v1/evaluations/{month}", headers=api.auth("dispatcher")).json()
    by_name = {r["username"]: r for r in rows}
    first, second = by_name["rider"], by_name["rider2"]
    assert first["values"] == {
        "verified_clues": 2.0,
        "verified_share": 66.67,
        "value_grades": 3.0,
        "report_minutes": 30.0,
        "duty_hours": 10.0,
        "tasks_done": 0.0,
        "alert_ack_share": None,
        "alert_ack_minutes": None,
        "training_score": None,
    }
    assert second["values"]["verified_share"] == 100.0 and second["values"]["value_grades"] == 2.0
    # By hand, with the default weights: rider leads on verified clues (.20), value (.15), hours (.15), and ties
    # on minutes to report (.05, everyone alike: 1); rider2 leads on the share verified (.10) and ties on minutes.
    assert (first["score"], first["rank"], first["grade"]) == (55.0, 1, "B")
    assert (second["score"], second["rank"], second["grade"]) == (15.0, 2, "D")
    for row in rows:
        assert sum(line["points"] for line in row["lines"]) == pytest.approx(row["score"], abs=0.05)
    line = next(x for x in first["lines"] if x["indicator"] == "verified_share")
    assert (line["value"], line["lowest"], line["highest"], line["normalised"], line["points"]) == (
        66.67,
        66.67,
        100.0,
        0.0,
        0.0,
    )


def test_a_run_is_reproducible_from_what_it_kept(db: Session, month: str) -> None:
    run = evaluation.run_period(db, period=month, timezone="Asia/Shanghai")
    db.commit()
    rows = list(db.query(EvaluationRow).filter(EvaluationRow.run_id == run.id))
    again = evaluation.score(
        {r.rider_id: r.values for r in rows},
        scheme_indicators=[
            {"key": i["key"], "weight": i["weight"], "difficulty": i["difficulty"]} for i in run.indicators
        ],
        grades=run.grades,
    )
    assert sorted(again.rows) == sorted((r.rider_id, r.score, r.rank, r.grade) for r in rows)
    db.rollback()


def test_weights_by_ahp_and_by_entropy(api: Api, db: Session, month: str) -> None:
    admin = api.auth("admin")
    keys = ["verified_clues", "value_grades", "duty_hours"]
    matrix = [[1, 2, 4], [1 / 2, 1, 2], [1 / 4, 1 / 2, 1]]
    checked = api.client.post("/api/v1/evaluation/ahp", json={"matrix": matrix}, headers=admin).json()
    assert checked["consistent"] and checked["cr"] == pytest.approx(0, abs=1e-9)
    assert [round(w, 4) for w in checked["weights"]] == [0.5714, 0.2857, 0.1429]
    bad = api.client.post(
        "/api/v1/evaluation/scheme",
        json={
            "method": "ahp",
            "indicators": [{"key": k} for k in keys],
            "matrix": [[1, 3, 1 / 5], [1 / 3, 1, 3], [5, 1 / 3, 1]],
            "grades": {"A": 80, "B": 60, "C": 40},
        },
        headers=admin,
    )
    assert bad.status_code == 422 and "consistency ratio" in bad.json()["detail"]
    saved = api.client.post(
        "/api/v1/evaluation/scheme",
        json={
            "method": "ahp",
            "indicators": [{"key": k, "difficulty": 1.0} for k in keys],
            "matrix": matrix,
            "grades": {"A": 80, "B": 60, "C": 40},
        },
        headers=admin,
    )
    assert saved.status_code == 201, saved.text
    assert saved.json()["consistency"]["cr"] == pytest.approx(0, abs=1e-9)
    run = api.client.post(f"/api/v1/evaluations/{month}/runs", headers=admin).json()
    assert [round(i["weight"], 4) for i in run["indicators"]] == [0.5714, 0.2857, 0.1429]
    rows = {r["username"]: r for r in api.client.get(f"/api/v1/evaluations/{month}", headers=admin).json()}
    assert rows["rider"]["score"] == 100.0 and rows["rider"]["grade"] == "A"

    entropy = api.client.post(
        "/api/v1/evaluation/scheme",
        json={
            "method": "entropy",
            "indicators": [{"key": k} for k in (*keys, "tasks_done")],
            "grades": {"A": 80, "B": 60, "C": 40},
        },
        headers=admin,
    )
    assert entropy.status_code == 201, entropy.text
    run = api.client.post(f"/api/v1/evaluations/{month}/runs", headers=admin).json()
    weights = {i["key"]: i["weight"] for i in run["indicators"]}
    # Two riders, one ahead on each of the first three (normalised 1 and 0: entropy 0 each); nobody did a task.
    assert weights == {
        "verified_clues": pytest.approx(1 / 3),
        "value_grades": pytest.approx(1 / 3),
        "duty_hours": pytest.approx(1 / 3),
        "tasks_done": 0.0,
    }


def test_each_platform_sees_only_its_own_riders(api: Api, district: District, db: Session, month: str) -> None:
    other = Platform(code="eleme", name="饿了么", name_en="Ele.me")
    db.add(other)
    db.flush()
    db.add(Station(code="elm-jinding", name="饿了么金鼎站", platform_id=other.id, lat=25.43, lon=119.01))
    db.flush()
    create_user(db, username="elm-rider", role="rider", password=PASSWORD, station_code="elm-jinding")
    elm = create_user(db, username="eleme-api", role="platform", password=PASSWORD)
    elm.platform_id = other.id
    db.commit()
    assert api.client.post(f"/api/v1/evaluations/{month}/runs", headers=api.auth("admin")).status_code == 201
    ours = api.client.get(f"/api/v1/evaluations/{month}", headers=api.auth("platform")).json()
    assert sorted(r["username"] for r in ours) == ["rider", "rider2"]
    theirs = api.client.get(f"/api/v1/evaluations/{month}", headers=api.auth("eleme-api")).json()
    assert [r["username"] for r in theirs] == ["elm-rider"]
    assert [
        r["username"] for r in api.client.get(f"/api/v1/evaluations/{month}", headers=api.auth("rider2")).json()
    ] == ["rider2"]
    assert api.client.get(f"/api/v1/evaluations/{month}", headers=api.auth("police")).status_code == 403
    assert api.client.post(f"/api/v1/evaluations/{month}/runs", headers=api.auth("platform")).status_code == 403
    assert api.client.get("/api/v1/evaluations/2001-01", headers=api.auth("platform")).status_code == 404
    assert api.client.get("/api/v1/evaluations/2026-13", headers=api.auth("platform")).status_code == 422


def test_the_cli_writes_the_platforms_xlsx_with_chinese_headers(
    monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path, db: Session, month: str
) -> None:
    monkeypatch.setenv("RIDERWATCH_DATABASE_URL", database_url)
    monkeypatch.setenv("RIDERWATCH_DATA_DIR", str(tmp_path))
    out = tmp_path / "meituan.xlsx"
    result = CliRunner().invoke(
        cli, ["evaluate", "--period", month, "--platform", "meituan", "--format", "xlsx", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "2 riders" in result.output
    book = load_workbook(BytesIO(out.read_bytes()))
    results, weights = book.worksheets
    header = [c.value for c in results[1]]
    assert header[:5] == ["月份", "骑手", "用户名", "平台", "站点"]
    assert header[-3:] == ["加权得分", "排名", "等级"]
    rows = [[c.value for c in row] for row in results.iter_rows(min_row=2)]
    assert [(r[2], r[-3], r[-2], r[-1]) for r in rows] == [("rider", 55.0, 1, "B"), ("rider2", 15.0, 2, "D")]
    assert weights.title == "权重与方法"
    assert [c.value for c in weights[1]][:4] == ["指标", "方向", "权重", "难度系数"]
    csv_out = tmp_path / "all.csv"
    again = CliRunner().invoke(cli, ["evaluate", "--period", month, "--format", "csv", "-o", str(csv_out)])
    assert again.exit_code == 0, again.output
    assert csv_out.read_text(encoding="utf-8-sig").splitlines()[0].startswith("月份,骑手,用户名")
    unknown = CliRunner().invoke(cli, ["evaluate", "--period", month, "--platform", "nobody", "-o", str(out)])
    assert unknown.exit_code == 2 and "nobody" in unknown.output
