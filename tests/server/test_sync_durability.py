"""Idempotent replays (also concurrent), all-or-nothing batches, and cursor safety under
concurrency (the pull must never skip a change committed late), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace

import pytest
from sqlalchemy import func, select, text

from server.extensions import db
from server.models import Record, SyncOp
from sync import OpKind
from tests.conftest import GRID_1, Login
from tests.server.devices import ApiDevice


def _normalised(results):
    return [(r["key"], r.get("original") or r["status"], r["version"]) for r in results]


@pytest.mark.parametrize("times", [2, 5])
def test_same_batch_sent_again_is_a_noop_with_the_same_answers(
    any_app, client, make_user, login, times
):
    a = ApiDevice(client, login(make_user("grid_worker")))
    rid = a.create("visit", findings="一")
    a.update(rid, findings="二")
    a.note(rid, "备注")
    batch = list(a.outbox)
    first = a.push(batch)
    with any_app.app_context():
        before = db.session.execute(select(Record.version, Record.state)).all()
    for _ in range(times - 1):
        again = a.push(batch)
        assert {r["status"] for r in again} == {"duplicate"}
        assert _normalised(again) == _normalised(first)
    with any_app.app_context():
        assert db.session.execute(select(Record.version, Record.state)).all() == before
        assert db.session.scalar(select(func.count()).select_from(SyncOp)) == 3


def test_the_same_change_stamped_again_is_a_replay_and_another_change_is_refused(
    any_app, client, make_user, login
):
    # Two copies of one store stamp the same pending edit differently (one re-stamped it after
    # clock_ahead): the server holds the change, so the other copy's is answered as its replay.
    a = ApiDevice(client, login(make_user("grid_worker")))
    rid = a.create("visit", findings="一")
    edit = a.update(rid, findings="二")
    first = a.push()
    restamped = _stamped_again(edit)
    assert restamped.digest() != edit.digest()
    with any_app.app_context():
        before = db.session.execute(select(Record.version, Record.state)).all()
    [again] = a.push([restamped])
    assert (again["status"], again["original"], again["version"]) == (
        "duplicate",
        "applied",
        first[1]["version"],
    )
    [other] = a.push([replace(edit, fields={"findings": "三"})])
    assert (other["status"], other["reason"]) == ("rejected", "key_reused")
    [moved] = a.push([replace(restamped, base_version=edit.base_version + 1)])
    assert (moved["status"], moved["reason"]) == ("rejected", "key_reused")
    with any_app.app_context():
        assert db.session.execute(select(Record.version, Record.state)).all() == before
        assert db.session.scalar(select(func.count()).select_from(SyncOp)) == 2


def _worker_with_a_visit(client, make_user, login):
    """A grid worker's device and a visit it created and pushed."""
    a = ApiDevice(client, login(make_user("grid_worker")))
    rid = a.create("visit", findings="一")
    a.push()
    return a, rid


def _later(op):
    """Another operation with ``op``'s change, made one millisecond later."""
    return replace(op, hlc=f"{int(op.hlc[:13]) + 1:013d}{op.hlc[13:]}")


def _stamped_again(op):
    """``op`` stamped again one millisecond later, as the SDK does after ``clock_ahead``: the
    stamp it was made with kept as its identity (``made_hlc``)."""
    return replace(_later(op), made_hlc=op.made_hlc or op.hlc)


def test_another_change_under_a_held_key_is_refused_whatever_the_stamp(
    any_app, client, make_user, login
):
    a = ApiDevice(client, login(make_user("grid_worker")))
    rid = a.create("dispute")
    note = a.note(rid, "第一条", "dispute")
    count = a.update(rid, "dispute", involved_count=1)
    amount = a.update(rid, "dispute", involved_amount=1)
    assert {r["status"] for r in a.push()} == {"applied"}
    before = _state(any_app)
    others = [
        replace(_later(note), item={"id": str(uuid.uuid4()), "text": "另一条"}),
        replace(_later(note), record_id=a.create("dispute")),
        replace(_later(count), fields={"involved_count": True}),  # equal values in Python,
        replace(_later(amount), fields={"involved_amount": 1.0}),  # not the same JSON
    ]
    a.outbox.clear()
    answers = a.push(others)
    assert [(r["status"], r.get("reason")) for r in answers] == [("rejected", "key_reused")] * 4
    assert _state(any_app) == before


