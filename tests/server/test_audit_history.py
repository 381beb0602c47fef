"""The audit chain of a real sync history verifies, and SQL tampering with it is found.

tests/server/test_audit.py covers the chain itself on synthetic entries; here the entries come
from the product: several devices pushing (with a conflict), a review and a return, a conflict
resolution, dispute case transitions (by a head on the API and by a worker's device), a move,
a device revocation. ``linli audit verify`` passes on it; each kind of tampering an insider with
database access could try makes it exit 1 and name the first bad entry.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, text

from server import audit
from server.extensions import db
from server.models import AuditEntry
from tests.conftest import GRID_1, GRID_2
from tests.server.devices import ApiDevice

EXPECTED_ACTIONS = {
    "auth.login", "sync.push", "conflict.resolve", "review.approved", "review.returned",
    "case.accept", "case.assign", "record.move", "device.revoke",
}  # fmt: skip


def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code in (200, 204), response.get_json()
    return response.get_json()


@pytest.fixture
def history(any_app, client, make_user, make_unit, login):
    """A morning in community 990101001001, through the API only."""
    make_unit(GRID_2)
    alice = make_user("grid_worker", grids=[GRID_1, GRID_2])
    bob = make_user("grid_worker", grids=[GRID_1])
    head = login(make_user("community_head"))
    admin = login(make_user("street_admin"))
    tablet, phone = ApiDevice(client, login(alice)), ApiDevice(client, login(alice))
    bobs = ApiDevice(client, login(bob))

    def act(rid: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return _ok(client.post(f"/api/v1/records/{rid}/{path}", json=body, headers=head.headers))

    visit = tablet.create("visit", findings="楼道漏水")
    dispute = tablet.create("dispute", description="楼上楼下漏水纠纷")
    household = bobs.create("household", head_name="王大爷")
    assert {r["status"] for r in tablet.push() + bobs.push()} == {"applied"}
    for device in (tablet, phone, bobs):
        device.pull()
    tablet.update(visit, findings="已修好")
    tablet.note(visit, "第二次走访")
    assert {r["status"] for r in tablet.push()} == {"applied"}
    phone.update(visit, findings="仍在漏水")
    assert [r["status"] for r in phone.push()] == ["conflict"]

    act(visit, "resolve", {"field": "findings", "value": "仍在漏水", "reason": "上门核实"})
    act(visit, "review", {"decision": "approved"})
    act(household, "review", {"decision": "returned", "comment": "请补充电话"})
    act(dispute, "case", {"action": "accept"})
    act(
        dispute,
        "case",
        {
            "action": "assign",
            "params": {"responsible_unit": "司法所", "responsible_person": "李调解"},
        },
    )
    tablet.pull()
    tablet.step(dispute, "start")
    assert [r["status"] for r in tablet.push()] == ["applied"]
    act(household, "move", {"grid_code": GRID_2})
    _ok(client.post(f"/api/v1/admin/devices/{bobs.device_id}/revoke", headers=admin.headers))
    return any_app


def _entries(app: Any) -> list[AuditEntry]:
    with app.app_context():
        rows = db.session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars().all()
        db.session.expunge_all()
        return list(rows)


def _seq_of(app: Any, action: str) -> int:
    return next(e.seq for e in _entries(app) if e.action == action)


def _sql(app: Any, *statements: tuple[str, dict[str, Any]]) -> None:
    with app.app_context():
        for statement, params in statements:
            db.session.execute(text(statement), params)
        db.session.commit()


def test_a_real_history_is_audited_and_verifies(history, runner):
    entries = _entries(history)
    assert {e.action for e in entries} >= EXPECTED_ACTIONS
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert f"audit chain ok: {len(entries)} entries" in result.output


def test_history_entries_name_actor_target_and_what_was_decided(history):
    by_action = {e.action: e for e in _entries(history)}
    review = by_action["review.returned"]
    assert review.target.startswith("record:") and "请补充电话" in review.payload
    move = by_action["record.move"]
    assert GRID_1 in move.payload and GRID_2 in move.payload
    resolve = by_action["conflict.resolve"]
    assert "findings" in resolve.payload and "上门核实" in resolve.payload
    assert by_action["device.revoke"].target.startswith("device:")


def _alter_payload(app: Any) -> int:
    seq = _seq_of(app, "review.returned")
    _sql(
        app,
        (
            "UPDATE audit_entry SET payload = :p WHERE seq = :s",
            {"p": '{"comment":"通过","version":1}', "s": seq},
        ),
    )
    return seq


def _delete_entry(app: Any) -> int:
    seq = _seq_of(app, "conflict.resolve")
    _sql(app, ("DELETE FROM audit_entry WHERE seq = :s", {"s": seq}))
    return seq + 1


def _swap_two(app: Any) -> int:
    a, b = _seq_of(app, "case.accept"), _seq_of(app, "record.move")
    assert a < b
    _sql(
        app,
        ("UPDATE audit_entry SET seq = -1 WHERE seq = :a", {"a": a}),
        ("UPDATE audit_entry SET seq = :a WHERE seq = :b", {"a": a, "b": b}),
        ("UPDATE audit_entry SET seq = :b WHERE seq = -1", {"b": b}),
    )
    return a


def _insert_forged(app: Any) -> int:
    """Make room after the return and forge a well-formed, correctly linked approval there."""
    k = _seq_of(app, "review.returned") + 1
    before = next(e for e in _entries(app) if e.seq == k - 1)
    payload = {"comment": None, "version": 1}
    forged_hash = audit.entry_hash(
        before.hash, k, before.at, before.actor, "review.approved", before.target, payload
    )
    _sql(
        app,
        ("UPDATE audit_entry SET seq = -(seq + 1) WHERE seq >= :k", {"k": k}),
        ("UPDATE audit_entry SET seq = -seq WHERE seq < 0", {}),
        (
            "INSERT INTO audit_entry (seq, at, actor, action, target, payload, prev_hash, hash) "
            "SELECT :seq, at, actor, 'review.approved', target, :payload, :prev, :hash "
            "FROM audit_entry WHERE seq = :source",
            {
                "seq": k,
                "source": k - 1,
                "payload": audit.canonical_json(payload),
                "prev": before.hash,
                "hash": forged_hash,
            },
        ),
    )
    return k + 1


@pytest.mark.parametrize(
    "tamper",
    [_alter_payload, _delete_entry, _swap_two, _insert_forged],
    ids=["alter-payload", "delete-entry", "swap-seq", "insert-forged"],
)
def test_tampering_with_the_history_is_found(history, runner, tamper):
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
    count = len(_entries(history))
    bad_seq = tamper(history)
    assert 1 < bad_seq < count  # in the middle of the history, not at its ends
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1, result.output
    assert f"broken at seq {bad_seq}:" in result.output
    with history.app_context():
        report = audit.verify_chain()
    assert not report.ok and report.first_bad_seq == bad_seq
