"""An HTTP transport that fails chosen requests to one endpoint, once each, in chosen ways."""

from __future__ import annotations

import threading

from client_sdk import HTTPTransport, NetworkError, Response
from client_sdk.transport import Request


class Flaky:
    """HTTP to ``base_url``; the n-th request to a path ending in ``endpoint`` fails as
    ``fail[n]`` says: ``lost`` (before the server), ``answer_lost`` (after it: applied, the
    answer never arrives), ``5xx``, ``expired`` (a 401 ``token_expired`` answer). Records the
    threads that carried requests."""

    concurrent = True

    def __init__(self, base_url: str, endpoint: str, fail: dict[int, str]) -> None:
        self.inner = HTTPTransport(base_url, timeout=10)
        self.endpoint, self.fail = endpoint, fail
        self.count, self.threads = 0, set()

    def handle(self, request: Request) -> Response:
        self.threads.add(threading.current_thread().name)
        if request.path.endswith(self.endpoint):
            self.count += 1
            how = self.fail.pop(self.count, None)
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
