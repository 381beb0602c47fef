"""The sync pass: handshake → push → pull → verify, one orchestrator that reads top to bottom.

The handshake may be skipped when the client holds a recent answer (see ``Client``): every push
and pull says which protocol and schema it was made for, so a server that no longer speaks them
refuses it (426) before applying anything, and the pass then shakes hands and goes on. A pass
that reused an answer also shakes hands when the server refuses an operation's clock.

Each phase is a method. Every network answer is applied in one local transaction (a push batch's
results; a pull page's removals, snapshots and cursor), so an interrupted pass resumes where it
stopped: unacknowledged operations stay in the outbox (their keys make a resend harmless) and the
cursor is saved per page. One pass at a time per database, across processes (an OS file lock).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from sync import (
    HLC,
    TRANSIENT_REASONS,
    HandshakeRequest,
    HandshakeResponse,
    HybridClock,
    Operation,
    Outcome,
    PullRequest,
    PullResponse,
    Reason,
    Runs,
    SyncError,
    seq_runs,
)
from sync.wire import SCHEMA_VERSION, SUPPORTED_PROTOCOLS

from .api import Api, Prepared
from .errors import ProtocolError, RequestRejected, SyncInProgress, ValidationError
from .inbox import pull_page
from .outbox import Outgoing, push_body, push_results
from .store import Store

__all__ = ["Progress", "SyncPass", "SyncReport"]

Progress = Callable[[str, int, int | None], None]
_API = "/api/v1/sync"
_SMALL_SKEW_MS = 2000  # below this, network delay dominates: do not correct the clock


@dataclass(slots=True)
class SyncReport:
    """What one sync pass did."""

    pushed: int = 0
    applied: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: int = 0
    pulled: int = 0
    removed: int = 0
    requests: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    duration: float = 0.0
    restamped: int = 0
    resynced: bool = False
    checksum_ok: bool | None = None


@contextmanager
def sync_lock(db_path: str) -> Iterator[None]:
    """Hold the database's sync lock (a lock file next to it) or raise SyncInProgress."""
    handle = os.open(f"{db_path}.sync-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise SyncInProgress("another sync of this device is running") from None
        yield
    finally:
        os.close(handle)  # closing releases the lock; so does the death of the process


def _wall(hlc: str) -> int:
    try:
        return HLC.parse(hlc).wall
    except SyncError:
        return 0


def _sent_again(result: Any) -> bool:
    """True for an operation refused for a reason that passes (a clock ahead): it is re-stamped
    and sent again, never acknowledged or given up."""
    refused = result.status is Outcome.REJECTED or (
        result.status is Outcome.DUPLICATE and result.original is Outcome.REJECTED
    )
    return refused and result.reason in TRANSIENT_REASONS


def _decoded(decode: Callable[[Any], Any], answer: Any, what: str) -> Any:
    try:
        return decode(answer)
    except SyncError as exc:
        raise ProtocolError(f"malformed {what}: {exc.message}", **exc.context) from None


class SyncPass:
    """One pass for one device. ``now_ms`` is the device's physical clock (uncorrected)."""

    def __init__(
        self,
        api: Api,
        store: Store,
        *,
        device_id: str,
        now_ms: Callable[[], int],
        progress: Progress | None = None,
        page_size: int | None = None,
        hello: HandshakeResponse | None = None,
    ) -> None:
        self.api, self.store, self.device_id = api, store, device_id
        self.now_ms = now_ms
        self.progress = progress or (lambda phase, done, total: None)
        self.page_size = page_size
        self.report = SyncReport()
        self.hello = hello  # a recent handshake answer to reuse, if any
        self.shook_at: float | None = None  # time.monotonic() of this pass's own handshake

    def run(self) -> SyncReport:
        started = time.perf_counter()
        before = (
            self.api.counters.requests,
            self.api.counters.bytes_sent,
            self.api.counters.bytes_received,
        )
        with sync_lock(self.store.path):
            if self.hello is None:
                self.handshake()
            else:
                self._speak(self.hello)
            try:
                self.exchange()
            except (ProtocolError, RequestRejected, ValidationError):
                # (A 422 with field errors is a ValidationError: e.g. a server of protocol 1
                # that does not know a push's "pull".)
                if self.shook_at is not None:
                    raise
                # The reused answer is out of date (a server rolled back or reconfigured):
                # nothing of the refused request was applied; shake hands and go on.
                self.handshake()
                self.exchange()
        c = self.api.counters
        self.report.requests = c.requests - before[0]
        self.report.bytes_sent = c.bytes_sent - before[1]
        self.report.bytes_received = c.bytes_received - before[2]
        self.report.duration = time.perf_counter() - started
        self.progress("done", 1, 1)
        return self.report

    def exchange(self) -> None:
        """Push, pull and verify with the limits of the current handshake answer."""
        assert self.hello is not None
        first = self.push(self.hello.max_batch)
        generation = self.store.get("generation", 0)
        checksum = self.pull(self.hello.max_page, generation=generation, first=first)
        self.verify(checksum, self.hello.max_page)

    def _speak(self, hello: HandshakeResponse) -> None:
        """Send the negotiated versions with every push and pull from now on."""
        self.api.headers = {
            "Linli-Protocol": str(hello.protocol_version),
            "Linli-Schema": str(SCHEMA_VERSION),
        }

    # --- phases ------------------------------------------------------------------------------

    def handshake(self) -> HandshakeResponse:
        """Agree on the protocol; correct the device clock if the server says it is off."""
        self.progress("handshake", 0, 1)
        request = HandshakeRequest(self.device_id, self.now_ms(), app="linli-client-sdk")
        answer = self.api.call(f"{_API}/handshake", request.to_dict())
        hello = _decoded(HandshakeResponse.from_dict, answer, "handshake answer")
        if hello.protocol_version not in SUPPORTED_PROTOCOLS:
            raise ProtocolError(
                f"the server chose protocol {hello.protocol_version}", code="protocol_unsupported"
            )
        offset = hello.server_time_ms - self.now_ms()
        offset = 0 if abs(offset) < _SMALL_SKEW_MS else offset
        if offset != self.store.cached("clock_offset_ms", 0):
            self.store.set(clock_offset_ms=offset)
        limit = hello.server_time_ms + hello.max_clock_drift_ms
        last = self.store.get("hlc")
        if hello.clock_skew_ms > hello.max_clock_drift_ms or (last and _wall(last) > limit):
            # Only ops stamped beyond the limit: the server refused those without a receipt,
            # so a new stamp under the same key is safe (an op it applied must stay identical).
            self.restamp(
                [op for op in self.store.pending() if _wall(op.hlc) > limit],
                reset=last is not None and _wall(last) > limit,
            )
        if hello.last_seq:  # the server holds numbers up to it, perhaps another store's (§3)
            self.store.number_above(hello.last_seq)
        self.progress("handshake", 1, 1)
        self.hello, self.shook_at = hello, time.monotonic()
        self._speak(hello)
        return hello

    def push(self, max_batch: int) -> tuple[Any, bool] | None:
        """Send the outbox in batches; apply each batch's results in one transaction.

        Over a transport that allows it, the next batch is sent as soon as this batch's answer
        shows that none of its operations must be sent again, and travels while the answer is
        saved; the batch after it is read and its request built meanwhile, so that it leaves
        the moment its turn comes. The server still receives the batches one after the other,
        in order.

        Under protocol 2 the last batch also asks for the first pull page, which the server
        reads after committing the push: returned with whether orjson read it, for
        :meth:`pull` (None when the last batch sent did not ask for one).
        """
        total = self.store.count("outbox", "state = 'pending'")
        self.progress("push", 0, total)
        size = max(1, min(max_batch, 500))
        assert self.hello is not None
        if self.api.concurrent and self.hello.protocol_version >= 4:
            return self._push_ahead(size, total)
        done, restamp_rounds = 0, 0
        batch = self.store.outgoing(limit=size)
        ahead: Callable[[], Any] | None = None  # the answer to ``batch``, already sent
        ready: tuple[list[Outgoing], Prepared | None] | None = None  # the batch after ``batch``
        first: tuple[Any, bool] | None = None
        while batch:
            if ahead is None and self.api.concurrent and len(batch) == size:
                # More may follow: send this one, and build the next while it travels.
                ahead = self.api.start(f"{_API}/push", self._push_body(batch, size))
                ready = self._ahead(batch, size)
            if ahead is None:
                answer = self.api.call(f"{_API}/push", self._push_body(batch, size))
            else:
                answer, ahead = ahead(), None
            results, first = self._answered(batch, answer, followed=False)
            following: list[Outgoing] = []
            if self.api.concurrent and not any(map(_sent_again, results)):
                following, request = ready or self._ahead(batch, size)
                if request is not None:
                    ahead = self.api.start(request)
            ready = None
            again = self._apply_results(batch, results)
            done += len(batch) - len(again)
            self.progress("push", done, total)
            if again:
                restamp_rounds += 1
                if restamp_rounds > 2:  # the clock is still refused: keep them for next time
                    break
                size = self._clock_refused([e for e, _ in again], size)
            elif ahead is not None:  # what follows the batch on its way, built while it travels
                ready = self._ahead(following, size)
            batch = following if ahead is not None else self.store.outgoing(limit=size)
        return first

    def _push_ahead(self, size: int, total: int) -> tuple[Any, bool] | None:
        """Protocol 4 over a transport that carries requests on other threads: two batches on
        their way at once. Each batch after the first says which one it follows (``after``,
        its sequence numbers); the server applies it only once every operation of that one is
        held, and otherwise answers it ``not_yet`` without judging it (protocol §5.6). So the
        server prepares one batch while it applies the one before, and no operation is ever
        applied ahead of one sent before it that the server has not answered for good.

        When an answer holds operations to send again (a clock refused, or ``not_yet``), the
        batches behind it are answered too (they follow it: ``not_yet``) and their results
        saved; what is left is sent again from the oldest, the first batch without ``after``.
        No batch goes ahead of one that may be answered without receipts (operations numbered
        again, ``made_seq``: §5.5), nor for the rest of the pass once a ``not_yet`` came, nor
        under a protocol below 4 (a handshake of this pass may change it): one batch at a time
        then, each built when the one before was answered. Returns as :meth:`push`.
        """
        done, restamp_rounds = 0, 0
        first: tuple[Any, bool] | None = None
        flight: deque[tuple[list[Outgoing], Callable[[], Any], bool]] = deque()
        refused_ahead = False  # a not_yet came: one batch at a time from now on
        batch = self.store.outgoing(limit=size)
        while batch or flight:
            while batch and (
                not flight
                or (len(flight) < 2 and not refused_ahead and self._may_follow(flight[-1][0]))
            ):  # the next batch leaves at once
                after = seq_runs(e.seq for e in flight[-1][0]) if flight else None
                body = self._push_body(batch, size, after)
                flight.append((batch, self.api.start(f"{_API}/push", body), after is not None))
                full = len(batch) == size
                batch = self.store.outgoing(limit=size, after=batch[-1].seq) if full else []
            sent, answer, followed = flight.popleft()
            again, first = self._saved(sent, answer, followed)
            done += len(sent) - len(again)
            while again and flight:  # those behind it follow it: wait for their answers
                sent, answer, followed = flight.popleft()
                more, first = self._saved(sent, answer, followed)
                done += len(sent) - len(more)
                again += more
            self.progress("push", done, total)
            refused_ahead = refused_ahead or any(r == Reason.NOT_YET for _, r in again)
            clock = [e for e, reason in again if reason == Reason.CLOCK_AHEAD]
            if clock:
                restamp_rounds += 1
                if restamp_rounds > 2:  # the clock is still refused: keep them for next time
                    break
                size = self._clock_refused(clock, size)
            if again:
                batch = self.store.outgoing(limit=size)  # from the oldest, in order
        return first

    def _may_follow(self, batch: list[Outgoing]) -> bool:
        """Whether a batch may be sent ahead of ``batch``'s answer: under protocol 4, and when
        none of its operations was numbered again (the server may answer such a one as its
        twin's replay without a receipt under its own number, §5.5, and the batch ahead would
        wait for it in vain)."""
        assert self.hello is not None
        return self.hello.protocol_version >= 4 and not any(
            b'"made_seq"' in entry.wire for entry in batch
        )

    def _saved(
        self, sent: list[Outgoing], answer: Callable[[], Any], followed: bool
    ) -> tuple[list[tuple[Outgoing, str]], Any]:
        """A batch's answer waited for, decoded and its results saved: the operations to send
        again with why, and the pull page it carried (as :meth:`push` returns it)."""
        results, page = self._answered(sent, answer(), followed=followed)
        return self._apply_results(sent, results), page

    def _answered(self, sent: list[Outgoing], reply: Any, *, followed: bool) -> tuple[Any, Any]:
        """A push answer's results, checked against the batch ``sent``, and the pull page it
        carried (as :meth:`push` returns it). ``followed``: whether the batch was sent ahead
        (``after``); only such a batch may be answered ``not_yet``."""
        results = _decoded(push_results, reply, "push answer")
        if len(results) != len(sent):
            raise ProtocolError(f"{len(sent)} operations pushed, {len(results)} answered")
        if not followed and any(r.reason == Reason.NOT_YET for r in results):
            raise ProtocolError("not_yet for a batch sent after every answer before it")
        page = reply.get("pull") if isinstance(reply, dict) else None
        return results, None if page is None else (page, self.api.plain_answer)

    def _clock_refused(self, refused: list[Outgoing], size: int) -> int:
        """Operations refused for their clock: re-stamped after a handshake of this pass, else
        by a new handshake (the reused answer's clock is stale), which re-stamps them and
        whose limits are current. Returns the batch size to go on with."""
        if self.shook_at is None:
            hello = self.handshake()
            return max(1, min(hello.max_batch, 500))
        self.restamp([entry.operation() for entry in refused])
        return size

    def _ahead(self, batch: list[Outgoing], size: int) -> tuple[list[Outgoing], Prepared | None]:
        """The batch after ``batch`` and its request, built to be sent later (None: none)."""
        following = self.store.outgoing(limit=size, after=batch[-1].seq)
        if not following:
            return following, None
        return following, self.api.prepare(f"{_API}/push", self._push_body(following, size))

    def _push_body(self, batch: list[Outgoing], size: int, after: Runs | None = None) -> bytes:
        """A batch's body; under protocol 2 the last batch of the outbox also asks for the
        first pull page (one request less: an everyday sync is a single request); ``after``:
        the batch it follows (protocol 4)."""
        last = len(batch) < size or not self.store.outgoing(limit=1, after=batch[-1].seq)
        if not last or self.hello is None or self.hello.protocol_version < 2:
            return push_body(self.device_id, batch, after=after)
        pull = self._pull_request(self.store.get("cursor", 0))
        return push_body(self.device_id, batch, pull, after)

    def _pull_request(self, cursor: int) -> dict[str, Any]:
        assert self.hello is not None
        max_page = self.hello.max_page
        limit = max_page if self.page_size is None else min(self.page_size, max_page)
        token = self.store.get("scope", {}).get("token")
        return PullRequest(cursor, limit, token, echo=not self._leave_out_own).to_dict()

    @property
    def _own_creates(self) -> bool:
        """Protocol 3: the device stores its own creates as the server holds them when they
        are acknowledged, and asks pulls to leave them out (``echo: false``)."""
        return self.hello is not None and self.hello.protocol_version >= 3

    @property
    def _leave_out_own(self) -> bool:
        """Whether pulls ask to leave out the device's own unchanged creates: under protocol 3,
        once the store holds every one of them — a store that made its device id, or one that
        has since completed a pull that sent everything (a device id adopted from elsewhere, a
        store from before protocol 3)."""
        return self._own_creates and bool(self.store.get("own_creates_held", False))

    def pull(
        self,
        max_page: int,
        *,
        generation: int,
        cursor: int | None = None,
        first: tuple[Any, bool] | None = None,
        echo: bool | None = None,
    ) -> Any:
        """Pull pages until ``has_more`` is false; return the last page's checksum.

        ``first``: the first page already received with the last push (and whether orjson
        read it), asked for at the stored cursor. ``echo``: whether the device's own unchanged
        creates are sent too (by default, only where the protocol cannot leave them out).
        """
        echo = not self._leave_out_own if echo is None else echo
        cursor = self.store.get("cursor", 0) if cursor is None else cursor
        acked_mark = self.store.max_acked()
        pulled = 0
        self.progress("pull", 0, None)
        limit = max_page if self.page_size is None else min(self.page_size, max_page)
        ahead: Callable[[], Any] | None = None  # the next page, asked for while one is saved
        while True:
            plain = None
            if first is not None:
                (answer, plain), first = first, None
            elif ahead is None:
                token = self.store.get("scope", {}).get("token")
                request = PullRequest(cursor, limit, token, echo=echo)
                answer = self.api.call(f"{_API}/pull", request.to_dict())
            else:
                answer, ahead = ahead(), None
            read = partial(pull_page, plain=self.api.plain_answer if plain is None else plain)
            page = _decoded(read, answer, "pull answer")
            scope = page.scope.to_dict()
            if page.reset:  # the scope starts over, everything sent (the server does so too)
                echo = True
            if page.has_more and self.api.concurrent:
                # The next request is what it would be once this page is saved (its cursor and
                # scope): send it now, so that the server prepares it while this page is saved.
                following = PullRequest(page.cursor, limit, scope.get("token"), echo=echo)
                ahead = self.api.start(f"{_API}/pull", following.to_dict())
            if self._changes_anything(page, scope, acked_mark):
                with self.store.tx() as conn:
                    if page.reset:
                        self.report.removed += Store.purge_outside(conn, page.scope.prefixes)
                    Store.remove(conn, [removal.record_id for removal in page.removals])
                    Store.save_snapshots(conn, page.changes, generation)
                    Store.put(conn, "cursor", page.cursor)
                    Store.put(conn, "scope", scope)
                    if not page.has_more:
                        Store.clear_acked(conn, acked_mark)
            self.report.removed += len(page.removals)
            pulled += len(page.changes)
            self.report.pulled += len(page.changes)
            self.progress("pull", pulled, None if page.has_more else pulled)
            cursor = page.cursor
            if not page.has_more:
                if echo and not self.store.get("own_creates_held", False):
                    self.store.set(own_creates_held=True)  # everything in scope has come
                return page.checksum

    def verify(self, checksum: Any, max_page: int) -> None:
        """Compare the server's checksum with ours; once per pass, re-pull the scope if off."""
        if checksum is None:
            return
        self.progress("verify", 0, 1)
        expected = (checksum.count, checksum.version_sum)
        # The kept totals answer in O(1); only when they disagree does a full recount (which
        # also repairs the totals) decide whether the scope must be pulled again.
        if self.store.checksum() != expected and self.store.recount() != expected:
            generation = self.store.get("generation", 0) + 1
            self.store.set(generation=generation)
            self.report.resynced = True
            # Everything, the device's own creates included: what is not sent is dropped.
            self.pull(max_page, generation=generation, cursor=0, echo=True)
            with self.store.tx() as conn:
                self.report.removed += Store.purge_unseen(conn, generation)
            self.report.checksum_ok = self.store.recount() == expected
        else:
            self.report.checksum_ok = True
        self.progress("verify", 1, 1)

    # --- helpers -----------------------------------------------------------------------------

    def _changes_anything(self, page: PullResponse, scope: dict[str, Any], acked_mark: int) -> bool:
        """False for an empty page that leaves cursor, scope and acked as they are (an idle
        sync then writes nothing, and costs no disk flush)."""
        return bool(
            page.changes
            or page.removals
            or page.reset
            or page.cursor != self.store.get("cursor", 0)
            or (acked_mark and not page.has_more)
            or scope != self.store.get("scope")
        )

    def _apply_results(
        self, batch: list[Outgoing], results: list[Any]
    ) -> list[tuple[Outgoing, str]]:
        """Apply one batch's results in one transaction; return the ops to send again, each
        with the transient reason it was refused for (``clock_ahead``: to re-stamp first)."""
        again: list[tuple[Outgoing, str]] = []
        acks: list[tuple[Outgoing, int | None]] = []
        rejects: list[tuple[Outgoing, str, str | None]] = []
        r = self.report
        with self.store.tx() as conn:
            for op, result in zip(batch, results, strict=True):
                if result.key is not None and result.key != op.key:
                    raise ProtocolError(f"result for {result.key} where {op.key} was expected")
                if _sent_again(result):
                    again.append((op, result.reason))
                    continue
                status = result.status
                if status is Outcome.DUPLICATE and result.original is Outcome.REJECTED:
                    status = Outcome.REJECTED
                r.pushed += 1
                if status is Outcome.REJECTED:
                    r.rejected += 1
                    rejects.append((op, result.reason or "rejected", result.message))
                    continue
                r.applied += status is Outcome.APPLIED
                r.duplicates += status is Outcome.DUPLICATE
                r.conflicts += status is Outcome.CONFLICT
                acks.append((op, result.version))
            Store.reject(conn, rejects)
            Store.ack(conn, acks, created=self._own_creates)
        return again

    def restamp(self, ops: list[Operation], *, reset: bool = True) -> None:
        """Give never-acknowledged ops fresh clock readings (server-corrected), same keys."""
        offset = self.store.get("clock_offset_ms", 0)
        clock = HybridClock(self.device_id, now=lambda: self.now_ms() + offset, max_drift_ms=10**15)
        with self.store.tx() as conn:
            count = 0
            for op in sorted(ops, key=lambda o: o.seq):
                # The stamp it was made with stays its identity (protocol §4.1).
                again = replace(op, hlc=str(clock.now()), made_hlc=op.identity)
                Store.replace_op(conn, again)
                count += 1
            if count or reset:
                Store.put(conn, "hlc", str(clock.last) if count else None)
        self.report.restamped += count