def test_a_change_stamped_again_in_the_same_batch_is_its_replay(any_app, client, make_user, login):
    a, rid = _worker_with_a_visit(client, make_user, login)
    edit = a.update(rid, findings="二")
    first, again = a.push([edit, _stamped_again(edit)])
    assert (first["status"], first["version"]) == ("applied", 2)
    assert (again["status"], again["original"], again["version"]) == ("duplicate", "applied", 2)


def test_a_twin_of_an_operation_held_without_its_nonce_is_its_replay(
    any_app, client, make_user, login
):
    # The original sent it to a server that read past the nonce; after the upgrade a copy of
    # the store sends it numbered again, nonce and all.
    a, rid = _worker_with_a_visit(client, make_user, login)
    made = a.op(OpKind.UPDATE, "visit", rid, fields={"findings": "二"}, queue=False)
    edit = replace(made, nonce="Zq3_-x8AbCd")
    [held] = a.push([replace(edit, nonce=None)])
    assert held["status"] == "applied"
    before = _state(any_app)
    [twin] = a.push([_renumbered(edit, 30)])
    assert (twin["status"], twin["original"], twin["version"]) == (
        "duplicate",
        "applied",
        held["version"],
    )
    assert _state(any_app) == before


def _renumbered(op, seq):
    """``op`` as another copy of its store numbered it again (protocol §3)."""
    return replace(op, seq=seq, made_seq=op.made_seq or op.seq)


def _state(app):
    with app.app_context():
        return (
            db.session.execute(select(Record.id, Record.version, Record.state)).all(),
            db.session.execute(
                select(SyncOp.seq, SyncOp.made_seq, SyncOp.outcome).order_by(SyncOp.seq)
            ).all(),
        )


def test_a_renumbered_copy_of_a_held_change_is_its_replay(any_app, client, make_user, login):
    # The original sent its work under the numbers it made it with; a copy of its store
    # numbered the same work again, above 10, each saying the number it was made with.
    a = ApiDevice(client, login(make_user("grid_worker")))
    rid = a.create("visit", findings="一")
    a.update(rid, findings="二")
    a.create("visit", grid_code="990101001001002")  # outside the worker's grids
    made = list(a.outbox)
    assert [r["status"] for r in a.push()] == ["applied", "applied", "rejected"]
    before = _state(any_app)
    copies = [_renumbered(o, 10 + n) for n, o in enumerate(made)]
    answers = a.push(copies)
    assert [(r["status"], r["original"], r["version"]) for r in answers] == [
        ("duplicate", "applied", 1),
        ("duplicate", "applied", 2),
        ("duplicate", "rejected", None),
    ]
    assert _state(any_app) == before  # nothing applied again, no receipt for the new numbers
    assert a.push(copies) == answers  # and so again


def test_twins_numbered_again_differently_are_found_by_the_number_made_with(
    any_app, client, make_user, login
):
    a, rid = _worker_with_a_visit(client, make_user, login)
    # Made as number 2, never sent as such.
    edit = a.op(OpKind.UPDATE, "visit", rid, fields={"findings": "二"}, queue=False)
    [applied] = a.push([_renumbered(edit, 20)])
    assert (applied["status"], applied["version"]) == ("applied", 2)
    before = _state(any_app)
    assert before[1][-1] == (20, 2, "applied")
    # The copies stamped it differently too (one re-stamped it after clock_ahead).
    [again] = a.push([_renumbered(_stamped_again(edit), 30)])
    assert (again["status"], again["original"], again["version"]) == ("duplicate", "applied", 2)
    assert _state(any_app) == before
    # Another operation with the same change and number made with is no twin: applied.
    other = _renumbered(_later(edit), 40)
    [applied_too] = a.push([other])
    assert (applied_too["status"], applied_too["version"]) == ("applied", 3)


