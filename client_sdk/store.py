"""The device's local store: one SQLite file (WAL, synchronous=FULL) through sqlite-utils.

Tables:

- ``records``: every record the device knows, with the last snapshot a pull brought (NULL for a
  record created here and not yet pulled back), its version and grid code;
- ``outbox``: operations not yet acknowledged (``pending``) or refused for good (``rejected``);
- ``acked``: operations the server acknowledged whose effect no pull has brought back yet — the
  device keeps showing them (read-your-writes);
- ``meta``: device id, next sequence number, hybrid clock, pull cursor, scope, tokens, user;
- ``pulled_totals``: count and version sum of pulled records, kept by triggers on ``records``
  (the checksum a pull ends with, read in O(1)).

What a worker sees is :func:`sync.overlay` of the snapshot with the acked and pending
operations. Every write is one ``BEGIN IMMEDIATE`` transaction: an edit and its outbox entry, a
push batch's results, a pull page (removals, snapshots, cursor) commit together or not at all.
A ``tx()`` inside another (the edits of a ``Client.batch()``) is a savepoint of the outer one.

With a key the file is a SQLCipher 4 database (the ``encrypt`` extra): every page of the file and
of its write-ahead log is encrypted, and ``PRAGMA key`` runs before anything else touches it. A
passphrase goes through SQLCipher's own KDF (PBKDF2-HMAC-SHA512, 256,000 iterations, a random
16-byte salt per database kept in the file's first bytes); 32 bytes are used as the raw key.
A wrong key, a missing key or a file that is not a database raise :class:`WrongKey`.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import orjson
import sqlite_utils
from sqlite_utils.migrations import Migrations

from sync import Operation, overlay

from .errors import ClientError, StorageError, WrongKey
from .outbox import Outgoing

try:
    import sqlcipher3 as _sqlcipher
except ImportError:  # the "encrypt" extra is not installed
    _sqlcipher = None

__all__ = ["Store"]

_P = ParamSpec("_P")
_R = TypeVar("_R")

migrations = Migrations("linli_client_sdk")

#: Errors of either driver: sqlcipher3's exception classes do not derive from sqlite3's.
_DB_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error,) + (
    (_sqlcipher.Error,) if _sqlcipher is not None else ()
)
_NOTADB = 26  # SQLITE_NOTADB: "file is not a database" (a wrong or missing key)
_RAW_KEY_BYTES = 32
_IN_CHUNK = 900  # ids per ``IN (...)``: below SQLite's oldest limit of 999 variables

#: JSON as stored: compact, UTF-8 text (one encoder, not one per call).
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGITS = b"0" * 19  # after _DIGITS_AS_ZERO: 19 digits in a row


def read_json(content: bytes) -> tuple[Any, bool]:
    """The JSON value of ``content``, exactly as ``json.loads`` reads it (or its error), and
    whether orjson read it.

    orjson reads it when it can give the same value, several times faster: not when the text
    holds a run of 19 or more digits (orjson turns an integer beyond 64 bits into a float), and
    not when orjson refuses the text (e.g. ``NaN``, UTF-16, a lone surrogate), which the standard
    library then reads or refuses as it always did.
    """
    if _LONG_DIGITS not in content.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(content), True
        except orjson.JSONDecodeError:
            pass
    return json.loads(content), False


def _plain_encode(value: Any) -> str:
    """:data:`_encode` for a value orjson read (``inbox.Snapshots.plain``): the same values,
    written by orjson; what it cannot write (e.g. nested too deeply) goes to :data:`_encode`."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return _encode(value)


