"""A tablet set up again under its device id that records offline before the worker signs in,
end to end in the chaos world.

The store's first sign-in numbers that work above what the server holds of the device id,
each operation with the number it was made with (``made_seq``, protocol §3). A copy of the
store taken before that sign-in numbers the same work differently at its own first sign-in:
the server finds each such operation's twin and answers it as its replay, so nothing is
applied twice, nothing is refused, and nothing is lost.
"""

from __future__ import annotations

import pytest

from linli.chaos import World

from .conftest import play

SET_UP_OFFLINE = ("wipe", 0, 0)  # worker w1's tablet, wiped and enrolled again; not signed in
SYNC_W1 = ("sync", 0, "none", 0)


def test_work_recorded_before_the_first_sign_in_is_numbered_above_the_servers(
    world: World,
) -> None:
    play(world, ("update", 0, 0, 0, 1), SYNC_W1)  # the old store pushes under the id
    play(world, SET_UP_OFFLINE, ("burst", 0, 2), ("update", 0, -1, 0, 2))
    device = world.devices[0]
    assert not device.signed and device.client.pending_count() == 5
    [(top,)] = world.server_db.execute(
        "SELECT MAX(seq) FROM sync_op WHERE device_id = ?", [device.device_id]
    )
    play(world, SYNC_W1)  # signs in first: the five are numbered above the old store's work
    assert world.stats["sign_in.renumbered"] == 1
    held = sorted(
        (a.op["seq"], a.op["made_seq"]) for a in world.model.final.values() if "made_seq" in a.op
    )
    assert held == [(top + n, n) for n in range(1, 6)]
    assert world.stats["push.applied."] == 6
    assert device.client.rejected() == [] and device.client.pending_count() == 0
    world.heal_and_check()


@pytest.mark.parametrize("visits", [1, 3])
def test_a_copy_taken_before_the_first_sign_in_is_answered_as_the_replay_it_is(
    world: World, visits: int
) -> None:
    play(world, ("update", 0, 0, 0, 1), SYNC_W1)
    play(world, SET_UP_OFFLINE, ("burst", 0, visits), ("backup", 0), SYNC_W1)
    made = 2 * visits
    assert world.stats["push.applied."] == 1 + made
    # The original records more, then the tablet is put back to the copy, which signs in and
    # numbers the same work above everything the server holds now: other numbers, same work.
    play(world, ("create", 0, "visit", 0, 0), SYNC_W1, ("restore", 0))
    assert not world.devices[0].signed
    play(world, SYNC_W1)
    twins = list(world.model.twins.values())
    assert len(twins) == made
    assert world.stats["push.duplicate.applied"] == made
    for twin in twins:
        original = world.model.final[twin.twin_of]
        assert twin.op["seq"] != original.op["seq"]
        assert twin.op["made_seq"] == original.op["made_seq"]
    device = world.devices[0]
    assert device.client.rejected() == [] and device.client.pending_count() == 0
    world.heal_and_check()  # nothing applied twice: one note a visit, replays answered alike


def test_a_copy_that_signs_in_before_the_original_pushed_takes_the_same_numbers(
    world: World,
) -> None:
    # The original signs in, and the app dies before its push is sent; the copy hears the same
    # last_seq and numbers the work the same: its push is the first the server gets of those
    # keys.
    play(world, SET_UP_OFFLINE, ("burst", 0, 1), ("backup", 0), ("sync", 0, "kill", 1))
    assert world.stats["sync.killed"] == 1 and world.stats["push.applied."] == 0
    play(world, ("restore", 0), SYNC_W1)
    assert world.stats["push.applied."] == 2 and world.stats["push.duplicate.applied"] == 0
    assert not world.model.twins
    world.heal_and_check()


@pytest.mark.parametrize("sign_in", [1, 0], ids=["signed in at once", "offline first"])
def test_the_number_a_twin_was_sent_under_is_free_for_the_next_store(
    world: World, sign_in: int
) -> None:
    """The server holds a twin's work under its twin's key, never under the copy's number:
    a store set up after it numbers its own work from that number, and it is applied."""
    play(world, ("enrol_offline", 0, 1), SYNC_W1, ("restore", 0), SYNC_W1)
    [twin_key] = [k for k, a in world.model.twins.items() if a.op["kind"] == "create"]
    play(world, ("wipe", 0, sign_in), ("create", 0, "visit", 0, 1), SYNC_W1)
    assert world.model.final[twin_key].outcome == "applied"  # the new store's visit
    assert world.devices[0].client.rejected() == []
    world.heal_and_check()


def test_a_twin_sent_again_after_the_next_store_took_its_number_is_still_a_replay(
    world: World,
) -> None:
    """The copy's answer for its twin is lost (the app dies), the store set up after it takes
    the twin's number for its own visit, then the copy is put back and sends the twin again:
    still the replay of the operation the server holds, not a reuse of the number."""
    play(world, ("enrol_offline", 0, 1), SYNC_W1, ("restore", 0), ("sync", 0, "kill_after", 1))
    assert world.stats["sync.killed"] == 1 and len(world.model.twins) == 2
    # The new store's first operation, an edit of the first record in the grid (its answer
    # unlike the twin visit's own: version 2, not 1), holds a number a twin was sent under.
    play(world, ("backup", 0), ("wipe", 0, 1), SYNC_W1, ("update", 0, 0, 0, 1), SYNC_W1)
    taken = [k for k, a in world.model.twins.items() if k in world.model.final]
    assert [world.model.final[k].version for k in taken] == [2]
    assert [world.model.twins[k].version for k in taken] == [1]
    play(world, ("restore", 0), SYNC_W1)
    device = world.devices[0]
    assert device.client.rejected() == [] and device.client.pending_count() == 0
    assert world.stats["push.rejected.key_reused"] == 0
    world.heal_and_check()
