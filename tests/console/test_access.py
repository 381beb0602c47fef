"""Sign-in, sessions, CSRF, headers, and object-level checks of the console."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from server.extensions import db
from server.models import AuditEntry
from tests.conftest import build_app
from tests.console.conftest import OTHER_GRID, Console, csrf_of


def test_sign_in_and_out(app, world, console):
    c = Console(app.test_client())
    assert c.get("/console/").status_code == 302  # to the login page
    response = c.sign_in(world.head)
    assert response.status_code == 303 and response.headers["Location"] == "/console/"
    page = c.get("/console/").get_data(as_text=True)
    assert '<html lang="zh-CN">' in page and "审核队列" in page
    assert c.post("/console/logout").status_code == 303
    assert c.get("/console/").status_code == 302
    with app.app_context():
        actions = db.session.execute(select(AuditEntry.action)).scalars().all()
    assert "console.login" in actions and "console.logout" in actions


def test_wrong_password_then_rate_limit(app, world):
    c = Console(app.test_client())
    page = c.client.get("/console/login")
    for _ in range(5):
        bad = c.client.post(
            "/console/login",
            data={
                "username": world.head.username,
                "password": "wrong",
                "csrf_token": csrf_of(page),
            },
        )
        assert bad.status_code == 401 and "用户名或密码错误" in bad.get_data(as_text=True)
    limited = c.client.post(
        "/console/login",
        data={
            "username": world.head.username,
            "password": world.head.password,
            "csrf_token": csrf_of(page),
        },
    )
    assert limited.status_code == 429 and "Retry-After" in limited.headers
    assert "登录失败次数过多" in limited.get_data(as_text=True)


def test_login_without_csrf_is_refused(app, world):
    client = app.test_client()
    client.get("/console/login")
    response = client.post(
        "/console/login", data={"username": world.head.username, "password": world.head.password}
    )
    assert response.status_code == 400


def test_cookie_flags_and_security_headers(app, world, console):
    client = app.test_client()
    page = client.get("/console/login")
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # this test app runs on plain http
    c = console(world.head)
    response = c.get("/console/")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp and "img-src 'self' data:" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cache-Control"] == "no-store"
    assert "style=" not in response.get_data(as_text=True)  # CSP forbids inline styles
    assert "<script" not in response.get_data(as_text=True)


def test_cookie_is_secure_by_default(tmp_path):
    app = build_app(tmp_path)
    assert "Secure" in app.test_client().get("/console/login").headers["Set-Cookie"]


def test_csrf_missing_or_wrong_is_400(world, console):
    c = console(world.head)
    url = f"/console/records/{world.visit}/review"
    assert c.client.post(url, data={"decision": "approved"}).status_code == 400
    assert (
        c.client.post(url, data={"decision": "approved", "csrf_token": "x" * 43}).status_code == 400
    )
    assert c.post(url, data={"decision": "approved"}).status_code == 303


def test_api_rejects_the_console_cookie(app, world, console):
    c = console(world.head)
    cookie = c.client.get_cookie("linli_console", path="/console")
    assert cookie is not None
    response = app.test_client().get(
        "/api/v1/me", headers={"Cookie": f"linli_console={cookie.value}"}
    )
    assert response.status_code == 401


def test_console_ignores_bearer_tokens(app, world, login):
    token = login(world.head)
    response = app.test_client().get("/console/", headers=token.headers)
    assert response.status_code == 302 and "/console/login" in response.headers["Location"]


def test_password_reset_ends_console_sessions(app, world, console):
    from server import accounts

    c = console(world.head)
    with app.app_context():
        accounts.reset_password("admin", world.head.id, "a new password 123")
        db.session.commit()
    assert c.get("/console/").status_code == 302


def _posts(world):
    rid = world.other
    return [
        (f"/console/records/{rid}/review", {"decision": "approved"}),
        (
            f"/console/records/{rid}/resolve",
            {"field": "title", "choice": "0", "reason": "核实过了"},
        ),
        (f"/console/records/{rid}/reveal", {"field": "title", "reason": "核实身份"}),
        (f"/console/records/{rid}/case", {"action": "accept"}),
        (f"/console/records/{rid}/move", {"grid_code": OTHER_GRID}),
    ]


def test_other_community_is_404_everywhere(world, console):
    c = console(world.head)
    assert c.get(f"/console/records/{world.other}").status_code == 404
    assert c.get(f"/console/?q={world.other}").status_code == 404
    assert c.get(f"/console/?grid={OTHER_GRID}").status_code == 404
    assert c.post("/console/export", data={"format": "csv", "q": world.other}).status_code == 404
    assert (
        c.post(
            "/console/export", data={"format": "csv", "grid": OTHER_GRID, "status": "all"}
        ).status_code
        == 404
    )
    for url, data in _posts(world):
        assert c.post(url, data=data).status_code == 404, url
    # ... while its own community head sees it.
    assert console(world.other_head).get(f"/console/records/{world.other}").status_code == 200


def test_search_by_id_opens_a_record_in_scope(world, console):
    response = console(world.head).get(f"/console/?q={world.visit}")
    assert response.status_code == 303 and world.visit in response.headers["Location"]


@pytest.mark.parametrize("path", ["/console/dashboard", "/console/records/{visit}"])
def test_grid_worker_gets_403_on_review_pages(world, console, path):
    c = console(world.worker)
    response = c.get(path.format(visit=world.visit))
    assert response.status_code == 403
    assert "移动端" in response.get_data(as_text=True)


def test_grid_worker_sees_the_field_app_page_and_cannot_review(world, console):
    c = console(world.worker)
    page = c.get("/console/")
    assert page.status_code == 200 and "您的工作在移动端完成" in page.get_data(as_text=True)
    for url, data in [
        (f"/console/records/{world.visit}/review", {"decision": "approved"}),
        (
            f"/console/records/{world.conflict}/resolve",
            {"field": "head_name", "choice": "0", "reason": "核实过了"},
        ),
        (f"/console/records/{world.resident}/reveal", {"field": "id_number", "reason": "核实身份"}),
        ("/console/export", {"format": "csv"}),
    ]:
        assert c.post(url, data=data).status_code == 403, url


def test_admin_pages_are_for_admins_only(world, console):
    c = console(world.head)
    assert c.get("/console/admin").status_code == 403
    assert c.get("/console/access-log").status_code == 403
    assert console(world.street).get("/console/admin").status_code == 200
