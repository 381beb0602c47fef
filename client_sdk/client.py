"""The one object a field app embeds: :class:`Client`."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from sync import HandshakeResponse, OpKind, wall_clock_ms

from . import auth
from .api import Api
from .errors import ClientError, NetworkError, ValidationError
from .records import Records
from .store import Store
from .syncpass import Progress, SyncPass, SyncReport
from .transport import DEFAULT_TIMEOUT, HTTPTransport, Request, Response, Transport

__all__ = ["Client", "Conflict"]


@dataclass(frozen=True, slots=True)
class Conflict:
    """A field with competing values; ``values`` lists each with author, device and time."""

    record_id: str
    record_type: str
    field: str
    values: list[dict[str, Any]]


class _Offline:
    """The transport of a client with no server configured."""

    def handle(self, request: Request) -> Response:
        raise NetworkError("no server configured (pass base_url or transport)")

    def close(self) -> None:
        pass


DEFAULT_HANDSHAKE_INTERVAL_S = 300.0


class Client(Records):
    """An offline-first Linli device: local store, sign-in, field records, and the sync pass.

    Usage::

        from client_sdk import Client

        with Client(base_url="https://linli.example.gov", db_path="tablet.sqlite3") as client:
            client.login("worker1", "password")          # once, online; then client.unlock()
            home = client.create_household(grid_code="990101001001001", address="1-2-301")
            client.record_visit(grid_code="990101001001001", household_id=home["id"],
                                findings="独居老人，身体尚可", notes=["下周复访"])
            report = client.sync(progress=lambda phase, done, total: print(phase, done, total))
            print(report.pushed, "sent;", client.pending_count(), "waiting")

    Every option is keyword-only. ``transport`` replaces the HTTP transport (e.g.
    ``AppTransport(app)`` runs the server in process); ``clock`` is the device's physical clock
    in milliseconds and ``sleep`` the backoff sleep (tests pass fakes). ``page_size`` caps the
    records per pull page (default: the largest page the server announces). ``encryption_key`` (a
    passphrase, or 32 raw bytes from the platform keystore) encrypts the local database with
    SQLCipher (the ``encrypt`` extra); a wrong or missing key raises
    :class:`~client_sdk.errors.WrongKey`. ``handshake_interval_s`` is how long a handshake answer
    is reused by later syncs of this client (default 5 minutes; 0: shake hands on every sync).
    The first sync after opening or signing in always shakes hands, and so does a sync after a
    failed one; a sync that reused an answer shakes hands again when the server refuses its
    operations' clock, its protocol or schema (426) or its batch size. Errors are
    :class:`~client_sdk.errors.ClientError` subclasses; nothing lower-level escapes.
    """

    def __init__(
        self,
        *,
        db_path: str | os.PathLike[str],
        base_url: str | None = None,
        device_id: str | None = None,
        device_name: str = "field tablet",
        timeout: float = DEFAULT_TIMEOUT,
        transport: Transport | None = None,
        max_attempts: int = 4,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], int] = wall_clock_ms,
        today: Callable[[], date] = date.today,
        page_size: int | None = None,
        encryption_key: str | bytes | None = None,
        handshake_interval_s: float = DEFAULT_HANDSHAKE_INTERVAL_S,
    ) -> None:
        self.store = Store(os.fspath(db_path), key=encryption_key)
        try:
            self.device_id = self._device(device_id)
        except BaseException:
            self.store.close()
            raise
        self.device_name = device_name
        self._now_ms = clock
        self._today = today
        self._page_size = page_size
        self._handshake_interval_s = handshake_interval_s
        self._hello: tuple[float, HandshakeResponse] | None = None  # (when, answer)
        if transport is None:
            transport = HTTPTransport(base_url, timeout=timeout) if base_url else _Offline()
        self.transport = transport
        self.api = Api(
            transport, self.store, max_attempts=max_attempts, backoff=backoff, sleep=sleep
        )

    def _device(self, wanted: str | None) -> str:
        stored = self.store.get("device_id")
        if stored and wanted and stored != wanted:
            raise ClientError(f"this database belongs to device {stored}", code="device_mismatch")
        if not stored:
            stored = wanted or str(uuid.uuid4())
            # A device id made here has no records anywhere but in this store: pulls may leave
            # out its own creates at once (protocol 3). One adopted from elsewhere may have
            # some on the server only: they are left out after a first pull of everything.
            self.store.set(device_id=stored, own_creates_held=wanted is None)
        return str(stored)

    def close(self) -> None:
        """Close the transport and the local database."""
        try:
            self.transport.close()
        finally:
            self.store.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- signing in --------------------------------------------------------------------------

    def login(self, username: str, password: str) -> dict[str, Any]:
        """Sign in online: registers this device, stores tokens and an offline verifier."""
        self._hello = None
        return auth.login(
            self.api,
            self.store,
            username=username,
            password=password,
            device_id=self.device_id,
            device_name=self.device_name,
        )

    def unlock(self, password: str) -> dict[str, Any]:
        """Check the password offline (after one online login); raise InvalidCredentials."""
        return auth.unlock(self.store, password)

    @property
    def user(self) -> dict[str, Any] | None:
        """The user who last signed in on this device: id, username, role, unit_code."""
        return self.store.get("user")

    # --- saving many edits at once ---------------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[Client]:
        """Make every save inside one transaction, written to disk once at the end::

            with client.batch():
                for row in rows:
                    client.create_household(**row)

        Each save alone costs a disk flush (so that it survives a power cut once it returns);
        in a batch the flush happens once, when the block ends. Until then nothing in the block
        is durable, and if the block raises, none of its saves is kept. A save that fails
        inside the block (e.g. a ValidationError the caller catches) leaves the others intact.
        Reads inside the block see its saves. No ``sync()`` inside a batch; batches nest.
        """
        with self.store.tx():
            yield self

    # --- syncing -----------------------------------------------------------------------------

    def sync(self, *, progress: Progress | None = None) -> SyncReport:
        """Push the outbox and pull what changed in scope. Safe to interrupt and run again."""
        if self.store.in_tx:
            raise ClientError("finish the batch() before syncing", code="sync_in_batch")
        kept, self._hello = self._hello, None  # after a failed pass: a handshake first
        if kept and time.monotonic() - kept[0] >= self._handshake_interval_s:
            kept = None
        sync_pass = SyncPass(
            self.api,
            self.store,
            device_id=self.device_id,
            now_ms=self._now_ms,
            progress=progress,
            page_size=self._page_size,
            hello=kept[1] if kept else None,
        )
        report = sync_pass.run()
        if sync_pass.shook_at is not None:
            self._hello = (sync_pass.shook_at, sync_pass.hello)
        else:
            self._hello = kept
        return report

    def pending_count(self) -> int:
        """Local changes not yet acknowledged by the server."""
        return self.store.count("outbox", "state = 'pending'")

    def rejected(self) -> list[dict[str, Any]]:
        """Changes the server refused for good, each with ``reason`` and ``message``."""
        return self.store.rejected()

    def conflicts(self) -> list[Conflict]:
        """Open conflicts: for each field, every competing value and who wrote it."""
        return [
            Conflict(view["id"], view["type"], name, list(values))
            for view in self.store.views()
            for name, values in sorted(view.get("conflicts", {}).items())
        ]

    def resolve(self, record_id: str, field: str, value: Any, reason: str) -> dict[str, Any]:
        """Choose ``value`` for a conflicting ``field`` (on site, with a reason)."""
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError("a resolution needs a reason", {"reason": "required"})
        view = self.get(record_id)
        values = self._resolve_values(view, field, value)
        self._write(OpKind.RESOLVE, view["type"], record_id, fields=values, reason=reason)
        return self.get(record_id)

    def returned(self) -> list[dict[str, Any]]:
        """Records a reviewer returned (退回) for rework, with the comment in ``review``."""
        return [
            v for v in self.store.views() if (v.get("review") or {}).get("status") == "returned"
        ]

    def status(self) -> dict[str, Any]:
        """A summary for a status line: pending and rejected changes, records, cursor."""
        return {
            "device_id": self.device_id,
            "user": (self.user or {}).get("username"),
            "pending": self.pending_count(),
            "rejected": self.store.count("outbox", "state = 'rejected'"),
            "records": self.store.count("records"),
            "conflicts": len(self.conflicts()),
            "returned": len(self.returned()),
            "cursor": self.store.get("cursor", 0),
        }
