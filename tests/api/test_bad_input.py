"""Bad input anywhere gets a clear 4xx problem document, stores nothing, and never a 500."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.infra import clock
from riderwatch.infra.clock import system_time, utcnow
from riderwatch.models import AuditEntry, Clue, CluePhoto, LoginFailure, User
from tests.api.helpers import Api, assert_problem
from tests.conftest import TEST_NOW
from tests.factories import PASSWORD, clue_body, image_bytes


def _count(db: Session, model: type[Any]) -> int:
    n = db.scalar(select(func.count()).select_from(model)) or 0
    db.rollback()
    return n


def _stored_files(app: FastAPI) -> list[Path]:
    root: Path = app.state.settings.photo_dir
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _assert_nothing_stored(db: Session, app: FastAPI) -> None:
    assert _count(db, Clue) == 0
    assert _count(db, CluePhoto) == 0
    assert _stored_files(app) == []


def _past(minutes: int) -> str:
    return (utcnow() - timedelta(minutes=minutes)).isoformat()


@pytest.mark.parametrize(
    "overrides",
    [
        {"lat": 90.5},
        {"lat": -91},
        {"lon": 180.01},
        {"lon": -200},
        {"lat": "north"},
        {"lat": None},
        {"category": "no_such_category"},
        {"category": ""},
        {"crs": "bd09"},
        {"crs": "GCJ02 "},
        {"observed_at": "2026-11-29T08:30:00"},  # no time zone
        {"observed_at": "yesterday"},
        {"observed_at": (TEST_NOW + timedelta(hours=2)).isoformat()},
        {"observed_at": (TEST_NOW - timedelta(days=400)).isoformat()},
        {"description": "长" * 4001},
        {"anonymous": "maybe"},
        {"reporter": "someone-else"},  # unknown fields are refused, not ignored
        {"category": "fire_hazard\x00"},
        {"description": "nul\x00byte"},
    ],
)
def test_bad_clue_fields(api: Api, db: Session, app: FastAPI, overrides: dict[str, Any]) -> None:
    res = api.client.post("/api/v1/clues", json=clue_body(**overrides), headers=api.auth("rider"))
    assert_problem(res, 422)
    _assert_nothing_stored(db, app)


def test_missing_required_fields(api: Api, db: Session, app: FastAPI) -> None:
    for field in ("category", "lat", "lon", "observed_at"):
        body = clue_body()
        del body[field]
        problem = assert_problem(api.client.post("/api/v1/clues", json=body, headers=api.auth("rider")), 422)
        assert field in problem["detail"]
    _assert_nothing_stored(db, app)


@pytest.mark.parametrize(
    ("content", "ctype", "status"),
    [
        (b'{"category": "fire_hazard", "lat": 25.4', "application/json", 422),
        (b'{"category": "fire_hazard", "lat": NaN, "lon": 119.0}', "application/json", 422),
        (b"[1, 2, 3]", "application/json", 422),
        (b"", "application/json", 422),
        (b"\xff\xfe\x00garbage", "application/json", 422),
        (b"category=fire_hazard&lat=25.43", "application/x-www-form-urlencoded", 415),
        (b"category fire_hazard", "text/plain", 415),
        (b"--x\r\nContent-Disposition: form-data; name=", "multipart/form-data; boundary=x", 422),
        (b"whatever", "multipart/form-data", 422),  # no boundary
    ],
)
def test_malformed_bodies(api: Api, db: Session, app: FastAPI, content: bytes, ctype: str, status: int) -> None:
    res = api.client.post("/api/v1/clues", content=content, headers={**api.auth("rider"), "Content-Type": ctype})
    assert_problem(res, status)
    _assert_nothing_stored(db, app)


def _post_photos(api: Api, photos: list[tuple[str, bytes, str]]) -> Any:
    files = [("photos", p) for p in photos]
    return api.client.post("/api/v1/clues", data=clue_body(), files=files, headers=api.auth("rider"))


def test_fake_and_broken_images(api: Api, db: Session, app: FastAPI) -> None:
    jpeg = image_bytes("JPEG", size=(64, 48))
    cases = [
        [("photo.jpg", b"this is a shopping list, not a photo", "image/jpeg")],
        [("photo.jpg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/jpeg")],
        [("photo.jpg", jpeg[: len(jpeg) // 2], "image/jpeg")],  # truncated
        [("photo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "image/png")],  # PNG magic, no image
        [("ok.jpg", jpeg, "image/jpeg"), ("bad.jpg", b"GIF89a....", "image/jpeg")],  # one good one bad
    ]
    for photos in cases:
        assert_problem(_post_photos(api, photos), 415)
    problem = assert_problem(_post_photos(api, [("empty.jpg", b"", "image/jpeg")]), 422)
    assert "empty" in problem["detail"]
    _assert_nothing_stored(db, app)


def test_oversized_photo(api: Api, db: Session, app: FastAPI) -> None:
    app.state.settings.max_photo_bytes = 2_000
    big = image_bytes("PNG", size=(200, 200), color="blue", compress_level=0)
    assert len(big) > 2_000
    problem = assert_problem(_post_photos(api, [("big.png", big, "image/png")]), 413)
    assert "2000" in problem["detail"]
    _assert_nothing_stored(db, app)


def test_too_many_photos(api: Api, db: Session, app: FastAPI) -> None:
    jpeg = image_bytes("JPEG")
    for n in (7, 9):
        problem = assert_problem(_post_photos(api, [(f"{i}.jpg", jpeg, "image/jpeg") for i in range(n)]), 422)
        assert "6" in problem["detail"]
    _assert_nothing_stored(db, app)
    assert _post_photos(api, [(f"{i}.jpg", jpeg, "image/jpeg") for i in range(6)]).status_code == 201


def _token_at(secret: str, uid: int, version: int, at: int) -> str:
    class Then(TimestampSigner):
        def get_timestamp(self) -> int:
            return at

    return URLSafeTimedSerializer(secret, salt="riderwatch-access-token", signer=Then).dumps({"uid": uid, "v": version})


def test_bad_tokens(api: Api, db: Session, app: FastAPI) -> None:
    settings = app.state.settings
    rider = db.scalar(select(User).where(User.username == "rider"))
    assert rider is not None
    uid, version = rider.id, rider.token_version
    db.rollback()
    # Tokens are signed and checked by itsdangerous, which reads the real clock (time.time), not
    # riderwatch's: their times are the real ones.
    now = int(system_time().timestamp())
    bad: dict[str, str] = {
        "garbage": "Bearer not-a-token",
        "empty": "Bearer ",
        "basic": "Basic cmlkZXI6cGFzc3dvcmQ=",
        "forged": "Bearer " + _token_at("some-other-key", uid, version, now),
        "expired": "Bearer " + _token_at(settings.signing_key, uid, version, now - settings.token_ttl_seconds - 60),
        "old version": "Bearer " + _token_at(settings.signing_key, uid, version + 1, now),
        "no such user": "Bearer " + _token_at(settings.signing_key, 999_999, 1, now),
    }
    # The same signing path with a fresh time is accepted, so the refusals above are about the token.
    fresh = "Bearer " + _token_at(settings.signing_key, uid, version, now)
    assert api.client.get("/api/v1/me", headers={"Authorization": fresh}).status_code == 200
    for why, value in bad.items():
        res = api.client.get("/api/v1/me", headers={"Authorization": value})
        assert_problem(res, 401)
        assert res.headers.get("www-authenticate") == "Bearer", why
        res = api.client.post("/api/v1/clues", json=clue_body(), headers={"Authorization": value})
        assert_problem(res, 401)
    _assert_nothing_stored(db, app)


def _login(api: Api, username: str, password: str) -> Any:
    return api.client.post("/api/v1/auth/token", data={"username": username, "password": password})


def test_wrong_password_and_unknown_user(api: Api) -> None:
    for username, password in [("rider", "wrong-password"), ("nobody", PASSWORD), ("rider", "")]:
        res = _login(api, username, password)
        assert res.status_code in (401, 422), res.text
        assert res.headers["content-type"].startswith("application/problem+json")
    assert_problem(_login(api, "rider", "wrong-password"), 401)
    assert_problem(api.client.post("/api/v1/auth/token", data={"username": "rider"}), 422)


@pytest.mark.parametrize("username", ["rider", "nobody", "r" * 80])
def test_login_rate_limit(api: Api, db: Session, app: FastAPI, username: str) -> None:
    settings = app.state.settings
    settings.login_max_failures = 3
    for _ in range(3):
        assert_problem(_login(api, username, "wrong-password"), 401)
    # Each failure was committed by its own request, so the next request sees all of them.
    assert db.scalar(select(func.count()).select_from(LoginFailure)) == 3
    db.rollback()
    for password in ("wrong-password", PASSWORD):
        res = _login(api, username, password)
        problem = assert_problem(res, 429)
        # The first delay past the threshold is a second (tests/accounts/test_login_limits.py: how it grows).
        assert int(res.headers["retry-after"]) == 1
        assert problem["type"] == "/problems/too-many-requests"
    # Refused tries are not recorded: the real user's retries do not lengthen the wait.
    assert db.scalar(select(func.count()).select_from(LoginFailure)) == 3
    db.rollback()
    # Other accounts are not locked out.
    assert _login(api, "rider2", PASSWORD).status_code == 200


def test_lock_expires_after_the_window(api: Api, db: Session, app: FastAPI) -> None:
    settings = app.state.settings
    settings.login_max_failures = 2
    for _ in range(2):
        assert_problem(_login(api, "rider", "nope-nope"), 401)
    assert_problem(_login(api, "rider", PASSWORD), 429)
    with clock.frozen(utcnow() + timedelta(seconds=settings.login_window_seconds + 1)):
        assert _login(api, "rider", PASSWORD).status_code == 200
    # A successful login clears the slate.
    assert _count(db, LoginFailure) == 0


def test_unknown_clue_and_action(api: Api) -> None:
    clue_id = api.report()
    headers = api.auth("dispatcher")
    assert_problem(api.client.get(f"/api/v1/clues/{clue_id + 1}", headers=headers), 404)
    assert_problem(api.client.get("/api/v1/clues/0", headers=headers), 422)
    assert_problem(api.client.get("/api/v1/clues/abc", headers=headers), 422)
    assert_problem(api.client.get(f"/api/v1/clues/{2**64}", headers=headers), 422)
    assert_problem(api.client.post(f"/api/v1/clues/{clue_id}/actions/approve", json={}, headers=headers), 404)
    assert_problem(api.client.post(f"/api/v1/clues/{clue_id + 1}/actions/verify", json={}, headers=headers), 404)
    assert_problem(api.client.get(f"/api/v1/clues/{clue_id}/photos/0", headers=headers), 404)
    assert_problem(api.client.get(f"/api/v1/clues/{clue_id + 1}/photos/0", headers=headers), 404)
    assert_problem(api.client.get("/api/v1/clues?status=lost", headers=headers), 422)
    assert_problem(api.client.get(f"/api/v1/clues?grid_id={2**64}", headers=headers), 422)
    assert_problem(api.client.get(f"/api/v1/clues?offset={2**64}", headers=headers), 422)
    assert_problem(api.client.patch("/api/v1/categories/nope", json={}, headers=api.auth("admin")), 404)


def test_action_bodies_that_are_not_objects(api: Api, db: Session) -> None:
    clue_id = api.report()
    headers = {**api.auth("dispatcher"), "Content-Type": "application/json"}
    for content in (b"{not json", b"[]", b'"verify"'):
        res = api.client.post(f"/api/v1/clues/{clue_id}/actions/verify", content=content, headers=headers)
        assert_problem(res, 422)
    assert db.scalar(select(Clue.status).where(Clue.id == clue_id)) == "submitted"
    assert db.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "clue.verify")) == 0
    db.rollback()


def test_nul_characters_anywhere_are_client_errors(api: Api, db: Session) -> None:
    """PostgreSQL cannot hold NUL in text; whatever the backend, a NUL is the client's mistake, not a 500."""
    clue_id = api.report()
    res = api.client.post("/api/v1/auth/token", data={"username": "ri\x00der", "password": PASSWORD})
    assert res.status_code in (401, 422), res.text
    res = api.client.get("/api/v1/clues", params={"category": "fire\x00"}, headers=api.auth("dispatcher"))
    assert res.status_code in (200, 422), res.text
    res = api.client.get("/api/v1/handlers", params={"q": "\x00"}, headers=api.auth("dispatcher"))
    assert res.status_code in (200, 422), res.text
    res = api.client.patch("/api/v1/categories/a%00b", json={"sort_order": 1}, headers=api.auth("admin"))
    assert res.status_code in (404, 422), res.text
    res = api.act("dispatcher", clue_id, "reject", {"reason": "no\x00pe"})
    assert_problem(res, 422)
    assert db.scalar(select(Clue.status).where(Clue.id == clue_id)) == "submitted"
    db.rollback()


