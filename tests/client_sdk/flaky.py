"""An HTTP transport that fails chosen requests to one endpoint, once each, in chosen ways."""

from __future__ import annotations

import gzip
import threading

from client_sdk import HTTPTransport, NetworkError, Response
from client_sdk.transport import Request


class Flaky:
    """HTTP to ``base_url``; the n-th request to a path ending in ``endpoint`` fails as
    ``fail[n]`` says: ``lost`` (before the server), ``answer_lost`` (after it: applied, the
    answer never arrives), ``5xx``, ``expired`` (a 401 ``token_expired`` answer), or is
    ``late``: it reaches the server only once the request after it has been answered. Records
    the threads that carried requests, how many were sent ahead (``after``) and how many
    results were ``not_yet``."""

    concurrent = True

    def __init__(self, base_url: str, endpoint: str, fail: dict[int, str]) -> None:
        self.inner = HTTPTransport(base_url, timeout=10)
        self.endpoint, self.fail = endpoint, fail
        self.count, self.threads = 0, set()
        self.not_yet = 0
        self.ahead = 0  # pushes sent ahead of the one before (protocol 4's ``after``)
        self.unmatched = 0  # ``late`` requests whose next request never came
        self._answered: dict[int, threading.Event] = {}
        self._lock = threading.Lock()

    def _event(self, number: int) -> threading.Event:
        with self._lock:
            return self._answered.setdefault(number, threading.Event())

    def handle(self, request: Request) -> Response:
        self.threads.add(threading.current_thread().name)
        if request.path.endswith(self.endpoint):
            body = request.content
            if request.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            with self._lock:
                self.ahead += b'"after":' in body
                self.count += 1
                number = self.count
                how = self.fail.pop(number, None)
            try:
                return self._fail(request, how, number)
            finally:
                self._event(number).set()
        return self.inner.handle(request)

    def _fail(self, request: Request, how: str | None, number: int) -> Response:
        if how == "late" and not self._event(number + 1).wait(timeout=10):
            self.unmatched += 1  # the next request never came (a failure here would be retried)
        response = self._failed(request, how)
        self.not_yet += response.content.count(b'"not_yet"')
        return response

    def _failed(self, request: Request, how: str | None) -> Response:
        if how == "lost":
            raise NetworkError("connection reset before the server (test)")
        if how == "answer_lost":
            self.inner.handle(request)
            raise NetworkError("connection reset after the server (test)")
        if how == "5xx":
            return Response(503, b'{"code":"busy","message":"busy"}', {})
        if how == "expired":
            return Response(401, b'{"code":"token_expired","message":"expired"}', {})
        return self.inner.handle(request)

    def close(self) -> None:
        self.inner.close()
