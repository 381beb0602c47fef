"""The exception tree of the client SDK. Nothing lower-level (httpx, sqlite3, json) escapes it.

ClientError                    root: every error the SDK raises
├── TransportError             the request did not complete
│   ├── NetworkError           connection refused, reset, DNS, a broken response
│   └── SyncTimeout            the server did not answer in time
├── ServerError                the server answered 5xx (after the retries)
├── ProtocolError              the answer is not what the Linli Sync Protocol says (bad JSON,
│                              wrong shape, an incompatible protocol version: ``code``)
├── AuthError                  not signed in, or the server refused the tokens (401/403)
│   ├── InvalidCredentials     wrong username or password (online or offline unlock)
│   ├── DeviceRevoked          this device was revoked: sign in again; the outbox is kept
│   └── RateLimited            too many attempts; wait and retry
├── RequestRejected            any other 4xx: ``status``, ``code``, ``details``
├── ValidationError            input refused before anything was written: ``errors`` per field
├── IllegalTransition          a dispute workflow move the rules refuse: ``reason_code``
├── RecordNotFound             no such record on this device
├── SyncInProgress             another sync pass holds the lock (this or another process)
└── StorageError               the local database failed (disk full, corrupt, locked)
    └── WrongKey               wrong encryption key, no key for an encrypted file, or not a
                               Linli database at all
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthError",
    "ClientError",
    "DeviceRevoked",
    "IllegalTransition",
    "InvalidCredentials",
    "NetworkError",
    "ProtocolError",
    "RateLimited",
    "RecordNotFound",
    "RequestRejected",
    "ServerError",
    "StorageError",
    "SyncInProgress",
    "SyncTimeout",
    "TransportError",
    "ValidationError",
    "WrongKey",
]


class ClientError(Exception):
    """Root of the SDK's errors. ``code`` is a stable machine-readable name."""

    code = "client_error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class TransportError(ClientError):
    code = "transport"


class NetworkError(TransportError):
    code = "network"


class SyncTimeout(TransportError):
    code = "timeout"


class ServerError(ClientError):
    code = "server_error"


class ProtocolError(ClientError):
    code = "protocol"


class AuthError(ClientError):
    code = "unauthorized"


class InvalidCredentials(AuthError):
    code = "invalid_credentials"


class DeviceRevoked(AuthError):
    code = "device_revoked"


class RateLimited(AuthError):
    code = "rate_limited"


class RequestRejected(ClientError):
    code = "rejected"


class ValidationError(ClientError):
    """Input refused before anything was written; ``errors`` maps a field to its message."""

    code = "validation_failed"

    def __init__(self, message: str, errors: dict[str, str]) -> None:
        super().__init__(message, errors=errors)
        self.errors = errors


class IllegalTransition(ClientError):
    code = "illegal_transition"


class RecordNotFound(ClientError):
    code = "not_found"


class SyncInProgress(ClientError):
    code = "sync_in_progress"


class StorageError(ClientError):
    code = "storage"


class WrongKey(StorageError):
    """The database cannot be read with this key (or without one): nothing was changed."""

    code = "wrong_key"
