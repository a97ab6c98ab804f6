"""Who may do what to which object: the one place access is decided.

Routes declare the permission they need (`deps.Require`); services ask the `may_*` functions
about a particular object; list queries take their filter from `visible_clues_filter`. A
table-driven test walks every route against every role.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, false, or_, select, true
from sqlalchemy.orm import Session

from riderwatch.errors import N_, Forbidden, PasswordChangeRequired
from riderwatch.models import Category, Clue, EvaluationRow, Feedback, Rider, User, UserSession, Visit
from riderwatch.models.accounts import ROLES
from riderwatch.security import hash_session_key

HANDLER_ROLES = frozenset({"police", "grid_staff", "patrol"})
ALL_ROLES = frozenset(ROLES)

# Permission → roles that hold it. Object-level rules come on top (see the functions below).
PERMISSIONS: dict[str, frozenset[str]] = {
    "clue.report": frozenset({"rider", "dispatcher"}),
    # Reading what one reported stays open to a rider whose membership is not active (MEMBERS_ONLY).
    "clue.own_reports": frozenset({"rider", "dispatcher"}),
    "clue.list": frozenset({"rider", "dispatcher", "admin"} | HANDLER_ROLES),
    "clue.triage": frozenset({"dispatcher"}),
    # The command-centre queue page: dispatchers work it, admins watch it (read-only: no workflow actions).
    "clue.desk": frozenset({"dispatcher", "admin"}),
    "clue.handle": HANDLER_ROLES,
    "clue.view_original_photo": frozenset({"dispatcher"}),
    "category.read": ALL_ROLES,
    "category.manage": frozenset({"admin"}),
    "user.manage": frozenset({"admin"}),
    "user.list_handlers": frozenset({"dispatcher", "admin"}),
    "apikey.manage": frozenset({"admin"}),
    "audit.read": frozenset({"admin"}),
    "org.read": ALL_ROLES,
    # The district's organisations and areas: administrators set them up; the command centre reads them.
    "org.manage": frozenset({"admin"}),
    "org.list": frozenset({"admin", "dispatcher"}),
    # Routing rules: administrators keep them; the command centre reads them and asks where a clue would go.
    "routing.read": frozenset({"admin", "dispatcher"}),
    "routing.manage": frozenset({"admin"}),
    # The programme's figures: the command centre for the district, a station manager for their station.
    "stats.read": frozenset({"dispatcher", "admin", "station_manager"}),
    # The riders' roster (no positions): the command centre and administrators all, a station manager their
    # station's, a platform account its own riders; administrators and station managers change standing.
    "rider.roster": frozenset({"admin", "dispatcher", "station_manager", "platform"}),
    "rider.manage": frozenset({"admin", "station_manager"}),
    # Training: administrators write the courses; riders (applicants too) take them; everyone may read
    # the material; completion per station for those who look after riders.
    "training.manage": frozenset({"admin"}),
    "training.take": frozenset({"rider"}),
    "training.read": ALL_ROLES,
    "training.completion": frozenset({"admin", "dispatcher", "station_manager", "platform"}),
    # Early warnings: the command centre publishes, updates and cancels them and watches who received and
    # acknowledged them; riders receive and acknowledge those of their audience.
    "alert.publish": frozenset({"dispatcher", "admin"}),
    "alert.receive": frozenset({"rider"}),
    "alert.read": frozenset({"dispatcher", "admin", "rider"}),
    # Another party's users read the alerts that also go to their party (object rule: may_read_alert).
    "alert.party": HANDLER_ROLES,
    # Webhooks: administrators keep the parties' duty group chats; staff may send their own notices to a
    # robot of their own (object rule: may_manage_channel). Riders and platform accounts have none.
    "webhook.manage": frozenset({"admin"}),
    "webhook.own": frozenset({"admin", "dispatcher", "station_manager"} | HANDLER_ROLES),
    # A platform's rider list: administrators import any station's riders, station managers their own.
    "rider.import": frozenset({"admin", "station_manager"}),
    # Positions (PIPL: sensitive). A rider manages their own consent, shifts and devices and sees
    # what was collected about them; riders and platform accounts send positions (object rule:
    # may_send_positions_for); only dispatchers see a rider's track or live positions (audited).
    "tracking.self": frozenset({"rider"}),
    "tracking.ingest": frozenset({"rider", "platform"}),
    "tracking.view_positions": frozenset({"dispatcher"}),
    # Coverage is anonymous counts per cell and hour: everyone who plans or runs patrols may read it;
    # platforms and riders may not (it would map the team's presence for outsiders).
    "coverage.read": frozenset({"dispatcher", "admin", "station_manager"} | HANDLER_ROLES),
    # Hotspots of clues map where crimes are reported and when: for the police side only, not for
    # riders, platforms or station managers (the gap view shows hot cells too).
    "hotspots.read": frozenset({"dispatcher", "admin"} | HANDLER_ROLES),
    # Incidents are the police's own recorded cases (接处警, case records): the command centre imports
    # them; they map where and when crimes happen, so they are read as hotspots are.
    "incident.import": frozenset({"dispatcher", "admin"}),
    "incident.read": frozenset({"dispatcher", "admin"} | HANDLER_ROLES),
    # Patrol tasks: the command centre publishes them and their rules; those who plan patrols read the
    # board (riders are named only for the command centre: may_see_task_riders); riders see their own.
    "task.manage": frozenset({"dispatcher"}),
    "task.read": frozenset({"dispatcher", "admin", "station_manager"} | HANDLER_ROLES),
    "task.self": frozenset({"rider"}),
    # Points: a rider sees their own ledger, rank and rewards and redeems what they earned (a member who
    # is suspended or has left keeps what they earned); administrators keep the rules, the catalogue and
    # adjust balances; leaderboards (nicknames or masked names, totals only) for the team and its staff.
    "points.self": frozenset({"rider"}),
    "points.board": frozenset({"rider", "dispatcher", "admin", "station_manager"}),
    "points.manage": frozenset({"admin"}),
    "reward.redeem": frozenset({"rider"}),
    "reward.manage": frozenset({"admin"}),
    # The platforms' evaluation: administrators set the indicators and score months; a platform reads its
    # own riders' results, a station manager their station's, the command centre all; a rider their own,
    # line by line (object rule: visible_evaluation_rows).
    # Leaflet outreach: administrators run campaigns; stock is kept by administrators for any station and
    # by a station manager for their own (object rule: may_manage_station); riders log what they hand out;
    # the command centre and station managers read the totals and the map (counts per cell, never a
    # rider's stops).
    "leaflets.read": frozenset({"rider", "admin", "dispatcher", "station_manager"}),
    "leaflets.campaigns": frozenset({"admin"}),
    "leaflets.stock": frozenset({"admin", "station_manager"}),
    "leaflets.hand_out": frozenset({"rider"}),
    "leaflets.totals": frozenset({"admin", "dispatcher", "station_manager"}),
    # Riders' voice: any rider (a suspended one too) tells the police; the officer it is routed to answers,
    # the command centre assigns and answers any; visits are recorded by the police and the command
    # centre and read by the station managers of the stations visited; satisfaction for the command centre.
    "voice.speak": frozenset({"rider"}),
    "voice.answer": frozenset({"police", "dispatcher", "admin"}),
    "visit.record": frozenset({"police", "dispatcher", "admin"}),
    "visit.read": frozenset({"police", "dispatcher", "admin", "station_manager"}),
    "voice.satisfaction": frozenset({"dispatcher", "admin"}),
    "evaluation.manage": frozenset({"admin"}),
    "evaluation.read": frozenset({"admin", "dispatcher", "station_manager", "platform", "rider"}),
}

# Workflow action → who may take it: a role, or the clue's assignee / reporter.
ACTION_ACTORS: dict[str, str] = {
    "verify": "dispatcher",
    "reject": "dispatcher",
    "mark_duplicate": "dispatcher",
    "dispatch": "dispatcher",
    "close": "dispatcher",
    "reopen": "dispatcher",
    "accept": "assignee",
    "resolve": "assignee",
    "rate": "reporter",
}


# What a rider does for the programme (report clues, take patrol tasks; going on duty is checked by the
# duty service, which also reads consent) needs an active membership. A rider who applied, is suspended
# or has left still signs in: to read their own clues and what was collected about them, to withdraw
# consent, to take training.
MEMBERS_ONLY: frozenset[str] = frozenset({"clue.report", "task.self", "leaflets.hand_out"})

_NOT_A_MEMBER: dict[str, str] = {
    "applied": N_(
        "your membership of the rider team is not active yet: you can report clues, go on duty and take patrol "
        "tasks once your station activates it (after the required training)"
    ),
    "suspended": N_(
        "your membership of the rider team is suspended: you cannot report clues, go on duty or take patrol "
        "tasks; ask your station manager"
    ),
    "left": N_(
        "you have left the rider team: you cannot report clues, go on duty or take patrol tasks; "
        "ask your station manager to rejoin"
    ),
}


def member_refusal(user: User) -> Forbidden | None:
    """Why a rider may not act for the programme now (403), or None for an active member and for staff."""
    if user.role != "rider":
        return None
    return membership_refusal(user.membership.status if user.membership is not None else "applied")


def membership_refusal(status: str) -> Forbidden | None:
    """The refusal for a rider whose membership stands at `status`, or None when it is active."""
    if status == "active":
        return None
    return Forbidden(_NOT_A_MEMBER.get(status, _NOT_A_MEMBER["suspended"]), rider_status=status)


def has_permission(user: User, permission: str) -> bool:
    if not (user.is_active and user.role in PERMISSIONS[permission]) or user.must_change_password:
        return False
    return permission not in MEMBERS_ONLY or member_refusal(user) is None


def ensure(user: User, permission: str) -> None:
    """Refuse (403) a user who does not hold `permission`, a user who must first choose their own
    password, or a rider whose membership is not active."""
    if not (user.is_active and user.role in PERMISSIONS[permission]):
        raise Forbidden(N_("a %(role)s may not do this (%(permission)s)"), role=user.role, permission=permission)
    if user.must_change_password:
        raise PasswordChangeRequired(N_("choose your own password first (PUT /api/v1/me/password)"))
    refusal = member_refusal(user) if permission in MEMBERS_ONLY else None
    if refusal is not None:
        raise refusal


def signed_in_user(
    session: Session, *, user_id: int, token_version: int, session_key: str | None = None
) -> User | None:
    """The user a bearer token or a session cookie stands for, while their account is active and the
    token's version is current (a password change, a reset or deactivation raises it); for a cookie
    (`session_key` given) also while its session has not been ended by logging out. One query."""
    query = select(User).where(User.id == user_id, User.is_active.is_(True), User.token_version == token_version)
    if session_key is not None:
        query = query.join(
            UserSession,
            and_(
                UserSession.user_id == User.id,
                UserSession.key_hash == hash_session_key(session_key),
                UserSession.ended_at.is_(None),
            ),
        )
    return session.scalar(query)


def may_read_alert(user: User, parties: list[str]) -> bool:
    """An alert's page: the command centre's, and another party's users for an alert that also goes to them."""
    return has_permission(user, "alert.publish") or (has_permission(user, "alert.party") and user.role in parties)


