"""Protocol 3: a device's own creates are not sent back to it.

When the server acknowledges a create as version 1, the device stores the snapshot the server
made of it, and its pulls ask the server to leave out the records that are still its own
unchanged creates (``echo: false``). These tests hold the device's copy against what another
device pulls from the server, follow a create changed afterwards back to its author, and break
the device's copy to see the checksum repair it.
"""

from __future__ import annotations

import json
from typing import Any

from client_sdk import Client

from .conftest import GRID_1, GRID_2, id_number


def _held(device: Client) -> dict[str, dict[str, Any]]:
    """The snapshots the device holds, by record id (overlays left out)."""
    rows = device.store.db.execute("SELECT id, snapshot FROM records WHERE snapshot IS NOT NULL")
    return {rid: json.loads(text) for rid, text in rows}


def test_the_devices_copy_of_its_creates_is_the_servers(make_user, make_device):
    worker = make_user(grids=[GRID_1])
    device = make_device(worker, "author")
    home = device.create_household(grid_code=GRID_1, address='幸福里 "3"-301', head_name="张三")
    person = device.create_resident(
        grid_code=GRID_1,
        name="张三",
        household_id=home["id"],
        id_number=id_number(),
        phone="17012345678",
        tags=["elderly_alone", "low_income"],
    )
    visit = device.record_visit(grid_code=GRID_1, household_id=home["id"], findings="独居\n需助餐")
    noted = device.record_visit(grid_code=GRID_1, findings="复访", notes=["带血压计"])
    report = device.sync()
    assert report.applied == 5 and report.checksum_ok is True
    assert report.pulled == 1  # the visit with a note: changed after its create, sent back
    assert device.store.count("acked") == 0 and device.pending_count() == 0

    reader = make_device(make_user(grids=[GRID_1]), "reader")
    assert reader.sync().pulled == 4
    mine, theirs = _held(device), _held(reader)
    assert set(mine) == {home["id"], person["id"], visit["id"], noted["id"]}
    assert mine == theirs  # the same snapshots, to the byte's meaning
    assert device.store.checksum() == reader.store.checksum() == (4, 5)
    again = device.sync()
    assert (again.pushed, again.pulled, again.checksum_ok) == (0, 0, True)


def test_a_create_changed_since_comes_back_to_its_author(make_user, make_device):
    author = make_device(make_user(grids=[GRID_1]), "author")
    other = make_device(make_user(grids=[GRID_1]), "other")
    visit = author.record_visit(grid_code=GRID_1, findings="初访")
    author.sync()
    other.sync()
    other.update(visit["id"], findings="二访：已联系社区医生")
    other.sync()
    report = author.sync()
    assert report.pulled == 1 and report.checksum_ok is True
    seen = author.get(visit["id"])
    assert seen["version"] == 2 and seen["fields"]["findings"] == "二访：已联系社区医生"
    assert _held(author)[visit["id"]] == _held(other)[visit["id"]]


def test_a_dispute_comes_back_with_the_case_the_server_opened(make_user, make_device):
    device = make_device(make_user(grids=[GRID_1]), "author")
    dispute = device.screen_dispute(
        grid_code=GRID_1, title="楼上漏水", category="0201", parties=["甲", "乙"], involved_count=2
    )
    report = device.sync()
    assert report.pulled == 1 and report.checksum_ok is True
    held = _held(device)[dispute["id"]]
    assert held["version"] > 1 and held["fields"]["status"] == "reported"  # the server's case
    assert len(held["collections"]["steps"]) == 1
    reader = make_device(make_user(grids=[GRID_1]), "reader")
    reader.sync()
    assert _held(reader)[dispute["id"]] == held


def test_a_lost_copy_is_restored_by_the_checksum(make_user, make_device):
    """A device whose copy of its own create is gone (a damaged or restored file): the pull
    leaves the record out, the checksum disagrees, and the full re-pull, which asks for
    everything, brings it back."""
    device = make_device(make_user(grids=[GRID_1]))
    kept = device.record_visit(grid_code=GRID_1, findings="一")
    lost = device.record_visit(grid_code=GRID_1, findings="二")
    device.sync()
    with device.store.tx() as conn:
        conn.execute("DELETE FROM records WHERE id = ?", [lost["id"]])
    assert device.store.checksum() == (1, 1)
    report = device.sync()
    assert report.resynced is True and report.checksum_ok is True
    assert set(_held(device)) == {kept["id"], lost["id"]}
    assert device.get(lost["id"])["fields"]["findings"] == "二"


def _set_grids(app, user, grids):
    from server import accounts
    from server.extensions import db

    with app.app_context():
        accounts.set_grids("test", user.id, grids)
        db.session.commit()


def test_a_grid_taken_away_and_given_back_brings_its_own_creates_back(app, make_user, make_device):
    """The reset that takes a grid away purges the device's records in it, its own creates
    too; the reset that gives it back sends everything (the server ignores ``echo: false`` on
    a page that starts over, and the device asks for everything for the rest of that pull)."""
    user = make_user(grids=[GRID_1, GRID_2])
    device = make_device(user, "a", page_size=2)
    mine = {device.record_visit(grid_code=GRID_2, findings=f"第{n}户")["id"] for n in range(3)}
    assert device.sync().checksum_ok is True
    _set_grids(app, user, [GRID_1])
    device.sync()
    assert not mine & set(_held(device))
    _set_grids(app, user, [GRID_1, GRID_2])
    report = device.sync()
    assert (report.pulled, report.resynced, report.checksum_ok) == (3, False, True)
    assert mine <= set(_held(device))


def test_a_device_id_adopted_on_a_fresh_store_gets_its_creates_first(
    app, make_user, make_device, tmp_path
):
    """A store that did not make its device id may lack that device's creates (a tablet
    wiped and set up again under the same id): its first pull asks for everything, later ones
    leave its own creates out."""
    user = make_user(grids=[GRID_1])
    first = make_device(user, "first")
    made = {first.record_visit(grid_code=GRID_1, findings=f"第{n}户")["id"] for n in range(2)}
    first.sync()
    again = make_device(user, "again", device_id=first.device_id)
    assert again.store.get("own_creates_held") is False
    report = again.sync()
    assert (report.pulled, report.resynced, report.checksum_ok) == (2, False, True)
    assert set(_held(again)) == made and again.store.get("own_creates_held") is True
    assert first.store.get("own_creates_held") is True  # it made its id
