"""The exception tree of the sync core. Every malformed input raises one of these.

SyncError                     root: anything the protocol refuses
├── WireFormatError           a message does not follow the wire format
│   ├── MissingField          a required key is absent
│   ├── WrongType             a value has the wrong JSON type or shape
│   ├── UnknownRecordType     a record type this protocol version does not know
│   └── OversizeValue         a value, list or message is larger than allowed
├── ProtocolVersionError      the peer speaks a protocol version we do not
└── ClockDriftError           a clock reading is further ahead than the drift limit
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ClockDriftError",
    "MissingField",
    "OversizeValue",
    "ProtocolVersionError",
    "SyncError",
    "UnknownRecordType",
    "WireFormatError",
    "WrongType",
]


class SyncError(Exception):
    """Root of the sync core's errors. ``code`` is a stable machine-readable name."""

    code = "sync_error"

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": dict(self.context)}


class WireFormatError(SyncError):
    code = "wire_format"


class MissingField(WireFormatError):
    code = "missing_field"


class WrongType(WireFormatError):
    code = "wrong_type"


class UnknownRecordType(WireFormatError):
    code = "unknown_record_type"


class OversizeValue(WireFormatError):
    code = "oversize_value"


class ProtocolVersionError(SyncError):
    code = "protocol_unsupported"


class ClockDriftError(SyncError):
    code = "clock_drift"
