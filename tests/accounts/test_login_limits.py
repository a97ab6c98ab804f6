"""Logins under a flood: growing delays per name and address, per address and per name; the password
checked outside any transaction, a bounded number at once; parallel tries counted exactly; sessions
that logging out ends (issue 10, finding 2 and part of 5)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from riderwatch.accounts import login as login_module
from riderwatch.accounts.login import REMEMBERED_WAIT_SECONDS, KnownWaits, LoginLimits, begin_attempt
from riderwatch.errors import TooManyRequests
from riderwatch.infra import clock
from riderwatch.models import LoginFailure, UserSession
from tests.api.helpers import Api, assert_problem
from tests.conftest import TEST_NOW
from tests.factories import PASSWORD, District, clue_body
from tests.live import served
from tests.pages import Browser

LIMITS = LoginLimits(per_name_and_address=3, per_address=6, per_name=9, window_seconds=900)


def _try(db: Session, username: str, client: str, at_seconds: float) -> int | None:
    """One attempt at TEST_NOW + at_seconds, recorded as a failure: None, or the seconds to wait."""
    try:
        begin_attempt(db, username=username, client=client, limits=LIMITS, now=TEST_NOW + timedelta(seconds=at_seconds))
    except TooManyRequests as exc:
        db.rollback()
        return int(exc.extra["retry_after"])
    db.commit()
    return None


def test_delays_grow_per_name_and_address_and_the_other_addresses_go_on(db: Session, district: District) -> None:
    assert [_try(db, "dispatcher", "10.0.0.1", 0) for _ in range(3)] == [None, None, None]
    # Past the threshold each try waits 1 s, 2 s, 4 s … after the latest failure.
    assert _try(db, "dispatcher", "10.0.0.1", 0) == 1
    assert _try(db, "dispatcher", "10.0.0.1", 1) is None
    assert _try(db, "dispatcher", "10.0.0.1", 2) == 1
    assert _try(db, "dispatcher", "10.0.0.1", 3) is None
    assert _try(db, "dispatcher", "10.0.0.1", 4) == 3
    assert _try(db, "dispatcher", "10.0.0.1", 7) is None
    assert _try(db, "dispatcher", "10.0.0.1", 7) == 8
    # The real user, on another address, is not slowed by this one's failures.
    assert _try(db, "dispatcher", "10.0.0.2", 7) is None


def test_the_longest_wait_is_the_window(db: Session, district: District) -> None:
    for n in range(40):
        db.add(LoginFailure(username="rider", client="10.0.0.1", at=TEST_NOW - timedelta(seconds=40 - n)))
    db.commit()
    assert _try(db, "rider", "10.0.0.1", 0) == 900 - 1


def test_one_address_trying_many_names_is_slowed(db: Session, district: District) -> None:
    for n in range(6):
        assert _try(db, f"name{n}", "10.0.0.9", 0) is None
    assert _try(db, "name-new", "10.0.0.9", 0) == 1
    # Other addresses are not.
    assert _try(db, "name-new", "10.0.0.8", 0) is None


def test_one_name_tried_from_many_addresses_is_slowed(db: Session, district: District) -> None:
    for n in range(9):
        assert _try(db, "police", f"10.0.1.{n}", 0) is None
    assert _try(db, "police", "10.0.2.1", 0) == 1


def test_failures_older_than_the_window_do_not_count(db: Session, district: District) -> None:
    for _ in range(3):
        _try(db, "rider", "10.0.0.1", 0)
    assert _try(db, "rider", "10.0.0.1", 0) == 1
    assert _try(db, "rider", "10.0.0.1", 901) is None


def _token(url: str, username: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=60) as http:
        return http.post("/api/v1/auth/token", data={"username": username, "password": password})


def test_parallel_wrong_passwords_are_checked_no_more_than_the_limit(
    app: FastAPI, db: Session, district: District, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[int] = []
    real_verify = login_module.verify_password

    def counting_verify(password_hash: str | None, password: str) -> bool:
        checked.append(1)
        time.sleep(0.05)
        return real_verify(password_hash, password)

    monkeypatch.setattr(login_module, "verify_password", counting_verify)
    app.state.settings.login_max_failures = 5
    # The clock stands still, so the sixth try finds the fifth failure less than its 1 s delay ago however
    # slowly the machine runs (uvicorn runs in this process: it reads the same clock).
    with clock.frozen(TEST_NOW, tick=False), served(app) as url, ThreadPoolExecutor(30) as pool:
        answers = list(pool.map(lambda _: _token(url, "dispatcher", "wrong password").status_code, range(30)))
    assert sorted(answers) == [401] * 5 + [429] * 25
    assert len(checked) == 5
    assert db.scalar(select(func.count()).select_from(LoginFailure)) == 5


def test_a_password_being_checked_holds_no_transaction_and_hashes_queue(
    app: FastAPI, db: Session, district: District, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While logins wait for their hashes, the database is free: a rider's clue (a write, on SQLite the
    write lock) goes through, and no more hashes run at once than the setting allows."""
    release = threading.Event()
    running, most = [0], [0]
    lock = threading.Lock()
    real_verify = login_module.verify_password

    def held_verify(password_hash: str | None, password: str) -> bool:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        release.wait(30)
        with lock:
            running[0] -= 1
        return real_verify(password_hash, password)

    monkeypatch.setattr(login_module, "verify_password", held_verify)
    app.state.settings.login_hashes_at_once = 2
    with served(app) as url, ThreadPoolExecutor(8) as pool:
        token = _token_before_holding(url, release)
        logins = [pool.submit(_token, url, f"someone{n}", "wrong password") for n in range(6)]
        deadline = time.monotonic() + 10
        while most[0] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        with httpx.Client(base_url=url, timeout=10) as http:
            res = http.post("/api/v1/clues", json=clue_body(), headers={"Authorization": f"Bearer {token}"})
        assert res.status_code == 201, res.text
        assert not any(f.done() for f in logins)
        release.set()
        assert sorted(f.result().status_code for f in logins) == [401] * 6
    assert most[0] == 2


