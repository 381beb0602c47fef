"""The server's exception tree and its one JSON error shape.

Every failure the API returns has the body ``{"code": str, "message": str, "details": dict}``::

    APIError (500, "internal")
    ├── BadRequest (400, "bad_request")
    ├── Unauthorized (401, "unauthorized")      e.g. code "token_expired", "device_revoked"
    ├── Forbidden (403, "forbidden")
    ├── NotFound (404, "not_found")
    ├── Conflict (409, "conflict")
    ├── PayloadTooLarge (413, "payload_too_large")
    ├── ValidationFailed (422, "validation_failed")
    └── RateLimited (429, "rate_limited")       carries Retry-After

Werkzeug's HTTP errors, flask-smorest/webargs validation errors (422) and unexpected exceptions
(500, logged) are rendered in the same shape.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import marshmallow as ma
from flask import Flask, current_app
from flask_smorest import Api
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException, MethodNotAllowed


class APIError(Exception):
    """Root of the errors an API call can answer with."""

    status: ClassVar[int] = 500
    default_code: ClassVar[str] = "internal"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details or {}
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class BadRequest(APIError):
    status, default_code = 400, "bad_request"


class Unauthorized(APIError):
    status, default_code = 401, "unauthorized"


class Forbidden(APIError):
    status, default_code = 403, "forbidden"


class NotFound(APIError):
    status, default_code = 404, "not_found"


class Conflict(APIError):
    status, default_code = 409, "conflict"


class PayloadTooLarge(APIError):
    status, default_code = 413, "payload_too_large"


class ValidationFailed(APIError):
    status, default_code = 422, "validation_failed"


class RateLimited(APIError):
    status, default_code = 429, "rate_limited"

    def __init__(self, message: str, *, retry_after: int, **kwargs: Any) -> None:
        kwargs.setdefault("details", {"retry_after": retry_after})
        kwargs.setdefault("headers", {"Retry-After": str(retry_after)})
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ErrorSchema(ma.Schema):
    """The error body, for the OpenAPI document."""

    code = ma.fields.String(required=True)
    message = ma.fields.String(required=True)
    details = ma.fields.Dict()


_CODES_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
}


def _http_error_body(error: HTTPException) -> tuple[dict[str, Any], int, dict[str, str]]:
    status = error.code or 500
    code = _CODES_BY_STATUS.get(status) or re.sub(r"\W+", "_", (error.name or "error").lower())
    message = error.description or error.name or "Error"
    details: dict[str, Any] = {}
    headers: dict[str, str] = {}
    data = getattr(error, "data", None) or {}  # set by webargs/flask-smorest abort()
    messages = data.get("errors") or data.get("messages")
    if messages:
        details["errors"] = messages
        message = "The request body or parameters are not valid."
        if messages == {"json": ["Invalid JSON body."]}:
            code, message = "malformed_json", "The request body is not valid JSON."
    if "message" in data:
        message = data["message"]
    headers.update(data.get("headers") or {})
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        headers["Allow"] = ", ".join(error.valid_methods)
    return {"code": code, "message": message, "details": details}, status, headers


class JSONErrorApi(Api):
    """flask-smorest's Api, rendering HTTP errors in Linli's error shape."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException):  # type: ignore[override]
        return _http_error_body(error)


def _handle_api_error(error: APIError):
    return error.to_dict(), error.status, error.headers


def _handle_unexpected(error: Exception):
    if isinstance(error, HTTPException):
        return _http_error_body(error)
    if isinstance(error, RecursionError) and "decoding a JSON" in str(error):
        # json.loads gives up on a body nested ~1000 deep with RecursionError, not ValueError.
        message = "The JSON body is nested too deeply."
        return {"code": "malformed_json", "message": message, "details": {}}, 400
    if isinstance(error, UnicodeEncodeError) and error.reason == "surrogates not allowed":
        # JSON may spell a lone surrogate ("\ud800"); no text column or UTF-8 encoder takes it.
        message = "The request contains text that is not valid Unicode (a lone surrogate)."
        return {"code": "invalid_text", "message": message, "details": {}}, 400
    if isinstance(error, DataError) and "NUL (0x00)" in str(error.orig):
        # PostgreSQL text columns refuse "\u0000", which JSON and SQLite accept.
        message = "The request contains text with a NUL character."
        return {"code": "invalid_text", "message": message, "details": {}}, 400
    if isinstance(error, OperationalError) and "database is locked" in str(error.orig):
        # SQLite's busy timeout ran out: transient, and every write is idempotent to retry.
        current_app.logger.warning("SQLite busy timeout exceeded: %s", error.orig)
        body = {"code": "busy", "message": "The server is busy; retry shortly.", "details": {}}
        return body, 503, {"Retry-After": "1"}
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        # The database connection died under the request (a restarted server): the pool has
        # been emptied, the transaction was never committed, and a retry finds a fresh one.
        current_app.logger.warning("database connection lost: %s", error.orig)
        body = {"code": "busy", "message": "The server is busy; retry shortly.", "details": {}}
        return body, 503, {"Retry-After": "1"}
    current_app.logger.exception("unhandled exception", exc_info=error)
    body = {"code": "internal", "message": "Internal server error.", "details": {}}
    return body, 500


def register_error_handlers(app: Flask) -> None:
    """Install the handlers; call after ``api.init_app`` (which handles HTTPException)."""
    app.register_error_handler(APIError, _handle_api_error)
    app.register_error_handler(Exception, _handle_unexpected)


__all__ = [
    "APIError",
    "BadRequest",
    "Conflict",
    "ErrorSchema",
    "Forbidden",
    "JSONErrorApi",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "Unauthorized",
    "ValidationFailed",
    "register_error_handlers",
]
