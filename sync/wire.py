"""The wire format of the Linli Sync Protocol: every message with to_dict / from_dict.

Decoding never lets a KeyError or TypeError out: malformed input raises a WireFormatError
subclass. A push decodes operation by operation, so one malformed operation is answered on its
own and never costs the rest of the batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import _check as c
from .errors import ProtocolVersionError, SyncError, WrongType
from .merge import Outcome
from .operation import Operation
from .record import RecordState
from .schema import ARRIVAL_ORDERED

__all__ = [
    "PROTOCOL_VERSION",
    "SCHEMA_VERSION",
    "SUPPORTED_PROTOCOLS",
    "Checksum",
    "HandshakeRequest",
    "HandshakeResponse",
    "MalformedOperation",
    "OpResult",
    "PullRequest",
    "PullResponse",
    "PushRequest",
    "PushResponse",
    "Removal",
    "Runs",
    "ScopeInfo",
    "negotiate",
    "seq_runs",
    "snapshot",
]

PROTOCOL_VERSION = 1
SCHEMA_VERSION = 1
# 2: a push may also ask for the first pull page (``pull`` in the request and the answer).
# 3: a pull may leave out the device's own unchanged creates (``echo: false``).
# 4: a push may follow a batch still on its way (``after``): sent before that one's answer.
SUPPORTED_PROTOCOLS = (1, 2, 3, 4)
MAX_BATCH = 500
LAST_SEQ_MAX = 2**63 - 1  # the largest seq (§4.1): beyond it, a broken answer
MAX_PAGE = 2000


def negotiate(client_versions: Iterable[int]) -> int:
    """The highest protocol version both sides speak, or ProtocolVersionError."""
    common = set(client_versions) & set(SUPPORTED_PROTOCOLS)
    if not common:
        raise ProtocolVersionError(
            "no common protocol version; update the field app",
            client=sorted(client_versions),
            server=list(SUPPORTED_PROTOCOLS),
        )
    return max(common)


@dataclass(frozen=True, slots=True)
class ScopeInfo:
    """The caller's jurisdiction: unit or grid code prefixes and a token that changes with it."""

    prefixes: tuple[str, ...]
    token: str

    def to_dict(self) -> dict[str, Any]:
        return {"prefixes": list(self.prefixes), "token": self.token}

    @classmethod
    def from_dict(cls, data: object) -> ScopeInfo:
        d = c.mapping(data, "scope")
        prefixes = c.items(c.req(d, "prefixes", "scope"), "scope.prefixes", max_items=10_000)
        return cls(
            tuple(c.string(p, "scope.prefixes[]", max_len=15) for p in prefixes),
            c.string(c.req(d, "token", "scope"), "scope.token", max_len=64),
        )


@dataclass(frozen=True, slots=True)
class HandshakeRequest:
    device_id: str
    device_time_ms: int
    protocol_versions: tuple[int, ...] = SUPPORTED_PROTOCOLS
    schema_version: int = SCHEMA_VERSION
    app: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "device_time_ms": self.device_time_ms,
            "protocol_versions": list(self.protocol_versions),
            "schema_version": self.schema_version,
            "app": self.app,
        }

    @classmethod
    def from_dict(cls, data: object) -> HandshakeRequest:
        d = c.mapping(data, "handshake")
        versions = c.items(
            c.req(d, "protocol_versions", "handshake"), "handshake.protocol_versions", max_items=16
        )
        return cls(
            device_id=c.string(
                c.req(d, "device_id", "handshake"), "handshake.device_id", max_len=64
            ),
            device_time_ms=c.integer(
                c.req(d, "device_time_ms", "handshake"), "handshake.device_time_ms"
            ),
            protocol_versions=tuple(
                c.integer(v, "handshake.protocol_versions[]", maximum=999) for v in versions
            ),
            schema_version=c.integer(
                c.req(d, "schema_version", "handshake"), "handshake.schema_version", maximum=999
            ),
            app=c.opt_string(d.get("app"), "handshake.app"),
        )