def _token_before_holding(url: str, release: threading.Event) -> str:
    """A rider's token, taken while hashes still pass straight through."""
    release.set()
    res = _token(url, "rider", PASSWORD)
    release.clear()
    assert res.status_code == 200, res.text
    return str(res.json()["access_token"])


@pytest.fixture
def session_rows(session_factory: sessionmaker[Session]) -> Iterator[Callable[[], list[Any]]]:
    def rows() -> list[Any]:
        with session_factory() as s:
            return [(r.user_id, r.ended_at is not None) for r in s.scalars(select(UserSession))]

    yield rows


def test_logging_out_ends_the_session_for_every_copy_of_its_cookie(
    browser: Callable[[str], Browser], session_rows: Callable[[], list[Any]], db: Session
) -> None:
    rider = browser("rider")
    copied = dict(rider.client.cookies)
    assert rider.client.get("/report").status_code == 200
    assert [ended for _, ended in session_rows()] == [False]
    assert rider.post("/logout", follow_redirects=False).status_code == 303
    assert [ended for _, ended in session_rows()] == [True]
    # The cookie as it was before logging out (a copy kept by anyone) signs nobody in any more.
    rider.client.cookies.clear()
    for name, value in copied.items():
        rider.client.cookies.set(name, value)
    assert rider.client.get("/report", follow_redirects=False).status_code == 303
    assert db.scalar(select(func.count()).select_from(LoginFailure)) == 0


def test_a_second_browser_stays_signed_in_when_the_first_logs_out(browser: Callable[[str], Browser]) -> None:
    phone, desk = browser("rider"), browser("rider")
    assert phone.post("/logout", follow_redirects=False).status_code == 303
    assert desk.client.get("/report").status_code == 200


def test_a_token_login_starts_no_session(api: Api, session_rows: Callable[[], list[Any]]) -> None:
    api.auth("rider")
    assert session_rows() == []


def test_logging_in_again_tidies_the_ended_sessions(
    browser: Callable[[str], Browser], session_rows: Callable[[], list[Any]]
) -> None:
    first = browser("rider")
    first.post("/logout", follow_redirects=False)
    with clock.frozen(TEST_NOW + timedelta(hours=13)):
        old = browser("rider")
        browser("rider")
    assert [ended for _, ended in session_rows()] == [False, False]
    assert old.client.get("/report").status_code == 200


def test_a_wrong_password_is_a_401_problem_and_is_recorded(api: Api, db: Session) -> None:
    assert_problem(api.client.post("/api/v1/auth/token", data={"username": "rider", "password": "nope"}), 401)
    assert db.scalar(select(func.count()).select_from(LoginFailure)) == 1


def test_a_refused_try_is_remembered_a_few_seconds_without_asking_the_database(
    api: Api, app: FastAPI, db: Session, district: District
) -> None:
    app.state.settings.login_max_failures = 2
    for _ in range(2):
        assert_problem(api.client.post("/api/v1/auth/token", data={"username": "rider", "password": "nope"}), 401)
    assert_problem(api.client.post("/api/v1/auth/token", data={"username": "rider", "password": PASSWORD}), 429)
    # An administrator lifts the lock (as a password reset does): this process still answers from memory
    # for a few seconds, with no query, and then asks the database again.
    db.execute(delete(LoginFailure))
    db.commit()
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(statement)

    event.listen(db.get_bind(), "before_cursor_execute", seen)
    try:
        res = api.client.post("/api/v1/auth/token", data={"username": "rider", "password": PASSWORD})
    finally:
        event.remove(db.get_bind(), "before_cursor_execute", seen)
    assert_problem(res, 429)
    assert not [s for s in statements if "login_failures" in s]
    with clock.frozen(clock.utcnow() + timedelta(seconds=REMEMBERED_WAIT_SECONDS + 1)):
        assert (
            api.client.post("/api/v1/auth/token", data={"username": "rider", "password": PASSWORD}).status_code == 200
        )


def test_known_waits_keep_each_scope_apart_and_forget_the_oldest() -> None:
    known = KnownWaits(max_scopes=2)
    known.note({"pair 10.0.0.1 rider": 3.0}, TEST_NOW)
    assert known.left("rider", "10.0.0.1", TEST_NOW) == 3.0
    assert known.left("rider", "10.0.0.2", TEST_NOW) == 0.0
    assert known.left("rider2", "10.0.0.1", TEST_NOW) == 0.0
    known.note({"address 10.0.0.9": 600.0}, TEST_NOW)
    assert known.left("anyone", "10.0.0.9", TEST_NOW) == REMEMBERED_WAIT_SECONDS
    known.note({"name police": 1.0, "name admin": 1.0}, TEST_NOW)
    assert known.left("anyone", "10.0.0.9", TEST_NOW) == 0.0