def test_a_twin_sent_again_after_another_store_took_its_number_is_still_its_replay(
    any_app, client, make_user, login
):
    # A twin's own number is never held (its work is, under its twin's): a store set up after
    # it numbers its own edit with that number. The copy, its answer lost, sends the twin again.
    a, rid = _worker_with_a_visit(client, make_user, login)
    edit = a.op(OpKind.UPDATE, "visit", rid, fields={"findings": "二"}, queue=False)
    assert a.push([_renumbered(edit, 20)])[0]["status"] == "applied"
    twin = _renumbered(edit, 30)
    [first] = a.push([twin])
    assert (first["status"], first["original"], first["version"]) == ("duplicate", "applied", 2)
    other = a.op(OpKind.UPDATE, "visit", rid, fields={"findings": "三"}, base=2, queue=False)
    [taken] = a.push([replace(other, seq=30)])
    assert (taken["status"], taken["version"]) == ("applied", 3)
    before = _state(any_app)
    assert a.push([twin]) == [first]  # the same answer: nothing applied, nothing refused
    assert a.push([_stamped_again(twin)]) == [first]
    assert _state(any_app) == before
    # Another operation under the taken number, no twin of anything held, is still refused.
    [refused] = a.push([_renumbered(_later(other), 30)])
    assert (refused["status"], refused["reason"]) == ("rejected", "key_reused")


def test_a_twin_after_its_original_in_one_batch_under_a_taken_number_is_its_replay(
    any_app, client, make_user, login
):
    # Number 30 is held by another store's edit; one batch brings an edit numbered 20 and its
    # twin numbered 30: the twin is answered from the receipt made just before it.
    a, rid = _worker_with_a_visit(client, make_user, login)
    other = a.op(OpKind.UPDATE, "visit", rid, fields={"findings": "三"}, queue=False)
    assert a.push([replace(other, seq=30)])[0]["status"] == "applied"
    edit = a.op(OpKind.UPDATE, "visit", rid, fields={"findings": "二"}, queue=False)
    before = _state(any_app)
    first, twin = a.push([_renumbered(edit, 20), _renumbered(edit, 30)])
    assert first["status"] == "applied"
    assert (twin["status"], twin["original"], twin["version"]) == (
        "duplicate",
        "applied",
        first["version"],
    )
    assert len(_state(any_app)[1]) == len(before[1]) + 1  # one receipt: the edit under 20
    assert a.push([_renumbered(edit, 30)]) == [twin]  # alone in a batch: the same answer


def test_the_same_change_by_another_operation_under_a_held_key_is_refused(
    any_app, client, make_user, login
):
    # Two stores of one device id made the same edit under one number, each its own operation.
    a = ApiDevice(client, login(make_user("grid_worker")))
    rid = a.create("visit", findings="一")
    edit = a.update(rid, findings="二")
    a.push()
    [answer] = a.push([_later(edit)])
    assert (answer["status"], answer["reason"]) == ("rejected", "key_reused")


def test_a_twin_later_in_the_same_batch_is_answered_as_the_first_and_so_is_its_resend(
    any_app, client, make_user, login
):
    a, rid = _worker_with_a_visit(client, make_user, login)
    edit = a.update(rid, findings="二")
    twin = _renumbered(edit, 9)
    first, second = a.push([edit, twin, _stamped_again(twin)])[:2]
    assert (first["status"], first["version"]) == ("applied", 2)
    assert (second["status"], second["original"], second["version"]) == (
        "duplicate",
        "applied",
        2,
    )
    before = _state(any_app)
    assert a.push([twin]) == [second]  # its answer lost: sent again alone
    assert a.push([_stamped_again(twin)])[0]["status"] == "duplicate"
    assert _state(any_app) == before


def test_an_operation_held_by_a_server_that_did_not_keep_made_hlc_is_replayed_after_an_upgrade(
    any_app, client, make_user, login
):
    # A server from before made_hlc, made_seq and nonce read past them: it holds the payload
    # without.
    a, rid = _worker_with_a_visit(client, make_user, login)
    edit = replace(_stamped_again(a.update(rid, findings="二")), nonce="Zq3_-x8AbCd")
    [held] = a.push([replace(edit, made_hlc=None, nonce=None)])
    [again] = a.push([edit])  # the device sends its stored text again, unchanged
    assert (again["status"], again["original"], again["version"]) == (
        "duplicate",
        held["status"],
        held["version"],
    )
    [other] = a.push([replace(_later(edit))])  # another stamp is no longer provably the same
    assert (other["status"], other["reason"]) == ("rejected", "key_reused")