@dataclass(frozen=True, slots=True)
class HandshakeResponse:
    protocol_version: int
    schema_version: int
    server_time_ms: int
    clock_skew_ms: int
    max_clock_drift_ms: int
    max_batch: int
    max_page: int
    scope: ScopeInfo
    # The highest operation sequence number the server holds for this device id (0: none); the
    # device numbers new operations above it, as another store may have used the id (§3).
    last_seq: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol_version": self.protocol_version,
            "schema_version": self.schema_version,
            "server_time_ms": self.server_time_ms,
            "clock_skew_ms": self.clock_skew_ms,
            "max_clock_drift_ms": self.max_clock_drift_ms,
            "max_batch": self.max_batch,
            "max_page": self.max_page,
            "scope": self.scope.to_dict(),
            "last_seq": self.last_seq,
        }

    @classmethod
    def from_dict(cls, data: object) -> HandshakeResponse:
        d = c.mapping(data, "handshake_response")
        ints = {
            k: c.integer(c.req(d, k, "handshake_response"), k, minimum=-(2**62))
            for k in (
                "protocol_version",
                "schema_version",
                "server_time_ms",
                "clock_skew_ms",
                "max_clock_drift_ms",
                "max_batch",
                "max_page",
            )
        }
        # Optional: a server from before it was added sends none.
        last_seq = c.integer(d.get("last_seq", 0), "last_seq", maximum=LAST_SEQ_MAX)
        return cls(
            **ints,
            scope=ScopeInfo.from_dict(c.req(d, "scope", "handshake_response")),
            last_seq=last_seq,
        )


@dataclass(frozen=True, slots=True)
class MalformedOperation:
    """An operation of a push that could not be decoded; it is answered as rejected."""

    index: int
    key: str | None
    error: SyncError


Runs = tuple[tuple[int, int], ...]


def seq_runs(seqs: Iterable[int]) -> Runs:
    """Sorted sequence numbers as runs of consecutive ones, ``((first, last), …)``."""
    runs: list[tuple[int, int]] = []
    for seq in seqs:
        if runs and seq == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], seq)
        else:
            runs.append((seq, seq))
    return tuple(runs)


def _runs(value: object, max_batch: int) -> Runs:
    """``after`` of a push: runs ``[first, last]`` of sequence numbers, ascending and apart,
    covering at most ``max_batch`` numbers (one batch's)."""
    if type(value) is not list or not 0 < len(value) <= max_batch:
        raise WrongType(
            f"push.after must be a list of 1-{max_batch} runs [first, last]", field="push.after"
        )
    runs: list[tuple[int, int]] = []
    covered = 0
    for run in value:
        if not isinstance(run, list) or len(run) != 2:
            raise WrongType("push.after[] must be [first, last]", field="push.after")
        first = c.integer(run[0], "push.after[0]", minimum=1, maximum=LAST_SEQ_MAX)
        last = c.integer(run[1], "push.after[1]", minimum=first, maximum=LAST_SEQ_MAX)
        if runs and first <= runs[-1][1] + 1:
            raise WrongType("push.after: runs must ascend, apart", field="push.after")
        covered += last - first + 1
        if covered > max_batch:
            raise WrongType(
                f"push.after covers more than {max_batch} numbers (one batch)", field="push.after"
            )
        runs.append((first, last))
    return tuple(runs)


@dataclass(frozen=True, slots=True)
class PushRequest:
    device_id: str
    operations: list[Operation | MalformedOperation]
    # Protocol 4: the numbers of the batch this one follows, sent before that one's answer
    # came. Applied only once every one of them is held (§5.6); else answered ``not_yet``.
    after: Runs | None = None

    def to_dict(self) -> dict[str, Any]:
        ops = [op.to_dict() for op in self.operations if isinstance(op, Operation)]
        data: dict[str, Any] = {"device_id": self.device_id, "operations": ops}
        if self.after is not None:
            data["after"] = [list(run) for run in self.after]
        return data

    @classmethod
    def from_dict(
        cls, data: object, *, max_batch: int = MAX_BATCH, author: str | None = None
    ) -> PushRequest:
        """Decode a push; ``author``, if given, is who its operations are attributed to."""
        d = c.mapping(data, "push")
        device_id = c.string(c.req(d, "device_id", "push"), "push.device_id", max_len=64)
        raw = c.items(c.req(d, "operations", "push"), "push.operations", max_items=max_batch)
        after = None if d.get("after") is None else _runs(d["after"], max_batch)
        ops: list[Operation | MalformedOperation] = []
        for index, item in enumerate(raw):
            try:
                op = Operation.from_dict(item, author=author)
                if op.device_id != device_id:
                    raise WrongType(
                        "operation.device_id differs from the pushing device",
                        field="operation.device_id",
                    )
                ops.append(op)
            except SyncError as exc:
                key = None
                if isinstance(item, Mapping) and isinstance(item.get("seq"), int):
                    key = f"{device_id}:{item['seq']}"
                ops.append(MalformedOperation(index, key, exc))
        return cls(device_id, ops, after)