def may_manage_channel(user: User, party: str | None, owner_id: int | None) -> bool:
    """A party's channel: those who keep the parties' channels; a user's own: that user."""
    if party is not None:
        return has_permission(user, "webhook.manage")
    return owner_id == user.id and has_permission(user, "webhook.own")


def may_see_inactive_categories(user: User) -> bool:
    """Retired categories are listed for those who manage categories."""
    return has_permission(user, "category.manage")


def paces_clue_reports(user: User) -> bool:
    """Riders' clue reports are limited per hour; staff entering reports (a call, a walk-in) are not."""
    return user.role == "rider"


def sends_own_positions_only(user: User) -> bool:
    """A rider's positions are their own; a platform account names the rider of each ping."""
    return user.role == "rider"


def visible_clues_filter(user: User) -> ColumnElement[bool]:
    """The clues a user may list: dispatchers and admins all, handlers theirs, riders their own."""
    if user.role in ("dispatcher", "admin"):
        return true()
    if user.role in HANDLER_ROLES:
        return Clue.assignee_id == user.id
    if user.role == "rider":
        return Clue.reporter_id == user.id
    return false()


def may_view_clue(user: User, clue: Clue) -> bool:
    if user.role in ("dispatcher", "admin"):
        return True
    if user.role in HANDLER_ROLES:
        return clue.assignee_id == user.id
    if user.role == "rider":
        return clue.reporter_id == user.id
    return False


