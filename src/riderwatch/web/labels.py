"""Display names for the codes pages show (statuses, actions, roles, …), marked for translation.

`N_` only marks a string for extraction by Babel; templates translate the looked-up text with `_()`.
"""

from __future__ import annotations

from riderwatch.i18n import N_ as N_

STATUS_LABELS: dict[str, str] = {
    "submitted": N_("Submitted"),
    "verified": N_("Verified"),
    "dispatched": N_("Dispatched"),
    "in_progress": N_("In progress"),
    "resolved": N_("Resolved"),
    "closed": N_("Closed"),
    "rejected": N_("Rejected"),
    "duplicate": N_("Duplicate"),
}

ACTION_LABELS: dict[str, str] = {
    "verify": N_("Verify"),
    "reject": N_("Reject"),
    "mark_duplicate": N_("Mark as duplicate"),
    "dispatch": N_("Dispatch"),
    "accept": N_("Accept"),
    "resolve": N_("Resolve"),
    "close": N_("Close"),
    "reopen": N_("Reopen"),
    "rate": N_("Rate"),
}

# What a timeline entry says happened (the workflow actions plus the steps nobody chooses).
EVENT_LABELS: dict[str, str] = {
    **ACTION_LABELS,
    "submit": N_("Reported"),
    "escalate": N_("Escalated (overdue)"),
}

ROLE_LABELS: dict[str, str] = {
    "admin": N_("Administrator"),
    "dispatcher": N_("Dispatcher"),
    "police": N_("Community police"),
    "grid_staff": N_("Grid staff"),
    "patrol": N_("Patrol"),
    "station_manager": N_("Station manager"),
    "platform": N_("Platform"),
    "rider": N_("Rider"),
}

GROUP_LABELS: dict[str, str] = {
    "crime": N_("Crime and public order"),
    "hazard": N_("Hazards"),
    "service": N_("Public facilities"),
}

GRADE_LABELS: dict[str, str] = {
    "A": N_("A: high value"),
    "B": N_("B: useful"),
    "C": N_("C: little value"),
    "none": N_("No value"),
}

# The labels present.py gives timeline entries without a person behind them.
ACTOR_LABELS: dict[str, str] = {
    "system": N_("system"),
    "public (Open311)": N_("public (Open311)"),
    "anonymous reporter": N_("anonymous reporter"),
}

STATUS_PAGE_TITLES: dict[int, str] = {
    400: N_("Bad request"),
    401: N_("Please log in"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    405: N_("Not allowed"),
    409: N_("Not possible now"),
    413: N_("Too large"),
    415: N_("Unsupported file"),
    422: N_("Invalid input"),
    429: N_("Too many attempts"),
}
