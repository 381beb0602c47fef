"""A chaos world for end-to-end sync testing: the real server, real SDK clients, real faults.

One :class:`World` is the Flask app in process on a SQLite file, 2-5 :class:`client_sdk.Client`
devices (grid workers of two grids of one community, and the community head) with their own
SQLite files, and a :class:`ChaosTransport` in front of every device that loses, duplicates,
delays and reorders requests (a push batch overtaking the one it follows among them), breaks
a push with a real database fault (a trigger that raises on the Nth write), kills the device
mid-sync, or revokes it; a device may also be wiped and enrolled again under its device id (a
new store, signed in at once or only after the worker recorded offline), or put back to a copy
of its store taken earlier (a backup restored; taken before a first sign-in, the copy numbers
the same work differently at its own, and each such twin must be answered as a replay).
A :class:`Model` remembers every answer the server gave on the
wire, so the checks never trust the server's own memory; one of them is that a key the server
holds is only ever sent again with the same operation (or it re-stamped, answered as its
replay), the one exception being protocol §3's: a restored copy's work from before it next
heard the server's ``last_seq`` (or its unsent work a wipe lost) may meet a number used since,
and must then be refused ``key_reused``.

A schedule is a list of steps, plain tuples such as ``("sync", 0, "hold", 1)``; :meth:`World.play`
runs one, :meth:`World.check` checks the invariants that hold after every step (docs/protocol.md
§8 and DESIGN.md §4), and :meth:`World.heal_and_check` turns faults off, lets everyone sync twice
and checks convergence, nothing lost, idempotent replay. Tests (tests/e2e) drive it from a
hypothesis state machine; ``python -m linli.soak`` from seeded random schedules.

Every check raises :class:`Violation` (an ``AssertionError``) naming the invariant.
"""

from __future__ import annotations

import atexit
import contextlib
import gzip
import json
import logging
import random
import shutil
import sqlite3
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client_sdk import AppTransport, AuthError, Client, ClientError, DeviceRevoked, NetworkError
from client_sdk.transport import Request, Response
from server import accounts, actions, create_app
from server.errors import APIError
from server.extensions import db
from server.models import AdminUnit, User, UserGrid, level_of, parent_code_of, snapshot_text
from server.passwords import hash_password
from server.scope import Scope
from server.store import stored_state
from sync import (
    DELETED,
    TRANSIENT_REASONS,
    Operation,
    OpKind,
    RecordState,
    Write,
    canonical_json,
)

__all__ = [
    "FAULTS",
    "GRID_1",
    "GRID_2",
    "Harness",
    "KillSwitch",
    "Violation",
    "World",
    "random_schedule",
    "random_step",
    "request_body",
    "run_schedule",
]

COMMUNITY = "990101001001"
GRID_1 = "990101001001001"
GRID_2 = "990101001001002"
GRIDS = (GRID_1, GRID_2)
PASSWORD = "chaos-password-1"
YEAR_MS = 365 * 24 * 3600 * 1000
HOUR_MS = 3600 * 1000
# Device slots: slot i is client i of a world. Two grids, one community head; w1 has two.
SLOTS = (
    ("w1", "grid_worker", (GRID_1,)),
    ("head", "community_head", ()),
    ("w2", "grid_worker", (GRID_2,)),
    ("w3", "grid_worker", (GRID_1,)),
    ("w1", "grid_worker", (GRID_1,)),  # w1's second tablet: one author on two devices
)
WORKERS = tuple(dict.fromkeys(name for name, role, _ in SLOTS if role == "grid_worker"))

# --- the step vocabulary (shared by the hypothesis machine and the seeded soak driver) --------

RECORD_TYPES = ("visit", "resident", "household", "dispute")
VALUES = ("甲", "乙", "丙")
FIELDS = {
    "visit": (
        ("findings", VALUES),
        ("visit_type", ("routine", "key", "policy")),
        ("address", VALUES),
    ),
    "resident": (("name", VALUES), ("note", VALUES), ("gender", ("F", "M", "F"))),
    "household": (("address", VALUES), ("head_name", VALUES), ("note", VALUES)),
    "dispute": (
        ("title", VALUES),
        ("description", VALUES),
        ("risk_grade", ("low", "medium", "high")),
    ),
}
STEP_PARAMS: dict[str, dict[str, Any]] = {
    "accept": {},
    "start": {},
    "close": {},
    "approve_extension": {},
    "reject": {"reason": "不属实"},
    "assign": {"responsible_unit": "司法所", "responsible_person": "李明"},
    "resolve": {"mediation_outcome": "oral_agreement"},
    "follow_up": {"note": "回访满意"},
    "return": {"target_status": "accepted", "reason": "补充材料"},
    "escalate": {"reason": "情况复杂"},
    "request_extension": {"days": 10, "reason": "当事人外出"},
    "refuse_extension": {"reason": "无必要"},
    "supervise": {"level": "yellow", "note": "加快办理"},
}
CONSOLE = ("approve", "return", "resolve", "move")
CLOCK_JUMPS = (YEAR_MS, -YEAR_MS, -HOUR_MS, 0)  # 0: set the clock right again
FAULTS = (
    "none",
    "lose_request",
    "lose_response",
    "duplicate",
    "hold",
    "server_error",
    "kill",
    "kill_after",
    "revoke",
    "edit_during",
    "overtake",
)
# Faults aimed at one phase: they fire at the first push (or pull) request at or after
# request ``at % 2`` of the pass.
_PUSH_ONLY = frozenset({"hold", "server_error"})
_PULL_ONLY = frozenset({"edit_during"})
# Rows the database-fault triggers count; the Nth write inside the push raises.
_FAULT_TRIGGERS = (
    ("UPDATE", "sync_counter"),
    ("INSERT", "record"),
    ("UPDATE", "record"),
    ("INSERT", "removal"),
    ("INSERT", "sync_op"),
    ("INSERT", "audit_entry"),
)
# Parameter ranges of each step kind: index i of the tuple is the range of argument i.
STEP_SPACE: dict[str, tuple[tuple[Any, ...], ...]] = {
    "create": (range(5), RECORD_TYPES, range(5), range(3)),
    "update": (range(5), range(8), range(3), range(3)),
    "delete": (range(5), range(8)),
    "note": (range(5), range(8), range(3)),
    "resolve": (range(5), range(8), range(3)),
    "advance": (range(5), range(8), range(6)),
    "console": (CONSOLE, range(8), range(3)),
    "reassign": (range(len(WORKERS)), range(3)),
    "clock": (range(5), range(len(CLOCK_JUMPS))),
    "sync": (range(5), ("none",), range(1)),
    "sync_faulty": (range(5), FAULTS[1:], range(4)),
    "sync_all": (range(2),),
    "deliver_held": (range(2),),
    "wipe": (range(5), range(2)),
    "backup": (range(5),),
    "restore": (range(5),),
    "burst": (range(5), range(2, 6)),
    "enrol_offline": (range(5), range(1, 4)),
}
STEP_WEIGHTS = {
    "create": 3,
    "update": 6,
    "delete": 1,
    "note": 1,
    "resolve": 2,
    "advance": 2,
    "console": 2,
    "reassign": 1,
    "clock": 1,
    "sync": 3,
    "sync_faulty": 4,
    "sync_all": 2,
    "deliver_held": 1,
    "wipe": 1,
    "backup": 1,
    "restore": 1,
    "burst": 1,
    "enrol_offline": 1,
}