def may_see_reporter(user: User, clue: Clue) -> bool:
    """A reporter who asked for anonymity is hidden from everyone but dispatchers (and themselves)."""
    if clue.reporter_id is not None and clue.reporter_id == user.id:
        return True
    if user.role == "dispatcher":
        return True
    return not clue.anonymous and may_view_clue(user, clue)


def may_see_contact(user: User, clue: Clue) -> bool:
    """Contact details given through Open311 are for the command centre only."""
    return user.role == "dispatcher"


def may_take_action(user: User, clue: Clue, action: str) -> bool:
    """Whether the user is the right person for the action (the status is checked by the workflow)."""
    actor = ACTION_ACTORS.get(action)
    if actor is None or not user.is_active:
        return False
    if actor == "assignee":
        return user.role in HANDLER_ROLES and clue.assignee_id == user.id
    if actor == "reporter":
        return clue.reporter_id is not None and clue.reporter_id == user.id
    return user.role == actor


def may_view_photo(user: User, clue: Clue, *, original: bool) -> bool:
    if original:
        return has_permission(user, "clue.view_original_photo")
    return may_view_clue(user, clue)


def open311_public_filter() -> ColumnElement[bool]:
    """The clues anyone may read through Open311: public categories, plus requests the public sent in.

    Crime clues never qualify, even if an admin marks a crime category public or the public sent
    one in through Open311: publishing them could warn suspects and expose whoever reported them.
    """
    not_crime = select(Category.code).where(Category.group != "crime")
    public = not_crime.where(Category.is_public.is_(True))
    return or_(Clue.category_code.in_(public), and_(Clue.source == "open311", Clue.category_code.in_(not_crime)))


