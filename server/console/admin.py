"""Users and devices for street and district admins, and the access log of their scope.

Writes go through ``server.accounts`` (which checks scope and role, and audits); this module
commits on success and shows refusals in Chinese.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from server import accounts
from server.console import bp
from server.console.auth import admin, current_user
from server.console.forms import FormError, arg_int, text
from server.console.labels import LEVEL_LABELS, ROLE_LABELS, local
from server.console.messages import chinese
from server.errors import Conflict, ValidationFailed
from server.extensions import db
from server.models import AccessLog, AdminUnit, Record, Role, User

LOG_PAGE = 50


def _units() -> list[AdminUnit]:
    return list(
        db.session.execute(
            select(AdminUnit).where(g.scope.filter(AdminUnit.code)).order_by(AdminUnit.code)
        ).scalars()
    )


def _page(error: str | None = None, status: int = 200) -> Any:
    user = current_user()
    units = _units()
    roles = [r for r in Role if r.rank <= Role(user.role).rank]
    return render_template(
        "console/admin.html",
        users=accounts.list_users(g.scope),
        devices=accounts.list_devices(g.scope),
        units=units,
        grids=[u for u in units if u.level == "grid"],
        roles=roles,
        role_labels=ROLE_LABELS,
        level_labels=LEVEL_LABELS,
        local=local,
        error=error,
    ), status


def _act(action: Callable[[], str]) -> Any:
    try:
        message = action()
    except FormError as exc:
        db.session.rollback()
        return _page(str(exc), 422)
    except (ValidationFailed, Conflict) as exc:
        db.session.rollback()
        return _page(chinese(exc), exc.status)
    db.session.commit()
    flash(message, "ok")
    return redirect(url_for("console.admin_page"), code=303)


@bp.get("/admin")
@admin
def admin_page() -> Any:
    return _page()


@bp.post("/admin/users")
@admin
def create_user() -> Any:
    def run() -> str:
        me = current_user()
        role = request.form.get("role", "")
        if role not in ROLE_LABELS:
            raise FormError("请选择角色。")
        user = accounts.create_user(
            me.username,
            username=text("username", required=True, max_len=64, label="用户名"),
            display_name=text("display_name", required=True, max_len=100, label="姓名"),
            role=role,
            unit_code=text("unit_code", required=True, label="所属单位"),
            password=request.form.get("password", ""),
            grids=request.form.getlist("grids"),
            scope=g.scope,
            actor_role=me.role,
        )
        return f"已创建用户 {user.username}。"

    return _act(run)


@bp.post("/admin/users/<int(max=2147483647):user_id>/grids")
@admin
def set_grids(user_id: int) -> Any:
    def run() -> str:
        user = accounts.set_grids(
            current_user().username, user_id, request.form.getlist("grids"), scope=g.scope
        )
        return f"已更新 {user.display_name} 的网格。"

    return _act(run)


@bp.post("/admin/users/<int(max=2147483647):user_id>/password")
@admin
def reset_password(user_id: int) -> Any:
    def run() -> str:
        user = accounts.reset_password(
            current_user().username, user_id, request.form.get("password", ""), scope=g.scope
        )
        return f"已重置 {user.display_name} 的密码。"

    return _act(run)


@bp.post("/admin/devices/<device_id>/revoke")
@admin
def revoke_device(device_id: str) -> Any:
    def run() -> str:
        device = accounts.revoke_device(current_user().username, device_id[:36], scope=g.scope)
        return f"已停用设备“{device.name or device.id[:8]}”，其登录凭证立即失效。"

    return _act(run)


@bp.get("/access-log")
@admin
def access_log() -> Any:
    query = (
        select(AccessLog, User.display_name, User.username, Record.type)
        .join(User, User.id == AccessLog.user_id)
        .join(Record, Record.id == AccessLog.record_id)
        .where(g.scope.filter(Record.grid_code))
        .order_by(AccessLog.at.desc(), AccessLog.id.desc())
    )
    page = arg_int("page", 1)
    entries = db.session.execute(query.limit(LOG_PAGE + 1).offset((page - 1) * LOG_PAGE)).all()
    return render_template(
        "console/access_log.html",
        entries=entries[:LOG_PAGE],
        page=page,
        more=len(entries) > LOG_PAGE,
        local=local,
    )


__all__ = ["access_log", "admin_page"]
