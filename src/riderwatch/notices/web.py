"""Every user's inbox: the notices of the closed loop (a clue dispatched to them, their clue verified,
rejected or closed, an overdue clue), newest first, in the reader's words; reading marks them read."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from riderwatch.deps import CurrentUser, DbSession
from riderwatch.models import Notice
from riderwatch.notices import service
from riderwatch.web.forms import formatter, see_other
from riderwatch.web.labels import N_
from riderwatch.web.templating import render

router = APIRouter(include_in_schema=False)

TEXTS = {
    "clue_dispatched": N_("Clue #%(clue)d was dispatched to you."),
    "clue_escalated": N_("Clue #%(clue)d is overdue (escalation level %(level)d)."),
    "clue_verified": N_("Your clue #%(clue)d was verified and is being handled."),
    "clue_rejected": N_("Your clue #%(clue)d was not taken up: %(reason)s"),
    "clue_closed": N_("Your clue #%(clue)d was handled: %(outcome)s"),
    "alert": N_("A new alert"),
}


def _shown(request: Request, notice: Notice) -> dict[str, Any]:
    _ = formatter(request)._
    params = {"clue": notice.clue_id or 0, "level": 0, "reason": "", "outcome": "", **notice.params}
    text = _(TEXTS.get(notice.kind, notice.kind))
    return {
        "notice": notice,
        "text": text % params if "%(" in text else text,
        "link": f"/clues/{notice.clue_id}" if notice.clue_id else ("/my/alerts" if notice.alert_id else ""),
    }


@router.get("/notices")
def inbox(request: Request, db: DbSession, user: CurrentUser) -> HTMLResponse:
    rows, unread = service.inbox(db, user_id=user.id, limit=100)
    context = {"rows": [_shown(request, n) for n in rows], "unread": unread}
    return render(request, "notices/inbox.html", context)


@router.post("/notices/read")
def read_all(db: DbSession, user: CurrentUser) -> Response:
    service.mark_read(db, user_id=user.id)
    return see_other("/notices")