@dataclass(frozen=True, slots=True)
class OpResult:
    """The answer for one operation of a push, in the same position as the operation."""

    key: str | None
    status: Outcome
    record_id: str | None = None
    version: int | None = None
    reason: str | None = None
    message: str | None = None
    conflicts: tuple[str, ...] = ()
    original: Outcome | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "key": self.key,
            "status": str(self.status),
            "record_id": self.record_id,
            "version": self.version,
        }
        if self.reason:
            d["reason"] = self.reason
        if self.message:
            d["message"] = self.message
        if self.conflicts:
            d["conflicts"] = list(self.conflicts)
        if self.original:
            d["original"] = str(self.original)
        return d

    @classmethod
    def from_dict(cls, data: object) -> OpResult:
        d = c.mapping(data, "result")
        try:
            status = Outcome(c.string(c.req(d, "status", "result"), "result.status"))
            raw = d.get("original")
            original = Outcome(c.string(raw, "result.original")) if raw else None
        except ValueError:
            raise WrongType("unknown result status", field="result.status") from None
        version = d.get("version")
        return cls(
            key=c.opt_string(d.get("key"), "result.key"),
            status=status,
            record_id=c.opt_string(d.get("record_id"), "result.record_id"),
            version=None if version is None else c.integer(version, "result.version"),
            reason=c.opt_string(d.get("reason"), "result.reason"),
            message=c.opt_string(d.get("message"), "result.message", max_len=2000),
            conflicts=tuple(
                c.string(f, "result.conflicts[]")
                for f in c.items(d.get("conflicts", []), "result.conflicts", max_items=100)
            ),
            original=original,
        )


@dataclass(frozen=True, slots=True)
class PushResponse:
    results: list[OpResult]
    server_time_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "results": [r.to_dict() for r in self.results],
            "server_time_ms": self.server_time_ms,
        }

    @classmethod
    def from_dict(cls, data: object) -> PushResponse:
        d = c.mapping(data, "push_response")
        results = c.items(
            c.req(d, "results", "push_response"), "push_response.results", max_items=100_000
        )
        return cls(
            [OpResult.from_dict(r) for r in results],
            c.integer(c.req(d, "server_time_ms", "push_response"), "server_time_ms"),
        )


@dataclass(frozen=True, slots=True)
class PullRequest:
    """``echo=False`` (protocol 3): leave out the records that are still the asking device's
    own create, unchanged since (it holds them already, see docs/protocol.md §7.1)."""

    cursor: int = 0
    limit: int = 1000
    scope_token: str | None = None
    echo: bool = True

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "cursor": self.cursor,
            "limit": self.limit,
            "scope_token": self.scope_token,
        }
        if not self.echo:
            data["echo"] = False
        return data

    @classmethod
    def from_dict(cls, data: object, *, max_page: int = MAX_PAGE) -> PullRequest:
        d = c.mapping(data, "pull")
        echo = d.get("echo", True)
        if not isinstance(echo, bool):
            raise WrongType("pull.echo must be a boolean", field="pull.echo")
        return cls(
            cursor=c.integer(d.get("cursor", 0), "pull.cursor"),
            limit=c.integer(d.get("limit", 1000), "pull.limit", minimum=1, maximum=max_page),
            scope_token=c.opt_string(d.get("scope_token"), "pull.scope_token", max_len=64),
            echo=echo,
        )