#: Meta values read on every edit, cached per store (see :meth:`Store.cached`).
_CACHED = frozenset({"user", "clock_offset_ms"})
_MISSING = object()
_meta_epoch = [0]  # bumped whenever a cached key is written or a transaction rolls back


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE records (
            id TEXT PRIMARY KEY, type TEXT NOT NULL, grid_code TEXT, snapshot TEXT,
            version INTEGER NOT NULL DEFAULT 0, deleted INTEGER NOT NULL DEFAULT 0,
            seen INTEGER NOT NULL DEFAULT 0)"""
    )
    db.execute("CREATE INDEX records_type_grid ON records (type, grid_code)")
    db.execute(
        """CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY, record_id TEXT NOT NULL, op TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending', reason TEXT, message TEXT)"""
    )
    db.execute("CREATE INDEX outbox_record ON outbox (record_id)")
    db.execute(
        """CREATE TABLE acked (
            seq INTEGER PRIMARY KEY, record_id TEXT NOT NULL, op TEXT NOT NULL, version INTEGER)"""
    )
    db.execute("CREATE INDEX acked_record ON acked (record_id)")
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


@migrations()
def m002_pulled_totals(db: sqlite_utils.Database) -> None:
    """Count and version sum of pulled records, kept by triggers: an O(1) checksum.

    Triggers see every change to ``records`` (the SDK's own, a repair by hand, a damaged row),
    in the transaction that makes it, so the totals cannot drift from the table.
    """
    db.execute(
        """CREATE TABLE pulled_totals (
            id INTEGER PRIMARY KEY CHECK (id = 1), count INTEGER NOT NULL,
            version_sum INTEGER NOT NULL)"""
    )
    db.execute(
        """INSERT INTO pulled_totals (id, count, version_sum)
           SELECT 1, COUNT(*), COALESCE(SUM(version), 0) FROM records
           WHERE snapshot IS NOT NULL"""
    )
    db.execute(
        """CREATE TRIGGER pulled_insert AFTER INSERT ON records WHEN NEW.snapshot IS NOT NULL
           BEGIN UPDATE pulled_totals SET count = count + 1,
             version_sum = version_sum + NEW.version WHERE id = 1; END"""
    )
    db.execute(
        """CREATE TRIGGER pulled_delete AFTER DELETE ON records WHEN OLD.snapshot IS NOT NULL
           BEGIN UPDATE pulled_totals SET count = count - 1,
             version_sum = version_sum - OLD.version WHERE id = 1; END"""
    )
    db.execute(
        """CREATE TRIGGER pulled_update AFTER UPDATE OF snapshot, version ON records
           WHEN OLD.snapshot IS NOT NULL OR NEW.snapshot IS NOT NULL
           BEGIN UPDATE pulled_totals SET
             count = count + (NEW.snapshot IS NOT NULL) - (OLD.snapshot IS NOT NULL),
             version_sum = version_sum
               + (CASE WHEN NEW.snapshot IS NOT NULL THEN NEW.version ELSE 0 END)
               - (CASE WHEN OLD.snapshot IS NOT NULL THEN OLD.version ELSE 0 END)
             WHERE id = 1; END"""
    )


