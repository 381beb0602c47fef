"""Calling the server: JSON in and out, gzip, bearer tokens, retries, and errors mapped.

One method, :meth:`Api.call`, does a POST and returns the decoded JSON body, or raises a
:class:`~client_sdk.errors.ClientError`. Network errors, timeouts and 5xx answers are retried
with bounded exponential backoff (every sync request is idempotent: pushes carry keys, pulls
carry cursors). An expired access token is refreshed once and the request sent again.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from .errors import (
    AuthError,
    ClientError,
    DeviceRevoked,
    InvalidCredentials,
    NetworkError,
    ProtocolError,
    RateLimited,
    RequestRejected,
    ServerError,
    SyncTimeout,
    ValidationError,
)
from .store import Store, read_json
from .transport import Request, Response, Transport

__all__ = ["Api", "Counters"]

GZIP_MIN_BYTES = 4096


@dataclass(slots=True)
class Counters:
    """What went over the wire."""

    requests: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0


class Prepared(NamedTuple):
    """A request built ahead of sending it (:meth:`Api.prepare`), with what it was built of."""

    path: str
    body: Any
    request: Request


class Api:
    """The server as the SDK sees it. Tokens live in the store's meta table."""

    def __init__(
        self,
        transport: Transport,
        store: Store,
        *,
        max_attempts: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        gzip_requests: bool = True,
    ) -> None:
        self.transport = transport
        self.store = store
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sleep = sleep
        self.gzip_requests = gzip_requests
        self.counters = Counters()
        #: The transport may carry a request while the caller works on (see :meth:`start`).
        self.concurrent = bool(getattr(transport, "concurrent", False))
        #: True when the last answer was read by orjson: its numbers are then all finite and
        #: within 64 bits and its text valid Unicode, so orjson writes back the same values.
        self.plain_answer = False
        #: Sent with every request (the sync pass puts the negotiated versions here).
        self.headers: dict[str, str] = {}

    def call(self, path: str, body: Any, *, auth: bool = True, retry: bool = True) -> Any:
        """POST ``body`` as JSON to ``path``; return the decoded answer.

        ``body`` is a JSON value, or ``bytes`` that are already its compact UTF-8 JSON (sent as
        they are).
        """
        refreshed = False
        while True:
            try:
                return self._with_retries(path, body, auth=auth, retry=retry)
            except AuthError as exc:
                if not auth or refreshed or exc.code != "token_expired":
                    raise
                self.refresh()
                refreshed = True

    def refresh(self) -> None:
        """Exchange the refresh token for a new pair (never retried: a replay would be reuse)."""
        tokens = self.store.get("tokens")
        if not tokens:
            raise AuthError("not signed in on this device; log in online first", code="no_session")
        answer = self._with_retries(
            "/api/v1/auth/refresh", {"refresh_token": tokens["refresh"]}, auth=False, retry=False
        )
        self.store.set(tokens=_tokens(answer))

    def _with_retries(self, path: str, body: Any, *, auth: bool, retry: bool) -> Any:
        attempts = self.max_attempts if retry else 1
        for attempt in range(1, attempts + 1):
            try:
                return self._once(path, body, auth=auth)
            except (NetworkError, SyncTimeout, ServerError):
                if attempt == attempts:
                    raise
                self.sleep(min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))
        raise AssertionError("unreachable")

    def prepare(self, path: str, body: Any) -> Prepared:
        """Build a request for :meth:`start` now (encoding and compressing it), to send later."""
        return Prepared(path, body, self._request(path, body, auth=True, count=False))

    def start(self, path: str | Prepared, body: Any = None) -> Callable[[], Any]:
        """Send ``body`` to ``path`` (or a request :meth:`prepare` built) now, on a thread of
        its own; return a function that waits for the answer and gives what :meth:`call` would
        have.

        Only for a request that may be sent twice (every sync request may: pushes carry keys,
        pulls carry cursors): a network error, a timeout, a 5xx or an authentication answer is
        asked again with :meth:`call`, which retries, refreshes and raises as always; any other
        answer is given or raised as :meth:`call` gives or raises it. Everything that touches
        the device's store (the token) happens here and in the returned function, in the
        caller's thread; the other thread only carries the request (a store is not shared
        between threads).

        A transport with a ``send_ahead(request)`` method carries the request its own way: that
        method returns a function giving the response (or raising), called once, in the
        caller's thread, when the answer is wanted. Any exception from carrying the request
        other than a network error or a timeout (the process stopping, a broken transport) is
        raised as it is, as :meth:`call` raises it: never asked again.
        """
        prepared = path if isinstance(path, Prepared) else self.prepare(path, body)
        path, body, request = prepared
        self._authorize(request.headers)  # the token now, not when it was built
        self._count(request)
        carry = getattr(self.transport, "send_ahead", None)
        receive = carry(request) if carry is not None else _on_a_thread(self.transport, request)

        def answer() -> Any:
            try:
                response: Any = receive()
            except (NetworkError, SyncTimeout) as exc:  # asked again below, as call() would
                response = exc
            # Anything else (a stopping process, a broken transport) is raised as it is, as
            # call() raises it: never sent again.
            if isinstance(response, Response):
                try:
                    return self._answer(path, response)
                except (ServerError, AuthError):
                    pass  # what call() retries, or refreshes the token for
            return self.call(path, body)

        return answer

    def _once(self, path: str, body: Any, *, auth: bool) -> Any:
        response = self.transport.handle(self._request(path, body, auth=auth))
        return self._answer(path, response)

    def _request(self, path: str, body: Any, *, auth: bool, count: bool = True) -> Request:
        if isinstance(body, bytes):
            content = body
        else:
            content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Accept-Encoding": "gzip",
            **self.headers,
        }
        if self.gzip_requests and len(content) >= GZIP_MIN_BYTES:
            content = gzip.compress(content, compresslevel=6)
            headers["Content-Encoding"] = "gzip"
        if auth:
            self._authorize(headers)
        request = Request("POST", path, content, headers)
        if count:
            self._count(request)
        return request

    def _authorize(self, headers: dict[str, str]) -> None:
        tokens = self.store.get("tokens")
        if not tokens:
            raise AuthError("not signed in on this device; log in first", code="no_session")
        headers["Authorization"] = f"Bearer {tokens['access']}"

    def _count(self, request: Request) -> None:
        self.counters.requests += 1
        self.counters.bytes_sent += len(request.content)

    def _answer(self, path: str, response: Response) -> Any:
        self.counters.bytes_received += response.wire_bytes or len(response.content)
        if 200 <= response.status < 300:
            value, self.plain_answer = _read(response, path)
            return value
        raise _error(response, path)


