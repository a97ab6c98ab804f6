"""Logging in and out of the pages: session cookie, CSRF on every form, rate limit, safe redirects."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.models import Clue, LoginFailure
from tests.factories import PASSWORD, District
from tests.pages import Browser, form_csrf, log_in, scalar


@pytest.mark.parametrize(
    ("username", "home"),
    [
        ("dispatcher", "/desk"),
        ("admin", "/desk"),
        ("police", "/my/assignments"),
        ("grid_staff", "/my/assignments"),
        ("patrol", "/my/assignments"),
        ("rider", "/report"),
    ],
)
def test_login_sends_each_role_to_its_page(client: TestClient, district: District, username: str, home: str) -> None:
    page = client.get("/login")
    res = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": form_csrf(page.text)},
        follow_redirects=False,
    )
    assert res.status_code == 303
    assert res.headers["location"] == home
    assert client.get("/", follow_redirects=False).headers["location"] == home
    assert client.get(home).status_code == 200


def test_a_platform_account_starts_on_its_riders_evaluations(client: TestClient, district: District) -> None:
    log_in(client, "platform")
    res = client.get("/", follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == "/evaluation"
    page = client.get("/evaluation")
    assert page.status_code == 200 and 'data-testid="months"' in page.text
    assert 'href="/riders"' in page.text  # its riders' roster is one step away


def test_anonymous_visitors_go_to_login(client: TestClient, district: District) -> None:
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    res = client.get("/desk", follow_redirects=False)
    assert res.status_code == 303
    assert res.headers["location"] == "/login?next=/desk"


def test_login_returns_to_the_page_asked_for_but_never_to_another_site(client: TestClient, district: District) -> None:
    page = client.get("/login?next=/clues/1")
    assert 'name="next" value="/clues/1"' in page.text
    for target, expected in (
        ("/my/reports", "/my/reports"),
        ("//evil.example/x", "/report"),
        ("https://evil.example", "/report"),
    ):
        client.cookies.clear()
        page = client.get("/login")
        res = client.post(
            "/login",
            data={"username": "rider", "password": PASSWORD, "csrf_token": form_csrf(page.text), "next": target},
            follow_redirects=False,
        )
        assert res.headers["location"] == expected


def test_wrong_password_shows_a_message_and_the_failure_counts(
    client: TestClient, district: District, db: Session
) -> None:
    page = client.get("/login", headers={"Accept-Language": "en"})
    res = client.post(
        "/login",
        data={"username": "rider", "password": "wrong-password", "csrf_token": form_csrf(page.text)},
        headers={"Accept-Language": "en"},
    )
    assert res.status_code == 200
    assert "Wrong username or password." in res.text
    assert 'value="rider"' in res.text  # the username is kept, the password is not
    assert "wrong-password" not in res.text
    assert scalar(db, select(func.count()).select_from(LoginFailure)) == 1
    assert client.get("/report", follow_redirects=False).status_code == 303


def test_too_many_failures_are_refused_with_429(client: TestClient, district: District, db: Session) -> None:
    page = client.get("/login")
    csrf = form_csrf(page.text)
    for _ in range(5):
        client.post("/login", data={"username": "rider", "password": "nope-nope", "csrf_token": csrf})
    res = client.post(
        "/login",
        data={"username": "rider", "password": PASSWORD, "csrf_token": csrf},
        headers={"Accept-Language": "en"},
        follow_redirects=False,
    )
    assert res.status_code == 429
    assert "Too many failed logins" in res.text
    assert res.headers["retry-after"]


def test_login_form_without_its_token_is_refused(client: TestClient, district: District) -> None:
    client.get("/login")
    res = client.post("/login", data={"username": "rider", "password": PASSWORD}, follow_redirects=False)
    assert res.status_code == 403
    assert client.get("/report", follow_redirects=False).status_code == 303


def test_empty_login_form_is_answered_without_a_recorded_failure(
    client: TestClient, district: District, db: Session
) -> None:
    page = client.get("/login")
    res = client.post("/login", data={"username": "", "password": "", "csrf_token": form_csrf(page.text)})
    assert res.status_code == 422
    assert scalar(db, select(func.count()).select_from(LoginFailure)) == 0


def test_logout_needs_the_csrf_token(browser: Callable[[str], Browser]) -> None:
    rider = browser("rider")
    res = rider.client.post("/logout", follow_redirects=False)
    assert res.status_code == 403
    assert rider.client.get("/report").status_code == 200
    res = rider.post("/logout", follow_redirects=False)
    assert res.status_code == 303
    assert res.headers["location"] == "/login"
    assert rider.client.get("/report", follow_redirects=False).status_code == 303


def test_cookie_writes_without_csrf_change_nothing(
    browser: Callable[[str], Browser], report: Callable[..., int], db: Session
) -> None:
    clue_id = report()
    dispatcher = browser("dispatcher")
    res = dispatcher.client.post(f"/clues/{clue_id}/actions/verify", data={}, follow_redirects=False)
    assert res.status_code == 403
    res = dispatcher.client.post(
        f"/clues/{clue_id}/actions/verify", data={"csrf_token": "forged"}, follow_redirects=False
    )
    assert res.status_code == 403
    assert scalar(db, select(Clue.status).where(Clue.id == clue_id)) == "submitted"
    # htmx sends the token as a header instead of a form field.
    res = dispatcher.client.post(
        f"/clues/{clue_id}/actions/verify", headers={"X-CSRF-Token": dispatcher.csrf}, follow_redirects=False
    )
    assert res.status_code == 303
    assert scalar(db, select(Clue.status).where(Clue.id == clue_id)) == "verified"


def test_the_csrf_token_changes_at_login(client: TestClient, district: District) -> None:
    before = form_csrf(client.get("/login").text)
    rider = log_in(client, "rider")
    assert rider.csrf != before
