"""Database plumbing: the declarative base, a UTC datetime type, and per-dialect engine setup.

SQLite: WAL, foreign keys, a busy timeout, and every transaction opened with BEGIN IMMEDIATE
(pysqlite's own BEGIN handling is switched off, as the SQLAlchemy SQLite dialect docs describe),
so read-then-write transactions queue for the write lock instead of failing with "database is
locked". The one exception is :func:`read_phase`: reads that never write (authenticating a
request) run in a deferred transaction that ends with them, so a request holds the write lock
only for its own work, not while its body is parsed and checked. PostgreSQL: pooled
connections idle for a while are tested before use (a restarted server), the others are not.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, event
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every model; constraint names are stable so migrations can refer to them."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every dialect (SQLite stores them naive, in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


IDLE_PING_S = 10.0  # a pooled server connection idle longer than this is tested before use


def configure_engine(
    engine: Engine,
    *,
    busy_timeout_ms: int = 5000,
    wal_autocheckpoint: int = 1000,
    idle_ping_s: float = IDLE_PING_S,
) -> None:
    """Attach the dialect-specific connection setup to ``engine`` (idempotent per engine)."""
    if getattr(engine, "_linli_configured", False):
        return
    engine._linli_configured = True  # type: ignore[attr-defined]
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, busy_timeout_ms, wal_autocheckpoint)
    else:
        _ping_when_idle(engine, idle_ping_s)


def _ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Test a pooled connection before a request gets it — but only one that has been idle.

    SQLAlchemy's ``pool_pre_ping`` costs a round trip at every checkout, and a request checks
    out once or more (a third of a sync's round trips on PostgreSQL). A connection back in the
    pool for less than ``idle_s`` was working a moment ago; one idle longer may have been closed
    by a restarted or failed-over server, so it is pinged, and a dead one is replaced before use
    (a ``DisconnectionError`` from a checkout handler makes the pool retry with a fresh
    connection). A connection that dies within the window fails its statement; the pool is
    then invalidated and the request answered 503 with Retry-After (``server.errors``), which
    devices retry.
    """
    dialect = engine.dialect

    @event.listens_for(engine.pool, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["linli.idle_since"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("linli.idle_since")
        if since is None or time.monotonic() - since <= idle_s:
            return  # new, or in use a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                raise DisconnectionError(str(exc)) from exc
            raise


def _configure_sqlite(engine: Engine, busy_timeout_ms: int, wal_autocheckpoint: int) -> None:

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # FULL: an acknowledged push must survive a power cut (WAL+NORMAL may lose it).
        # Stop pysqlite from emitting its own BEGIN; we emit BEGIN IMMEDIATE below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA wal_autocheckpoint={int(wal_autocheckpoint)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if _deferred.get():
            connection.exec_driver_sql("BEGIN")
            return
        try:
            begin_immediate(connection.connection.dbapi_connection, busy_timeout_ms)
        except sqlite3.Error as exc:
            # Raised as SQLAlchemy raises a statement's error (this hook runs outside its
            # wrapping): "database is locked" is then a 503 "busy" like any other.
            raise DBAPIError.instance("BEGIN IMMEDIATE", None, exc, sqlite3.Error) from exc


_WAIT_STEP_S = 0.0005


def begin_immediate(dbapi_connection: Any, busy_timeout_ms: int) -> None:
    """BEGIN IMMEDIATE, waiting for the write lock at most ``busy_timeout_ms``.

    SQLite's own wait for a busy database sleeps 1, 2, 5, 10, 15, 20, 25… ms between tries,
    so a writer that starts waiting just as another takes the lock for 20 ms wakes about 13 ms
    after the lock is free: with several workers pushing at once, the database stood idle
    about half the time. Here the lock is tried every half millisecond (a failed try costs a
    few microseconds), with SQLite's own wait off meanwhile (it is set back to
    ``busy_timeout_ms``, the engine's setting, for every other statement); past the deadline,
    the last "database is locked" is the caller's error.
    """
    dbapi_connection.execute("PRAGMA busy_timeout=0")
    try:
        deadline = None
        while True:
            try:
                dbapi_connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
                now = time.monotonic()
                if deadline is None:
                    deadline = now + busy_timeout_ms / 1000
                elif now >= deadline:
                    raise
            time.sleep(_WAIT_STEP_S)
    finally:
        dbapi_connection.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")


def _busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY, or one of its extended codes (a WAL recovery, a stale snapshot)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return (code & 0xFF) == sqlite3.SQLITE_BUSY if code is not None else "locked" in str(exc)


_deferred: ContextVar[bool] = ContextVar("linli_deferred_begin", default=False)


@contextmanager
def read_phase(session: Session | scoped_session[Session]) -> Iterator[None]:
    """Run reads that write nothing outside the write lock, then end their transaction.

    On SQLite a transaction begun inside opens with a deferred BEGIN (a WAL reader: it waits
    for nobody and blocks nobody), and it is ended on exit with what it loaded kept, so the
    request's next statement opens a write transaction of its own. Nothing may be written
    inside: a deferred reader that tries to write can fail with "database is locked". On other
    databases reads take no lock, and this changes nothing.

    What was read is not serialised with later writers: a request that goes on to write on the
    strength of it (a push by a device that may have been revoked meanwhile) must read it again
    under the write lock, with ``populate_existing``, as objects loaded here are kept unexpired.
    """
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    token = _deferred.set(True)
    try:
        yield
    except BaseException:
        session.rollback()
        raise
    finally:
        _deferred.reset(token)
    own = session() if isinstance(session, scoped_session) else session
    if own.dirty or own.new or own.deleted:
        own.rollback()
        raise RuntimeError("read_phase: changes were made inside a read phase")
    keep, own.expire_on_commit = own.expire_on_commit, False
    try:
        own.commit()  # ends the read transaction; the loaded objects stay loaded
    finally:
        own.expire_on_commit = keep
