"""Push batches sent ahead of the answer to the one before (protocol 4), end to end in the chaos
world: a batch that overtakes the one it follows is answered ``not_yet`` and sent again after
it, and nothing is lost, applied twice or applied out of order."""

from __future__ import annotations

import pytest

from linli.chaos import World, request_body

from .conftest import play


@pytest.mark.parametrize("rounds", [1, 2, 3])
def test_a_batch_that_overtakes_the_one_it_follows_is_sent_again_after_it(
    world: World, rounds: int
) -> None:
    # Rounds of three new visits, then a note and an edit on each (batches of three: each
    # batch of notes or edits follows the batch that made its records, which it overtakes).
    for _ in range(rounds):
        creates = [("create", 0, "visit", 0, n) for n in range(3)]
        notes = [("note", 0, -n, n - 1) for n in (1, 2, 3)]  # the newest visits
        edits = [("update", 0, -n, 0, n - 1) for n in (1, 2, 3)]
        play(world, *creates, *notes, *edits)
    assert world.devices[0].client.pending_count() == 9 * rounds
    play(world, ("sync", 0, "overtake", 0))
    assert world.stats["fault.overtake"] == 1
    assert world.stats["push.rejected.not_yet"] >= 3
    assert world.devices[0].client.pending_count() == 0
    assert world.devices[0].client.rejected() == []  # no edit reached a record before it
    world.heal_and_check()


def test_a_batch_left_on_the_way_arrives_later_as_a_replay(world: World) -> None:
    """The app dies while a batch is on its way behind another: that request still reaches
    the server later, and is applied; the restarted app sends the same operations again, and
    they are answered as replays."""
    play(world, *[("create", 0, "visit", 0, n % 3) for n in range(8)])
    play(world, ("sync", 0, "kill_after", 1))
    assert world.stats["fault.kill_after"] == 1
    [on_the_way] = world.held  # the batch sent behind the one answered as the app died
    assert "after" in request_body(on_the_way)
    applied = world.stats["push.applied."]
    play(world, ("deliver_held", 0))
    # Applied on arrival: the batch it follows was on the server (answered as the app died).
    assert world.stats["push.applied."] == applied + 3
    play(world, ("sync", 0, "none", 0))
    assert world.devices[0].client.pending_count() == 0
    world.heal_and_check()
