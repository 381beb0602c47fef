"""The audit hash chain: appends link, verification names the first bad entry."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import delete, select, update

from server import audit
from server.extensions import db
from server.models import AuditEntry


def _append(app, count, actor="tester"):
    with app.app_context():
        for index in range(count):
            audit.record(actor, "thing.update", f"thing:{index}", {"n": index, "名": "值"})
            db.session.commit()


def _verify(app):
    with app.app_context():
        return audit.verify_chain()


def test_entries_link_into_a_chain(app):
    _append(app, 3)
    with app.app_context():
        entries = db.session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars().all()
        assert [entry.seq for entry in entries] == [1, 2, 3]
        assert entries[0].prev_hash == "0" * 64
        assert entries[1].prev_hash == entries[0].hash
        assert entries[2].payload == '{"n":2,"名":"值"}'
    assert _verify(app) == audit.ChainReport(ok=True, checked=3)


def test_an_entry_is_part_of_the_callers_transaction(any_app):
    """Written at once on the session's connection, yet undone with the caller's rollback: the
    next entry takes its place in the chain."""
    _append(any_app, 1)
    with any_app.app_context():
        audit.record("tester", "thing.update", "thing:gone", {})
        assert db.session.execute(select(AuditEntry.target).where(AuditEntry.seq == 2)).scalar()
        db.session.rollback()
    _append(any_app, 1, actor="after")
    with any_app.app_context():
        rows = db.session.execute(select(AuditEntry.seq, AuditEntry.actor)).all()
    assert sorted(rows) == [(1, "tester"), (2, "after")]
    assert _verify(any_app) == audit.ChainReport(ok=True, checked=2)


def test_empty_chain_is_valid(app):
    assert _verify(app).ok


def _tamper(app, statement):
    with app.app_context():
        db.session.execute(statement)
        db.session.commit()


@pytest.mark.parametrize(
    ("statement", "bad_seq"),
    [
        (update(AuditEntry).where(AuditEntry.seq == 3).values(payload='{"n":99}'), 3),
        (update(AuditEntry).where(AuditEntry.seq == 2).values(actor="someone-else"), 2),
        (update(AuditEntry).where(AuditEntry.seq == 4).values(action="thing.delete"), 4),
        (delete(AuditEntry).where(AuditEntry.seq == 3), 4),
        (delete(AuditEntry).where(AuditEntry.seq == 1), 2),
    ],
    ids=["payload", "actor", "action", "removed-middle", "removed-first"],
)
def test_alteration_is_found(app, statement, bad_seq):
    _append(app, 5)
    _tamper(app, statement)
    report = _verify(app)
    assert not report.ok and report.first_bad_seq == bad_seq


def test_removed_last_entry_cannot_be_seen_but_rehashing_cannot_hide_an_edit(app):
    """Truncating the tail is invisible to the chain alone (anchor the head elsewhere);
    editing an entry and recomputing its hash still breaks the next link."""
    _append(app, 4)
    with app.app_context():
        entry = db.session.get(AuditEntry, 2)
        entry.payload = '{"n":42}'
        entry.hash = audit.entry_hash(
            entry.prev_hash, 2, entry.at, entry.actor, entry.action, entry.target, {"n": 42}
        )
        db.session.commit()
    report = _verify(app)
    assert not report.ok and report.first_bad_seq == 3


def test_inserted_entry_is_found(app):
    _append(app, 3)
    with app.app_context():
        db.session.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(seq=4))
        third = db.session.get(AuditEntry, 2)
        forged_at = third.at
        db.session.add(
            AuditEntry(
                seq=3,
                at=forged_at,
                actor="intruder",
                action="x",
                target="y",
                payload="{}",
                prev_hash=third.hash,
                hash=audit.entry_hash(third.hash, 3, forged_at, "intruder", "x", "y", {}),
            )
        )
        db.session.commit()
    report = _verify(app)
    assert not report.ok and report.first_bad_seq == 4


def test_reordered_entries_are_found(app):
    _append(app, 4)
    with app.app_context():
        columns = ("actor", "action", "target", "payload", "prev_hash", "hash", "at")
        second, third = db.session.get(AuditEntry, 2), db.session.get(AuditEntry, 3)
        values = {name: (getattr(second, name), getattr(third, name)) for name in columns}
        for name, (a, b) in values.items():
            setattr(second, name, b)
            setattr(third, name, a)
        db.session.commit()
    report = _verify(app)
    assert not report.ok and report.first_bad_seq == 2


def test_cli_verify_exits_1_on_a_broken_chain(app, runner):
    _append(app, 3)
    ok = runner.invoke(args=["audit", "verify"])
    assert ok.exit_code == 0 and "3 entries" in ok.output
    _tamper(app, update(AuditEntry).where(AuditEntry.seq == 2).values(target="other"))
    broken = runner.invoke(args=["audit", "verify"])
    assert broken.exit_code == 1
    assert "seq 2" in broken.output


def test_login_logout_and_admin_actions_are_audited(app, client, make_user, login):
    admin = login(make_user("street_admin"))
    worker = login(make_user())
    client.post("/api/v1/auth/logout", headers=worker.headers)
    client.post(f"/api/v1/admin/devices/{worker.device_id}/revoke", headers=admin.headers)
    with app.app_context():
        actions = db.session.execute(select(AuditEntry.action).order_by(AuditEntry.seq))
        assert list(actions.scalars()) == [
            "auth.login",
            "auth.login",
            "auth.logout",
            "device.revoke",
        ]
    assert _verify(app).ok


def test_concurrent_appends_keep_the_chain_valid(any_app):
    """Eight threads append at once; on PostgreSQL the advisory lock serialises them, on
    SQLite BEGIN IMMEDIATE does."""
    errors: list[BaseException] = []

    def work():
        try:
            _append(any_app, 15, actor=threading.current_thread().name)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, name=f"t{i}") for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    report = _verify(any_app)
    assert report.ok and report.checked == 120
