"""Configuration: defaults in code, overrides from ``LINLI_*`` environment variables, then the
mapping a caller (usually a test) passes to ``create_app``.

Keys are the Flask config keys without the prefix: ``LINLI_DATABASE_URL`` sets ``DATABASE_URL``.
An environment value is converted to the type of the default it replaces (int, float, bool).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from server import jsontext

ENV_PREFIX = "LINLI_"

DEFAULTS: dict[str, Any] = {
    # Where the generated secret and the default database live (None: Flask's instance folder).
    "INSTANCE_PATH": None,
    # Storage. None means "sqlite file linli.sqlite3 in the instance folder".
    "DATABASE_URL": None,
    "SQLITE_BUSY_TIMEOUT_MS": 30000,
    # SQLite: copy the WAL into the database after this many pages (4 KiB each). SQLite's 1,000
    # made every third push of 500 records pay for a checkpoint, and copied the same hot index
    # pages again and again; 10,000 (about 40 MB) cut a pushed record's commit by about a third.
    "SQLITE_WAL_AUTOCHECKPOINT": 10000,
    # PostgreSQL: a pooled connection idle longer than this is tested before use (server.db).
    "DB_IDLE_PING_S": 10.0,
    "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,
    # Secrets. None means "generated once and kept in the instance folder".
    "SECRET_KEY": None,
    "JWT_ISSUER": "linli",
    "JWT_AUDIENCE": "linli-api",
    "ACCESS_TOKEN_TTL_S": 15 * 60,
    "REFRESH_TOKEN_TTL_S": 30 * 24 * 3600,
    # A refresh retried this soon after its rotation, whose new pair was never used, is a lost
    # response, not theft: it gets a fresh pair instead of revoking the family.
    "REFRESH_REUSE_GRACE_S": 60,
    # Login rate limits: failures allowed per window, per account and per client address.
    "RATELIMIT_WINDOW_S": 15 * 60,
    "RATELIMIT_ACCOUNT_FAILURES": 5,
    "RATELIMIT_ADDRESS_FAILURES": 20,
    # A device's last_seen_at is written at most this often.
    "DEVICE_SEEN_INTERVAL_S": 60,
    # Sync: a device clock further ahead than this is refused (it would win every tie).
    "MAX_CLOCK_DRIFT_MS": 5 * 60 * 1000,
    # Deadlines and workflow dates count calendar days where the district is.
    "TIMEZONE": "Asia/Shanghai",
    "SYNC_MAX_BATCH": 500,
    # A push sent ahead of the batch before it (protocol 4) waits at most this long for that
    # batch to be held before it is answered not_yet (docs/protocol.md §5.6).
    "SYNC_AFTER_WAIT_MS": 2000,
    "SYNC_MAX_PAGE": 2000,
    "SYNC_MAX_BODY_BYTES": 64 * 1024 * 1024,
    # flask-smorest / OpenAPI.
    "API_TITLE": "Linli",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api",
    "OPENAPI_JSON_PATH": "openapi.json",
    "API_SPEC_OPTIONS": {
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            }
        },
        "security": [{"bearerAuth": []}],
    },
    # The console's session cookie is Secure unless turned off (plain http: tests, demo).
    "SESSION_COOKIE_SECURE": True,
    "SQLALCHEMY_TRACK_MODIFICATIONS": False,
    # A restarted PostgreSQL: pooled connections idle for a while are tested before use
    # (server.db, cheaper than pool_pre_ping's round trip at every checkout). JSON columns are
    # encoded with orjson (server/jsontext.py).
    "SQLALCHEMY_ENGINE_OPTIONS": {
        "json_serializer": jsontext.dumps,
        "json_deserializer": jsontext.loads,
    },
}

_SECRET_FILE = "secret_key"


def _coerce(raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


def from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """The ``LINLI_*`` variables of ``environ`` as config keys, typed like their defaults."""
    found: dict[str, Any] = {}
    for name, raw in environ.items():
        if name.startswith(ENV_PREFIX) and not name.startswith("LINLI_TEST_"):
            key = name.removeprefix(ENV_PREFIX)
            found[key] = _coerce(raw, DEFAULTS.get(key))
    return found


def persistent_secret(instance_path: str | Path) -> str:
    """The instance folder's generated secret, created (mode 0600) on first use."""
    path = Path(instance_path) / _SECRET_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def build(
    instance_path: str | Path,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The complete config: defaults < environment < overrides, with derived keys filled in."""
    config = dict(DEFAULTS)
    config.update(from_env(os.environ if environ is None else environ))
    config.update(overrides or {})
    if config.get("SQLALCHEMY_DATABASE_URI") and not config.get("DATABASE_URL"):
        config["DATABASE_URL"] = config["SQLALCHEMY_DATABASE_URI"]
    if not config["DATABASE_URL"]:
        config["DATABASE_URL"] = f"sqlite:///{Path(instance_path) / 'linli.sqlite3'}"
    config["SQLALCHEMY_DATABASE_URI"] = config["DATABASE_URL"]
    if not config["SECRET_KEY"]:
        config["SECRET_KEY"] = persistent_secret(instance_path)
    return config