OUT_OF_UTC = ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00")  # valid times UTC cannot hold


@pytest.mark.parametrize(
    ("who", "url"),
    [
        ("dispatcher", f"/api/v1/clues?observed_to={OUT_OF_UTC[0]}"),
        ("dispatcher", f"/api/v1/clues?observed_from={OUT_OF_UTC[1]}"),
        ("dispatcher", "/api/v1/clues?observed_to=0.5"),  # not 1970 plus half a second
        ("dispatcher", f"/api/v1/incidents?from={OUT_OF_UTC[0]}"),
        ("dispatcher", "/api/v1/incidents?to=1e9"),
        ("dispatcher", f"/api/v1/riders/rider/track?from={OUT_OF_UTC[0]}&to=2026-01-01T00:00:00%2B08:00"),
        ("dispatcher", "/api/v1/clues/9223372036854775808"),  # 2^63: beyond SQLite's integers
        ("dispatcher", "/api/v1/clues/1/photos/99999999999999999999"),
        ("admin", "/api/v1/admin/users/9223372036854775808"),
    ],
)
def test_times_and_ids_out_of_range_are_refused(api: Api, who: str, url: str) -> None:
    assert_problem(api.client.get(url.replace("+", "%2B"), headers=api.auth(who)), 422)


@pytest.mark.parametrize("path", ["/api/v1/coverage/query", "/api/v1/hotspots/query"])
@pytest.mark.parametrize("start", [*OUT_OF_UTC, 1764547200])
def test_query_windows_out_of_range_are_refused(api: Api, path: str, start: Any) -> None:
    body = {"area": {"zone": "jinding"}, "from": start, "to": "2026-12-01T00:00:00+08:00"}
    assert_problem(api.client.post(path, json=body, headers=api.auth("dispatcher")), 422)


