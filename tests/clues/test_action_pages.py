"""Workflow actions through the pages: the same service as the API, errors shown, nothing changed."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.models import Clue, ClueEvent
from tests.factories import District, token
from tests.pages import Browser, scalar


def _status(db: Session, clue_id: int) -> str:
    status = scalar(db, select(Clue.status).where(Clue.id == clue_id))
    assert status is not None
    return status


def _events(db: Session, clue_id: int) -> int:
    return scalar(db, select(func.count()).select_from(ClueEvent).where(ClueEvent.clue_id == clue_id)) or 0


def test_dispatcher_verifies_and_dispatches_from_the_clue_page(
    browser: Callable[[str], Browser], report: Callable[..., int], db: Session
) -> None:
    clue_id = report()
    dispatcher = browser("dispatcher")
    page = dispatcher.client.get(f"/clues/{clue_id}").text
    for action in ("verify", "reject", "mark_duplicate"):
        assert f'data-testid="action-form-{action}"' in page
    assert 'data-testid="action-form-dispatch"' not in page  # not before verification

    res = dispatcher.post(f"/clues/{clue_id}/actions/verify", {"urgent": "true"}, follow_redirects=False)
    assert res.status_code == 303
    assert res.headers["location"] == f"/clues/{clue_id}?done=verify&clue={clue_id}"
    page = dispatcher.client.get(res.headers["location"]).text
    assert 'data-testid="page-message"' in page and "Done: Verify." in page
    assert 'data-testid="clue-status" data-status="verified"' in page
    assert _status(db, clue_id) == "verified"
    assert scalar(db, select(Clue.urgent).where(Clue.id == clue_id)) is True

    # The routing proposal pre-fills the dispatch form: a fire hazard in the grid goes to its grid staff.
    assert 'data-testid="routing-proposal" data-assignee="grid_staff"' in page
    assert '<option value="grid_staff" selected>' in page
    res = dispatcher.post(f"/clues/{clue_id}/actions/dispatch", {"assignee": "grid_staff"}, follow_redirects=False)
    assert res.status_code == 303
    assert _status(db, clue_id) == "dispatched"
    page = dispatcher.client.get(f"/clues/{clue_id}").text
    assert [a for a in ("submit", "verify", "dispatch") if f'data-action="{a}"' in page] == [
        "submit",
        "verify",
        "dispatch",
    ]


def test_a_bad_action_shows_a_message_and_changes_nothing(
    browser: Callable[[str], Browser], report: Callable[..., int], db: Session
) -> None:
    clue_id = report()
    dispatcher = browser("dispatcher")
    before = _events(db, clue_id)

    res = dispatcher.post(f"/clues/{clue_id}/actions/reject", {"reason": "   "})
    assert res.status_code == 422
    assert 'data-testid="page-message" data-kind="error"' in res.text
    assert "reject needs a reason" in res.text
    assert 'data-testid="clue-detail"' in res.text

    res = dispatcher.post(f"/clues/{clue_id}/actions/close", {"value_grade": "A"})
    assert res.status_code == 409
    assert "not possible while the clue is" in res.text

    res = dispatcher.post(f"/clues/{clue_id}/actions/dispatch", {"assignee": "rider"})
    assert res.status_code == 409  # still submitted: dispatching needs a verified clue

    res = dispatcher.post(f"/clues/{clue_id}/actions/rate", {"rating": "9"})
    assert res.status_code == 422
    assert "rating" in res.text

    res = dispatcher.post(f"/clues/{clue_id}/actions/mark_duplicate", {"duplicate_of": str(clue_id)})
    assert res.status_code == 422
    assert "duplicate of itself" in res.text

    res = dispatcher.post(f"/clues/{clue_id}/actions/fly", {})
    assert res.status_code == 404
    assert 'data-testid="clue-detail"' in res.text

    assert _status(db, clue_id) == "submitted"
    assert _events(db, clue_id) == before


def test_wrong_person_is_told_so(browser: Callable[[str], Browser], report: Callable[..., int], db: Session) -> None:
    clue_id = report()
    rider = browser("rider")
    res = rider.post(f"/clues/{clue_id}/actions/verify", {})
    assert res.status_code == 403
    assert "You may not take this action on this clue." in res.text
    assert _status(db, clue_id) == "submitted"


def test_dispatch_to_someone_who_cannot_handle_clues_is_refused(
    browser: Callable[[str], Browser], report: Callable[..., int], db: Session
) -> None:
    clue_id = report()
    dispatcher = browser("dispatcher")
    dispatcher.post(f"/clues/{clue_id}/actions/verify", {})
    res = dispatcher.post(f"/clues/{clue_id}/actions/dispatch", {"assignee": "rider"})
    assert res.status_code == 422
    assert "dispatch to police, grid staff or patrol" in res.text
    assert _status(db, clue_id) == "verified"


def test_one_click_mark_duplicate_from_the_suggestions(
    browser: Callable[[str], Browser], report: Callable[..., int], db: Session
) -> None:
    first = report(description="电动车在楼道充电")
    second = report(description="同一楼道又在充电")
    dispatcher = browser("dispatcher")
    page = dispatcher.client.get(f"/clues/{second}").text
    assert f'data-testid="duplicate-candidate" data-clue-id="{first}"' in page
    assert f'id="mark-duplicate-of-{first}"' in page
    res = dispatcher.post(
        f"/clues/{second}/actions/mark_duplicate", {"duplicate_of": str(first)}, follow_redirects=False
    )
    assert res.status_code == 303
    assert _status(db, second) == "duplicate"
    page = dispatcher.client.get(f"/clues/{second}").text
    assert f'data-testid="clue-duplicate-of"><a href="/clues/{first}">' in page


def test_handler_accepts_and_resolves_from_my_assignments(
    browser: Callable[[str], Browser], report: Callable[..., int], db: Session
) -> None:
    clue_id = report()
    dispatcher = browser("dispatcher")
    dispatcher.post(f"/clues/{clue_id}/actions/verify", {})
    dispatcher.post(f"/clues/{clue_id}/actions/dispatch", {"assignee": "police"})

    police = browser("police")
    page = police.client.get("/my/assignments").text
    assert f'data-testid="assignment" data-clue-id="{clue_id}" data-status="dispatched"' in page
    assert f'id="action-accept-{clue_id}"' in page
    res = police.post(f"/clues/{clue_id}/actions/accept", {"next": "/my/assignments"}, follow_redirects=False)
    assert res.status_code == 303
    assert res.headers["location"] == f"/my/assignments?done=accept&clue={clue_id}"
    page = police.client.get(res.headers["location"]).text
    assert f"Clue #{clue_id}: Accept done." in page
    assert f'id="action-resolve-{clue_id}"' in page
    assert _status(db, clue_id) == "in_progress"

    res = police.post(f"/clues/{clue_id}/actions/resolve", {"outcome": "", "next": "/my/assignments"})
    assert res.status_code == 422
    assert _status(db, clue_id) == "in_progress"

    police.post(f"/clues/{clue_id}/actions/resolve", {"outcome": "电池已清走，已提醒住户", "next": "/my/assignments"})
    assert _status(db, clue_id) == "resolved"
    assert f'data-clue-id="{clue_id}"' not in police.client.get("/my/assignments").text  # done: off the to-do list
    assert f'data-clue-id="{clue_id}"' in police.client.get("/my/assignments?show=all").text
    # Another handler does not see it at all.
    assert f'data-clue-id="{clue_id}"' not in browser("grid_staff").client.get("/my/assignments?show=all").text


def test_rider_sees_the_outcome_and_rates_once(
    browser: Callable[[str], Browser], report: Callable[..., int], db: Session
) -> None:
    clue_id = report()
    dispatcher = browser("dispatcher")
    dispatcher.post(f"/clues/{clue_id}/actions/verify", {})
    dispatcher.post(f"/clues/{clue_id}/actions/dispatch", {"assignee": "patrol"})
    patrol = browser("patrol")
    patrol.post(f"/clues/{clue_id}/actions/accept", {})
    rider = browser("rider")
    assert 'data-testid="action-form-rate"' not in rider.client.get("/my/reports").text
    patrol.post(f"/clues/{clue_id}/actions/resolve", {"outcome": "巡防队已到场处理"})
    dispatcher.post(f"/clues/{clue_id}/actions/close", {"value_grade": "B"})

    page = rider.client.get("/my/reports").text
    assert "巡防队已到场处理" in page
    assert 'data-testid="report-value-grade"' in page
    assert f'id="action-form-rate-{clue_id}"' in page
    res = rider.post(f"/clues/{clue_id}/actions/rate", {"rating": "5", "next": "/my/reports"}, follow_redirects=False)
    assert res.headers["location"] == f"/my/reports?done=rate&clue={clue_id}"
    page = rider.client.get("/my/reports").text
    assert 'data-testid="report-rating" data-rating="5"' in page
    assert f'id="action-form-rate-{clue_id}"' not in page
    res = rider.post(f"/clues/{clue_id}/actions/rate", {"rating": "1"})
    assert res.status_code in (403, 409)
    assert scalar(db, select(Clue.rating).where(Clue.id == clue_id)) == 5


def test_anonymous_reporter_stays_hidden_from_the_handler(
    browser: Callable[[str], Browser], report: Callable[..., int], district: District
) -> None:
    clue_id = report(anonymous=True)
    dispatcher = browser("dispatcher")
    page = dispatcher.client.get(f"/clues/{clue_id}").text
    assert "asked to stay anonymous" in page  # dispatchers may see who it was
    dispatcher.post(f"/clues/{clue_id}/actions/verify", {})
    dispatcher.post(f"/clues/{clue_id}/actions/dispatch", {"assignee": "grid_staff"})
    staff = browser("grid_staff")
    page = staff.client.get(f"/clues/{clue_id}").text
    reporter = page.split('data-testid="clue-reporter">', 1)[1].split("</dd>", 1)[0]
    assert "Anonymous" in reporter
    assert "rider" not in reporter.lower().replace("anonymous", "")
    assert "anonymous reporter" in page  # the timeline names no one either
    assert ">rider <span" not in page


def test_rider_pages_list_only_their_own_reports(
    browser: Callable[[str], Browser], report: Callable[..., int], client: TestClient, district: District
) -> None:
    mine = report(description="我的线索")
    theirs = report(reporter_headers=token(client, "rider2"), description="别人的线索")
    page = browser("rider").client.get("/my/reports").text
    assert f'data-testid="my-report" data-clue-id="{mine}"' in page
    assert f'data-clue-id="{theirs}"' not in page
    # A dispatcher's own reports page lists what they reported, not the whole queue.
    assert 'data-testid="my-reports-empty"' in browser("dispatcher").client.get("/my/reports").text


def test_a_refused_action_is_explained_in_the_readers_language(
    browser: Callable[[str], Browser], report: Callable[..., int], db: Session
) -> None:
    clue_id = report()
    dispatcher = browser("dispatcher")
    assert "reject needs a reason" in dispatcher.post(f"/clues/{clue_id}/actions/reject", {"reason": " "}).text
    dispatcher.client.get("/lang/zh")
    res = dispatcher.post(f"/clues/{clue_id}/actions/reject", {"reason": " "})
    assert res.status_code == 422 and "驳回需要填写理由" in res.text and "reject needs a reason" not in res.text
    dispatcher.post(f"/clues/{clue_id}/actions/verify", {})
    # The username typed stays as it is inside the Chinese sentence.
    res = dispatcher.post(f"/clues/{clue_id}/actions/dispatch", {"assignee": "nobody"})
    assert res.status_code == 422 and "没有在用账号 &#39;nobody&#39;" in res.text
    assert _status(db, clue_id) == "verified"