def may_send_positions_for(user: User, *, rider_id: int, rider_platform_id: int | None) -> bool:
    """A rider sends their own positions; a platform account those of its own riders."""
    if not has_permission(user, "tracking.ingest"):
        return False
    if user.role == "rider":
        return rider_id == user.id
    return user.platform_id is not None and rider_platform_id == user.platform_id


def visible_riders_filter(user: User) -> ColumnElement[bool]:
    """The riders a user may list or count (never their positions): all for the command centre and
    administrators, a station manager their station's, a platform account its own riders."""
    if user.role == "station_manager":
        return Rider.station_id == user.station_id if user.station_id is not None else false()
    if user.role == "platform":
        return Rider.platform_id == user.platform_id if user.platform_id is not None else false()
    return true()


def may_manage_station(user: User, station_id: int | None) -> bool:
    """Changing riders of a station (their standing, a list import, join links): administrators for any
    station, a station manager for their own."""
    if user.role == "admin":
        return True
    return user.role == "station_manager" and user.station_id is not None and station_id == user.station_id


def figures_clues_filter(user: User) -> ColumnElement[bool]:
    """The clues whose figures (counts only) a user may see: a station manager those their station's riders
    reported; everyone else the clues they may list."""
    if user.role == "station_manager":
        if user.station_id is None:
            return false()
        return Clue.reporter_id.in_(select(Rider.user_id).where(Rider.station_id == user.station_id))
    return visible_clues_filter(user)


def may_see_task_riders(user: User) -> bool:
    """Who passed a task's places, and when, names riders next to places: the command centre (and its admins)."""
    return user.is_active and user.role in ("dispatcher", "admin")


def visible_evaluation_rows(user: User) -> ColumnElement[bool]:
    """The evaluation rows a user may see: a platform its own riders' (never another platform's), a station
    manager their station's, a rider their own; the command centre and administrators all."""
    if user.role in ("admin", "dispatcher"):
        return true()
    if user.role == "platform":
        return EvaluationRow.platform_id == user.platform_id if user.platform_id is not None else false()
    if user.role == "station_manager":
        return EvaluationRow.station_id == user.station_id if user.station_id is not None else false()
    if user.role == "rider":
        return EvaluationRow.rider_id == user.id
    return false()


def may_see_evaluation_row(user: User, row: EvaluationRow) -> bool:
    if user.role in ("admin", "dispatcher"):
        return True
    if user.role == "platform":
        return user.platform_id is not None and row.platform_id == user.platform_id
    if user.role == "station_manager":
        return user.station_id is not None and row.station_id == user.station_id
    return user.role == "rider" and row.rider_id == user.id


def may_handle_feedback(user: User, assignee_id: int | None) -> bool:
    """Who answers a rider's feedback: the officer it was given to; the command centre (and its admins) any."""
    return user.role in ("dispatcher", "admin") or (user.role == "police" and assignee_id == user.id)


def may_assign_feedback(user: User) -> bool:
    """Giving feedback to an officer is the command centre's."""
    return user.role in ("dispatcher", "admin")


def feedback_desk_filter(user: User) -> ColumnElement[bool]:
    """The feedback a handler's desk lists: an officer's own, the command centre's all."""
    return Feedback.assignee_id == user.id if user.role == "police" else true()


def may_finish_visit_action(user: User, owner_id: int) -> bool:
    """A visit's follow-up action is marked done by its owner, or by the command centre."""
    return owner_id == user.id or user.role in ("dispatcher", "admin")


def visible_visits_filter(user: User) -> ColumnElement[bool]:
    """The visits a user may read: a station manager those at their station; the police and the command
    centre all."""
    if user.role == "station_manager":
        return Visit.station_id == user.station_id if user.station_id is not None else false()
    return true()