def test_a_clue_seen_at_a_time_utc_cannot_hold_is_refused(api: Api, db: Session, app: FastAPI) -> None:
    for when in OUT_OF_UTC:
        res = api.client.post("/api/v1/clues", json=clue_body(observed_at=when), headers=api.auth("rider"))
        assert_problem(res, 422)
    _assert_nothing_stored(db, app)


def test_deeply_nested_json_is_refused(api: Api, db: Session, app: FastAPI) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    headers = {**api.auth("rider"), "Content-Type": "application/json"}
    assert_problem(api.client.post("/api/v1/clues", content=deep, headers=headers), 422)
    deep_object = '{"a":' * 100_000 + "1" + "}" * 100_000
    assert api.client.post("/api/v1/clues", content=deep_object, headers=headers).status_code in (400, 422)
    _assert_nothing_stored(db, app)


def test_pings_are_sent_as_json(api: Api) -> None:
    for ctype in ("text/plain", "application/x-www-form-urlencoded"):
        res = api.client.post(
            "/api/v1/tracking/pings", content=b'{"pings": []}', headers={**api.auth("rider"), "Content-Type": ctype}
        )
        assert_problem(res, 415)


@pytest.mark.parametrize(
    ("who", "path"),
    [("dispatcher", "/clues/9223372036854775808"), ("admin", "/admin/users/9223372036854775808")],
)
def test_pages_refuse_ids_beyond_the_databases(browser: Any, who: str, path: str) -> None:
    res = browser(who).client.get(path)
    assert res.status_code == 422 and 'data-testid="error-page"' in res.text
