"""Server-test helpers. The app, client, runner, database and factory fixtures are shared by
every test package and live in tests/conftest.py."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.test import TestResponse


def assert_error(response: TestResponse, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert ``response`` is an error in the one JSON error shape; return its body."""
    body = response.get_json()
    assert response.status_code == status, body
    assert isinstance(body, dict) and set(body) == {"code", "message", "details"}, body
    assert isinstance(body["code"], str) and isinstance(body["message"], str)
    assert isinstance(body["details"], dict)
    if code is not None:
        assert body["code"] == code, body
    return body


@pytest.fixture
def error() -> Any:
    """``error(response, status, code=None)`` asserts the JSON error shape."""
    return assert_error
