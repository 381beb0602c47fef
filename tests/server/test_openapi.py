"""The OpenAPI document: served, complete, and honest about auth and errors."""

from __future__ import annotations

import re

import pytest


@pytest.fixture
def spec(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_document_header(spec):
    assert spec["openapi"] == "3.0.3"
    assert spec["info"] == {"title": "Linli", "version": "v1"}


def test_every_api_route_is_in_the_document(app, spec):
    """Every rule under /api/v1 of the real app, with each of its methods, is documented."""
    routes = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes += 1
            assert method.lower() in spec["paths"].get(path, {}), f"{method} {path} undocumented"
    assert routes >= 18  # auth, me, admin, sync, records


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