def test_a_number_made_with_that_names_another_change_is_no_twin(any_app, client, make_user, login):
    # The old store's operation 2 and this store's, made as 2 too and numbered again: two
    # changes, both applied.
    a = ApiDevice(client, login(make_user("grid_worker")))
    rid = a.create("visit", findings="一")
    a.update(rid, findings="旧店二")
    a.push()
    mine = a.op(OpKind.UPDATE, "visit", rid, fields={"findings": "新店二"}, queue=False)
    mine = replace(mine, seq=2)
    [result] = a.push([_renumbered(mine, 3)])
    assert (result["status"], result["version"]) == ("applied", 3)
    with any_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SyncOp)) == 3


def test_concurrent_replays_from_threads_apply_once(any_app, make_user, login):
    a = ApiDevice(any_app.test_client(), login(make_user("grid_worker")))
    for i in range(20):
        a.create("visit", findings=f"记录{i}")
    body = {"device_id": a.device_id, "operations": [o.to_dict() for o in a.outbox]}
    answers, errors = [], []

    def send():
        try:
            response = any_app.test_client().post(
                "/api/v1/sync/push", json=body, headers=a.login.headers
            )
            answers.append((response.status_code, response.get_json()))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(answers) == 5
    assert all(status == 200 for status, _ in answers), answers
    normalised = {tuple(_normalised(body["results"])) for _, body in answers}
    assert len(normalised) == 1, "every replay answers the same results"
    applied = sum(r["status"] == "applied" for _, b in answers for r in b["results"])
    assert applied == 20, "each operation applied exactly once"
    with any_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Record)) == 20


def _install_failure(app):
    """A real database fault: inserting a record whose data mentions BOOM aborts the statement."""
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            db.session.execute(
                text(
                    "CREATE TRIGGER boom BEFORE INSERT ON record WHEN NEW.data LIKE '%BOOM%' "
                    "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
                )
            )
        else:
            db.session.execute(
                text(
                    "CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN IF NEW.data::text LIKE "
                    "'%BOOM%' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END "
                    "$$ LANGUAGE plpgsql"
                )
            )
            db.session.execute(
                text(
                    "CREATE TRIGGER boom BEFORE INSERT ON record "
                    "FOR EACH ROW EXECUTE FUNCTION boom()"
                )
            )
        db.session.commit()


def _remove_failure(app):
    with app.app_context():
        db.session.execute(
            text(
                "DROP TRIGGER boom"
                if db.engine.dialect.name == "sqlite"
                else "DROP TRIGGER boom ON record"
            )
        )
        db.session.commit()


def test_a_batch_failing_midway_leaves_nothing_and_retries_cleanly(
    any_app, client, make_user, login
):
    a = ApiDevice(client, login(make_user("grid_worker")))
    a.create("visit", findings="first")
    a.create("visit", findings="BOOM in the middle")
    a.create("visit", findings="last")
    _install_failure(any_app)
    try:
        body = {"device_id": a.device_id, "operations": [o.to_dict() for o in a.outbox]}
        failed = a.post("push", body)
        assert failed.status_code == 500
        assert set(failed.get_json()) == {"code", "message", "details"}
        with any_app.app_context():
            assert db.session.scalar(select(func.count()).select_from(Record)) == 0
            assert db.session.scalar(select(func.count()).select_from(SyncOp)) == 0
    finally:
        _remove_failure(any_app)
    assert {r["status"] for r in a.push()} == {"applied"}
    a.pull()
    assert len(a.snapshots) == 3


@pytest.mark.postgres
def test_pull_never_skips_a_change_committed_late_on_postgresql(pg_url, tmp_path):
    from tests.conftest import build_app

    app = build_app(tmp_path, pg_url)
    try:
        _cursor_race(app)
    finally:
        with app.app_context():
            db.engine.dispose()


