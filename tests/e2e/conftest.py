"""The chaos world of two devices (worker w1's tablet and worker w2's), for scripted schedules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from linli.chaos import Harness, World


@pytest.fixture
def world() -> Iterator[World]:
    world = World(Harness.shared(), 2)
    try:
        yield world
    finally:
        world.close()


def play(world: World, *steps: tuple) -> None:
    """Play ``steps`` in order, checking the invariants after each."""
    for step in steps:
        world.play(step)
        world.check()
