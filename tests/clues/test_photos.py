"""Clue photos: sniffed, stored once by SHA-256, served without location metadata, originals for dispatchers."""

from __future__ import annotations

import asyncio
import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.models import AuditEntry, CluePhoto
from tests.api.helpers import Api
from tests.factories import District, clue_body, image_bytes, make_district

GPS_IFD = 0x8825


@pytest.fixture
def api(client: TestClient, db: Session) -> Api:
    district: District = make_district(db)
    api = Api(client)
    for username in district.users:
        api.auth(username)
    return api


def gradient(fmt: str, **save: Any) -> bytes:
    img = Image.new("RGB", (48, 32))
    img.putdata([(x * 5, y * 7, (x + y) * 3) for y in range(32) for x in range(48)])
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return buf.getvalue()


def jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "RiderPhone"  # Make
    exif[0x0132] = "2026:11:29 08:30:00"  # DateTime
    exif[GPS_IFD] = {1: "N", 2: (25.0, 25.0, 48.0), 3: "E", 4: (119.0, 0.0, 36.0)}
    return gradient("JPEG", exif=exif.tobytes(), quality=90)


def _report(api: Api, photos: list[tuple[str, bytes, str]], username: str = "rider") -> dict[str, Any]:
    files = [("photos", p) for p in photos]
    res = api.client.post("/api/v1/clues", data=clue_body(), files=files, headers=api.auth(username))
    assert res.status_code == 201, res.text
    data: dict[str, Any] = api.get("dispatcher", int(res.json()["id"]))
    return data


def _stored(app: FastAPI) -> list[Path]:
    root: Path = app.state.settings.photo_dir
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize(("fmt", "ctype"), [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")])
def test_accepted_formats_are_served_byte_exact(api: Api, app: FastAPI, fmt: str, ctype: str) -> None:
    data = gradient(fmt)
    clue = _report(api, [("photo.bin", data, "application/octet-stream")])
    [photo] = clue["photos"]
    assert photo["content_type"] == ctype
    assert (photo["width"], photo["height"]) == (48, 32)
    assert photo["sha256"] == hashlib.sha256(data).hexdigest()
    for who in ("dispatcher", "rider"):
        res = api.client.get(photo["url"], headers=api.auth(who))
        assert res.status_code == 200
        assert res.headers["content-type"] == ctype
        assert res.content == data  # nothing to strip: byte for byte as uploaded


def test_type_comes_from_content_not_name(api: Api) -> None:
    png = gradient("PNG")
    clue = _report(api, [("holiday.jpg", png, "image/jpeg")])
    assert clue["photos"][0]["content_type"] == "image/png"
    res = api.client.post(
        "/api/v1/clues",
        data=clue_body(),
        files=[("photos", ("photo.png", b"GIF89a not really", "image/png"))],
        headers=api.auth("rider"),
    )
    assert res.status_code == 415


def test_same_photo_is_stored_once(api: Api, app: FastAPI, db: Session) -> None:
    data = gradient("JPEG")
    sha = hashlib.sha256(data).hexdigest()
    _report(api, [("a.jpg", data, "image/jpeg")])
    _report(api, [("b.jpg", data, "image/jpeg"), ("c.jpg", data, "image/jpeg")], username="rider2")
    files = _stored(app)
    assert [p.name for p in files] == [sha]
    assert files[0].read_bytes() == data
    assert files[0].parent.name == sha[:2]
    assert db.scalar(select(func.count()).select_from(CluePhoto).where(CluePhoto.sha256 == sha)) == 3
    db.rollback()


def _gps(data: bytes) -> dict[int, Any]:
    with Image.open(io.BytesIO(data)) as img:
        return dict(img.getexif().get_ifd(GPS_IFD))


def _pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB").tobytes()


def test_gps_is_removed_from_served_photos(api: Api, db: Session) -> None:
    original = jpeg_with_gps()
    assert _gps(original), "the test photo must carry a GPS position"
    clue = _report(api, [("p.jpg", original, "image/jpeg")])
    url = clue["photos"][0]["url"]
    for who in ("rider", "police", "dispatcher", "admin"):
        if who == "police":
            api.ok("dispatcher", clue["id"], "verify")
            api.ok("dispatcher", clue["id"], "dispatch", {"assignee": "police"})
        res = api.client.get(url, headers=api.auth(who))
        assert res.status_code == 200, who
        served = res.content
        assert served != original
        assert _gps(served) == {}
        assert b"RiderPhone" not in served and b"Exif" not in served
        assert _pixels(served) == _pixels(original)  # the picture itself is untouched
    assert (
        db.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "clue.photo_original")) == 0
    )
    db.rollback()


