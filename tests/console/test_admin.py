"""Users and devices through the console (server.accounts does the work)."""

from __future__ import annotations

from sqlalchemy import select

from server.extensions import db
from server.models import Device, User
from tests.console.conftest import GRID_1, GRID_2, OTHER_GRID


def test_create_user_assign_grids_reset_password(app, world, console, login):
    c = console(world.street)
    created = c.post(
        "/console/admin/users",
        data={
            "username": "wang_grid",
            "display_name": "王网格",
            "role": "grid_worker",
            "unit_code": "990101001001",
            "password": "a long password",
            "grids": [GRID_1],
        },
        follow_redirects=True,
    )
    assert "已创建用户 wang_grid" in created.get_data(as_text=True)
    with app.app_context():
        user = db.session.execute(select(User).where(User.username == "wang_grid")).scalar_one()
        user_id = user.id
        assert user.grid_codes == [GRID_1]
    assert (
        c.post(
            f"/console/admin/users/{user_id}/grids", data={"grids": [GRID_1, GRID_2]}
        ).status_code
        == 303
    )
    with app.app_context():
        assert db.session.get(User, user_id).grid_codes == [GRID_1, GRID_2]
    weak = c.post(f"/console/admin/users/{user_id}/password", data={"password": "short"})
    assert weak.status_code == 422 and "密码至少需要 8 个字符" in weak.get_data(as_text=True)
    assert (
        c.post(
            f"/console/admin/users/{user_id}/password", data={"password": "another long one"}
        ).status_code
        == 303
    )
    taken = c.post(
        "/console/admin/users",
        data={
            "username": "wang_grid",
            "display_name": "重复",
            "role": "grid_worker",
            "unit_code": "990101001001",
            "password": "a long password",
        },
    )
    assert taken.status_code == 409 and "用户名已被占用" in taken.get_data(as_text=True)
    higher = c.post(
        "/console/admin/users",
        data={
            "username": "boss",
            "display_name": "区长",
            "role": "district_admin",
            "unit_code": "990101",
            "password": "a long password",
        },
    )
    assert higher.status_code == 403


def test_a_grid_outside_scope_is_refused(world, console):
    c = console(world.head)
    assert (
        c.post(
            f"/console/admin/users/{world.worker.id}/grids", data={"grids": [OTHER_GRID]}
        ).status_code
        == 403
    )  # heads are not admins
    street = console(world.street)
    response = street.post(
        f"/console/admin/users/{world.worker.id}/grids", data={"grids": [OTHER_GRID]}
    )
    assert response.status_code == 422  # a grid of another community: not the user's unit


def test_revoking_a_lost_device_stops_its_tokens_at_once(app, world, console):
    c = console(world.street)
    device_id = world.dev.device_id
    page = c.get("/console/admin").get_data(as_text=True)
    assert "平板一" in page and "停用设备" in page
    done = c.post(f"/console/admin/devices/{device_id}/revoke", follow_redirects=True)
    assert "其登录凭证立即失效" in done.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Device, device_id).revoked
    response = app.test_client().get("/api/v1/me", headers=world.dev.login.headers)
    assert response.status_code == 401
    assert response.get_json()["code"] == "device_revoked"
    other = console(world.other_head)
    assert other.post(f"/console/admin/devices/{device_id}/revoke").status_code == 403
