"""The record store: load records, merge operations into them, write a batch in one go.

A ``RecordBatch`` is one unit of work on records (a device's push, or a person's action in the
console). It takes the write lock, loads the records it needs with one query, lets the caller
merge operations in memory, and then writes everything with a handful of set-based statements:
the change sequence is allocated once for the batch, records are inserted or updated with
executemany, receipts are inserted with executemany. Commit is the caller's.

The write lock makes sequence order equal commit order: on PostgreSQL a transaction-scoped
advisory lock, on SQLite the BEGIN IMMEDIATE every transaction starts with. A pull can therefore
never move its cursor past a change that commits later.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    ARRAY,
    JSON,
    Connection,
    String,
    Table,
    any_,
    bindparam,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from server import jsontext
from server.db import utcnow
from server.models import GridDigest, Record, Removal, SyncCounter, SyncOp
from sync import (
    DELETED,
    HybridClock,
    MergeResult,
    Operation,
    OpKind,
    Outcome,
    RecordState,
    merge,
)
from sync import snapshot as build_snapshot

_PG_WRITE_LOCK = 0x4C494E4C4953  # "LINLIS"
_RECORD, _COUNTER = Record.__table__, SyncCounter.__table__
# Core statements built once, run on the session's connection: through the ORM (an ORM-enabled
# UPDATE, an ORM select of columns) each cost about twice the CPU for the same SQL.
_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
_LOAD_COLUMNS = select(
    _RECORD.c.id,
    _RECORD.c.state,
    _RECORD.c.data,
    _RECORD.c.grid_code,
    _RECORD.c.review_status,
    _RECORD.c.review,
    _RECORD.c.author_id,
    _RECORD.c.device_id,
    _RECORD.c.created_at,
)
_LOAD = _LOAD_COLUMNS.where(_RECORD.c.id.in_(bindparam("ids", expanding=True)))
# PostgreSQL: the ids as one array parameter (an IN list of 500 cost about 3 ms to parse and
# plan, for a batch of creates that finds nothing).
_LOAD_ANY = _LOAD_COLUMNS.where(_RECORD.c.id == any_(bindparam("ids", type_=ARRAY(String(36)))))
_ALLOCATE = (
    update(_COUNTER)
    .where(_COUNTER.c.name == bindparam("b_name"))
    .values(value=_COUNTER.c.value + bindparam("b_count"))
    .returning(_COUNTER.c.value)
)
_SERVER_CLOCK = HybridClock("server")
SERVER_DEVICE = "server"


def stored_state(state: str, data: Mapping[str, Any] | None) -> RecordState:
    """A record's merge state from its ``state`` and ``data`` (current values) columns: a field
    with one live write is stored as its stamp alone, its value being in ``data``."""
    return RecordState.from_dict(jsontext.loads(state), data)


def server_hlc() -> str:
    """A timestamp of the server's own clock, for changes the server makes."""
    return str(_SERVER_CLOCK.now())


