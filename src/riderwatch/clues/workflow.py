"""The clue workflow: which action moves a clue from which status to which (CONTRACT.md)."""

from __future__ import annotations

from dataclasses import dataclass

OPEN_STATUSES = ("submitted", "verified", "dispatched", "in_progress")
FINISHED_STATUSES = ("resolved", "closed", "rejected", "duplicate")


@dataclass(frozen=True)
class Transition:
    sources: tuple[str, ...]
    target: str | None  # None: the status stays (e.g. a rating)


TRANSITIONS: dict[str, Transition] = {
    "verify": Transition(("submitted",), "verified"),
    "reject": Transition(("submitted", "verified"), "rejected"),
    "mark_duplicate": Transition(("submitted", "verified"), "duplicate"),
    # Dispatching again from dispatched/in_progress hands the clue to another party.
    "dispatch": Transition(("verified", "dispatched", "in_progress"), "dispatched"),
    "accept": Transition(("dispatched",), "in_progress"),
    "resolve": Transition(("in_progress",), "resolved"),
    "close": Transition(("resolved",), "closed"),
    "reopen": Transition(("resolved", "closed", "rejected", "duplicate"), "verified"),
    "rate": Transition(("resolved", "closed"), None),
}

ACTIONS = tuple(TRANSITIONS)


def allowed_from(action: str, status: str) -> bool:
    return status in TRANSITIONS[action].sources


def target_of(action: str, status: str) -> str:
    target = TRANSITIONS[action].target
    return status if target is None else target
