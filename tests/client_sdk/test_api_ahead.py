"""``Api.start``: a request carried while the caller works on, by a thread or by the transport's
own ``send_ahead``; a network failure is asked again as ``call`` would, and anything else (a
stopping process, a broken transport) is raised as ``call`` raises it, never asked again."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from client_sdk import NetworkError, Response
from client_sdk.api import Api
from client_sdk.store import Store
from client_sdk.transport import Request


class Stopping(BaseException):
    """The process stops (as a KeyboardInterrupt would)."""


class _Once:
    """Fails the first request as told, answers every later one."""

    concurrent = True

    def __init__(self, first: BaseException) -> None:
        self.first: BaseException | None = first
        self.sent = 0

    def handle(self, request: Request) -> Response:
        self.sent += 1
        if self.first is not None:
            error, self.first = self.first, None
            raise error
        return Response(200, json.dumps({"ok": self.sent}).encode(), {})


class _OwnWay(_Once):
    def send_ahead(self, request: Request) -> Callable[[], Response]:
        return lambda: self.handle(request)


@pytest.fixture
def store():
    store = Store(":memory:")
    store.set(tokens={"access": "a", "refresh": "r"})
    try:
        yield store
    finally:
        store.close()


@pytest.mark.parametrize("transport", [_Once, _OwnWay])
def test_a_failed_request_is_asked_again(store, transport):
    carrier = transport(NetworkError("reset"))
    api = Api(carrier, store, sleep=lambda s: None)
    assert api.start("/api/v1/sync/pull", {"cursor": 0})() == {"ok": 2}
    assert carrier.sent == 2


@pytest.mark.parametrize("transport", [_Once, _OwnWay])
def test_a_stopping_process_is_never_asked_again(store, transport):
    carrier = transport(Stopping())
    api = Api(carrier, store, sleep=lambda s: None)
    answer = api.start("/api/v1/sync/pull", {"cursor": 0})
    with pytest.raises(Stopping):
        answer()
    assert carrier.sent == 1


@pytest.mark.parametrize("transport", [_Once, _OwnWay])
def test_a_broken_transport_is_raised_as_call_raises_it(store, transport):
    """An error that is not the network's is raised at once, not hidden by a second try."""
    carrier = transport(ValueError("a bug in the transport"))
    api = Api(carrier, store, sleep=lambda s: None)
    answer = api.start("/api/v1/sync/pull", {"cursor": 0})
    with pytest.raises(ValueError, match="a bug in the transport"):
        answer()
    assert carrier.sent == 1
    carrier.first = ValueError("a bug in the transport")
    with pytest.raises(ValueError):  # what call() does with the same error
        api.call("/api/v1/sync/pull", {"cursor": 0})
    assert carrier.sent == 2
