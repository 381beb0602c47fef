"""Console error pages: the same status codes as the API, as Chinese HTML pages."""

from __future__ import annotations

from typing import Any

from flask import current_app, render_template
from werkzeug.exceptions import HTTPException

from server.console import bp
from server.console.auth import current_user
from server.console.messages import FORBIDDEN, NOT_FOUND, chinese
from server.errors import APIError
from server.extensions import db
from server.models import Role

_TEXT = {
    400: "请求无效。如果您刚刚提交了表单，请刷新页面后重试。",
    403: FORBIDDEN,
    404: NOT_FOUND,
    405: "不支持此请求方式。",
    413: "提交的内容过大。",
}


def _page(status: int, message: str) -> Any:
    user = current_user()
    if status == 403 and user is not None and user.role == Role.GRID_WORKER:
        return render_template("console/field_only.html"), 403
    return render_template("console/error.html", status=status, message=message), status


@bp.errorhandler(APIError)
def _api_error(error: APIError) -> Any:
    db.session.rollback()
    return _page(error.status, chinese(error))


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Any:
    status = error.code or 500
    return _page(status, _TEXT.get(status, "请求未能完成。"))


@bp.errorhandler(Exception)
def _unexpected(error: Exception) -> Any:
    current_app.logger.exception("console: unhandled exception", exc_info=error)
    db.session.rollback()
    return render_template(
        "console/error.html", status=500, message="系统出现错误，请稍后再试。"
    ), 500


__all__: list[str] = []
