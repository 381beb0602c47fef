"""The outbox as a push sends it: stored operations go out as their stored text, and the push
answer is decoded on a fast path when it has its usual shape.

The store keeps each operation as the compact JSON of ``Operation.to_dict()`` (what
``Store.add_op`` and ``Store.replace_op`` write), which is exactly the form a push sends. So a
batch is sent as those texts joined, without decoding, checking and encoding every operation
again: the texts are trusted because the SDK wrote them. An operation is decoded in full
(:meth:`Outgoing.operation`) only when it must be changed, i.e. re-stamped.

The server's answer is not trusted: :func:`push_results` takes a result of the usual shape
(key, status, record id, version) only when ``OpResult.from_dict`` would accept it and give the
same result, and hands everything else to ``OpResult.from_dict``, which raises the same errors.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sync import Operation, OpResult, Outcome, PushResponse, Runs

__all__ = ["Outgoing", "push_body", "push_results"]

_PREFIX = b'{"device_id":"'  # how every stored operation starts (``to_dict`` puts it first)
_MAX_STRING = 200  # sync._check's default length limit (key, record_id)
_MAX_INT = 2**63 - 1  # sync._check.integer's default range, from 0
_MAX_RESULTS = 100_000  # PushResponse.from_dict's limit
_USUAL_KEYS = frozenset({"key", "status", "record_id", "version"})
_STATUS = {str(outcome): outcome for outcome in Outcome}


@dataclass(slots=True)  # not frozen: built 500 at a time, and a frozen __init__ is twice as slow
class Outgoing:
    """A pending operation as stored: its sequence number, key, record and UTF-8 JSON text."""

    seq: int
    key: str
    record_id: str
    wire: bytes

    @classmethod
    def from_row(cls, seq: int, record_id: str, wire: bytes) -> Outgoing:
        """An outbox row (``seq``, ``record_id``, ``op`` as bytes); the key's device id is the
        operation's own."""
        return cls(seq, f"{_device_id(wire)}:{seq}", record_id, wire)

    def operation(self) -> Operation:
        """The operation, decoded and checked in full."""
        return Operation.from_dict(json.loads(self.wire))


def _device_id(wire: bytes) -> Any:
    """The ``device_id`` of a stored operation: read off its first member when that is a plain
    string (no escape sequence, so its text is its value), else by decoding the JSON."""
    if wire.startswith(_PREFIX):
        end = wire.find(b'"', len(_PREFIX))
        if end > 0 and b"\\" not in (value := wire[len(_PREFIX) : end]):
            return value.decode()
    data = json.loads(wire)
    return data.get("device_id") if isinstance(data, dict) else None


def push_body(
    device_id: str,
    batch: Sequence[Outgoing],
    pull: dict[str, Any] | None = None,
    after: Runs | None = None,
) -> bytes:
    """The JSON body of ``PushRequest(device_id, ops, after).to_dict()`` for the batch's
    operations, built from their stored texts: the bytes ``json.dumps`` gives (compact, UTF-8);
    with ``pull`` (protocol 2) the pull request to answer after the push, with ``after``
    (protocol 4) the numbers of the batch it follows."""
    head = json.dumps(device_id, ensure_ascii=False).encode()
    ops = b",".join([entry.wire for entry in batch])
    tail = b"" if pull is None else b',"pull":' + json.dumps(pull, separators=(",", ":")).encode()
    if after is not None:
        runs = json.dumps([list(run) for run in after], separators=(",", ":"))
        tail += b',"after":' + runs.encode()
    return b'{"device_id":' + head + b',"operations":[' + ops + b"]" + tail + b"}"


def push_results(answer: Any) -> list[OpResult]:
    """``PushResponse.from_dict(answer).results``: the same results and the same errors."""
    results = answer.get("results") if type(answer) is dict else None
    stamp = answer.get("server_time_ms") if type(answer) is dict else None
    if (
        type(results) is not list
        or len(results) > _MAX_RESULTS
        or type(stamp) is not int
        or not 0 <= stamp <= _MAX_INT
    ):
        return PushResponse.from_dict(answer).results
    return [_usual(item) or OpResult.from_dict(item) for item in results]


def _usual(item: Any) -> OpResult | None:
    """The result of the usual shape, built directly; None for anything else."""
    if type(item) is not dict or not item.keys() <= _USUAL_KEYS:
        return None
    key, status = item.get("key"), item.get("status")
    record_id, version = item.get("record_id"), item.get("version")
    outcome = _STATUS.get(status) if type(status) is str else None
    if (
        outcome is None
        or not (key is None or (type(key) is str and len(key) <= _MAX_STRING and key.isascii()))
        or not (
            record_id is None
            or (type(record_id) is str and len(record_id) <= _MAX_STRING and record_id.isascii())
        )
        or not (version is None or (type(version) is int and 0 <= version <= _MAX_INT))
    ):
        return None
    return OpResult(key, outcome, record_id, version)
