"""The OpenAPI document: served, complete, and honest about auth and errors."""

from __future__ import annotations

import pytest


@pytest.fixture
def spec(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_document_header(spec):
    assert spec["openapi"] == "3.0.3"
    assert spec["info"] == {"title": "Linli", "version": "v1"}


def test_paths_are_documented(spec):
    expected = {
        "/api/v1/auth/login": "post",
        "/api/v1/auth/refresh": "post",
        "/api/v1/auth/logout": "post",
        "/api/v1/me": "get",
        "/api/v1/admin/users": "post",
        "/api/v1/admin/users/{user_id}/password": "post",
        "/api/v1/admin/users/{user_id}/grids": "put",
        "/api/v1/admin/devices": "get",
        "/api/v1/admin/devices/{device_id}/revoke": "post",
    }
    for path, method in expected.items():
        assert method in spec["paths"].get(path, {}), path


def test_bearer_security_is_declared(spec):
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert spec["security"] == [{"bearerAuth": []}]
    assert spec["paths"]["/api/v1/auth/login"]["post"]["security"] == []
    assert "security" not in spec["paths"]["/api/v1/me"]["get"]  # inherits the global one


def test_error_schema_is_the_one_shape(spec):
    error = spec["components"]["schemas"]["Error"]
    assert set(error["properties"]) == {"code", "message", "details"}
    login = spec["paths"]["/api/v1/auth/login"]["post"]["responses"]
    for status in ("422", "default"):
        name = login[status]["$ref"].rsplit("/", 1)[-1]
        response = spec["components"]["responses"][name]
        schema = response["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Error"}
