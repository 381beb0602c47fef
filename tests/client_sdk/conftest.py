"""Fixtures for the client SDK tests: devices on real SQLite files, the real app in process.

make_device(user=None, name="d1", **options) -> Client   a device (logged in when ``user``)
clock                                                   a settable fake physical clock (ms)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from client_sdk import AppTransport, Client, Transport
from sync.validators import id_number_check_digit

GRID_1 = "990101001001001"
GRID_2 = "990101001001002"


def id_number(birth: str = "19800101", seq: str = "123") -> str:
    first17 = f"990101{birth}{seq}"
    return first17 + id_number_check_digit(first17)


class FakeClock:
    """A device's physical clock in milliseconds; tests move it."""

    def __init__(self, start: int = 1_780_000_000_000) -> None:
        self.ms = start

    def __call__(self) -> int:
        self.ms += 1
        return self.ms


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def offline_device(tmp_path: Any) -> Iterator[Callable[..., Client]]:
    """Devices with no server at all (unit tests of the store and the field API)."""
    made: list[Client] = []
    names = itertools.count(1)

    def make(name: str | None = None, **options: Any) -> Client:
        path = tmp_path / f"{name or f'dev{next(names)}'}.sqlite3"
        client = Client(db_path=path, sleep=lambda s: None, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def make_device(app: Flask, tmp_path: Any) -> Iterator[Callable[..., Client]]:
    """Devices talking to the real app in process; logged in as ``user`` when given."""
    made: list[Client] = []
    names = itertools.count(1)

    def make(
        user: Any = None,
        name: str | None = None,
        transport: Callable[[Transport], Transport] | None = None,
        **options: Any,
    ) -> Client:
        path = tmp_path / f"{name or f'dev{next(names)}'}.sqlite3"
        inner: Transport = AppTransport(app)
        client = Client(
            db_path=path,
            transport=transport(inner) if transport else inner,
            sleep=lambda s: None,
            **options,
        )
        made.append(client)
        if user is not None:
            client.login(user.username, user.password)
        return client

    yield make
    for client in made:
        client.close()
