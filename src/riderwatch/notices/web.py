"""Every user's inbox: the notices of the closed loop (a clue dispatched to them, their clue verified,
rejected or closed, an overdue clue), newest first, in the reader's words; reading marks them read."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from riderwatch import policy
from riderwatch.deps import CurrentUser, DbSession
from riderwatch.models import Notice
from riderwatch.notices import service
from riderwatch.web.forms import formatter, see_other
from riderwatch.web.templating import render
from riderwatch.webhooks.messages import notice_text

router = APIRouter(include_in_schema=False)


def _shown(request: Request, notice: Notice) -> dict[str, Any]:
    text = notice_text(notice.kind, notice.params or {}, locale=formatter(request).locale, clue_id=notice.clue_id)
    if notice.kind == "alert":
        link = "/my/alerts" if request.state.user.role == "rider" else f"/alerts/{notice.alert_id}"
    elif notice.kind == "feedback_assigned":
        link = f"/feedback/desk/{(notice.params or {}).get('feedback', 0)}"
    elif notice.kind == "feedback_answered":
        link = "/feedback"
    else:
        link = f"/clues/{notice.clue_id}" if notice.clue_id else ""
    return {"notice": notice, "text": text, "link": link}


@router.get("/notices")
def inbox(request: Request, db: DbSession, user: CurrentUser) -> HTMLResponse:
    rows, unread = service.inbox(db, user_id=user.id, limit=100)
    context = {
        "rows": [_shown(request, n) for n in rows],
        "unread": unread,
        "may_push": policy.has_permission(user, "webhook.own"),
    }
    return render(request, "notices/inbox.html", context)


@router.post("/notices/read")
def read_all(db: DbSession, user: CurrentUser) -> Response:
    service.mark_read(db, user_id=user.id)
    return see_other("/notices")
