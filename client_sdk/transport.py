"""Transports: how a request reaches the server. Swap one for another, or wrap one in a test.

A transport turns one :class:`Request` into one :class:`Response` and raises only
:class:`~client_sdk.errors.NetworkError` or :class:`~client_sdk.errors.SyncTimeout`. It knows
nothing of JSON, tokens or retries (the client does that), so a test can wrap a transport to
lose, duplicate or delay requests without touching the SDK.

- :class:`HTTPTransport` speaks HTTP over the network (httpx).
- :class:`AppTransport` calls a WSGI app (the Linli server) in process, without sockets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from .errors import NetworkError, SyncTimeout

__all__ = ["DEFAULT_TIMEOUT", "AppTransport", "HTTPTransport", "Request", "Response", "Transport"]

DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request: ``path`` is relative to the server's base URL."""

    method: str
    path: str
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Response:
    """One HTTP response. ``content`` is decoded (gzip removed); ``wire_bytes`` as received."""

    status: int
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)
    wire_bytes: int = 0


class Transport(Protocol):
    """What the client needs from a transport.

    Optional: ``concurrent = True`` lets the SDK carry a request while it works on (on a thread
    of its own, see ``Api.start``), and a ``send_ahead(request)`` method returning a function
    that gives the response then carries such a request the transport's own way (a test transport
    that decides when each request reaches the server).
    """

    def handle(self, request: Request) -> Response: ...

    def close(self) -> None: ...


class HTTPTransport:
    """HTTP through httpx, with a finite timeout (seconds) for every phase of a request.

    ``http_transport`` replaces httpx's own (e.g. ``httpx.MockTransport`` in a test).
    ``concurrent``: a request may be carried on another thread while the SDK saves the answer
    before it (the next pull page is asked for while one is saved).
    """

    concurrent = True

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        verify: bool = True,
        http_transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url, timeout=timeout, verify=verify, transport=http_transport
        )

    def handle(self, request: Request) -> Response:
        try:
            reply = self._http.request(
                request.method, request.path, content=request.content, headers=request.headers
            )
            content = reply.content
        except httpx.TimeoutException as exc:
            raise SyncTimeout(f"the server did not answer in time: {exc}") from exc
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, OSError) as exc:
            raise NetworkError(f"{type(exc).__name__}: {exc}") from exc
        return Response(
            reply.status_code,
            content,
            {k.lower(): v for k, v in reply.headers.items()},
            reply.num_bytes_downloaded,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HTTPTransport:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AppTransport(HTTPTransport):
    """Calls a WSGI ``app`` in this process (``httpx.WSGITransport``): tests and demos.

    Request bodies reach the app exactly as sent, gzip included: the server decodes them. One
    request at a time, in the caller's thread, so that an in-process run stays reproducible.
    """

    concurrent = False

    def __init__(self, app: Any, *, base_url: str = "http://linli.local") -> None:
        super().__init__(base_url, http_transport=httpx.WSGITransport(app=app))

    def handle(self, request: Request) -> Response:
        try:
            return super().handle(request)
        except (NetworkError, SyncTimeout):
            raise
        except Exception as exc:  # an app in testing mode re-raises: that is an HTTP 500
            body = json.dumps({"code": "internal", "message": repr(exc)[:500], "details": {}})
            return Response(500, body.encode(), {"content-type": "application/json"})