def _storage(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn sqlite3 errors into StorageError."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except _DB_ERRORS as exc:
            raise StorageError(f"local database: {exc}", sqlite_error=type(exc).__name__) from exc

    return wrapper


def _key_pragma(key: str | bytes) -> str:
    """``PRAGMA key`` for a passphrase (SQLCipher's KDF) or 32 raw bytes (no KDF)."""
    if isinstance(key, bytes):
        if len(key) != _RAW_KEY_BYTES:
            raise ClientError(
                f"a raw encryption key is {_RAW_KEY_BYTES} bytes, not {len(key)}",
                code="invalid_key",
            )
        return f"PRAGMA key = \"x'{key.hex()}'\""
    if not isinstance(key, str) or not key or "\x00" in key:
        raise ClientError(
            "the encryption key must be a non-empty passphrase or 32 bytes", code="invalid_key"
        )
    return "PRAGMA key = '{}'".format(key.replace("'", "''"))


def _connect(path: str, key: str | bytes | None) -> sqlite3.Connection:
    """Open the file; with a key through sqlcipher3, keyed before any other statement."""
    if key is None:
        return sqlite3.connect(path, isolation_level=None, timeout=10.0)
    pragma = _key_pragma(key)
    if _sqlcipher is None:
        raise ClientError(
            "an encrypted store needs sqlcipher3: pip install 'linli[encrypt]'",
            code="encryption_unavailable",
        )
    conn = _sqlcipher.connect(path, isolation_level=None, timeout=10.0)
    try:
        conn.execute(pragma)
        conn.execute("PRAGMA cipher_compatibility = 4")  # pin SQLCipher 4's settings
    except BaseException:
        conn.close()
        raise
    return conn


def _check_key(conn: sqlite3.Connection) -> None:
    """Read the schema: the first read that decrypts a page, so a wrong key shows here."""
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except _DB_ERRORS as exc:
        if getattr(exc, "sqlite_errorcode", None) == _NOTADB or "not a database" in str(exc):
            raise WrongKey("wrong encryption key or not a Linli database") from None
        raise


def _op(text: str) -> Operation:
    return Operation.from_dict(json.loads(text))


def _created(op: Outgoing) -> tuple[str, str, str, str] | None:
    """A create's record as the server stores it when it applies the create to no record
    (id, type, grid code, snapshot text); None for any other operation."""
    data, plain = read_json(op.wire)
    fields = data.get("fields")
    if data.get("kind") != "create" or data.get("base_version") != 0 or type(fields) is not dict:
        return None
    grid = fields.get("grid_code")
    grid = grid if isinstance(grid, str) else ""
    snapshot = {
        "fields": fields,
        "type": data["record_type"],
        "id": data["record_id"],
        "version": 1,
        "grid_code": grid,
        "deleted": False,
        "conflicts": {},
        "collections": {},
        "review": None,
    }
    return (
        data["record_id"],
        data["record_type"],
        grid,
        (_plain_encode if plain else _encode)(snapshot),
    )


def _view(snapshot: str | None, ops: list[Operation] | None) -> dict[str, Any] | None:
    """:func:`sync.overlay` of a stored snapshot with its ops. Without ops the freshly decoded
    snapshot is the view already (overlay would only deep-copy it)."""
    snap = json.loads(snapshot) if snapshot else None
    return overlay(snap, ops) if ops else snap


def _select_in(conn: sqlite3.Connection, sql: str, values: Iterable[Any]) -> Iterator[Any]:
    """Rows of ``sql`` whose ``IN ({})`` takes ``values``, a chunk of ids at a time."""
    items = list(values)
    for start in range(0, len(items), _IN_CHUNK):
        chunk = items[start : start + _IN_CHUNK]
        yield from conn.execute(sql.format(",".join("?" * len(chunk))), chunk)


class Store:
    """The local database of one device. Not shared between threads; open one per thread."""

    @_storage
    def __init__(self, path: str, *, key: str | bytes | None = None) -> None:
        self.path = path
        self._depth = 0
        self._cache: dict[str, Any] = {}
        self._cache_version: tuple[int, int] | None = None
        conn = _connect(path, key)
        try:
            _check_key(conn)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA recursive_triggers=ON")  # REPLACE fires delete triggers too
            self.db = sqlite_utils.Database(conn)
            migrations.apply(self.db)
        except BaseException:
            conn.close()
            raise

    @_storage
    def close(self) -> None:
        self.db.close()

    @property
    def in_tx(self) -> bool:
        """True inside :meth:`tx` (e.g. in a ``Client.batch()``)."""
        return self._depth > 0

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``): commits on success, rolls back on error.

        Inside another ``tx()`` it is a savepoint of the outer transaction: its writes are
        undone alone on error, and reach the disk when the outer transaction commits.
        """
        conn = self.db.conn
        nested = self._depth > 0
        name = f"linli_{self._depth}"
        try:
            conn.execute(f"SAVEPOINT {name}" if nested else "BEGIN IMMEDIATE")
        except _DB_ERRORS as exc:
            raise StorageError(f"local database: {exc}") from exc
        self._depth += 1
        try:
            yield conn
            conn.execute(f"RELEASE {name}" if nested else "COMMIT")
        except BaseException as exc:
            _meta_epoch[0] += 1  # cached values read inside may be rolled back
            if conn.in_transaction:
                if nested:
                    conn.execute(f"ROLLBACK TO {name}")
                    conn.execute(f"RELEASE {name}")
                else:
                    conn.execute("ROLLBACK")
            if isinstance(exc, _DB_ERRORS):
                raise StorageError(f"local database: {exc}") from exc
            raise
        finally:
            self._depth -= 1

    # --- meta --------------------------------------------------------------------------------

    @_storage
    def get(self, key: str, default: Any = None) -> Any:
        return self._meta(self.db.conn, key, default)

    @_storage
    def cached(self, key: str, default: Any = None) -> Any:
        """A meta value read on every edit (``user``, ``clock_offset_ms``), kept in memory.

        The copy is dropped when this process writes one of these keys, when a transaction
        rolls back, and when another connection commits (``PRAGMA data_version``). The value
        returned is shared: read it, do not change it.
        """
        assert key in _CACHED, key
        conn = self.db.conn
        version = (_meta_epoch[0], conn.execute("PRAGMA data_version").fetchone()[0])
        if version != self._cache_version:
            self._cache.clear()
            self._cache_version = version
        if key not in self._cache:
            self._cache[key] = self._meta(conn, key, _MISSING)
        value = self._cache[key]
        return default if value is _MISSING else value

    @staticmethod
    def put(conn: sqlite3.Connection, key: str, value: Any) -> None:
        """Set a meta value inside the caller's transaction (``None`` deletes it)."""
        if key in _CACHED:
            _meta_epoch[0] += 1
        if value is None:
            conn.execute("DELETE FROM meta WHERE key = ?", [key])
        else:
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, _encode(value)]
            )

    @_storage
    def set(self, **values: Any) -> None:
        """Set several meta values in one transaction."""
        with self.tx() as conn:
            for key, value in values.items():
                self.put(conn, key, value)

    # --- local edits -------------------------------------------------------------------------

    @_storage
    def add_op(
        self,
        record_id: str,
        make: Callable[[int, int, str | None], Operation],
        *,
        grid_code: str | None = None,
    ) -> Operation:
        """Write one edit: ``make(seq, base_version, last_hlc)`` builds it in the transaction.

        The record row, the outbox entry, the next sequence number and the clock commit together.
        """
        with self.tx() as conn:
            seq = self._meta(conn, "next_seq", 1)
            op = make(seq, self._version(conn, record_id), self._meta(conn, "hlc", None))
            conn.execute(
                "INSERT OR IGNORE INTO records (id, type, grid_code) VALUES (?, ?, ?)",
                [op.record_id, op.record_type, grid_code],
            )
            if grid_code is not None:
                conn.execute(
                    "UPDATE records SET grid_code = ? WHERE id = ? AND snapshot IS NULL",
                    [grid_code, op.record_id],
                )
            conn.execute(
                "INSERT INTO outbox (seq, record_id, op) VALUES (?, ?, ?)",
                [op.seq, op.record_id, _encode(op.to_dict())],
            )
            self.put(conn, "next_seq", seq + 1)
            self.put(conn, "hlc", op.hlc)
        return op

    @staticmethod
    def _meta(conn: sqlite3.Connection, key: str, default: Any) -> Any:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return default if row is None else json.loads(row[0])

    @staticmethod
    def _version(conn: sqlite3.Connection, record_id: str) -> int:
        row = conn.execute("SELECT version FROM records WHERE id = ?", [record_id]).fetchone()
        return row[0] if row else 0

    @_storage
    def base_version(self, record_id: str) -> int:
        """The version of the record's last pulled snapshot (0 if never pulled)."""
        return self._version(self.db.conn, record_id)

    # --- reading -----------------------------------------------------------------------------

    def _ops(self, record_ids: Iterable[str] | None) -> dict[str, list[Operation]]:
        sql = (
            "SELECT record_id, op FROM acked {w} UNION ALL "
            "SELECT record_id, op FROM outbox WHERE state = 'pending' {a}"
        )
        params: list[str] = []
        if record_ids is None:
            rows = self.db.execute(sql.format(w="", a="")).fetchall()
        else:
            params = list(record_ids)
            marks = ",".join("?" * len(params))
            rows = self.db.execute(
                sql.format(w=f"WHERE record_id IN ({marks})", a=f"AND record_id IN ({marks})"),
                params + params,
            ).fetchall()
        found: dict[str, list[Operation]] = {}
        for record_id, text in rows:
            found.setdefault(record_id, []).append(_op(text))
        return found

    @_storage
    def view(self, record_id: str) -> dict[str, Any] | None:
        """The record as the worker sees it, or None if unknown (or only a rejected create)."""
        row = self.db.execute("SELECT snapshot FROM records WHERE id = ?", [record_id]).fetchone()
        ops = self._ops([record_id]).get(record_id)
        if row is None and not ops:
            return None
        return _view(row[0] if row else None, ops)

    @_storage
    def views(
        self, record_type: str | None = None, grid_code: str | None = None
    ) -> list[dict[str, Any]]:
        """Every record (optionally of one type and grid) as the worker sees it."""
        where, params = [], []
        if record_type:
            where.append("type = ?")
            params.append(record_type)
        if grid_code:
            where.append("grid_code = ?")
            params.append(grid_code)
        sql = "SELECT id, snapshot FROM records"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self.db.execute(sql + " ORDER BY rowid", params).fetchall()
        ops = self._ops(None)
        result = []
        for record_id, snap in rows:
            view = _view(snap, ops.get(record_id))
            if view is not None and (not grid_code or view.get("grid_code") == grid_code):
                result.append(view)
        return result

    @_storage
    def pending(self, limit: int | None = None) -> list[Operation]:
        """Operations still to push, in sequence order."""
        sql = "SELECT op FROM outbox WHERE state = 'pending' ORDER BY seq"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [_op(r[0]) for r in self.db.execute(sql).fetchall()]

    @_storage
    def outgoing(self, limit: int, *, after: int = 0) -> list[Outgoing]:
        """The next ``limit`` operations to push (with a sequence number above ``after``), in
        sequence order, as stored (not decoded)."""
        sql = (
            "SELECT seq, record_id, CAST(op AS BLOB) FROM outbox WHERE state = 'pending' "
            "AND seq > ? ORDER BY seq LIMIT ?"
        )
        rows = self.db.execute(sql, [after, limit]).fetchall()
        return [Outgoing.from_row(*row) for row in rows]

    @_storage
    def count(self, table: str, where: str = "1", params: Iterable[Any] = ()) -> int:
        assert table in ("records", "outbox", "acked")
        sql = f"SELECT COUNT(*) FROM {table} WHERE {where}"
        return self.db.execute(sql, list(params)).fetchone()[0]

    @_storage
    def rejected(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT op, reason, message FROM outbox WHERE state = 'rejected' ORDER BY seq"
        ).fetchall()
        return [{"op": json.loads(o), "reason": r, "message": m} for o, r, m in rows]

    @_storage
    def checksum(self) -> tuple[int, int]:
        """Count and version sum of every pulled record (tombstones included), in O(1).

        Triggers on ``records`` keep these totals in ``pulled_totals`` (migration m002).
        """
        row = self.db.execute("SELECT count, version_sum FROM pulled_totals").fetchone()
        return row[0], row[1]

    @_storage
    def recount(self) -> tuple[int, int]:
        """:meth:`checksum` by a full scan of ``records``; repairs the kept totals if off."""
        with self.tx() as conn:
            count, total = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(version), 0) FROM records WHERE snapshot IS NOT NULL"
            ).fetchone()
            conn.execute(
                "UPDATE pulled_totals SET count = ?, version_sum = ? "
                "WHERE count != ? OR version_sum != ?",
                [count, total, count, total],
            )
        return count, total

    # --- applying sync results ---------------------------------------------------------------

    @staticmethod
    def ack(
        conn: sqlite3.Connection,
        acks: Sequence[tuple[Outgoing, int | None]],
        *,
        created: bool = False,
    ) -> None:
        """Move acknowledged ops (each with the version the server gave) from the outbox to
        ``acked``; drop those a pulled snapshot already covers. One statement per step.

        With ``created`` (protocol 3, whose pulls leave out the device's own unchanged
        creates), a create acknowledged as version 1 is stored as the snapshot the server
        made of it — its fields as sent, version 1, nothing else — where no snapshot is
        stored yet. If anything changed the record since, a pull sends the newer snapshot.
        """
        if not acks:
            return
        if created:
            made = [row for op, version in acks if version == 1 and (row := _created(op))]
            if made:
                generation = Store._meta(conn, "generation", 0)
                conn.executemany(
                    """INSERT INTO records (id, type, grid_code, snapshot, version, deleted, seen)
                       VALUES (?, ?, ?, ?, 1, 0, ?)
                       ON CONFLICT (id) DO UPDATE SET type = excluded.type,
                         grid_code = excluded.grid_code, snapshot = excluded.snapshot,
                         version = 1, deleted = 0, seen = excluded.seen
                       WHERE records.snapshot IS NULL""",
                    [(*row, generation) for row in made],
                )
        pulled = dict(
            _select_in(
                conn,
                "SELECT id, version FROM records WHERE snapshot IS NOT NULL AND id IN ({})",
                {op.record_id for op, _ in acks},
            )
        )
        keep = [
            (version, op.seq)
            for op, version in acks
            if version is None or pulled.get(op.record_id, -1) < version
        ]
        conn.executemany(
            "INSERT OR REPLACE INTO acked (seq, record_id, op, version) "
            "SELECT seq, record_id, op, ? FROM outbox WHERE seq = ?",
            keep,
        )
        conn.executemany("DELETE FROM outbox WHERE seq = ?", [(op.seq,) for op, _ in acks])

    @staticmethod
    def reject(
        conn: sqlite3.Connection, rejects: Sequence[tuple[Outgoing, str, str | None]]
    ) -> None:
        """Mark ops refused for good, each with its reason and message."""
        conn.executemany(
            "UPDATE outbox SET state = 'rejected', reason = ?, message = ? WHERE seq = ?",
            [(reason, message, op.seq) for op, reason, message in rejects],
        )

    @_storage
    def number_above(self, last_seq: int, *, unsent: bool = False) -> int:
        """Number new operations above ``last_seq``: the server holds operations of this device
        id numbered up to it, some perhaps of another store (protocol §3).

        With ``unsent`` (the store's first sign-in: this store has sent nothing, though a copy
        of it may have), its pending operations are numbered above ``last_seq`` too, in their
        order, their texts rewritten with the number each was made with (``made_seq``).
        Returns how many were numbered again."""
        conn = self.db.conn
        low = conn.execute("SELECT MIN(seq) FROM outbox").fetchone()[0] if unsent else None
        moving = low is not None and low <= last_seq
        if self._meta(conn, "next_seq", 1) > last_seq and not moving:
            return 0
        with self.tx() as conn:
            next_seq = self._meta(conn, "next_seq", 1)
            rows: list[tuple[int, bytes]] = []
            if moving:
                shift = last_seq + 1 - low
                rows = conn.execute(
                    "SELECT seq, CAST(op AS BLOB) FROM outbox ORDER BY seq DESC"
                ).fetchall()
                for seq, wire in rows:  # from the top: a new number is never one in use
                    op = json.loads(wire)
                    op["seq"] = seq + shift
                    # The number it was made with: another copy of this store (one taken
                    # before this sign-in) numbers it differently, and the server finds the
                    # twin by it (protocol §3).
                    op.setdefault("made_seq", seq)
                    conn.execute(
                        "UPDATE outbox SET seq = ?, op = ? WHERE seq = ?",
                        [seq + shift, _encode(op), seq],
                    )
                next_seq += shift
            self.put(conn, "next_seq", max(next_seq, last_seq + 1))
        return len(rows)

    @staticmethod
    def replace_op(conn: sqlite3.Connection, op: Operation) -> None:
        """Rewrite a pending operation under the same key (a re-stamped clock)."""
        conn.execute(
            "UPDATE outbox SET op = ? WHERE seq = ? AND state = 'pending'",
            [_encode(op.to_dict()), op.seq],
        )

    @staticmethod
    def save_snapshots(
        conn: sqlite3.Connection, snaps: Sequence[Mapping[str, Any]], generation: int
    ) -> None:
        """Store a page of pulled snapshots; forget acked operations they already contain.

        Snapshots orjson read (an ``inbox.Snapshots`` marked ``plain``) are written by orjson.
        """
        encode = _plain_encode if getattr(snaps, "plain", False) else _encode
        conn.executemany(
            """INSERT INTO records (id, type, grid_code, snapshot, version, deleted, seen)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (id) DO UPDATE SET type = excluded.type,
                 grid_code = excluded.grid_code, snapshot = excluded.snapshot,
                 version = excluded.version, deleted = excluded.deleted, seen = excluded.seen""",
            [
                (
                    snap["id"],
                    snap["type"],
                    snap.get("grid_code"),
                    encode(snap),
                    snap["version"],
                    int(bool(snap["deleted"])),
                    generation,
                )
                for snap in snaps
            ],
        )
        if conn.execute("SELECT 1 FROM acked LIMIT 1").fetchone():
            conn.executemany(
                "DELETE FROM acked WHERE record_id = ? AND version IS NOT NULL AND version <= ?",
                [(snap["id"], snap["version"]) for snap in snaps],
            )

    @staticmethod
    def remove(conn: sqlite3.Connection, record_ids: Iterable[str]) -> None:
        """Drop records that left the scope (their pending edits stay in the outbox)."""
        rows = [(rid,) for rid in record_ids]
        conn.executemany("DELETE FROM records WHERE id = ?", rows)
        conn.executemany("DELETE FROM acked WHERE record_id = ?", rows)

    @staticmethod
    def purge_outside(conn: sqlite3.Connection, prefixes: Iterable[str]) -> int:
        """Drop pulled records whose grid code is outside ``prefixes``; return how many."""
        keep = tuple(prefixes)
        rows = conn.execute("SELECT id, grid_code FROM records WHERE snapshot IS NOT NULL")
        gone = [rid for rid, grid in rows if not (grid or "").startswith(keep)]
        Store.remove(conn, gone)
        return len(gone)

    @staticmethod
    def purge_unseen(conn: sqlite3.Connection, generation: int) -> int:
        """After a full re-pull: drop pulled records the server no longer sent."""
        rows = conn.execute(
            "SELECT id FROM records WHERE snapshot IS NOT NULL AND seen < ?", [generation]
        ).fetchall()
        Store.remove(conn, [rid for (rid,) in rows])
        return len(rows)

    @staticmethod
    def clear_acked(conn: sqlite3.Connection, up_to_seq: int) -> None:
        conn.execute("DELETE FROM acked WHERE seq <= ?", [up_to_seq])

    @_storage
    def max_acked(self) -> int:
        return self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM acked").fetchone()[0]

    @_storage
    def integrity(self) -> str:
        return self.db.execute("PRAGMA integrity_check").fetchone()[0]