def _cursor_race(app):
    from server.models import AdminUnit, Device, User, UserGrid, level_of, parent_code_of
    from server.passwords import hash_password

    with app.app_context():
        code = GRID_1
        chain = [code]
        while (parent := parent_code_of(chain[-1])) is not None:
            chain.append(parent)
        for unit in reversed(chain):
            db.session.add(
                AdminUnit(
                    code=unit,
                    name=unit,
                    level=level_of(unit).value,
                    parent_code=parent_code_of(unit),
                )
            )
            db.session.flush()
        users = []
        for i in range(6):
            role = "grid_worker" if i < 4 else "community_head"
            user = User(
                username=f"u{i}",
                display_name=f"U{i}",
                role=role,
                unit_code=chain[1],
                password_hash=hash_password("pw-123456"),
                grids=[UserGrid(grid_code=code)] if role == "grid_worker" else [],
            )
            db.session.add(user)
            users.append(user)
        db.session.commit()
        names = [u.username for u in users]
        assert db.session.scalar(select(func.count()).select_from(Device)) == 0

    def device(name):
        client = app.test_client()
        device_id = str(uuid.uuid4())
        body = client.post(
            "/api/v1/auth/login",
            json={"username": name, "password": "pw-123456", "device_id": device_id},
        ).get_json()
        return ApiDevice(
            client, Login(body["access_token"], body["refresh_token"], device_id, body)
        )

    pushers = [device(n) for n in names[:4]]
    pullers = [device(n) for n in names[4:]]
    created: set[str] = set()
    done = threading.Event()
    failures: list[BaseException] = []

    def push_loop(d):
        try:
            for _ in range(25):
                for _ in range(4):
                    created.add(d.create("visit", findings="并发"))
                d.push()
        except BaseException as exc:
            failures.append(exc)

    seen: dict[int, set[str]] = {0: set(), 1: set()}

    def pull_loop(i, d):
        try:
            last = 0
            while not done.is_set():
                d.pull(limit=7)
                assert d.cursor >= last, "the cursor never goes back"
                last = d.cursor
                seen[i].update(d.snapshots)
                time.sleep(0.001)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=push_loop, args=(d,)) for d in pushers]
    readers = [threading.Thread(target=pull_loop, args=(i, d)) for i, d in enumerate(pullers)]
    for t in readers + threads:
        t.start()
    for t in threads:
        t.join(120)
    done.set()
    for t in readers:
        t.join(60)
    assert not failures, failures
    assert len(created) == 400
    for i, d in enumerate(pullers):
        d.pull(limit=7)  # one more pass after the writers stopped: nothing may be missing
        seen[i].update(d.snapshots)
        assert seen[i] == created, f"puller {i} missed {len(created - seen[i])} changes"
        assert d.checksum() == d.last_pull["checksum"]


def test_grid_digests_equal_a_full_count_after_any_history(
    any_app, client, make_user, make_unit, login
):
    from server.models import GridDigest
    from tests.conftest import GRID_2

    a = ApiDevice(client, login(make_user("grid_worker")))
    make_unit(GRID_2)
    head = make_user("community_head")
    head_login = login(head)
    ids = [a.create("visit", findings=f"v{i}") for i in range(12)]
    a.push()
    for rid in ids[:5]:
        a.update(rid, findings="edited")
    a.delete(ids[5])
    a.note(ids[6], "note")
    a.push()
    for rid in ids[7:10]:
        moved = client.post(
            f"/api/v1/records/{rid}/move", json={"grid_code": GRID_2}, headers=head_login.headers
        )
        assert moved.status_code == 200
    client.post(
        f"/api/v1/records/{ids[0]}/review",
        json={"decision": "approved"},
        headers=head_login.headers,
    )
    with any_app.app_context():
        actual = {
            row.grid_code: (row.n, row.v)
            for row in db.session.execute(
                select(
                    Record.grid_code, func.count().label("n"), func.sum(Record.version).label("v")
                ).group_by(Record.grid_code)
            )
        }
        digests = {
            d.grid_code: (d.count, d.version_sum)
            for d in db.session.execute(select(GridDigest)).scalars()
        }
    assert digests == actual and set(actual) == {GRID_1, GRID_2}
    a.pull()
    assert a.checksum() == a.last_pull["checksum"]
