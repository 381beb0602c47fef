"""Linli client SDK: what a field app embeds to work offline and sync with the server.

    >>> from client_sdk import Client
    >>> with Client(db_path="tablet.sqlite3", base_url="https://linli.example.gov") as c:
    ...     c.login("worker1", "password")
    ...     c.create_household(grid_code="990101001001001", address="幸福里 3 栋 301")
    ...     c.sync()

Depends on ``sync/`` (the protocol rules), ``fixtures/`` (code tables) and sqlite-utils / httpx;
never on ``server/``. See :mod:`client_sdk.errors` for the exception tree.
"""

from .client import Client, Conflict
from .errors import (
    AuthError,
    ClientError,
    DeviceRevoked,
    IllegalTransition,
    InvalidCredentials,
    NetworkError,
    ProtocolError,
    RateLimited,
    RecordNotFound,
    RequestRejected,
    ServerError,
    StorageError,
    SyncInProgress,
    SyncTimeout,
    TransportError,
    ValidationError,
    WrongKey,
)
from .syncpass import SyncReport
from .transport import AppTransport, HTTPTransport, Request, Response, Transport

__all__ = [
    "AppTransport",
    "AuthError",
    "Client",
    "ClientError",
    "Conflict",
    "DeviceRevoked",
    "HTTPTransport",
    "IllegalTransition",
    "InvalidCredentials",
    "NetworkError",
    "ProtocolError",
    "RateLimited",
    "RecordNotFound",
    "Request",
    "RequestRejected",
    "Response",
    "ServerError",
    "StorageError",
    "SyncInProgress",
    "SyncReport",
    "SyncTimeout",
    "Transport",
    "TransportError",
    "ValidationError",
    "WrongKey",
]