def random_step(rng: random.Random) -> tuple[Any, ...]:
    """One step drawn from :data:`STEP_SPACE` (the soak's driver)."""
    kind = rng.choices(list(STEP_WEIGHTS), weights=list(STEP_WEIGHTS.values()))[0]
    args = tuple(rng.choice(tuple(space)) for space in STEP_SPACE[kind])
    if kind == "sync_faulty":
        return ("sync", *args)
    return (kind, *args)


def random_schedule(seed: int, max_steps: int = 20) -> tuple[int, list[tuple[Any, ...]]]:
    """The schedule of ``seed``: a number of devices and a list of steps. Reproducible."""
    rng = random.Random(seed)
    steps = rng.randint(max(1, max_steps // 2), max_steps)
    return rng.randint(2, 5), [random_step(rng) for _ in range(steps)]


class Violation(AssertionError):
    """An invariant does not hold. ``invariant`` names it."""

    def __init__(self, invariant: str, message: str) -> None:
        super().__init__(f"[{invariant}] {message}")
        self.invariant = invariant


class KillSwitch(BaseException):  # not an error: the device process dies here
    """Raised by the chaos transport: the app is killed; nothing below may catch it."""


def _tmp_base() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() else None


def _device_id(slot: int, generation: int) -> str:
    return f"00000000-0000-4000-8000-{slot:06d}{generation:06d}"


# --- the server and the template every world starts from -------------------------------------


class _QuietFor(logging.Filter):
    """Drops log records emitted while ``app`` handles a request; lets every other app's pass."""

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.app = app

    def filter(self, record: logging.LogRecord) -> bool:
        from flask import current_app

        try:
            return current_app._get_current_object() is not self.app  # type: ignore[attr-defined]
        except RuntimeError:  # outside an app context
            return True


class Harness:
    """The app (one per process) and a template: users, logged-in devices, first sync done."""

    _shared: Harness | None = None

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="linli-chaos-", dir=_tmp_base()))
        self.live = self.root / "server.sqlite3"
        self.template = self.root / "template"
        self.template.mkdir()
        self.app = create_app(
            {
                "TESTING": True,
                "INSTANCE_PATH": str(self.root / "instance"),
                "DATABASE_URL": f"sqlite:///{self.live}",
                "SECRET_KEY": "chaos-" + "k" * 40,
                "SYNC_MAX_BATCH": 3,
                # One thread: a batch that overtakes the one before it cannot see it arrive.
                "SYNC_AFTER_WAIT_MS": 0,
                **(config or {}),
            }
        )
        # Injected faults are logged as 500s: drop this app's records only (the logger is shared
        # by every app of the process, so its level must not change).
        self._quiet = _QuietFor(self.app)
        self.app.logger.addFilter(self._quiet)
        self.user_ids: dict[str, int] = {}
        with self.app.app_context():
            db.create_all()
            for code in (*GRIDS, COMMUNITY):
                chain = [code]
                while (parent := parent_code_of(chain[-1])) is not None:
                    chain.append(parent)
                for unit in reversed(chain):
                    if db.session.get(AdminUnit, unit) is None:
                        db.session.add(
                            AdminUnit(
                                code=unit,
                                name=f"Unit {unit}",
                                level=level_of(unit).value,
                                parent_code=parent_code_of(unit),
                            )
                        )
                        db.session.flush()
            for name, role, grids in dict((slot[0], slot) for slot in SLOTS).values():
                user = User(
                    username=name,
                    display_name=name.upper(),
                    role=role,
                    unit_code=COMMUNITY,
                    password_hash=hash_password(PASSWORD),
                    grids=[UserGrid(grid_code=g) for g in grids],
                )
                db.session.add(user)
                db.session.flush()
                self.user_ids[name] = user.id
            db.session.commit()
        clients = [
            Client(
                db_path=self.template / f"c{slot}.sqlite3",
                device_id=_device_id(slot, 0),
                transport=AppTransport(self.app),
                sleep=lambda s: None,
                page_size=3,
            )
            for slot in range(len(SLOTS))
        ]
        for client, (name, _, _) in zip(clients, SLOTS, strict=True):
            client.login(name, PASSWORD)
        # Records every device already holds, so that schedules start with shared work.
        w1, w2 = clients[0], clients[2]
        w1.record_visit(grid_code=GRID_1, findings=VALUES[0], visit_type="routine")
        w1.create_household(grid_code=GRID_1, address=VALUES[0])
        w1.screen_dispute(grid_code=GRID_1, title=VALUES[0], category="01")
        w2.create_resident(grid_code=GRID_2, name=VALUES[0])
        w2.record_visit(grid_code=GRID_2, findings=VALUES[0], visit_type="key")
        for client in (*clients, *clients):
            client.sync()
        for client in clients:
            client.close()
        self._dispose()
        shutil.copy(self.live, self.template / "server.sqlite3")

    @classmethod
    def shared(cls) -> Harness:
        """One harness per process (building it costs about a second)."""
        if cls._shared is None:
            cls._shared = cls()
            atexit.register(cls._shared.close)
        return cls._shared

    def _dispose(self) -> None:
        with self.app.app_context():
            for engine in db.engines.values():
                engine.dispose()
        with contextlib.closing(sqlite3.connect(self.live)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def reset_server(self) -> None:
        """Put the server database back to the template."""
        with self.app.app_context():
            for engine in db.engines.values():
                engine.dispose()
        for suffix in ("-wal", "-shm"):
            Path(f"{self.live}{suffix}").unlink(missing_ok=True)
        shutil.copy(self.template / "server.sqlite3", self.live)

    def close(self) -> None:
        self.app.logger.removeFilter(self._quiet)
        with contextlib.suppress(Exception):
            self._dispose()
        shutil.rmtree(self.root, ignore_errors=True)


# --- the reference model: what the server said on the wire ------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """The server's first final answer for a key (transient refusals are not final)."""

    op: dict[str, Any]
    digest: str
    outcome: str  # applied | conflict | rejected
    version: int | None
    # The key of the operation this one is a copy of, numbered again (``made_seq``): answered
    # as that one's replay, never applied itself, its own key never held (protocol §3, §5.5).
    twin_of: str | None = None


def _same_change(a: dict[str, Any], b: dict[str, Any], *, numbers: bool = False) -> bool:
    """Two operations as sent are the same change: equal JSON but for the clock stamp (and the
    stamp made with, which a re-stamp records); with ``numbers``, their numbers aside too."""
    unstamped = {"hlc": "", "made_hlc": ""}
    if numbers:
        unstamped.update(seq=0, made_seq=0)
    return canonical_json({**a, **unstamped}) == canonical_json({**b, **unstamped})


def _replay_of(result: dict[str, Any], answer: Answer) -> bool:
    """Whether ``result`` is what a replay of the operation first answered ``answer`` gets:
    ``duplicate``, with that answer's outcome and version (protocol §5.5)."""
    return (result["status"], result.get("original"), result.get("version")) == (
        "duplicate",
        answer.outcome,
        answer.version,
    )


def _identity(op: dict[str, Any]) -> str:
    """An operation's identity among its device's: the stamp it was made with (§4.1)."""
    return op.get("made_hlc") or op["hlc"]


def _writes(op: Operation, version: int | None) -> dict[str, Write]:
    if op.kind is OpKind.DELETE:
        values: dict[str, Any] = {DELETED: True}
    elif op.kind in (OpKind.CREATE, OpKind.UPDATE, OpKind.RESOLVE):
        values = {DELETED: False, **op.fields}
        values[DELETED] = values[DELETED] is True
    else:
        return {}
    return {
        f: Write(v, version or 0, op.hlc, op.device_id, op.seq, op.author, op.base_version)
        for f, v in values.items()
    }


@dataclass
class Model:
    """Every final answer the server gave, and every write people made in the console."""

    final: dict[str, Answer] = field(default_factory=dict)  # keys the server holds
    # Operations answered as the replay of their twin, by key: the server holds none of these
    # keys (another store of the device id may number its own work with one later).
    twins: dict[str, Answer] = field(default_factory=dict)
    server_writes: list[tuple[str, str, Write]] = field(default_factory=list)
    # Keys a restored copy gave its work before it next heard the server's last_seq: the one
    # case where the server may receive another operation under a key it holds (protocol §3).
    may_collide: set[str] = field(default_factory=set)

    def acked(self) -> Iterator[tuple[str, Answer]]:
        return ((k, a) for k, a in self.final.items() if a.outcome in ("applied", "conflict"))

    def answered(self, key: str) -> bool:
        """Whether the operation the harness knows by ``key`` was answered for good: held by
        the server, or answered as its twin's replay."""
        return key in self.final or key in self.twins

    def twin(self, op: dict[str, Any]) -> tuple[str, Answer] | None:
        """The answered operation ``op`` is a copy of, numbered differently: ``op`` was numbered
        again (``made_seq``) at a store's first sign-in, and another store of its device id
        (a copy taken before that sign-in) sent the same operation under another number."""
        made = op.get("made_seq")
        if made is None:
            return None
        for key, answer in self.final.items():
            held = answer.op
            if (
                held["device_id"] == op["device_id"]
                and held["seq"] != op["seq"]
                and held.get("made_seq", held["seq"]) == made
                and _identity(held) == _identity(op)
                and _same_change(held, op, numbers=True)
            ):
                return key, answer
        return None

    def observe_push(self, body: dict[str, Any], answer: dict[str, Any]) -> None:
        for op, result in zip(body["operations"], answer["results"], strict=True):
            self.answer(op, result)

    def answer(self, op: dict[str, Any], result: dict[str, Any]) -> None:
        key = f"{op['device_id']}:{op['seq']}"
        digest = Operation.from_dict(op).digest()
        status, reason = result["status"], result.get("reason")
        if status == "rejected" and reason in TRANSIENT_REASONS:
            return
        first = self.final.get(key)
        held_by_another = first is not None and (
            digest != first.digest and not _same_change(op, first.op)
        )
        # A twin's own key is never held: free, or taken since by another store's operation.
        twin = self.twin(op) if first is None or held_by_another else None
        if twin is not None:
            held, answer = twin
            if not _replay_of(result, answer):
                raise Violation(
                    "idempotency",
                    f"{key} is {held} numbered again (made_seq) by another copy of the store, "
                    f"but was answered {status}/{result.get('original')} ({reason}), "
                    f"not as the replay of {answer.outcome} v{answer.version}",
                )
            self.twins[key] = Answer(op, digest, answer.outcome, answer.version, twin_of=held)
            return
        if first is None:
            if status == "duplicate" or reason == "key_reused":
                raise Violation(
                    "idempotency",
                    f"{key} answered {status} ({reason}) although "
                    "the server never answered it before",
                )
            self.final[key] = Answer(op, digest, status, result.get("version"))
        elif held_by_another:
            if key not in self.may_collide:
                # Another operation under a key the server holds: a store numbering over
                # another's (a device id used again), which only a restored copy's work from
                # before it heard last_seq, or its unsent work a wipe lost, may do.
                raise Violation(
                    "keys", f"{key} sent with another operation than the one the server holds"
                )
            if (status, reason) != ("rejected", "key_reused"):
                raise Violation(
                    "idempotency",
                    f"{key} reused with another payload and "
                    f"answered {status}, not rejected key_reused",
                )
        elif not _replay_of(result, first):
            # The same operation, or the same change stamped again (protocol §5.5): a replay.
            raise Violation(
                "idempotency",
                f"{key} replayed{' re-stamped' if digest != first.digest else ''}: first "
                f"{first.outcome} v{first.version}, now {status}/{result.get('original')} "
                f"v{result.get('version')}",
            )

    def server_write(self, record_id: str, name: str, value: Any, version: int, base: int) -> None:
        self.server_writes.append(
            (record_id, name, Write(value, version, "", "server", 0, "console", base))
        )


# --- the devices and their transport ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str
    at: int  # which sync request of the pass (0: the handshake)


@dataclass(frozen=True, slots=True)
class Backup:
    """A copy of a device's store, taken while it runs (SQLite's online backup)."""

    path: Path
    pending: dict[str, dict[str, Any]]  # key -> op as the worker made it, unsent at the copy
    cursor: int
    signed: bool = True  # False: taken before the store's first sign-in


@dataclass(eq=False)
class Device:
    """The harness's side of one device: its client and what the harness made it do."""

    slot: int
    user: str
    generation: int
    path: Path
    client: Client = field(init=False)
    skew: int = 0
    made: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> op as written
    latest: dict[tuple[str, str], str] = field(default_factory=dict)  # (record, field) -> key
    last_cursor: int = 0
    restarted: bool = False  # a reset or a full re-pull was seen since the last check
    scope_stale: bool = False  # the user's scope changed; not yet synced since
    backup: Backup | None = None
    # Put back to a copy: the session it holds, which the original may have rotated since.
    restored_refresh: str | None = None
    numbering_stale: bool = False  # restored; no handshake or sign-in answer received since
    # False: the store was set up and has not signed in yet; the worker records offline, and
    # signs in when next online (its first sign-in numbers that work, protocol §3).
    signed: bool = True

    @property
    def device_id(self) -> str:
        return _device_id(self.slot, self.generation)

    def key(self, seq: int) -> str:
        """The harness's key of the store's operation ``seq``: its idempotency key, or for work
        recorded before the first sign-in (numbered again then) a key of its own, ``~seq``."""
        return f"{self.device_id}:{seq}" if self.signed else f"{self.device_id}:~{seq}"

    def __str__(self) -> str:
        return f"{self.user}#{self.generation}"


class ChaosTransport:
    """Sits in front of one device; injects the armed fault into one sync request of a pass.

    On the devices of even slots, requests the SDK sends ahead (the next push batch, the next
    pull page) are carried by :meth:`send_ahead`: each reaches the server when the SDK asks
    for its answer, in the order sent, unless an ``overtake`` fault delivers a push that
    follows another (protocol 4's ``after``) at once, ahead of the one before it. A request
    the SDK stopped waiting for (its pass failed or the app died) is still on its way: it
    arrives with the delayed ones (``deliver_held``).
    The devices of odd slots send one request at a time (as over a transport that cannot).
    """

    def __init__(self, world: World, device: Device) -> None:
        self.world, self.device = world, device
        self.concurrent = device.slot % 2 == 0
        self.fault: Fault | None = None
        self.count = 0
        self.on_the_way: list[tuple[Request, list[bool]]] = []

    def arm(self, fault: Fault | None) -> None:
        self.world.held += [request for request, done in self.on_the_way if not done[0]]
        self.on_the_way = []
        self.fault, self.count = fault, 0

    def send_ahead(self, request: Request) -> Callable[[], Response]:
        done = [False]
        self.on_the_way.append((request, done))
        fault = self.fault
        if (
            fault is not None
            and fault.kind == "overtake"
            and request.path.endswith("/sync/push")
            and "after" in request_body(request)
        ):
            self.fault = None
            self.world.stats["fault.overtake"] += 1
            done[0] = True
            try:
                response = self.handle(request)
            except Exception as exc:  # the SDK meets it when it asks for the answer
                error = exc

                def failed() -> Response:
                    raise error

                return failed
            return lambda: response

        def receive() -> Response:
            done[0] = True
            return self.handle(request)

        return receive

    def handle(self, request: Request) -> Response:
        response = self._handle(request)
        # Returned, so the device reads it: a handshake answer's last_seq numbers its work.
        if request.path.endswith("/sync/handshake") and response.status == 200:
            self.device.numbering_stale = False
        return response

    def _handle(self, request: Request) -> Response:
        world = self.world
        if "/sync/" not in request.path:
            return world.wire.handle(request)  # sign-in and refresh: never faulted
        index, self.count = self.count, self.count + 1
        fault = self.fault
        if fault is not None and fault.kind == "overtake":
            fault = None  # fired (or not) by send_ahead()
        phase = None
        if fault is not None and fault.kind in _PUSH_ONLY | _PULL_ONLY:
            phase = "/sync/push" if fault.kind in _PUSH_ONLY else "/sync/pull"
        if (
            fault is None
            or index < (fault.at if phase is None else fault.at % 2)
            or (phase is not None and not request.path.endswith(phase))
        ):
            return world.deliver(request, self.device)
        self.fault = None
        kind = fault.kind
        world.stats[f"fault.{kind}"] += 1
        if kind == "lose_request":
            raise NetworkError("chaos: the request was lost")
        if kind == "hold":
            world.held.append(request)
            raise NetworkError("chaos: the request is delayed")
        if kind == "kill":
            raise KillSwitch("chaos: killed before the request was sent")
        if kind == "revoke":
            world.revoke(self.device)
        elif kind == "edit_during":
            world.edit_during(self.device)
        elif kind == "server_error":
            with world.database_fault(2 * fault.at + index % 2):  # the 0th-7th row written
                return world.deliver(request, self.device)
        response = world.deliver(request, self.device)
        if kind == "lose_response":
            raise NetworkError("chaos: the response was lost")
        if kind == "kill_after":
            raise KillSwitch("chaos: killed before the response was applied")
        if kind == "duplicate":
            return world.deliver(request, self.device)
        return response

    def close(self) -> None:
        pass


# --- the world ---------------------------------------------------------------------------------


def request_body(request: Request) -> dict[str, Any]:
    """The JSON body of a request as the device sent it (gzip or not)."""
    content = request.content
    if request.headers.get("Content-Encoding") == "gzip":
        content = gzip.decompress(content)
    return json.loads(content)


@dataclass(frozen=True, slots=True)
class ServerRecord:
    grid_code: str
    version: int
    seq: int
    state: str
    envelope: str
    data: str  # the current values (JSON): a settled field's value is kept here, not in state

    def merge_state(self) -> RecordState:
        return stored_state(self.state, json.loads(self.data))

    @property
    def snapshot(self) -> str:
        return snapshot_text(self.envelope, self.data)


class World:
    """One schedule's world: ``play`` steps, ``check`` after each, ``heal_and_check`` last."""

    def __init__(self, harness: Harness, n_clients: int) -> None:
        if not 1 <= n_clients <= len(SLOTS):
            raise ValueError(f"1-{len(SLOTS)} clients")
        harness.reset_server()
        self.harness, self.app = harness, harness.app
        self.dir = Path(tempfile.mkdtemp(prefix="world-", dir=harness.root))
        self.wire = AppTransport(self.app)
        self.model = Model()
        self.held: list[Request] = []
        self.server_db = sqlite3.connect(harness.live, isolation_level=None, timeout=10)
        # Every record id the harness created, in order (the template's first).
        self.records: list[str] = [
            r[0] for r in self.server_db.execute("SELECT id FROM record ORDER BY seq")
        ]
        self.grids = {name: tuple(grids) for name, _, grids in SLOTS}
        self.faults_on = True
        self.violation: Violation | None = None  # the first one the wire's model found
        self.stats: Counter[str] = Counter()  # what the schedule exercised
        self.retired: list[Device] = []
        self.devices: list[Device] = []
        for slot in range(n_clients):
            dev = Device(slot, SLOTS[slot][0], 0, self.dir / f"c{slot}g0.sqlite3")
            shutil.copy(harness.template / f"c{slot}.sqlite3", dev.path)
            self._open(dev)
            self.devices.append(dev)

    def _open(self, dev: Device) -> None:
        dev.client = Client(
            db_path=dev.path,
            device_id=dev.device_id,
            transport=ChaosTransport(self, dev),
            sleep=lambda s: None,
            clock=lambda: int(time.time() * 1000) + dev.skew,
            max_attempts=2,
            page_size=3,
        )

    def close(self) -> None:
        for dev in self.devices:
            with contextlib.suppress(Exception):
                dev.client.close()
        self.server_db.close()
        self.wire.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- the wire -----------------------------------------------------------------------------

    def deliver(self, request: Request, device: Device | None = None) -> Response:
        """Send ``request`` to the server and remember what it answered."""
        response = self.wire.handle(request)
        if response.status == 200:
            if request.path.endswith("/sync/push"):
                answer = json.loads(response.content)
                self.stats.update(
                    f"push.{r['status']}.{r.get('reason') or r.get('original') or ''}"
                    for r in answer["results"]
                )
                try:
                    self.model.observe_push(request_body(request), answer)
                except Violation as exc:
                    # Raised inside the SDK's call, which may take it for a failed request
                    # and send it again: remembered, so that the next check raises it.
                    self.violation = self.violation or exc
                    raise
                if self.model.twins:
                    self.stats["push.twin"] = len(self.model.twins)
                page = answer.get("pull")  # protocol 2: the first pull page, with the push
                if device is not None and page is not None:
                    asked = request_body(request)["pull"]
                    if asked.get("cursor") == 0 or page["reset"]:
                        device.restarted = True
            elif (
                request.path.endswith("/sync/pull")
                and device is not None
                and (request_body(request)["cursor"] == 0 or json.loads(response.content)["reset"])
            ):
                device.restarted = True
        return response

    @contextlib.contextmanager
    def database_fault(self, nth: int) -> Iterator[None]:
        """Triggers that make the ``nth`` row written (0-based) raise: a real database error."""
        conn = self.server_db
        conn.execute("CREATE TABLE chaos_fault (n INTEGER)")
        conn.execute("INSERT INTO chaos_fault VALUES (?)", [nth])
        for i, (event, table) in enumerate(_FAULT_TRIGGERS):
            conn.execute(
                f"CREATE TRIGGER chaos_fault_{i} BEFORE {event} ON {table} BEGIN "
                "UPDATE chaos_fault SET n = n - 1; "
                "SELECT RAISE(ABORT, 'chaos: injected database fault') "
                "WHERE (SELECT n FROM chaos_fault) < 0; END"
            )
        try:
            yield
        finally:
            for i in range(len(_FAULT_TRIGGERS)):
                conn.execute(f"DROP TRIGGER IF EXISTS chaos_fault_{i}")
            conn.execute("DROP TABLE chaos_fault")

    # --- steps --------------------------------------------------------------------------------

    def play(self, step: tuple[Any, ...]) -> None:
        getattr(self, f"do_{step[0]}")(*step[1:])

    def _dev(self, index: int) -> Device:
        return self.devices[index % len(self.devices)]

    def _edit(self, dev: Device, action: Any, *args: Any, **kwargs: Any) -> None:
        """Run one local edit and remember the operations it wrote."""
        first = dev.client.store.get("next_seq", 1)
        with contextlib.suppress(ClientError):
            action(*args, **kwargs)
        rows = dev.client.store.db.execute(
            "SELECT op FROM outbox WHERE seq >= ? ORDER BY seq", [first]
        ).fetchall()
        for (text,) in rows:
            op = json.loads(text)
            key = dev.key(op["seq"])
            dev.made[key] = op
            if dev.numbering_stale:
                self.model.may_collide.add(key)
            if op["kind"] == "create" and op["record_id"] not in self.records:
                self.records.append(op["record_id"])
            for name in op.get("fields", {}):
                dev.latest[(op["record_id"], name)] = key

    def _visible(self, dev: Device, live: bool = True) -> list[dict[str, Any]]:
        views = {v["id"]: v for v in dev.client.store.views()}
        found = [views[r] for r in self.records if r in views]
        return [v for v in found if not (live and v["deleted"])]

    def _pick(
        self, dev: Device, index: int, *, live: bool = True, rtype: str | None = None
    ) -> dict[str, Any] | None:
        views = [v for v in self._visible(dev, live) if rtype in (None, v["type"])]
        return views[index % len(views)] if views else None

    def _grids_of(self, user: str) -> tuple[str, ...]:
        return self.grids[user] if user in WORKERS else GRIDS

    def do_create(self, dev_index: int, rtype: str, grid_choice: int, value: int) -> None:
        dev = self._dev(dev_index)
        grids = self._grids_of(dev.user)
        grid = grids[grid_choice % len(grids)]
        if grid_choice == 4 and dev.user in WORKERS:  # on purpose outside the scope: forbidden
            grid = next((g for g in GRIDS if g not in grids), grid)
        text, c = VALUES[value], dev.client
        if rtype == "visit":
            self._edit(dev, c.record_visit, grid_code=grid, findings=text, visit_type="routine")
        elif rtype == "resident":
            self._edit(dev, c.create_resident, grid_code=grid, name=text)
        elif rtype == "household":
            self._edit(dev, c.create_household, grid_code=grid, address=text)
        else:
            self._edit(dev, c.screen_dispute, grid_code=grid, title=text, category="01")

    def do_burst(self, dev_index: int, visits: int) -> None:
        """A round of the grid: new visits, each with a note on it, made offline; a push then
        needs several batches, each with notes on the visits of the batch before it."""
        for n in range(visits):
            self.do_create(dev_index, "visit", 0, n % 3)
            self.do_note(dev_index, -1, n % 3)  # the newest: the visit just made

    def do_enrol_offline(self, dev_index: int, visits: int) -> None:
        """The tablet is set up again under its id and the worker goes on a round before
        signing in: visits, each with a note, recorded offline; then the store is copied (a
        backup before the first sign-in). The original signs in at its next sync; put back,
        the copy numbers the same work differently at its own first sign-in (twins)."""
        self.do_wipe(dev_index, 0)
        self.do_burst(dev_index, visits)
        self.do_backup(dev_index)

    def do_update(self, dev_index: int, pick: int, field_index: int, value: int) -> None:
        dev = self._dev(dev_index)
        if view := self._pick(dev, pick):
            name, values = FIELDS[view["type"]][field_index % 3]
            self._edit(dev, dev.client.update, view["id"], **{name: values[value % 3]})

    def do_delete(self, dev_index: int, pick: int) -> None:
        dev = self._dev(dev_index)
        if view := self._pick(dev, pick):
            self._edit(dev, dev.client.delete, view["id"])

    def do_note(self, dev_index: int, pick: int, value: int) -> None:
        dev = self._dev(dev_index)
        if view := self._pick(dev, pick):
            self._edit(dev, dev.client.add_note, view["id"], f"备注{VALUES[value]}")

    def do_resolve(self, dev_index: int, pick: int, choice: int) -> None:
        dev = self._dev(dev_index)
        views = [v for v in self._visible(dev, live=False) if v["conflicts"]]
        if views:
            view = views[pick % len(views)]
            name = sorted(view["conflicts"])[0]
            competing = view["conflicts"][name]
            value = competing[choice % len(competing)]["value"]
            if name == DELETED:
                value = bool(value)
            self._edit(dev, dev.client.resolve, view["id"], name, value, "现场核实")

    def do_advance(self, dev_index: int, pick: int, choice: int) -> None:
        dev = self._dev(dev_index)
        if view := self._pick(dev, pick, rtype="dispute"):
            try:
                allowed = dev.client.allowed_actions(view["id"])
            except ClientError:
                return
            if allowed:
                action = allowed[choice % len(allowed)]
                self._edit(dev, dev.client.advance, view["id"], action, **STEP_PARAMS[action])

    def do_console(self, kind: str, pick: int, choice: int) -> None:
        """The community head acts in the console: review, resolve a conflict, move a record."""
        server = self.server_records()
        ids = [r for r in self.records if r in server]
        if not ids:
            return
        rid = ids[pick % len(ids)]
        before = server[rid]
        with self.app.app_context():
            head = db.session.get(User, self.harness.user_ids["head"])
            scope = Scope.for_user(head)
            try:
                if kind in ("approve", "return"):
                    decision = "approved" if kind == "approve" else "returned"
                    comment = "请补充" if kind == "return" else None
                    actions.review(head, scope, rid, decision, comment)
                elif kind == "resolve":
                    conflicts = before.merge_state().conflicts()
                    if not conflicts:
                        return
                    name = sorted(conflicts)[0]
                    value = conflicts[name][choice % len(conflicts[name])].value
                    value = bool(value) if name == DELETED else value
                    rec = actions.resolve(head, scope, rid, name, value, "电话核实")
                    self.model.server_write(rid, name, value, rec.state.version, before.version)
                elif kind == "move":
                    target = GRID_2 if before.grid_code == GRID_1 else GRID_1
                    rec = actions.move(head, scope, rid, target)
                    self.model.server_write(
                        rid, "grid_code", target, rec.state.version, before.version
                    )
                self.stats[f"console.{kind}"] += 1
            except APIError:
                db.session.rollback()

    def do_reassign(self, worker: int, choice: int) -> None:
        """An admin changes a worker's grids (the scope token changes: devices reset)."""
        name = WORKERS[worker % len(WORKERS)]
        home = dict((n, g) for n, _, g in SLOTS)[name]
        other = tuple(g for g in GRIDS if g not in home)
        grids = (other, GRIDS, home)[choice % 3]
        if grids == self.grids[name]:
            return
        with self.app.app_context():
            accounts.set_grids("chaos", self.harness.user_ids[name], grids)
            db.session.commit()
        self.grids[name] = grids
        for dev in self.devices:
            if dev.user == name:
                dev.scope_stale = True

    def do_clock(self, dev_index: int, jump: int) -> None:
        dev = self._dev(dev_index)
        delta = CLOCK_JUMPS[jump % len(CLOCK_JUMPS)]
        dev.skew = dev.skew + delta if delta else 0

    def do_sync(self, dev_index: int, fault: str = "none", at: int = 0) -> None:
        dev = self._dev(dev_index)
        self._sign_in_first(dev)
        transport = dev.client.transport
        assert isinstance(transport, ChaosTransport)
        transport.arm(Fault(fault, at) if self.faults_on and fault != "none" else None)
        try:
            dev.client.sync()
        except KillSwitch:
            self.stats["sync.killed"] += 1
            self._reopen(dev)
            return
        except DeviceRevoked:
            self.stats["sync.revoked"] += 1
            self._retire(dev)
            return
        except ClientError as exc:
            self.stats[f"sync.failed.{exc.code}"] += 1
            self._sign_in_again(dev, exc)
            return
        finally:
            transport.arm(None)
        self.stats["sync.ok"] += 1
        dev.scope_stale = False

    def do_wipe(self, dev_index: int, sign_in: int = 1) -> None:
        """The tablet is wiped and enrolled again under its device id: a new store, the worker
        signs in again — at once, or (``sign_in`` 0) only when next online, recording offline
        meanwhile. What the old store had not sent is gone with it (the wipe's loss, not the
        protocol's): its edits are forgotten; its pushes still on the way arrive later."""
        dev = self._dev(dev_index)
        with contextlib.suppress(Exception):
            dev.client.close()
        for extra in ("", "-wal", "-shm", ".sync-lock"):
            Path(f"{dev.path}{extra}").unlink(missing_ok=True)
        self._left_on_the_way(dev)
        dev.made = {key: op for key, op in dev.made.items() if key in self.model.final}
        dev.latest = {}
        dev.last_cursor, dev.restarted, dev.scope_stale = 0, True, False
        dev.restored_refresh, dev.numbering_stale = None, False  # a new store, a new session
        self._open(dev)
        dev.signed = False
        if sign_in:
            self._sign_in_first(dev)
        self.stats["wipe" if sign_in else "wipe.offline"] += 1

    def _left_on_the_way(self, dev: Device) -> None:
        """The store is replaced (wiped, or put back to a copy) while pushes it sent are still
        on their way: they may arrive later, after the new store gave their numbers to other
        work (protocol §3's limit). Whichever of the two operations under such a number
        arrives second is refused ``key_reused``; the other is held."""
        for request in self.held:
            body = request_body(request)
            if body.get("device_id") == dev.device_id and request.path.endswith("/sync/push"):
                for op in body.get("operations", ()):
                    if isinstance(op, dict) and "seq" in op:
                        self.model.may_collide.add(f"{dev.device_id}:{op['seq']}")
                self.stats["held.outlived_store"] += 1

    def _sign_in_first(self, dev: Device) -> None:
        """A store that has not signed in yet: the worker signs in (the app asks when online).
        The store numbers the work it recorded meanwhile above the server's ``last_seq``, each
        operation with the number it was made with (``made_seq``); the harness follows it to
        its new key."""
        if dev.signed:
            return
        dev.client.login(dev.user, PASSWORD)
        dev.signed = True
        moved: dict[str, str] = {}
        for seq, text in dev.client.store.db.execute("SELECT seq, op FROM outbox").fetchall():
            op = json.loads(text)
            before = f"{dev.device_id}:~{op.get('made_seq', seq)}"
            made = dev.made.pop(before, None)
            if made is None:
                continue  # not the worker's: check_outbox_intact names it
            made_with = op.get("made_seq", made["seq"])  # kept, if it was not numbered again
            if made_with != made["seq"] or not _same_change(made, op, numbers=True):
                raise Violation(
                    "outbox",
                    f"{dev}: edit {before} numbered {seq} at the first sign-in was changed",
                )
            moved[before] = dev.key(seq)
            dev.made[dev.key(seq)] = op
        dev.latest = {name: moved.get(key, key) for name, key in dev.latest.items()}
        if moved:
            self.stats["sign_in.renumbered"] += 1

    def do_backup(self, dev_index: int) -> None:
        """A copy of the device's store is taken while the app runs (a tablet backup)."""
        dev = self._dev(dev_index)
        store = dev.client.store
        path = self.dir / f"{dev.path.stem}.backup.sqlite3"
        path.unlink(missing_ok=True)
        with contextlib.closing(sqlite3.connect(path)) as copy:
            store.db.conn.backup(copy)
        seqs = [s for (s,) in store.db.execute("SELECT seq FROM outbox WHERE state = 'pending'")]
        pending = {dev.key(s): dev.made[dev.key(s)] for s in seqs}
        dev.backup = Backup(path, pending, store.get("cursor", 0), dev.signed)
        self.stats["backup" if dev.signed else "backup.offline"] += 1

    def do_restore(self, dev_index: int) -> None:
        """The tablet is put back to its last copy and the app started again: what the store
        did since is gone (the restore's loss, not the protocol's), except what the server
        holds; the copy's unsent work is pending again. Protocol §3's limit: that work, and
        the copy's work from now until it next hears the server, may meet numbers another
        store of the id used since."""
        dev = self._dev(dev_index)
        backup = dev.backup
        if backup is None:
            return
        with contextlib.suppress(Exception):
            dev.client.close()
        for extra in ("", "-wal", "-shm", ".sync-lock"):
            Path(f"{dev.path}{extra}").unlink(missing_ok=True)
        shutil.copy(backup.path, dev.path)
        self._left_on_the_way(dev)
        dev.made = {
            **{key: op for key, op in dev.made.items() if key in self.model.final},
            **backup.pending,
        }
        dev.latest = {}
        for key, op in sorted(backup.pending.items(), key=lambda item: item[1]["seq"]):
            for name in op.get("fields", {}):
                dev.latest[(op["record_id"], name)] = key
            held = self.model.final.get(key)
            if held is not None and not _same_change(held.op, op):
                # Unsent work of the copy under a number another store of the id used since
                # (the original lost it in a wipe; the store enrolled after numbered over it).
                self.model.may_collide.add(key)
        dev.last_cursor, dev.restarted, dev.scope_stale = backup.cursor, True, True
        # A copy from before the first sign-in hears last_seq at its own first sign-in.
        dev.numbering_stale, dev.signed = backup.signed, backup.signed
        self._open(dev)
        dev.restored_refresh = dev.client.store.get("tokens", {}).get("refresh")
        self.stats["restore"] += 1

    def _sign_in_again(self, dev: Device, exc: ClientError) -> bool:
        """A restored copy's refresh token was rotated by the original since: the server ends
        that session, and the app asks the worker to sign in again. True if it did. Only for
        the session the copy brought back: once it has refreshed or signed in, a refusal of
        its tokens is a finding like any other."""
        tokens = dev.client.store.get("tokens", {}) or {}
        if not (
            dev.restored_refresh is not None
            and tokens.get("refresh") == dev.restored_refresh
            and isinstance(exc, AuthError)
            and exc.code in ("token_reused", "token_revoked")
        ):
            return False
        dev.client.login(dev.user, PASSWORD)
        dev.restored_refresh, dev.numbering_stale = None, False
        self.stats["restore.sign_in"] += 1
        return True

    def do_sync_all(self, order: int) -> None:
        """Everyone syncs (the end of the day), in slot order or the reverse, without faults."""
        for dev in list(self.devices if order == 0 else reversed(self.devices)):
            self.do_sync(self.devices.index(dev))

    def do_deliver_held(self, order: int) -> None:
        """Delayed requests arrive now, after later ones (in or out of their order)."""
        held, self.held = self.held, []
        for request in held if order == 0 else reversed(held):
            self.deliver(request)

    # --- what faults do to devices ------------------------------------------------------------

    def _reopen(self, dev: Device) -> None:
        """The app died mid-sync: open the same database again, as the restarted app would."""
        with contextlib.suppress(Exception):
            dev.client.close()
        self._open(dev)

    def revoke(self, dev: Device) -> None:
        with self.app.app_context():
            accounts.revoke_device("chaos", dev.device_id)
            db.session.commit()

    def _retire(self, dev: Device) -> None:
        """The device was revoked: keep its database, sign the worker in on a new device."""
        dev.client.close()
        self.retired.append(dev)
        self.check_outbox_intact(dev)
        new = Device(
            dev.slot,
            dev.user,
            dev.generation + 1,
            self.dir / f"c{dev.slot}g{dev.generation + 1}.sqlite3",
            skew=dev.skew,
        )
        self._open(new)
        new.client.login(dev.user, PASSWORD)
        self.devices[self.devices.index(dev)] = new

    def edit_during(self, dev: Device) -> None:
        """The worker keeps typing while the sync runs: an edit between two requests."""
        server = self.server_records()
        views = sorted(
            self._visible(dev), key=lambda v: server[v["id"]].seq if v["id"] in server else 0
        )
        if views:  # the record the server changed last: the pull under way may bring it
            view = views[-1]
            name, values = FIELDS[view["type"]][0]
            current = view["fields"].get(name)
            value = next((v for v in values if v != current), values[0])
            self._edit(dev, dev.client.update, view["id"], **{name: value})

    # --- reading the server -------------------------------------------------------------------

    def server_records(self) -> dict[str, ServerRecord]:
        rows = self.server_db.execute(
            "SELECT id, grid_code, version, seq, state, envelope, data FROM record"
        ).fetchall()
        return {r[0]: ServerRecord(*r[1:]) for r in rows}

    def server_own_writes(self) -> list[tuple[str, str, Write]]:
        """Writes the server made itself (workflow, console): they saw all before them."""
        rows = self.server_db.execute(
            "SELECT payload, version FROM sync_op WHERE device_id = 'server'"
        ).fetchall()
        found = []
        for payload, version in rows:
            op = Operation.from_dict(json.loads(payload))
            found += [(op.record_id, n, w) for n, w in _writes(op, version).items()]
        return found

    def server_top(self) -> int:
        row = self.server_db.execute(
            "SELECT value FROM sync_counter WHERE name = 'change'"
        ).fetchone()
        return row[0] if row else 0

    def scope_of(self, user: str) -> tuple[str, ...]:
        return self.grids[user] if user in WORKERS else (COMMUNITY,)

    # --- invariants after every step ------------------------------------------------------------

    def check(self) -> None:
        if self.violation is not None:
            raise self.violation
        server = self.server_records()
        self.check_nothing_lost(server)
        top = self.server_top()
        for dev in self.devices:
            self.check_outbox_intact(dev)
            self.check_read_your_writes(dev)
            self.check_cursor_and_scope(dev, server, top)

    def check_nothing_lost(self, server: dict[str, ServerRecord]) -> None:
        """Each acknowledged write is live (current or competing in a conflict), or a later
        write whose author had seen it superseded it; acknowledged notes and steps are there."""
        acked = [(Operation.from_dict(a.op), a) for _, a in self.model.acked()]
        by_field: dict[tuple[str, str], list[Write]] = {}
        for op, answer in acked:
            for name, w in _writes(op, answer.version).items():
                by_field.setdefault((op.record_id, name), []).append(w)
        for rid, name, w in [*self.model.server_writes, *self.server_own_writes()]:
            by_field.setdefault((rid, name), []).append(w)
        states: dict[str, RecordState] = {}
        for op, answer in acked:
            if op.record_id not in server:
                raise Violation(
                    "nothing_lost",
                    f"{op.key} was acknowledged ({answer.outcome}) "
                    f"but the server has no record {op.record_id}",
                )
            state = states.get(op.record_id) or server[op.record_id].merge_state()
            states[op.record_id] = state
            if op.kind is OpKind.APPEND:
                if op.item["id"] not in state.collections.get(op.collection, {}):
                    raise Violation(
                        "nothing_lost",
                        f"acknowledged {op.collection} item of "
                        f"{op.key} is missing from {op.record_id}",
                    )
                continue
            for name, w in _writes(op, answer.version).items():
                live = [
                    x
                    for x in state.fields.get(name, ())
                    if (x.device_id, x.seq) == (w.device_id, w.seq)
                ]
                if live and live[0].value == w.value:
                    continue
                if not any(
                    x.saw(w)
                    for x in by_field[(op.record_id, name)]
                    if (x.device_id, x.seq) != (w.device_id, w.seq)
                ):
                    raise Violation(
                        "nothing_lost",
                        f"acknowledged write lost: {op.key} {op.record_id} {name}={w.value!r}",
                    )

    def check_outbox_intact(self, dev: Device) -> None:
        """Every edit the server has not finally answered is still pending, unchanged (a new
        clock stamp aside); the outbox holds nothing the worker did not do."""
        sql = "SELECT seq, op, state FROM outbox"
        if dev in self.retired:  # closed: read its file as a forensic copy would
            with contextlib.closing(sqlite3.connect(dev.path)) as conn:
                rows = conn.execute(sql).fetchall()
        else:
            rows = dev.client.store.db.execute(sql).fetchall()
        pending = {s: json.loads(o) for s, o, state in rows if state == "pending"}
        for key, op in dev.made.items():
            if self.model.answered(key):
                continue
            have = pending.get(op["seq"])
            if have is None:
                raise Violation(
                    "outbox",
                    f"{dev}: unacknowledged edit {key} ({op['kind']}) vanished from the outbox",
                )
            if not _same_change(have, op):
                raise Violation("outbox", f"{dev}: pending edit {key} was changed")
        for seq in pending:
            if dev.key(seq) not in dev.made:
                raise Violation("outbox", f"{dev}: pending op {seq} that the worker never made")

    def check_read_your_writes(self, dev: Device) -> None:
        """Until the server answers an edit, the device shows it."""
        views = {v["id"]: v for v in dev.client.store.views()}
        for (rid, name), key in dev.latest.items():
            if self.model.answered(key) or name == DELETED or rid not in views:
                continue
            wanted = dev.made[key]["fields"][name]
            if views[rid]["fields"].get(name) != wanted:
                raise Violation(
                    "read_your_writes",
                    f"{dev} shows {rid} {name}="
                    f"{views[rid]['fields'].get(name)!r}, its pending edit {key} "
                    f"wrote {wanted!r}",
                )

    def check_cursor_and_scope(
        self, dev: Device, server: dict[str, ServerRecord], top: int
    ) -> None:
        """The cursor only moves forward (except on a reset or full re-pull), never past the
        server, and covers what it claims: every change in scope at or below it is stored.
        The device holds nothing outside its user's jurisdiction (pending removals aside)."""
        store = dev.client.store
        cursor = store.get("cursor", 0)
        if cursor < dev.last_cursor and not dev.restarted:
            raise Violation("cursor", f"{dev}: cursor went back {dev.last_cursor} -> {cursor}")
        if cursor > top:
            raise Violation("cursor", f"{dev}: cursor {cursor} beyond the server's {top}")
        dev.last_cursor, dev.restarted = cursor, False
        if dev.scope_stale:
            return
        scope = Scope(self.scope_of(dev.user))
        local = dict(
            store.db.execute(
                "SELECT id, snapshot FROM records WHERE snapshot IS NOT NULL"
            ).fetchall()
        )
        for rid, rec in server.items():
            if rec.seq <= cursor and scope.contains(rec.grid_code):
                if rid not in local:
                    raise Violation(
                        "cursor",
                        f"{dev}: change {rec.seq} of {rid} is at or "
                        f"below the cursor {cursor} but was never applied",
                    )
                if json.loads(local[rid]) != json.loads(rec.snapshot):
                    raise Violation(
                        "cursor",
                        f"{dev}: {rid} differs from the server's "
                        f"change {rec.seq} although the cursor is {cursor}",
                    )
        for rid in local:
            rec = server.get(rid)
            if rec is None:
                raise Violation("scope", f"{dev} holds {rid}, which the server does not have")
            if not scope.contains(rec.grid_code) and rec.seq <= cursor:
                raise Violation(
                    "scope",
                    f"{dev} ({dev.user}) holds {rid} of grid "
                    f"{rec.grid_code}, outside its jurisdiction",
                )

    # --- the end: heal, then convergence, nothing lost, idempotent replay ---------------------

    def heal_and_check(self) -> None:
        self.faults_on = False
        self.do_deliver_held(0)
        for _ in range(2):
            for dev in self.devices:
                try:
                    self._sign_in_first(dev)
                    try:
                        dev.client.sync()
                    except ClientError as exc:
                        if not self._sign_in_again(dev, exc):
                            raise
                        dev.client.sync()
                except (ClientError, KillSwitch) as exc:
                    raise Violation(
                        "convergence", f"{dev}: sync failed after healing: {exc!r}"
                    ) from exc
                dev.scope_stale = False
            self.check()
        server = self.server_records()
        top = self.server_top()
        for dev in self.devices:
            store = dev.client.store
            if dev.client.pending_count() or store.count("acked"):
                raise Violation(
                    "convergence",
                    f"{dev}: {dev.client.pending_count()} pending, "
                    f"{store.count('acked')} acked after healing",
                )
            unanswered = sorted(k for k in dev.made if not self.model.answered(k))
            if unanswered:
                raise Violation("nothing_lost", f"{dev}: edits never answered: {unanswered}")
            if store.get("cursor") != top:
                raise Violation("cursor", f"{dev}: cursor {store.get('cursor')} != {top}")
            scope = Scope(self.scope_of(dev.user))
            want = {
                rid: json.loads(r.snapshot)
                for rid, r in server.items()
                if scope.contains(r.grid_code)
            }
            have = {v["id"]: v for v in store.views()}
            for rid in sorted(set(want) | set(have)):
                if want.get(rid) != have.get(rid):
                    raise Violation(
                        "convergence",
                        f"{dev}: {rid} is {have.get(rid)} on the "
                        f"device, {want.get(rid)} on the server",
                    )
        for dev in self.retired:
            self.check_outbox_intact(dev)
        self.check_replay_is_noop()

    def check_replay_is_noop(self) -> None:
        """Re-sending every answered operation changes nothing and answers duplicate."""
        before = self.server_records()
        for dev in self.devices:
            ops = [a.op for k, a in self.model.final.items() if a.op["device_id"] == dev.device_id]
            for start in range(0, len(ops), 3):
                try:
                    answer = dev.client.api.call(
                        "/api/v1/sync/push",
                        {"device_id": dev.device_id, "operations": ops[start : start + 3]},
                    )
                except ClientError as exc:
                    raise Violation("idempotency", f"{dev}: replay failed: {exc!r}") from exc
                for result in answer["results"]:
                    if result["status"] != "duplicate":
                        raise Violation("idempotency", f"{dev}: replay answered {result}")
        if self.server_records() != before:
            raise Violation("idempotency", "replaying acknowledged operations changed records")


def run_schedule(harness: Harness, n_clients: int, steps: list[tuple[Any, ...]]) -> World:
    """Play a whole schedule with checks after every step, then heal and check the end."""
    world = World(harness, n_clients)
    try:
        world.check()
        for step in steps:
            world.play(step)
            world.check()
        world.heal_and_check()
    finally:
        world.close()
    return world
