"""Every page renders for the roles that may use it and is refused for the others; errors are pages."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from riderwatch.models import User
from tests.factories import District
from tests.pages import Browser

ROLES = ("admin", "dispatcher", "police", "grid_staff", "patrol", "station_manager", "platform", "rider")
PAGES: dict[str, set[str]] = {
    "/desk": {"admin", "dispatcher"},
    "/desk/_queue": {"admin", "dispatcher"},
    "/my/assignments": {"police", "grid_staff", "patrol"},
    "/report": {"rider", "dispatcher"},
    "/my/reports": {"rider", "dispatcher"},
}


def test_pages_by_role(browser: Callable[[str], Browser]) -> None:
    for role in ROLES:
        _check_pages(browser(role), role)


def _check_pages(user: Browser, role: str) -> None:
    for path, allowed in PAGES.items():
        res = user.client.get(path, follow_redirects=False)
        if role in allowed:
            assert res.status_code == 200, (path, role, res.text[:500])
            assert res.headers["content-type"].startswith("text/html")
        else:
            assert res.status_code == 403, (path, role)
            assert 'data-testid="error-page"' in res.text


@pytest.mark.parametrize("path", [*PAGES, "/clues/1"])
def test_pages_send_anonymous_visitors_to_login(client: TestClient, path: str) -> None:
    res = client.get(path, follow_redirects=False)
    if path == "/desk/_queue":
        # htmx polling: tell htmx to load the login page rather than swap it into the queue.
        assert res.status_code == 204
        assert res.headers["hx-redirect"].startswith("/login")
    else:
        assert res.status_code == 303
        assert res.headers["location"] == f"/login?next={path}"


def test_clue_page_only_for_those_who_may_see_the_clue(
    browser: Callable[[str], Browser], report: Callable[..., int], db: Session, district: District
) -> None:
    clue_id = report()
    expected = {
        "dispatcher": 200,
        "admin": 200,
        "rider": 200,  # the reporter
        "rider2": 404,  # another rider: the clue does not exist for them
        "police": 404,  # not assigned
        "station_manager": 403,
        "platform": 403,
    }
    for username, status in expected.items():
        res = browser(username).client.get(f"/clues/{clue_id}", follow_redirects=False)
        assert res.status_code == status, username
    assert browser("dispatcher").client.get("/clues/999999").status_code == 404


def test_admin_watches_the_queue_read_only(browser: Callable[[str], Browser], report: Callable[..., int]) -> None:
    clue_id = report()
    admin = browser("admin")
    assert 'data-testid="read-only"' in admin.client.get("/desk").text
    page = admin.client.get(f"/clues/{clue_id}").text
    assert 'data-testid="clue-actions"' not in page
    res = admin.post(f"/clues/{clue_id}/actions/verify", follow_redirects=False)
    assert res.status_code == 403


def test_error_pages_use_the_layout_and_the_language(client: TestClient, district: District) -> None:
    res = client.get("/no/such/page")
    assert res.status_code == 404
    assert res.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-Hans">' in res.text
    assert "未找到" in res.text
    res = client.get("/no/such/page", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert "Not found" in res.text


def test_error_page_for_a_logged_in_user_keeps_the_navigation(browser: Callable[[str], Browser]) -> None:
    rider = browser("rider")
    res = rider.client.get("/desk")
    assert res.status_code == 403
    assert 'data-testid="error-detail"' in res.text
    assert 'data-testid="nav-report"' in res.text
    assert 'data-testid="logout-button"' in res.text


def test_bad_query_values_give_a_422_page(browser: Callable[[str], Browser]) -> None:
    dispatcher = browser("dispatcher")
    for query in ("status=lost", "area=x1", "overdue=maybe", "offset=-1"):
        res = dispatcher.client.get(f"/desk?{query}")
        assert res.status_code == 422, query
        assert 'data-testid="error-page"' in res.text
    assert dispatcher.client.get("/clues/abc").status_code == 422


def test_everything_shown_is_escaped(
    browser: Callable[[str], Browser], report: Callable[..., int], db: Session, district: District
) -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    rider: User = district.users["rider"]
    rider.display_name = evil
    db.commit()
    clue_id = report(description=evil, address=evil)
    dispatcher = browser("dispatcher")
    for path in ("/desk", f"/clues/{clue_id}", "/desk/_queue"):
        html = dispatcher.client.get(path).text
        assert "<script>alert" not in html
        assert "<img src=x" not in html
    html = dispatcher.client.get(f"/clues/{clue_id}").text
    assert "&lt;script&gt;alert" in html
    rider_page = browser("rider").client.get("/my/reports").text
    assert "<script>alert" not in rider_page


def test_pages_carry_a_strict_content_security_policy(browser: Callable[[str], Browser]) -> None:
    res = browser("dispatcher").client.get("/desk")
    csp = res.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert res.headers["cache-control"].startswith("private")


def test_body_carries_the_csrf_header_for_htmx(browser: Callable[[str], Browser]) -> None:
    dispatcher = browser("dispatcher")
    html = dispatcher.client.get("/desk").text
    match = re.search(r"hx-headers='([^']+)'", html)
    assert match
    assert dispatcher.csrf in match.group(1)
