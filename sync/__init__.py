"""Linli Sync Protocol core: clocks, operations, the merge rule and the wire format.

This package is pure: standard library only, no I/O (no files, sockets, databases or clock reads
except through a clock function the caller may replace). The server and the client SDK both
import it; neither is imported by it.
"""

from .clock import DEFAULT_MAX_DRIFT_MS, HLC, HybridClock, wall_clock_ms
from .deadlines import DeadlineRules, DeadlineStatus, deadline_status, due_date
from .errors import (
    ClockDriftError,
    MissingField,
    OversizeValue,
    ProtocolVersionError,
    SyncError,
    UnknownRecordType,
    WireFormatError,
    WrongType,
)
from .merge import TRANSIENT_REASONS, MergeResult, Outcome, Reason, Receipt, apply_operation, merge
from .operation import Operation, OpKind, canonical_json
from .record import DELETED, RecordState, Write
from .replica import overlay
from .schema import RECORD_TYPES, SERVER_OWNED_FIELDS, FieldSpec, RecordType, validate_fields
from .wire import (
    PROTOCOL_VERSION,
    SCHEMA_VERSION,
    Checksum,
    HandshakeRequest,
    HandshakeResponse,
    MalformedOperation,
    OpResult,
    PullRequest,
    PullResponse,
    PushRequest,
    PushResponse,
    Removal,
    Runs,
    ScopeInfo,
    negotiate,
    seq_runs,
    snapshot,
)
from .workflow import Allowed, CaseAction, CaseState, CaseStatus, Refused, decide

__all__ = [
    "DEFAULT_MAX_DRIFT_MS",
    "DELETED",
    "HLC",
    "PROTOCOL_VERSION",
    "RECORD_TYPES",
    "SCHEMA_VERSION",
    "SERVER_OWNED_FIELDS",
    "TRANSIENT_REASONS",
    "Allowed",
    "CaseAction",
    "CaseState",
    "CaseStatus",
    "Checksum",
    "ClockDriftError",
    "DeadlineRules",
    "DeadlineStatus",
    "FieldSpec",
    "HandshakeRequest",
    "HandshakeResponse",
    "HybridClock",
    "MalformedOperation",
    "MergeResult",
    "MissingField",
    "OpKind",
    "OpResult",
    "Operation",
    "Outcome",
    "OversizeValue",
    "ProtocolVersionError",
    "PullRequest",
    "PullResponse",
    "PushRequest",
    "PushResponse",
    "Reason",
    "Receipt",
    "RecordState",
    "RecordType",
    "Refused",
    "Removal",
    "Runs",
    "ScopeInfo",
    "SyncError",
    "UnknownRecordType",
    "WireFormatError",
    "Write",
    "WrongType",
    "apply_operation",
    "canonical_json",
    "deadline_status",
    "decide",
    "due_date",
    "merge",
    "negotiate",
    "overlay",
    "seq_runs",
    "snapshot",
    "validate_fields",
    "wall_clock_ms",
]