def _tokens(answer: Any) -> dict[str, str]:
    try:
        return {"access": str(answer["access_token"]), "refresh": str(answer["refresh_token"])}
    except (KeyError, TypeError):
        raise ProtocolError("the token answer has no access_token / refresh_token") from None


def _decode(response: Response, path: str) -> Any:
    """The answer's JSON value, exactly as ``json.loads`` reads it."""
    return _read(response, path)[0]


def _read(response: Response, path: str) -> tuple[Any, bool]:
    """The answer's JSON value, exactly as ``json.loads`` reads it, and whether orjson read it
    (:func:`read_json`)."""
    try:
        return read_json(response.content)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError(f"{path}: the answer is not JSON") from None


def _error(response: Response, path: str) -> ClientError:
    """The SDK error for an HTTP error answer ``{code, message, details}``."""
    status = response.status
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        body = {}
    code = str(body.get("code") or f"http_{status}")
    message = str(body.get("message") or f"{path}: HTTP {status}")
    details = body.get("details") if isinstance(body.get("details"), dict) else {}
    if status >= 500:
        return ServerError(message, code=code, status=status, path=path)
    if code == "device_revoked":
        return DeviceRevoked(
            "this device has been revoked; sign in again on a registered device "
            "(unsynced changes are kept)",
            path=path,
        )
    if code == "invalid_credentials":
        return InvalidCredentials(message)
    if status == 429:
        return RateLimited(message, code=code, retry_after=response.headers.get("retry-after"))
    if status in (401, 403):
        return AuthError(message, code=code, status=status, path=path)
    if status == 426 or code == "protocol_unsupported":
        return ProtocolError(message, code=code, **details)
    if status == 422 and isinstance(details.get("errors"), dict):
        return ValidationError(message, {str(k): str(v) for k, v in details["errors"].items()})
    return RequestRejected(message, code=code, status=status, path=path, details=details)


def _on_a_thread(transport: Transport, request: Request) -> Callable[[], Response]:
    """Send ``request`` now on a thread of its own; return a function that waits for the
    response and gives it (or raises what sending it raised)."""
    outcome: list[Response | BaseException] = []

    def send() -> None:
        try:
            outcome.append(transport.handle(request))
        except BaseException as exc:  # handed to the caller's thread
            outcome.append(exc)

    thread = threading.Thread(target=send, name="linli-request", daemon=True)
    thread.start()

    def receive() -> Response:
        thread.join()
        if not outcome:
            raise NetworkError("the request's thread ended without an answer")
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        return outcome[0]

    return receive
