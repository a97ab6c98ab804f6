"""All models, imported here so metadata is complete for Alembic and tests."""

from riderwatch.models.accounts import ApiKey, LoginFailure, Rider, User, UserSession
from riderwatch.models.alerts import Alert, AlertReceipt, Notice, StreamEvent
from riderwatch.models.audit import AuditEntry
from riderwatch.models.clues import Category, Clue, ClueEvent, CluePhoto
from riderwatch.models.coverage import CoverageDay as CoverageDay
from riderwatch.models.evaluation import EvaluationRow, EvaluationRun, EvaluationScheme
from riderwatch.models.incidents import Incident
from riderwatch.models.jobs import JobLease
from riderwatch.models.org import (
    Community,
    Grid,
    Jurisdiction,
    PatrolUnit,
    Platform,
    RoutingRule,
    Station,
    Zone,
)
from riderwatch.models.outreach import LeafletCampaign, LeafletDistribution, LeafletStock
from riderwatch.models.points import CashAward, PointEntry, PointRule, Redemption, Reward
from riderwatch.models.riders import JoinLink, RiderStatusChange
from riderwatch.models.tasks import (
    PatrolTask,
    PatrolTaskCell,
    PatrolTaskCheckpoint,
    PatrolTaskInvite,
    PatrolTaskResult,
    PatrolTaskRule,
    PatrolTaskRuleRun,
    PatrolTaskVisit,
)
from riderwatch.models.tracking import (
    CoverageCell,
    CoverageRiderCell,
    DutyShift,
    LastPosition,
    LocationConsent,
    Position,
    PositionRefusal,
    TrackingDevice,
    coverage_cell_deltas,
)
from riderwatch.models.training import Course, CourseMaterial, CourseQuestion, QuizAttempt
from riderwatch.models.voice import Feedback, Visit, VisitAction, VisitRider
from riderwatch.models.webhooks import WebhookChannel, WebhookDelivery

__all__ = [
    "Alert",
    "AlertReceipt",
    "ApiKey",
    "AuditEntry",
    "CashAward",
    "Category",
    "Clue",
    "ClueEvent",
    "CluePhoto",
    "Community",
    "Course",
    "CourseMaterial",
    "CourseQuestion",
    "CoverageCell",
    "CoverageRiderCell",
    "DutyShift",
    "EvaluationRow",
    "EvaluationRun",
    "EvaluationScheme",
    "Feedback",
    "Grid",
    "Incident",
    "JobLease",
    "JoinLink",
    "Jurisdiction",
    "LastPosition",
    "LeafletCampaign",
    "LeafletDistribution",
    "LeafletStock",
    "LocationConsent",
    "LoginFailure",
    "Notice",
    "PatrolTask",
    "PatrolTaskCell",
    "PatrolTaskCheckpoint",
    "PatrolTaskInvite",
    "PatrolTaskResult",
    "PatrolTaskRule",
    "PatrolTaskRuleRun",
    "PatrolTaskVisit",
    "PatrolUnit",
    "Platform",
    "PointEntry",
    "PointRule",
    "Position",
    "PositionRefusal",
    "QuizAttempt",
    "Redemption",
    "Reward",
    "Rider",
    "RiderStatusChange",
    "RoutingRule",
    "Station",
    "StreamEvent",
    "TrackingDevice",
    "User",
    "UserSession",
    "Visit",
    "VisitAction",
    "VisitRider",
    "WebhookChannel",
    "WebhookDelivery",
    "Zone",
    "coverage_cell_deltas",
]