class JSONText(str):
    """A JSON column's value already encoded (by :func:`jsontext.dumps`): written as it is."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Created:
    """A create's stored texts, worked out before the write lock: they depend on the operation
    alone (a new record nothing else changed in the batch is always written the same way).
    Its merge state is built only if something asks for it."""

    op: Operation
    grid_code: str
    data: JSONText
    state: str
    envelope: str

    def merged(self) -> RecordState:
        """The state :func:`sync.merge` gives the create (built when first asked for)."""
        state = merge(None, self.op).state
        assert state is not None
        return state


#: The outcome of every create that finds no record (its state is the record's, see Created).
CREATED = MergeResult(Outcome.APPLIED, None, 1, changed=True)


@functools.lru_cache(maxsize=1024)
def _settled(names: tuple[str, ...]) -> str:
    """A new record's settled fields in its state, ``{"a":0,…,"_deleted":[[false,0]]}``, as
    the general path spells them (a device sends its fields in the same few orders)."""
    settled: dict[str, Any] = dict.fromkeys(names, 0)
    settled[DELETED] = [[False, 0]]
    return jsontext.dumps(settled)


def prepare_create(op: Operation) -> Created:
    """What :meth:`RecordBatch._row` writes for ``op`` creating a record in the grid its
    fields name, with no review yet, merged into no record: the same texts, built directly
    from their parts (a test holds them byte-equal to the general path's)."""
    grid = op.fields.get("grid_code")
    grid = grid if isinstance(grid, str) else ""
    text = jsontext.dumps
    head = f'{{"type":{text(op.record_type)},"id":{text(op.record_id)},"version":1'
    stamp = text([1, op.hlc, op.device_id, op.seq, op.author, op.base_version])
    return Created(
        op,
        grid,
        JSONText(text(op.fields)),
        f'{head},"stamps":[{stamp}],"fields":{_settled(tuple(op.fields))},"collections":{{}}}}',
        f'{head},"grid_code":{text(grid)},"deleted":false,"conflicts":{{}},"collections":{{}},'
        '"review":null}',
    )


@dataclass
class StoredRecord:
    """A record loaded for merging; ``dirty`` when it must be written back."""

    _state: RecordState | None  # None: a new record whose state is ``created.merged()``
    grid_code: str
    review_status: str = "pending"
    review: dict[str, Any] | None = None
    author_id: int | None = None
    device_id: str | None = None
    created_at: datetime | None = None
    exists: bool = True
    dirty: bool = False
    old_grid: str | None = None  # set when the record moves to another grid
    stored_grid: str | None = None  # grid and version as last written, for the grid digests
    stored_version: int = 0
    created: Created | None = None  # a new record's texts, while nothing has changed it

    def __post_init__(self) -> None:
        if self.exists and self.stored_grid is None:
            self.stored_grid, self.stored_version = self.grid_code, self.state.version

    @property
    def state(self) -> RecordState:
        if self._state is None:
            assert self.created is not None
            self._state = self.created.merged()
        return self._state

    @state.setter
    def state(self, state: RecordState) -> None:
        self._state = state

    @property
    def id(self) -> str:
        if self._state is None and self.created is not None:
            return self.created.op.record_id
        return self.state.record_id

    @property
    def version(self) -> int:
        return 1 if self._state is None else self._state.version


@dataclass
class RecordBatch:
    session: Session
    user_id: int | None
    batch_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    now: datetime = field(default_factory=utcnow)
    records: dict[str, StoredRecord] = field(default_factory=dict)
    receipts: list[dict[str, Any]] = field(default_factory=list)
    _server_seq: int | None = None

    def __post_init__(self) -> None:
        conn = self.session.connection()
        if conn.dialect.name == "postgresql":
            conn.execute(_LOCK, {"k": _PG_WRITE_LOCK})

    # --- loading -------------------------------------------------------------------------

    def load(self, ids: Iterable[str]) -> dict[str, StoredRecord]:
        wanted = [i for i in set(ids) if i not in self.records]
        conn = self.session.connection()
        statement = _LOAD_ANY if conn.dialect.name == "postgresql" else _LOAD
        for start in range(0, len(wanted), 500):
            rows = conn.execute(statement, {"ids": wanted[start : start + 500]})
            for row in rows:
                self.records[row.id] = StoredRecord(
                    stored_state(row.state, row.data),
                    row.grid_code,
                    row.review_status,
                    row.review,
                    row.author_id,
                    row.device_id,
                    row.created_at,
                )
        return {i: self.records[i] for i in ids if i in self.records}

    @staticmethod
    def warm(session: Session) -> None:
        """Run the record load once for no record (no write lock taken)."""
        conn = session.connection()
        conn.execute(_LOAD_ANY if conn.dialect.name == "postgresql" else _LOAD, {"ids": [""]}).all()

    def get(self, record_id: str) -> StoredRecord | None:
        return self.load([record_id]).get(record_id)

    # --- changing ------------------------------------------------------------------------

    def apply(
        self,
        rec: StoredRecord | None,
        op: Operation,
        result: MergeResult,
        *,
        grid_code: str | None = None,
    ) -> StoredRecord | None:
        """Keep the outcome of merging ``op``: new state, and a new record if it was created."""
        if not result.changed or result.state is None:
            return rec
        if rec is None:
            rec = StoredRecord(
                result.state,
                grid_code or "",
                author_id=self.user_id,
                device_id=op.device_id,
                created_at=self.now,
                exists=False,
            )
            self.records[rec.id] = rec
        rec.state = result.state
        rec.dirty, rec.created = True, None
        return rec

    def create(self, op: Operation, created: Created) -> StoredRecord:
        """Keep a new record from a create worked out beforehand (:func:`prepare_create`)."""
        rec = StoredRecord(
            None,
            created.grid_code,
            author_id=self.user_id,
            device_id=op.device_id,
            created_at=self.now,
            exists=False,
            dirty=True,
            created=created,
        )
        self.records[rec.id] = rec
        return rec

    def receipt(
        self,
        op: Operation,
        result: MergeResult,
        *,
        canonical: str | None = None,
        digest: str | None = None,
    ) -> None:
        """Remember the answer for ``op``'s key (and its payload, the record's history); pass
        the canonical payload and its digest if they are already known."""
        canonical = canonical or op.canonical(jsontext.canonical)
        self.receipts.append(
            {
                "device_id": op.device_id,
                "seq": op.seq,
                "record_id": op.record_id,
                "digest": digest or op.digest(canonical),
                "outcome": str(result.outcome),
                "version": result.version,
                "reason": result.reason,
                "conflicts": ",".join(result.conflicts) or None,
                "user_id": self.user_id,
                "batch_id": self.batch_id,
                "received_at": self.now,
                "payload": canonical,
                "made_seq": op.made_seq,
            }
        )

    def server_write(
        self,
        rec: StoredRecord,
        fields: dict[str, Any],
        *,
        kind: OpKind = OpKind.UPDATE,
        reason: str | None = None,
    ) -> MergeResult:
        """A change made by the server on a person's behalf (workflow, resolution, move).

        It has seen everything (its base is the current version), so it never conflicts with
        what is stored; it is merged and kept like any device's operation.
        """
        op = Operation(
            device_id=SERVER_DEVICE,
            seq=self.next_server_seq(),
            kind=kind,
            record_type=rec.state.record_type,
            record_id=rec.id,
            base_version=rec.state.version,
            hlc=str(_SERVER_CLOCK.now()),
            author=str(self.user_id or ""),
            fields=fields,
            reason=reason,
        )
        result = merge(rec.state, op)
        self.apply(rec, op, result)
        self.receipt(op, result)
        return result

    def touch(self, rec: StoredRecord) -> None:
        """Mark ``rec`` changed without a merge (review decisions, moves)."""
        rec.state  # noqa: B018 - a new record's state is built before its texts are dropped
        rec.dirty, rec.created = True, None

    def next_server_seq(self) -> int:
        if self._server_seq is None:
            row = self.session.get(SyncCounter, "server_op")
            self._server_seq = row.value if row else 0
        self._server_seq += 1
        return self._server_seq

    # --- writing -------------------------------------------------------------------------

    def _allocate(self, name: str, count: int) -> int:
        """Reserve ``count`` numbers of counter ``name``; return the last one."""
        conn = self.session.connection()
        value = conn.execute(_ALLOCATE, {"b_name": name, "b_count": count}).scalar()
        if value is None:
            conn.execute(_COUNTER.insert(), {"name": name, "value": count})
            value = count
        return value

    def write(self) -> int:
        """Write every changed record and every receipt; return the number of records written."""
        dirty = [r for r in self.records.values() if r.dirty]
        if self._server_seq is not None:
            current = self.session.get(SyncCounter, "server_op")
            if current is None:
                self.session.execute(
                    insert(SyncCounter).values(name="server_op", value=self._server_seq)
                )
            else:
                current.value = self._server_seq
                self.session.flush()
        if dirty:
            last = self._allocate("change", len(dirty))
            first = last - len(dirty) + 1
            new_rows, old_rows, removals = [], [], []
            for seq, rec in enumerate(dirty, start=first):
                row = self._row(rec, seq)
                (old_rows if rec.exists else new_rows).append(row)
                if rec.old_grid and rec.old_grid != rec.grid_code:
                    removals.append(
                        {
                            "seq": seq,
                            "record_id": rec.id,
                            "grid_code": rec.old_grid,
                            "reason": "scope",
                        }
                    )
            # Core executemany on the session's connection: the ORM's bulk-insert layer adds
            # nothing for plain rows and costs about as much as the SQL itself.
            conn = self.session.connection()
            if new_rows:
                insert_rows(conn, Record.__table__, new_rows)
            if old_rows:
                table = Record.__table__
                stmt = table.update().where(table.c.id == bindparam("b_id"))
                conn.execute(stmt, [{**r, "b_id": r.pop("id")} for r in old_rows])
            if removals:
                conn.execute(Removal.__table__.insert(), removals)
            self._update_digests(conn, dirty)
            for rec in dirty:
                rec.exists, rec.dirty, rec.old_grid = True, False, None
                rec.stored_grid, rec.stored_version = rec.grid_code, rec.version
        if self.receipts:
            insert_rows(self.session.connection(), SyncOp.__table__, self.receipts)
            self.receipts = []
        return len(dirty)

    def _update_digests(self, conn: Any, dirty: list[StoredRecord]) -> None:
        """Keep each grid's record count and version sum (the pull checksum) in step with the
        records, so a checksum costs the number of grids in scope, not the number of records."""
        deltas: dict[str, list[int]] = {}
        for rec in dirty:
            if rec.exists and rec.stored_grid is not None:
                old = deltas.setdefault(rec.stored_grid, [0, 0])
                old[0] -= 1
                old[1] -= rec.stored_version
            new = deltas.setdefault(rec.grid_code, [0, 0])
            new[0] += 1
            new[1] += rec.version
        rows = [
            {"grid_code": g, "count": c, "version_sum": v}
            for g, (c, v) in sorted(deltas.items())
            if c or v
        ]
        if not rows:
            return
        stmt = _digest_upsert(conn.dialect.name)
        conn.execute(stmt, rows)

    def _row(self, rec: StoredRecord, seq: int) -> dict[str, Any]:
        made = rec.created
        if (
            made is not None
            and not rec.exists
            and rec.grid_code == made.grid_code
            and rec.review is None
        ):  # a new record nothing has changed since its create: its texts are ready
            return {
                "id": rec.id,
                "type": made.op.record_type,
                "grid_code": rec.grid_code,
                "version": 1,
                "seq": seq,
                "deleted": False,
                "has_conflict": False,
                "review_status": rec.review_status,
                "review": None,
                "updated_at": self.now,
                "data": made.data,
                "state": made.state,
                "envelope": made.envelope,
                "author_id": rec.author_id,
                "device_id": rec.device_id,
                "created_at": rec.created_at or self.now,
                "echo_of": rec.device_id,  # the pushing device's create, as it sent it
            }
        state = rec.state
        snap = build_snapshot(state, grid_code=rec.grid_code, review=rec.review)
        fields = snap.pop("fields")
        row = {
            "id": rec.id,
            "type": state.record_type,
            "grid_code": rec.grid_code,
            "version": state.version,
            "seq": seq,
            "deleted": snap["deleted"],
            "has_conflict": bool(snap["conflicts"]),
            "review_status": rec.review_status,
            "review": rec.review,
            "updated_at": self.now,
            "data": fields,
            "state": jsontext.dumps(state.to_dict(values_kept=True)),
            "envelope": jsontext.dumps(snap),
            "echo_of": None,
        }
        if not rec.exists:
            row.update(
                author_id=rec.author_id,
                device_id=rec.device_id,
                created_at=rec.created_at or self.now,
            )
        return row


@functools.cache
def _digest_upsert(dialect: str) -> Any:
    """Add (count, version_sum) deltas to grids' digests, creating a grid's row on first use
    (built once per dialect: building it cost as much as running it)."""
    insert_for = sqlite_insert if dialect == "sqlite" else pg_insert
    table = GridDigest.__table__
    stmt = insert_for(table)
    return stmt.on_conflict_do_update(
        index_elements=["grid_code"],
        set_={
            "count": table.c.count + stmt.excluded.count,
            "version_sum": table.c.version_sum + stmt.excluded.version_sum,
        },
    )


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) in one statement.

    The rows go to the driver as tuples, each value bound as its column type binds it
    (SQLAlchemy's own bind processors; a JSON value through the engine's serializer), a
    processed value reused for equal values (a batch's timestamps are one value): the
    per-value bookkeeping of a Core executemany cost about as much as the SQL itself. SQLite
    takes them with executemany, PostgreSQL with COPY (about half the time of a multi-row
    INSERT per row); any other database through Core.
    """
    dialect = conn.dialect
    if dialect.name not in ("sqlite", "postgresql"):
        # Through Core, whose JSON type encodes values itself: texts encoded already go back.
        decoded = [
            {k: jsontext.loads(v) if v.__class__ is JSONText else v for k, v in row.items()}
            for row in rows
        ]
        conn.execute(table.insert(), decoded)
        return
    names = list(rows[0])
    binds: list[tuple[int, Any, dict[Any, Any] | None]] = []
    for i, name in enumerate(names):
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:  # JSON values are not hashable: processed each time
            binds.append((i, process, None if isinstance(table.c[name].type, JSON) else {}))
    values = []
    pick = itemgetter(*names)
    for row in rows:
        items = list(pick(row))
        for i, process, seen in binds:
            value = items[i]
            if seen is None:
                items[i] = str(value) if value.__class__ is JSONText else process(value)
            elif value in seen:
                items[i] = seen[value]
            else:
                items[i] = seen[value] = process(value)
        values.append(tuple(items))
    quote = dialect.identifier_preparer.quote
    target = f"{dialect.identifier_preparer.format_table(table)} ({', '.join(map(quote, names))})"
    if dialect.name == "postgresql":
        # The session's own connection and transaction, through psycopg's COPY.
        cursor = conn.connection.driver_connection.cursor()
        with cursor, cursor.copy(f"COPY {target} FROM STDIN") as copy:
            for value in values:
                copy.write_row(value)
        return
    conn.exec_driver_sql(f"INSERT INTO {target} VALUES ({', '.join('?' * len(names))})", values)


__all__ = [
    "CREATED",
    "SERVER_DEVICE",
    "Created",
    "JSONText",
    "RecordBatch",
    "StoredRecord",
    "insert_rows",
    "prepare_create",
    "server_hlc",
    "stored_state",
]
