"""The administrator's pages: categories, users, Open311 keys and the audit log, for admins only.

Every change is checked where a user would notice it (the page, logging in, Open311) and in the
audit log; every refusal shows a message and leaves the database as it was.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.models import ApiKey, AuditEntry, Category, Rider, User
from tests.factories import CENTER_LAT, CENTER_LON, PASSWORD, District
from tests.pages import Browser, form_csrf, log_in, scalar

ROLES = ("admin", "dispatcher", "police", "grid_staff", "patrol", "station_manager", "platform", "rider")
NEW_PASSWORD = "a-new-password-42"


@pytest.fixture
def ids(db: Session, district: District) -> dict[str, int]:
    """The district's user ids, read once: touching the district's (expired) objects later would open a
    transaction in the test's session, and on SQLite that blocks the app's writes."""
    found = {name: id_ for name, id_ in db.execute(select(User.username, User.id))}
    db.commit()
    return found


def _pages(ids: dict[str, int]) -> list[str]:
    police = ids["police"]
    return [
        "/admin/users",
        "/admin/users/new",
        f"/admin/users/{police}",
        f"/admin/users/{police}/deactivate",
        "/admin/categories",
        "/admin/categories/new",
        "/admin/categories/fire_hazard",
        "/admin/keys",
        "/admin/audit",
    ]


def _audits(db: Session, action: str, object_id: int | str | None = None) -> list[AuditEntry]:
    stmt = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
    if object_id is not None:
        stmt = stmt.where(AuditEntry.object_id == str(object_id))
    rows = list(db.scalars(stmt))
    for row in rows:
        db.expunge(row)  # still readable after the commit, without a new transaction
    db.commit()
    return rows


def _count(db: Session, model: Any) -> int:
    return int(scalar(db, select(func.count()).select_from(model)))


def _message(html: str) -> str:
    match = re.search(r'data-testid="page-message".*?</div>', html, re.S)
    assert match, "the page shows no message"
    return re.sub(r"<[^>]+>", " ", match.group(0))


def _user(db: Session, username: str) -> User:
    db.expire_all()
    user = db.scalar(select(User).where(User.username == username))
    assert user is not None
    db.expunge(user)
    db.commit()
    return user


def _category(db: Session, code: str) -> Category:
    db.expire_all()
    category = db.get(Category, code)
    assert category is not None
    db.expunge(category)
    db.commit()
    return category


# --- access --------------------------------------------------------------------------------------


def test_admin_pages_for_admins_only(
    browser: Callable[[str], Browser], district: District, ids: dict[str, int]
) -> None:
    pages = _pages(ids)
    for role in ROLES:
        user = browser(role)
        for path in pages:
            res = user.client.get(path, follow_redirects=False)
            if role == "admin":
                assert res.status_code == 200, (path, res.text[:300])
                assert res.headers["content-type"].startswith("text/html")
            else:
                assert res.status_code == 403, (role, path)
                assert 'data-testid="error-page"' in res.text


def test_admin_writes_are_refused_to_every_other_role(
    browser: Callable[[str], Browser], district: District, ids: dict[str, int], db: Session
) -> None:
    police = ids["police"]
    before = (_count(db, User), _count(db, ApiKey), _count(db, AuditEntry))
    writes: list[tuple[str, dict[str, str]]] = [
        ("/admin/users", {"username": "intruder", "role": "admin", "password": PASSWORD}),
        (f"/admin/users/{police}", {"display_name": "Taken over"}),
        (f"/admin/users/{police}/password", {"password": NEW_PASSWORD}),
        (f"/admin/users/{police}/deactivate", {"confirm": "yes"}),
        ("/admin/categories", {"code": "stray_dogs", "name_zh": "流浪犬", "name_en": "Stray dogs"}),
        ("/admin/categories/fire_hazard", {"name_zh": "x", "name_en": "x", "deadline_hours": "1"}),
        ("/admin/keys", {"name": "my own key"}),
    ]
    for role in ROLES[1:]:
        user = browser(role)
        logins = _count(db, AuditEntry)  # logging in is audited: count from here
        for url, data in writes:
            res = user.post(url, data, follow_redirects=False)
            assert res.status_code == 403, (role, url)
        assert _count(db, AuditEntry) == logins
    assert (_count(db, User), _count(db, ApiKey)) == before[:2]
    assert _user(db, "police").display_name == "police" and _user(db, "police").is_active


def test_anonymous_visitors_go_to_login(client: TestClient, district: District, ids: dict[str, int]) -> None:
    for path in _pages(ids):
        res = client.get(path, follow_redirects=False)
        assert res.status_code == 303
        assert res.headers["location"] == f"/login?next={path}"


def test_a_write_without_the_csrf_token_is_refused(
    browser: Callable[[str], Browser], district: District, db: Session
) -> None:
    admin = browser("admin")
    res = admin.client.post("/admin/keys", data={"name": "forged"})
    assert res.status_code == 403
    assert _count(db, ApiKey) == 0


def test_navigation_names_the_admin_pages_for_admins(browser: Callable[[str], Browser]) -> None:
    page = browser("admin").client.get("/desk").text
    for testid in ("nav-desk", "nav-admin-users", "nav-admin-categories", "nav-admin-keys", "nav-admin-audit"):
        assert f'data-testid="{testid}"' in page
    assert 'data-testid="nav-admin-users"' not in browser("dispatcher").client.get("/desk").text


def test_admin_pages_in_chinese(browser: Callable[[str], Browser]) -> None:
    admin = browser("admin")
    admin.client.get("/lang/zh")
    for path, text in (
        ("/admin/users", "创建用户"),
        ("/admin/categories", "添加类别"),
        ("/admin/keys", "签发密钥"),
        ("/admin/audit", "审计日志"),
    ):
        html = admin.client.get(path).text
        assert '<html lang="zh-Hans">' in html and text in html, path


# --- categories ----------------------------------------------------------------------------------


def _category_form(category: Category, **changes: Any) -> dict[str, str]:
    data = {
        "name_zh": category.name_zh,
        "name_en": category.name_en,
        "description_zh": category.description_zh,
        "description_en": category.description_en,
        "group": category.group,
        "handler_role": category.handler_role,
        "deadline_hours": str(category.deadline_hours),
        "urgent_deadline_hours": str(category.urgent_deadline_hours),
        "sort_order": str(category.sort_order),
    }
    if category.is_public:
        data["is_public"] = "1"
    if category.active:
        data["active"] = "1"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_categories_are_listed_with_their_routing_and_deadlines(browser: Callable[[str], Browser], db: Session) -> None:
    page = browser("admin").client.get("/admin/categories").text
    codes = re.findall(r'data-testid="category-row" data-code="([a-z_0-9]+)"', page)
    seeded = list(db.scalars(select(Category.code).order_by(Category.sort_order, Category.code)))
    db.commit()
    assert codes == seeded and "fire_hazard" in codes
    fire = _category(db, "fire_hazard")
    assert f"{fire.deadline_hours} normal, {fire.urgent_deadline_hours} urgent" in page


def test_admin_edits_a_category_and_the_change_is_audited(
    browser: Callable[[str], Browser], db: Session, report: Callable[..., int]
) -> None:
    admin = browser("admin")
    before = _category(db, "fire_hazard")
    form = _category_form(
        before,
        name_en="Fire risk",
        handler_role="patrol",
        deadline_hours="36",
        urgent_deadline_hours="2",
        is_public=None,
    )
    form.pop("is_public", None)  # unticked
    page = admin.client.get("/admin/categories/fire_hazard").text
    assert 'data-testid="category-form"' in page and 'value="Fire hazard"' in page
    res = admin.post("/admin/categories/fire_hazard", form, follow_redirects=False)
    assert res.status_code == 303, res.text
    assert res.headers["location"].startswith("/admin/categories?done=category-updated")
    listing = admin.client.get(res.headers["location"]).text
    assert "The category was saved." in listing and "Fire risk" in listing
    after = _category(db, "fire_hazard")
    assert (after.name_en, after.handler_role, after.deadline_hours, after.urgent_deadline_hours) == (
        "Fire risk",
        "patrol",
        36,
        2,
    )
    assert after.is_public is False and after.name_zh == before.name_zh
    (entry,) = _audits(db, "category.update", "fire_hazard")
    assert entry.actor_id == _user(db, "admin").id
    assert entry.detail["changes"]["handler_role"] == [before.handler_role, "patrol"]
    assert entry.detail["changes"]["deadline_hours"] == [before.deadline_hours, 36]
    # The routing rule is what the dispatcher is proposed from now on: patrol, not the grid's staff.
    clue_id = report()
    dispatcher = browser("dispatcher")
    dispatcher.post(f"/clues/{clue_id}/actions/verify", {})
    assert 'data-testid="routing-proposal" data-assignee="patrol"' in dispatcher.client.get(f"/clues/{clue_id}").text


def test_retiring_a_category_takes_it_off_the_report_form(browser: Callable[[str], Browser], db: Session) -> None:
    admin = browser("admin")
    form = _category_form(_category(db, "fire_hazard"))
    form.pop("active")
    assert admin.post("/admin/categories/fire_hazard", form, follow_redirects=False).status_code == 303
    assert _category(db, "fire_hazard").active is False
    assert 'value="fire_hazard"' not in browser("rider").client.get("/report").text
    assert 'data-code="fire_hazard" data-active="no"' in admin.client.get("/admin/categories").text


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"name_en": ""}, "name_en"),
        ({"deadline_hours": "0"}, "deadline_hours"),
        ({"deadline_hours": "soon"}, "deadline_hours"),
        ({"deadline_hours": "10", "urgent_deadline_hours": "12"}, "urgent deadline"),
        ({"group": "gossip"}, "group"),
        ({"handler_role": "dispatcher"}, "handler_role"),
        ({"name_zh": "长" * 101}, "name_zh"),
    ],
)
def test_bad_category_input_shows_a_message_and_stores_nothing(
    browser: Callable[[str], Browser], db: Session, changes: dict[str, str], reason: str
) -> None:
    admin = browser("admin")
    before = _category(db, "fire_hazard")
    res = admin.post("/admin/categories/fire_hazard", _category_form(before, **changes))
    assert res.status_code == 422, res.text[:300]
    assert reason in _message(res.text)
    assert 'data-testid="category-form"' in res.text  # the form again, with what was typed
    after = _category(db, "fire_hazard")
    assert {c.key: getattr(after, c.key) for c in Category.__table__.columns} == {
        c.key: getattr(before, c.key) for c in Category.__table__.columns
    }
    assert _audits(db, "category.update") == []


def test_admin_adds_a_category_that_riders_can_report(browser: Callable[[str], Browser], db: Session) -> None:
    admin = browser("admin")
    form = {
        "code": "stray_dogs",
        "name_zh": "流浪犬",
        "name_en": "Stray dogs",
        "group": "hazard",
        "handler_role": "grid_staff",
        "deadline_hours": "24",
        "urgent_deadline_hours": "3",
        "is_public": "1",
        "active": "1",
        "sort_order": "90",
    }
    res = admin.post("/admin/categories", form, follow_redirects=False)
    assert res.status_code == 303, res.text[:500]
    created = _category(db, "stray_dogs")
    assert (created.name_zh, created.deadline_hours, created.is_public) == ("流浪犬", 24, True)
    assert len(_audits(db, "category.create", "stray_dogs")) == 1
    assert 'value="stray_dogs"' in browser("rider").client.get("/report").text
    # The same code twice is refused with a message; the first stays as it is.
    again = admin.post("/admin/categories", {**form, "name_en": "Dogs again"})
    assert again.status_code == 409
    assert "already exists" in _message(again.text)
    assert _category(db, "stray_dogs").name_en == "Stray dogs"


@pytest.mark.parametrize("code", ["", "Stray Dogs", "1dogs", "x" * 65])
def test_a_bad_category_code_is_refused(browser: Callable[[str], Browser], db: Session, code: str) -> None:
    categories = _count(db, Category)
    res = browser("admin").post(
        "/admin/categories",
        {"code": code, "name_zh": "流浪犬", "name_en": "Stray dogs", "group": "hazard", "handler_role": "grid_staff"},
    )
    assert res.status_code == 422
    assert "code" in _message(res.text)
    assert _count(db, Category) == categories
    assert _audits(db, "category.create") == []


def test_unknown_category_is_a_404_page(browser: Callable[[str], Browser]) -> None:
    admin = browser("admin")
    assert admin.client.get("/admin/categories/no_such").status_code == 404
    assert admin.post("/admin/categories/no_such", {"name_zh": "x"}).status_code == 404


# --- users ---------------------------------------------------------------------------------------


def test_users_are_listed_filtered_by_role_and_found_by_search(
    browser: Callable[[str], Browser], db: Session, district: District
) -> None:
    admin = browser("admin")
    district.users["rider2"].display_name = "王小明"
    district.users["rider2"].phone = "13800001111"
    db.commit()
    names = re.compile(r'data-testid="user-row" data-username="([^"]+)"')
    everyone = names.findall(admin.client.get("/admin/users").text)
    assert sorted(everyone) == sorted(district.users)
    assert sorted(names.findall(admin.client.get("/admin/users?role=rider").text)) == ["rider", "rider2"]
    assert names.findall(admin.client.get("/admin/users?q=小明").text) == ["rider2"]
    assert names.findall(admin.client.get("/admin/users?q=0000111").text) == ["rider2"]
    assert names.findall(admin.client.get("/admin/users?role=police&q=2").text) == ["police2"]
    # Wildcards are searched for as text, not as patterns.
    assert names.findall(admin.client.get("/admin/users?q=%25").text) == []
    assert names.findall(admin.client.get("/admin/users?q=_").text) == ["grid_staff", "station_manager"]
    # The list says what each user belongs to.
    row = re.search(r'data-username="police".*?</tr>', admin.client.get("/admin/users?role=police").text, re.S)
    assert row and "Jinding" in row.group(0)
    assert admin.client.get("/admin/users?role=chief").status_code == 422


def test_admin_creates_a_user_who_can_log_in_at_once(
    browser: Callable[[str], Browser], db: Session, client: TestClient, district: District, ids: dict[str, int]
) -> None:
    admin = browser("admin")
    form = {
        "username": "police3",
        "role": "police",
        "password": NEW_PASSWORD,
        "display_name": "李警官",
        "phone": "13900002222",
        "community": "jinding",
    }
    res = admin.post("/admin/users", form, follow_redirects=False)
    assert res.status_code == 303, res.text[:500]
    page = admin.client.get(res.headers["location"]).text
    assert "The user was created" in page and 'data-username="police3"' in page
    user = _user(db, "police3")
    assert (user.role, user.display_name, user.phone, user.community_id) == (
        "police",
        "李警官",
        "13900002222",
        district.community.id,
    )
    (entry,) = _audits(db, "user.create", user.id)
    assert entry.actor_id == ids["admin"]
    assert entry.detail == {"role": "police", "community": "jinding"}
    assert NEW_PASSWORD not in str(entry.detail)
    log_in(client, "police3", NEW_PASSWORD)
    assert client.get("/my/assignments").status_code == 200


def test_a_new_rider_belongs_to_their_station_and_platform(
    browser: Callable[[str], Browser], db: Session, district: District
) -> None:
    admin = browser("admin")
    form = {"username": "rider9", "role": "rider", "password": NEW_PASSWORD, "station": "mt-jinding"}
    res = admin.post("/admin/users", {**form, "rider_status": "applied"}, follow_redirects=False)
    assert res.status_code == 303, res.text[:500]
    user = _user(db, "rider9")
    rider = db.get(Rider, user.id)
    assert rider is not None
    assert (user.station_id, user.platform_id) == (district.station.id, district.platform.id)
    assert (rider.station_id, rider.platform_id, rider.status) == (district.station.id, district.platform.id, "applied")
    db.commit()


@pytest.mark.parametrize(
    ("changes", "status", "reason"),
    [
        ({"password": "short"}, 422, "password"),
        ({"username": "two words"}, 422, "username"),
        ({"username": ""}, 422, "username"),
        ({"username": "police"}, 409, "already exists"),
        ({"role": "chief"}, 422, "role"),
        ({"station": "mt-jinding"}, 422, "cannot be linked to a station"),
        ({"community": "nowhere"}, 422, "no community"),
        ({"phone": "call me"}, 422, "phone"),
        ({"display_name": "名" * 201}, 422, "display_name"),
    ],
)
def test_bad_user_input_shows_a_message_and_stores_nothing(
    browser: Callable[[str], Browser], db: Session, changes: dict[str, str], status: int, reason: str
) -> None:
    admin = browser("admin")
    users, audits = _count(db, User), _count(db, AuditEntry)
    form = {"username": "police3", "role": "police", "password": NEW_PASSWORD, "community": "jinding", **changes}
    res = admin.post("/admin/users", form)
    assert res.status_code == status, res.text[:300]
    assert reason in _message(res.text)
    assert 'data-testid="user-form"' in res.text
    assert NEW_PASSWORD not in res.text  # a password is never written back into a page
    assert (_count(db, User), _count(db, AuditEntry)) == (users, audits)


def test_admin_edits_a_user_and_each_change_is_audited(
    browser: Callable[[str], Browser], db: Session, district: District, ids: dict[str, int]
) -> None:
    admin = browser("admin")
    grid_staff = ids["grid_staff"]
    page = admin.client.get(f"/admin/users/{grid_staff}").text
    # Only the link that fits the role is offered.
    assert 'name="grid"' in page and 'name="community"' not in page and 'name="station"' not in page
    res = admin.post(
        f"/admin/users/{grid_staff}",
        {"display_name": "陈网格员", "phone": "13700003333", "grid": ""},
        follow_redirects=False,
    )
    assert res.status_code == 303
    assert "The user was saved." in admin.client.get(res.headers["location"]).text
    user = _user(db, "grid_staff")
    assert (user.display_name, user.phone, user.grid_id) == ("陈网格员", "13700003333", None)
    (entry,) = _audits(db, "user.update", grid_staff)
    assert entry.detail["changes"] == {
        "display_name": ["grid_staff", "陈网格员"],
        "phone": [None, "13700003333"],
        "grid": ["jinding-w", None],
    }
    # Saving the same values again changes nothing and adds no entry.
    admin.post(f"/admin/users/{grid_staff}", {"display_name": "陈网格员", "phone": "13700003333"})
    assert len(_audits(db, "user.update", grid_staff)) == 1


def test_rider_status_and_station_are_edited_together(
    browser: Callable[[str], Browser], db: Session, district: District, ids: dict[str, int]
) -> None:
    admin = browser("admin")
    rider = ids["rider"]
    res = admin.post(
        f"/admin/users/{rider}",
        {"display_name": "rider", "station": "", "rider_status": "suspended"},
        follow_redirects=False,
    )
    assert res.status_code == 303
    membership = db.get(Rider, rider)
    assert membership is not None
    assert (membership.status, membership.station_id, membership.platform_id) == ("suspended", None, None)
    db.commit()
    (entry,) = _audits(db, "user.update", rider)
    assert entry.detail["changes"]["rider_status"] == ["active", "suspended"]
    assert entry.detail["changes"]["station"] == ["mt-jinding", None]


@pytest.mark.parametrize(
    ("username", "changes", "reason"),
    [
        ("grid_staff", {"display_name": ""}, "display name"),
        ("grid_staff", {"display_name": "ok", "grid": "nowhere"}, "no grid"),
        ("rider", {"display_name": "ok", "rider_status": "retired"}, "rider status"),
        ("rider", {"display_name": "ok", "phone": "+86 (0594) 123-4567-8888-9999-0000-1111"}, "phone"),
    ],
)
def test_bad_user_edits_show_a_message_and_change_nothing(
    browser: Callable[[str], Browser],
    db: Session,
    district: District,
    username: str,
    changes: dict[str, str],
    reason: str,
) -> None:
    admin = browser("admin")
    before = _user(db, username)
    res = admin.post(f"/admin/users/{before.id}", changes)
    assert res.status_code == 422, res.text[:300]
    assert reason in _message(res.text)
    after = _user(db, username)
    assert {c.key: getattr(after, c.key) for c in User.__table__.columns} == {
        c.key: getattr(before, c.key) for c in User.__table__.columns
    }
    assert _audits(db, "user.update") == []


def test_deactivation_asks_first_then_ends_logins_sessions_and_tokens(
    browser: Callable[[str], Browser],
    db: Session,
    district: District,
    ids: dict[str, int],
    app: Any,
    report: Callable[..., int],
) -> None:
    admin = browser("admin")
    police = ids["police"]
    clue_id = report()
    dispatcher = browser("dispatcher")
    dispatcher.post(f"/clues/{clue_id}/actions/verify", {})
    dispatcher.post(f"/clues/{clue_id}/actions/dispatch", {"assignee": "police"})
    # The police officer is logged in on a phone (cookie) and through the API (bearer token).
    phone = browser("police")
    with TestClient(app) as api:
        bearer = api.post("/api/v1/auth/token", data={"username": "police", "password": PASSWORD}).json()
        headers = {"Authorization": f"Bearer {bearer['access_token']}"}
        assert api.get("/api/v1/me", headers=headers).status_code == 200

        # The first step only asks (and says what would be left without a handler).
        page = admin.client.get(f"/admin/users/{police}").text
        assert 'data-testid="user-open-assignments"' in page
        ask = admin.post(f"/admin/users/{police}/deactivate", {})
        assert ask.status_code == 200
        assert 'data-testid="confirm-deactivate"' in ask.text and 'data-testid="confirm-warning"' in ask.text
        assert _user(db, "police").is_active
        assert _audits(db, "user.deactivate") == []

        done = admin.post(f"/admin/users/{police}/deactivate", {"confirm": "yes"}, follow_redirects=False)
        assert done.status_code == 303
        assert "deactivated" in admin.client.get(done.headers["location"]).text
        assert _user(db, "police").is_active is False
        (entry,) = _audits(db, "user.deactivate", police)
        assert entry.actor_id == ids["admin"]

        # Everything the officer held stops working at once.
        assert api.get("/api/v1/me", headers=headers).status_code == 401
        assert phone.client.get("/my/assignments", follow_redirects=False).headers["location"].startswith("/login")
        refused = api.post("/api/v1/auth/token", data={"username": "police", "password": PASSWORD})
        assert refused.status_code == 401
        with TestClient(app, headers={"Accept-Language": "en"}) as other:
            page = other.get("/login")
            res = other.post(
                "/login",
                data={"username": "police", "password": PASSWORD, "csrf_token": form_csrf(page.text)},
                follow_redirects=False,
            )
            assert res.status_code == 200 and "Wrong username or password" in res.text

        # Reactivation asks too; then the password works again, but the old token stays dead.
        ask = admin.post(f"/admin/users/{police}/reactivate", {})
        assert 'data-testid="confirm-reactivate"' in ask.text and _user(db, "police").is_active is False
        admin.post(f"/admin/users/{police}/reactivate", {"confirm": "yes"})
        assert _user(db, "police").is_active is True
        assert len(_audits(db, "user.reactivate", police)) == 1
        assert api.get("/api/v1/me", headers=headers).status_code == 401
        again = api.post("/api/v1/auth/token", data={"username": "police", "password": PASSWORD})
        assert again.status_code == 200


def test_an_admin_cannot_deactivate_themselves(
    browser: Callable[[str], Browser], db: Session, district: District, ids: dict[str, int]
) -> None:
    admin = browser("admin")
    me = ids["admin"]
    assert 'data-testid="user-self"' in admin.client.get(f"/admin/users/{me}").text
    res = admin.post(f"/admin/users/{me}/deactivate", {"confirm": "yes"})
    assert res.status_code == 409
    assert "your own account" in _message(res.text)
    assert _user(db, "admin").is_active
    assert _audits(db, "user.deactivate") == []


def test_password_reset_ends_sessions_and_sets_the_new_password(
    browser: Callable[[str], Browser], db: Session, district: District, ids: dict[str, int], app: Any
) -> None:
    admin = browser("admin")
    rider = ids["rider"]
    phone = browser("rider")
    with TestClient(app) as api:
        old = api.post("/api/v1/auth/token", data={"username": "rider", "password": PASSWORD}).json()
        headers = {"Authorization": f"Bearer {old['access_token']}"}
        short = admin.post(f"/admin/users/{rider}/password", {"password": "1234567"})
        assert short.status_code == 422 and "password" in _message(short.text)
        assert api.get("/api/v1/me", headers=headers).status_code == 200  # nothing changed

        res = admin.post(f"/admin/users/{rider}/password", {"password": NEW_PASSWORD}, follow_redirects=False)
        assert res.status_code == 303
        assert "new password is set" in admin.client.get(res.headers["location"]).text
        assert api.get("/api/v1/me", headers=headers).status_code == 401
        assert phone.client.get("/report", follow_redirects=False).status_code == 303
        assert api.post("/api/v1/auth/token", data={"username": "rider", "password": PASSWORD}).status_code == 401
        assert api.post("/api/v1/auth/token", data={"username": "rider", "password": NEW_PASSWORD}).status_code == 200
    (entry,) = _audits(db, "user.reset_password", rider)
    assert NEW_PASSWORD not in str(entry.detail)


def test_unknown_user_is_a_404_page(browser: Callable[[str], Browser]) -> None:
    admin = browser("admin")
    for path in ("/admin/users/999999", "/admin/users/999999/deactivate"):
        assert admin.client.get(path).status_code == 404
    assert admin.post("/admin/users/999999", {"display_name": "x"}).status_code == 404
    assert admin.post("/admin/users/999999/deactivate", {"confirm": "yes"}).status_code == 404


# --- Open311 keys --------------------------------------------------------------------------------


def _open311_post(client: TestClient, key: str) -> Any:
    return client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": key,
            "service_code": "fire_hazard",
            "lat": str(CENTER_LAT + 0.001),
            "long": str(CENTER_LON - 0.004),
            "description": "楼道里堆着电瓶",
        },
    )


def test_a_key_is_shown_once_works_and_stops_when_revoked(
    browser: Callable[[str], Browser], db: Session, client: TestClient, district: District, ids: dict[str, int]
) -> None:
    admin = browser("admin")
    res = admin.post("/admin/keys", {"name": "12345 city hotline"})
    assert res.status_code == 200
    assert res.headers["cache-control"] == "no-store"
    match = re.search(r'id="key-value" value="([^"]+)"', res.text)
    assert match and 'data-testid="key-copy"' in res.text and "shown only this once" in res.text
    key = match.group(1)
    # Only a fingerprint is stored; the list never shows the key again.
    assert key not in admin.client.get("/admin/keys").text
    row = db.scalar(select(ApiKey))
    assert row is not None and row.key_hash != key and key not in row.key_hash
    key_id = row.id
    db.commit()
    (created,) = _audits(db, "apikey.create", key_id)
    assert created.actor_id == ids["admin"] and key not in str(created.detail)

    assert _open311_post(client, key).status_code == 200

    # Revoking asks first; the key keeps working until it is confirmed.
    ask = admin.client.get(f"/admin/keys/{key_id}/revoke")
    assert 'data-testid="confirm-revoke"' in ask.text and "12345 city hotline" in ask.text
    assert admin.post(f"/admin/keys/{key_id}/revoke", {}).status_code == 200
    assert _audits(db, "apikey.revoke") == []
    assert _open311_post(client, key).status_code == 200

    done = admin.post(f"/admin/keys/{key_id}/revoke", {"confirm": "yes"}, follow_redirects=False)
    assert done.status_code == 303
    listing = admin.client.get(done.headers["location"]).text
    assert "The key was revoked" in listing and f'data-key-id="{key_id}" data-revoked="yes"' in listing
    assert len(_audits(db, "apikey.revoke", key_id)) == 1
    refused = _open311_post(client, key)
    assert refused.status_code == 403
    # Revoking again changes nothing.
    admin.post(f"/admin/keys/{key_id}/revoke", {"confirm": "yes"})
    assert len(_audits(db, "apikey.revoke", key_id)) == 1


@pytest.mark.parametrize("name", ["", "   ", "k" * 201])
def test_a_key_needs_a_sensible_name(browser: Callable[[str], Browser], db: Session, name: str) -> None:
    res = browser("admin").post("/admin/keys", {"name": name})
    assert res.status_code == 422
    assert "name" in _message(res.text)
    assert 'data-testid="key-issued"' not in res.text
    assert _count(db, ApiKey) == 0
    assert _audits(db, "apikey.create") == []


def test_unknown_key_is_a_404_page(browser: Callable[[str], Browser]) -> None:
    admin = browser("admin")
    assert admin.client.get("/admin/keys/999999/revoke").status_code == 404
    assert admin.post("/admin/keys/999999/revoke", {"confirm": "yes"}).status_code == 404


# --- the audit log -------------------------------------------------------------------------------


def _entry_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-testid="audit-entry" data-entry-id="(\d+)"', html)]


def test_audit_log_newest_first_filtered_and_paged(
    browser: Callable[[str], Browser], db: Session, district: District, ids: dict[str, int]
) -> None:
    admin = browser("admin")
    for n in range(55):
        admin.post("/admin/keys", {"name": f"system {n}"})
    page = admin.client.get("/admin/audit").text
    shown = _entry_ids(page)
    assert len(shown) == 50 and shown == sorted(shown, reverse=True)
    newest = db.scalar(select(func.max(AuditEntry.id)))
    db.commit()
    assert shown[0] == newest

    keys = admin.client.get("/admin/audit?action=apikey.create").text
    assert 'data-total="55"' in keys
    first = _entry_ids(keys)
    older = re.search(r'href="([^"]+)" class="btn" data-testid="audit-older"', keys)
    assert older
    rest = _entry_ids(admin.client.get(older.group(1).replace("&amp;", "&")).text)
    assert len(first) == 50 and len(rest) == 5 and max(rest) < min(first)
    assert len(set(first + rest)) == 55

    police = ids["police"]
    admin.post(f"/admin/users/{police}", {"display_name": "警官甲", "community": "jinding"})
    one = admin.client.get(f"/admin/audit?object_type=user&object_id={police}").text
    assert 'data-action="user.update"' in one and 'data-action="apikey.create"' not in one
    assert "警官甲" in one  # the change itself is shown
    assert admin.client.get("/admin/audit?before=0").status_code == 422


def test_audit_log_cannot_be_changed_through_the_pages(browser: Callable[[str], Browser], db: Session) -> None:
    admin = browser("admin")
    entries = _count(db, AuditEntry)
    for method in ("POST", "PUT", "DELETE"):
        res = admin.client.request(method, "/admin/audit", headers={"X-CSRF-Token": admin.csrf})
        assert res.status_code == 405, method
    assert _count(db, AuditEntry) == entries


def test_a_refused_user_is_explained_in_the_readers_language(browser: Callable[[str], Browser], db: Session) -> None:
    admin = browser("admin")
    users = _count(db, User)
    form = {"username": "police3", "role": "police", "password": NEW_PASSWORD, "phone": "call me"}
    assert "a phone number has at most 32 digits" in _message(admin.post("/admin/users", form).text)
    admin.client.get("/lang/zh")
    res = admin.post("/admin/users", form)
    assert res.status_code == 422
    message = html.unescape(_message(res.text))
    assert "请修改表单。" in message and "电话号码最多 32 位" in message
    taken = admin.post("/admin/users", {**form, "username": "police", "phone": ""})
    assert taken.status_code == 409 and "用户 'police' 已存在" in html.unescape(_message(taken.text))
    assert _count(db, User) == users
