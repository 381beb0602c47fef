"""A tablet put back to an earlier copy of its store, end to end in the chaos world.

The copy's unsent work is sent again as it was (answered as replays where the original sent
it, also when the two stamped it again differently after ``clock_ahead``), and the restore
loses only what the server never received. Protocol §3's documented limit
is shown happening and handled: work the copy makes before it next hears the server's
``last_seq`` may take a number the original used since, and its unsent work a number the store
enrolled after a wipe used; the server refuses it ``key_reused`` (never applies it over the
operation it holds) and the worker finds it among the refused changes. Work made after the copy
has synced is numbered above the server's and applied. A copy whose refresh token the original
rotated since is signed in again, as the app asks the worker.
"""

from __future__ import annotations

import time

from linli.chaos import Harness, World, request_body

from .conftest import play

UPDATE_W1 = ("update", 0, 0, 0, 1)  # worker w1's tablet edits the first record in its grid
UPDATE_W1_AGAIN = ("update", 0, 0, 0, 2)
SYNC_W1 = ("sync", 0, "none", 0)


def test_a_copy_sends_its_unsent_work_again_as_replays(world: World) -> None:
    play(world, UPDATE_W1, ("backup", 0), SYNC_W1, ("restore", 0))
    device = world.devices[0]
    assert device.client.pending_count() == 1  # the copy's, sent meanwhile by the original
    play(world, SYNC_W1)
    assert world.stats["push.duplicate.applied"] == 1
    assert device.client.pending_count() == 0
    assert device.client.rejected() == []
    world.heal_and_check()


def test_an_edit_both_copies_stamped_again_is_answered_as_the_replay_it_is(world: World) -> None:
    # Made with the clock a year ahead, copied, then the clock set right: the original's sync
    # re-stamps the edit (clock_ahead) and the server applies it; the copy re-stamps it too,
    # differently, and the server, which holds the change, answers it as a replay.
    year_ahead, set_right = ("clock", 0, 0), ("clock", 0, 3)
    play(world, year_ahead, UPDATE_W1, ("backup", 0), set_right, SYNC_W1, ("restore", 0))
    [(key, answer)] = world.model.acked()
    held = world.model.final[key].op["hlc"]
    play(world, SYNC_W1)
    device = world.devices[0]
    assert device.client.rejected() == [] and device.client.pending_count() == 0
    assert world.stats["push.duplicate.applied"] == 1
    assert world.stats["push.rejected.key_reused"] == 0
    assert world.model.final[key].op["hlc"] == held and answer.outcome == "applied"
    world.heal_and_check()


def test_work_made_offline_before_the_copy_syncs_may_be_refused_key_reused(world: World) -> None:
    play(world, ("backup", 0), UPDATE_W1, SYNC_W1, ("restore", 0), UPDATE_W1_AGAIN)
    device = world.devices[0]
    [key] = world.model.may_collide  # numbered before the copy heard last_seq
    assert key in world.model.final  # the original's operation holds the key
    play(world, SYNC_W1)
    refused = device.client.rejected()
    assert [(r["reason"], f"{r['op']['device_id']}:{r['op']['seq']}") for r in refused] == [
        ("key_reused", key)
    ]
    assert refused[0]["op"]["fields"] == world.devices[0].made[key]["fields"]
    assert world.stats["push.rejected.key_reused"] == 1
    world.heal_and_check()  # the original's edit stays; nothing applied twice


def test_work_made_after_the_copy_synced_is_numbered_above_the_servers(world: World) -> None:
    play(world, ("backup", 0), UPDATE_W1, SYNC_W1, ("restore", 0), SYNC_W1, UPDATE_W1_AGAIN)
    assert not world.model.may_collide
    play(world, SYNC_W1)
    assert world.stats["push.rejected.key_reused"] == 0
    assert world.stats["push.applied."] == 2  # the original's edit, then the copy's
    assert world.devices[0].client.rejected() == []
    world.heal_and_check()


def test_a_copy_from_before_a_wipe_meets_the_numbers_of_the_store_enrolled_after(
    world: World,
) -> None:
    # The original's unsent edit is lost in the wipe; the store enrolled after it numbers its
    # own edit the same (the server never held the first). The copy's edit is refused.
    play(world, UPDATE_W1, ("backup", 0), ("wipe", 0), SYNC_W1, UPDATE_W1_AGAIN, SYNC_W1)
    play(world, ("restore", 0))
    [key] = world.model.may_collide
    play(world, SYNC_W1)
    assert [r["reason"] for r in world.devices[0].client.rejected()] == ["key_reused"]
    assert world.model.final[key].outcome == "applied"  # the later store's edit stays
    world.heal_and_check()


def test_a_copy_whose_session_was_rotated_since_signs_in_again() -> None:
    # Access tokens of one second and no grace for a retried rotation: the original's refresh
    # after the copy was taken makes the copy's refresh token one already used.
    harness = Harness({"ACCESS_TOKEN_TTL_S": 1, "REFRESH_REUSE_GRACE_S": 0})
    world = World(harness, 2)
    try:
        play(world, ("backup", 0))
        time.sleep(2.1)  # the template's access tokens have expired (1 s, rounded up: < 2 s)
        play(world, UPDATE_W1, SYNC_W1)  # the original refreshes: its old token is rotated
        play(world, ("restore", 0))
        time.sleep(2.1)
        play(world, SYNC_W1)  # the copy's refresh is refused token_reused; it signs in
        assert world.stats["sync.failed.token_reused"] == 1
        assert world.stats["restore.sign_in"] == 1
        play(world, UPDATE_W1_AGAIN, SYNC_W1)
        assert world.stats["push.applied."] == 2, world.stats
        world.heal_and_check()
    finally:
        world.close()
        harness.close()


def test_a_push_still_on_its_way_when_the_copy_is_put_back_arrives_later(world: World) -> None:
    """The original's batch on its way when the app died reaches the server after the copy
    gave its numbers to other work: the late batch is refused ``key_reused`` (the copy's work
    holds the numbers), nothing is applied over anything, and everyone converges."""
    play(world, ("backup", 0), *[("create", 0, "visit", 0, n % 3) for n in range(6)])
    play(world, ("sync", 0, "kill_after", 1))
    [late] = world.held  # the original's second batch, on its way
    play(world, ("restore", 0), *[("create", 0, "household", 0, n % 3) for n in range(6)])
    play(world, SYNC_W1)  # the copy's first batch meets the original's first: key_reused
    reused = world.stats["push.rejected.key_reused"]
    assert reused == 3
    play(world, ("deliver_held", 0))  # the original's late batch meets the copy's second
    assert world.stats["push.rejected.key_reused"] == reused + 3
    late_keys = {f"{op['device_id']}:{op['seq']}" for op in request_body(late)["operations"]}
    assert all(world.model.final[k].op["record_type"] == "household" for k in late_keys)
    world.heal_and_check()
