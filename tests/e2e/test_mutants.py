"""Mutation self-test of the chaos harness: deliberately broken servers and SDKs must be caught.

Each mutant breaks one well-named seam of ``server/`` or ``client_sdk/`` with pytest's
``monkeypatch`` (a mock of our own code, acceptable here only because the point is to prove the
harness *can* fail). For each, a known witness schedule must raise a :class:`Violation` on every
run, and a bounded search over seeded random schedules (the soak's) must find one as well — with
the same invariant checks the stateful test and the soak use, nothing mutant-specific.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import client_sdk.store
import server.pull
import server.push
from client_sdk.api import Api
from client_sdk.store import Store
from linli.chaos import Harness, KillSwitch, Violation, random_schedule, run_schedule
from server.extensions import db
from server.scope import Scope
from sync import merge

SEARCH_SEEDS = 150  # the random search stops at the first violation; most need a handful


def ack_before_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server answers a push, then rolls the batch back instead of committing it."""
    real = server.push.push

    def push(request: Any, **kwargs: Any) -> Any:
        with monkeypatch.context() as m:
            m.setattr(db.session, "commit", db.session.rollback)
            return real(request, **kwargs)

    monkeypatch.setattr(server.push, "push", push)


def no_dedup(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server ignores the receipt of a replayed key and merges the operation again."""
    monkeypatch.setattr(
        server.push, "apply_operation", lambda state, op, *, receipt=None: merge(state, op)
    )


def blind_overwrite(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK stores a pulled snapshot over the record's pending local edits (drops them)."""
    # The seam is Store.save_snapshots (a page at once); older trees save one snapshot a call.
    name = "save_snapshots" if hasattr(Store, "save_snapshots") else "save_snapshot"
    real = getattr(Store, name)

    def save(conn: Any, snaps: Any, generation: int) -> None:
        real(conn, snaps, generation)
        conn.executemany(
            "DELETE FROM outbox WHERE record_id = ? AND state = 'pending'",
            [(snap["id"],) for snap in (snaps if name == "save_snapshots" else [snaps])],
        )

    monkeypatch.setattr(Store, name, staticmethod(save))


def cursor_before_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK saves a page's cursor as soon as the page arrives, and dies before applying it."""
    real = Api.call

    def call(self: Api, path: str, body: Any, **kwargs: Any) -> Any:
        answer = real(self, path, body, **kwargs)
        if path.endswith("/sync/pull") and answer.get("changes"):
            self.store.set(cursor=answer["cursor"])
            raise KillSwitch("crashed between saving the cursor and applying the page")
        return answer

    monkeypatch.setattr(Api, "call", call)


def scope_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pull ignores the caller's scope: everything in the district is sent."""
    real = server.pull.pull

    def pull(request: Any, *, device: Any, scope: Scope) -> bytes:
        return real(request, device=device, scope=Scope(("9",)))

    monkeypatch.setattr(server.pull, "pull", pull)


def removals_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK keeps records the server told it to remove (moved to another grid)."""
    monkeypatch.setattr(Store, "remove", staticmethod(lambda conn, record_ids: None))


def numbering_ignores_last_seq(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK ignores the server's last_seq: a store set up again under its device id numbers
    its work from 1, over operations the server holds."""
    monkeypatch.setattr(Store, "number_above", lambda self, last_seq, unsent=False: 0)


def renumbering_changes_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK changes what it numbers again at a store's first sign-in (a visit's findings
    gain a character as the operation is rewritten with its new number)."""
    real = client_sdk.store._encode

    def encode(value: Any) -> str:
        fields = value.get("fields") if isinstance(value, dict) and "made_seq" in value else None
        if isinstance(fields, dict) and isinstance(fields.get("findings"), str):
            value = {**value, "fields": {**fields, "findings": fields["findings"] + "?"}}
        return real(value)

    monkeypatch.setattr(client_sdk.store, "_encode", encode)


def twins_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server does not look for the twin of an operation a store numbered again at its
    first sign-in (``made_seq``): a copy of the store taken before that sign-in has its work
    judged anew instead of answered as the replay it is."""
    monkeypatch.setattr(server.push, "_twins", lambda device_id, renumbered: {})


# Witnesses: (devices, steps). Slot 0 is worker w1 (grid 1), slot 1 the community head, slot 2
# worker w2 (grid 2); the template's records (first three in grid 1, then two in grid 2) are on
# every device in scope.
HEAD_EDITS_THEN_W1_EDITS_DURING_PULL = (
    2,
    [("update", 1, 0, 0, 1), ("sync", 1, "none", 0), ("sync", 0, "edit_during", 1)],
)
MUTANTS: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], tuple[int, list[Any]]]] = {
    "ack_before_commit": (ack_before_commit, (2, [("update", 0, 0, 0, 1), ("sync", 0, "none", 0)])),
    "no_dedup": (no_dedup, (2, [("update", 0, 0, 0, 1), ("sync", 0, "duplicate", 1)])),
    "blind_overwrite": (blind_overwrite, HEAD_EDITS_THEN_W1_EDITS_DURING_PULL),
    "cursor_before_apply": (
        cursor_before_apply,
        (2, [("update", 1, 0, 0, 1), ("sync", 1, "none", 0)]),
    ),
    "scope_dropped": (scope_dropped, (3, [("sync", 0, "none", 0)])),
    "numbering_ignores_last_seq": (
        numbering_ignores_last_seq,
        (
            2,
            [
                ("update", 0, 0, 0, 1),
                ("sync", 0, "none", 0),
                ("wipe", 0),
                ("create", 0, "visit", 0, 0),
            ],
        ),
    ),
    "removals_ignored": (
        removals_ignored,
        (2, [("console", "move", 0, 0), ("sync", 0, "none", 0)]),
    ),
    "renumbering_changes_work": (
        renumbering_changes_work,
        (2, [("wipe", 0, 0), ("create", 0, "visit", 0, 0), ("sync", 0, "none", 0)]),
    ),
    "twins_ignored": (
        twins_ignored,
        (
            2,
            [
                ("enrol_offline", 0, 1),  # set up again offline: a visit, a note, a copy
                ("sync", 0, "none", 0),  # signs in: the two numbered above the server's
                ("restore", 0),
                ("sync", 0, "none", 0),  # the copy signs in: the same two, other numbers
            ],
        ),
    ),
}


def _violation(harness: Harness, n: int, steps: list[Any]) -> Violation | None:
    try:
        run_schedule(harness, n, steps)
    except Violation as exc:
        return exc
    return None


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_a_broken_variant_is_caught(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    harness = Harness.shared()  # built before the mutant: the template must be sound
    patch, (n, witness) = MUTANTS[name]
    assert _violation(harness, n, witness) is None, "the witness fails without the mutant"
    patch(monkeypatch)
    caught = _violation(harness, n, witness)
    assert caught is not None, f"{name}: the witness schedule passed"
    for seed in range(1, SEARCH_SEEDS + 1):
        if _violation(harness, *random_schedule(seed)) is not None:
            break
    else:
        pytest.fail(f"{name}: no random schedule of {SEARCH_SEEDS} found a violation")
