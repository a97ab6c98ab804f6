"""Patrol task routes: the command centre's task board and rules, and the rider's own tasks."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict

from riderwatch.deps import DbSession, PathId, SettingsDep, require, writes_on_read
from riderwatch.errors import N_, InvalidInput
from riderwatch.geo.coords import coordinates_ok, to_wgs84
from riderwatch.models import User
from riderwatch.tasks import rules, service, verification, views
from riderwatch.tasks.schemas import RuleDraft, TaskDraft

router = APIRouter(prefix="/api/v1", tags=["patrol tasks"])

Manager = Annotated[User, Depends(require("task.manage"))]
Reader = Annotated[User, Depends(require("task.read"))]
RiderSelf = Annotated[User, Depends(require("task.self"))]
# Ids within what both databases store; a bigger one is refused (422), not passed to the database.
TaskId = PathId
RuleId = PathId


class RulePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    active: bool


def _detail(db: DbSession, user: User, task_id: int) -> dict[str, Any]:
    return views.view_task(db, user=user, task_id=task_id)


@router.post("/tasks", status_code=201, summary="Publish a patrol task (dispatcher)")
def create_task(body: TaskDraft, db: DbSession, user: Manager, settings: SettingsDep) -> dict[str, Any]:
    task = service.publish_task(db, author=user, draft=body, limits=service.TaskLimits.from_settings(settings))
    return _detail(db, user, task.id)


@router.get("/tasks", summary="The task board: tasks with their progress, newest first")
def list_tasks(
    db: DbSession,
    _user: Reader,
    phase: Annotated[str | None, Query(description="upcoming, active, ended or cancelled")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    return {"tasks": views.list_tasks(db, phase=views.visible_phase(phase), limit=limit)}


@router.get(
    "/tasks/map",
    summary="The targets of the tasks in a phase (default: active) as one GeoJSON layer, with pass counts",
)
def tasks_map(
    db: DbSession,
    _user: Reader,
    phase: Annotated[str, Query(description="upcoming, active, ended or cancelled")] = "active",
) -> dict[str, Any]:
    chosen = views.visible_phase(phase)
    return views.tasks_map(db, phase=chosen or "active")


@router.get(
    "/tasks/{task_id}",
    summary="A task as GeoJSON: its cells or checkpoints with how many riders passed each, and the results",
)
@writes_on_read
def get_task(task_id: TaskId, db: DbSession, user: Reader) -> dict[str, Any]:
    return _detail(db, user, task_id)


@router.post("/tasks/{task_id}/cancel", summary="Cancel a task that has not ended (dispatcher)")
def cancel_task(task_id: TaskId, db: DbSession, user: Manager) -> dict[str, Any]:
    service.cancel_task(db, actor=user, task_id=task_id)
    return _detail(db, user, task_id)


@router.post(
    "/tasks/{task_id}/verify",
    summary="Check the riders' positions for a task now (dispatcher); a job does it every minute anyway",
)
def verify_task(task_id: TaskId, db: DbSession, user: Manager, settings: SettingsDep) -> dict[str, Any]:
    task = service.get_task(db, task_id)
    verification.verify_now(db, task=task, limits=service.TaskLimits.from_settings(settings))
    return _detail(db, user, task_id)


@router.get("/task-rules", summary="Rules that publish tasks for the top coverage gaps each day")
def list_rules(db: DbSession, _user: Reader) -> dict[str, Any]:
    return {"rules": rules.list_rules(db)}


@router.post("/task-rules", status_code=201, summary="Add a rule: the top N gaps of an area each evening (dispatcher)")
def create_rule(body: RuleDraft, db: DbSession, user: Manager, settings: SettingsDep) -> dict[str, Any]:
    rule = rules.create_rule(
        db,
        actor=user,
        draft=body,
        limits=service.TaskLimits.from_settings(settings),
    )
    return rules.rule_json(rule)


@router.patch("/task-rules/{rule_id}", summary="Pause or resume a rule (dispatcher)")
def patch_rule(rule_id: RuleId, body: RulePatch, db: DbSession, user: Manager) -> dict[str, Any]:
    return rules.rule_json(rules.set_rule_active(db, actor=user, rule_id=rule_id, active=body.active))


@router.post("/task-rules/{rule_id}/run", summary="Run a rule now for today, ahead of its time (dispatcher)")
def run_rule(rule_id: RuleId, db: DbSession, user: Manager, settings: SettingsDep) -> dict[str, Any]:
    run = rules.run_rule_now(db, actor=user, rule_id=rule_id, limits=service.TaskLimits.from_settings(settings))
    return {"day": run.day.isoformat(), "tasks_created": run.tasks_created, "note": run.note}


@router.get("/me/tasks", summary="My patrol tasks (rider): open ones nearest first, and those that ended lately")
def my_tasks(
    db: DbSession,
    user: RiderSelf,
    lat: Annotated[float | None, Query(description="where the rider is now (not stored)")] = None,
    lon: float | None = None,
    crs: Literal["wgs84", "gcj02"] | None = None,
    within_m: Annotated[float | None, Query(gt=0, description="only open tasks within this distance")] = None,
) -> dict[str, Any]:
    near = None
    if (lat is None) != (lon is None):
        raise InvalidInput(N_("give both lat and lon, or neither"))
    if lat is not None and lon is not None:
        if not coordinates_ok(lat, lon):
            raise InvalidInput(N_("lat/lon: impossible coordinates"))
        near = to_wgs84(lat, lon, crs)
    found = views.rider_tasks(db, rider=user, near=near, within_m=within_m)
    return {"distance_from": found.reference_source, "open": found.open, "recent": found.recent}


@router.get("/me/tasks/{task_id}", summary="One of my tasks as GeoJSON, with the places I have passed (rider)")
def my_task(task_id: TaskId, db: DbSession, user: RiderSelf) -> dict[str, Any]:
    return views.rider_task_detail(db, rider=user, task_id=task_id)