@dataclass(frozen=True, slots=True)
class Removal:
    """A record the device must drop: it left the caller's scope (deletes are tombstones)."""

    record_id: str
    reason: str = "scope"

    def to_dict(self) -> dict[str, Any]:
        return {"record_id": self.record_id, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: object) -> Removal:
        d = c.mapping(data, "removal")
        return cls(
            c.uuid_text(c.req(d, "record_id", "removal"), "removal.record_id"),
            c.string(d.get("reason", "scope"), "removal.reason", max_len=32),
        )


@dataclass(frozen=True, slots=True)
class Checksum:
    """A digest of the record set in a scope: how many records, and the sum of their versions."""

    count: int
    version_sum: int

    @classmethod
    def of(cls, versions: Iterable[int]) -> Checksum:
        vs = list(versions)
        return cls(len(vs), sum(vs))

    def to_dict(self) -> dict[str, int]:
        return {"count": self.count, "version_sum": self.version_sum}

    @classmethod
    def from_dict(cls, data: object) -> Checksum:
        d = c.mapping(data, "checksum")
        return cls(
            c.integer(c.req(d, "count", "checksum"), "checksum.count"),
            c.integer(c.req(d, "version_sum", "checksum"), "checksum.version_sum"),
        )


def snapshot(
    state: RecordState, *, grid_code: str | None = None, review: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A record as a pull sends it: current values, conflicts, collections, review."""
    return {
        "type": state.record_type,
        "id": state.record_id,
        "version": state.version,
        "grid_code": grid_code,
        "deleted": state.deleted,
        "fields": state.values(),
        "conflicts": {name: [w.describe() for w in ws] for name, ws in state.conflicts().items()},
        "collections": {
            name: state.items(name, arrival_order=name in ARRIVAL_ORDERED)
            for name in state.collections
        },
        "review": dict(review) if review else None,
    }


def _check_snapshot(data: object) -> dict[str, Any]:
    d = c.mapping(data, "change")
    for key in ("type", "id", "version", "fields", "deleted"):
        c.req(d, key, "change")
    c.uuid_text(d["id"], "change.id")
    c.integer(d["version"], "change.version", minimum=1)
    c.mapping(d["fields"], "change.fields")
    if not isinstance(d["deleted"], bool):
        raise WrongType("change.deleted must be a boolean", field="change.deleted")
    c.mapping(d.get("conflicts") or {}, "change.conflicts")
    c.mapping(d.get("collections") or {}, "change.collections")
    return dict(d)


@dataclass(frozen=True, slots=True)
class PullResponse:
    changes: list[dict[str, Any]]
    removals: list[Removal]
    cursor: int
    has_more: bool
    scope: ScopeInfo
    reset: bool = False
    checksum: Checksum | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes": self.changes,
            "removals": [r.to_dict() for r in self.removals],
            "cursor": self.cursor,
            "has_more": self.has_more,
            "reset": self.reset,
            "scope": self.scope.to_dict(),
            "checksum": self.checksum.to_dict() if self.checksum else None,
        }

    @classmethod
    def from_dict(cls, data: object) -> PullResponse:
        d = c.mapping(data, "pull_response")
        changes = c.items(
            c.req(d, "changes", "pull_response"), "pull_response.changes", max_items=100_000
        )
        removals = c.items(d.get("removals", []), "pull_response.removals", max_items=100_000)
        has_more = c.req(d, "has_more", "pull_response")
        reset = d.get("reset", False)
        if not isinstance(has_more, bool) or not isinstance(reset, bool):
            raise WrongType("has_more and reset must be booleans", field="pull_response")
        checksum = d.get("checksum")
        return cls(
            changes=[_check_snapshot(ch) for ch in changes],
            removals=[Removal.from_dict(r) for r in removals],
            cursor=c.integer(c.req(d, "cursor", "pull_response"), "pull_response.cursor"),
            has_more=has_more,
            scope=ScopeInfo.from_dict(c.req(d, "scope", "pull_response")),
            reset=reset,
            checksum=None if checksum is None else Checksum.from_dict(checksum),
        )