def test_png_and_webp_metadata_is_removed(api: Api) -> None:
    exif = Image.Exif()
    exif[GPS_IFD] = {1: "N", 2: (25.0, 25.0, 48.0), 3: "E", 4: (119.0, 0.0, 36.0)}
    for fmt in ("PNG", "WEBP"):
        original = gradient(fmt, exif=exif.tobytes(), **({"lossless": True} if fmt == "WEBP" else {}))
        assert _gps(original)
        clue = _report(api, [("p", original, "image/png")])
        served = api.client.get(clue["photos"][0]["url"], headers=api.auth("rider")).content
        assert _gps(served) == {}, fmt
        assert _pixels(served) == _pixels(original)


def test_original_is_for_dispatchers_and_audited(api: Api, db: Session) -> None:
    original = jpeg_with_gps()
    clue = _report(api, [("p.jpg", original, "image/jpeg")])
    api.ok("dispatcher", clue["id"], "verify")
    api.ok("dispatcher", clue["id"], "dispatch", {"assignee": "police"})
    url = clue["photos"][0]["url"]

    def audits() -> int:
        stmt = select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "clue.photo_original")
        n = db.scalar(stmt) or 0
        db.rollback()
        return n

    res = api.client.get(url, params={"original": "true"}, headers=api.auth("dispatcher"))
    assert res.status_code == 200
    assert res.content == original
    assert _gps(res.content)
    assert audits() == 1
    for who in ("rider", "police", "admin"):
        res = api.client.get(url, params={"original": "true"}, headers=api.auth(who))
        assert res.status_code == 403, who
        assert res.headers["content-type"].startswith("application/problem+json")
    for who in ("grid_staff", "rider2"):
        assert api.client.get(url, params={"original": "true"}, headers=api.auth(who)).status_code == 404
    assert audits() == 1
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "clue.photo_original")).one()
    assert entry.object_id == str(clue["id"])
    db.rollback()


def test_photo_positions(api: Api) -> None:
    a, b = gradient("JPEG"), gradient("PNG")
    clue = _report(api, [("a.jpg", a, "image/jpeg"), ("b.png", b, "image/png")])
    urls = [p["url"] for p in clue["photos"]]
    assert [api.client.get(u, headers=api.auth("rider")).content for u in urls] == [a, b]
    assert api.client.get(f"/api/v1/clues/{clue['id']}/photos/2", headers=api.auth("rider")).status_code == 404
    assert api.client.get(f"/api/v1/clues/{clue['id']}/photos/-1", headers=api.auth("rider")).status_code in (404, 422)


def test_small_factory_image_round_trips(api: Api) -> None:
    data = image_bytes("JPEG")
    clue = _report(api, [("x.jpg", data, "image/jpeg")])
    assert api.client.get(clue["photos"][0]["url"], headers=api.auth("rider")).content == data


def test_photos_are_decoded_in_a_worker_thread_a_few_at_once(
    api: Api, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decode holds a core for up to a second: it must never hold the event loop (every other
    request would wait), and only a bounded number run at once in a process."""
    from riderwatch.clues import api as clue_api

    on_loop: list[bool] = []
    real = clue_api.check_photo

    def watched(data: bytes, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:  # no loop in this thread: a worker thread
            on_loop.append(False)
        return real(data, **kwargs)

    monkeypatch.setattr(clue_api, "check_photo", watched)
    _report(api, [("a.png", gradient("PNG"), "image/png"), ("b.jpg", gradient("JPEG"), "image/jpeg")])
    assert on_loop == [False, False]
    assert app.state.photo_limiter.total_tokens == clue_api.PHOTO_CHECKS_AT_ONCE
