"""The change model: one operation on one record, as a device makes it offline.

An operation names its record (type and device-generated UUID), the record version the device
last saw (``base_version``), its idempotency key (device id + per-device sequence), its hybrid
logical clock time and its author. Kinds:

- ``create``: a new record with its initial fields (base version 0);
- ``update``: new values for some fields;
- ``delete``: a tombstone; the record's last values are kept;
- ``append``: one item added to an append-only collection (visit notes, case steps);
- ``resolve``: a person's choice for fields in conflict, with a reason. It merges like an update,
  so it is versioned like any edit and clears the conflict only if its author saw every
  competing value.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from . import _check as c
from ._check import _UUID_RE
from .clock import _HLC_RE, HLC
from .errors import UnknownRecordType, WrongType
from .schema import RECORD_TYPES

__all__ = ["MAX_FIELDS", "OpKind", "Operation", "canonical_json"]

MAX_FIELDS = 64
_NAME_MAX = 64


class OpKind(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    APPEND = "append"
    RESOLVE = "resolve"


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Any) -> str:
    """The one JSON spelling used for digests and equality of values: what
    ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` gives
    (that call builds this same encoder each time; this one is built once)."""
    return _CANONICAL.encode(value)


@dataclass(frozen=True, slots=True)
class Operation:
    """One change to one record. Immutable; ``key`` identifies it across retries."""

    device_id: str
    seq: int
    kind: OpKind
    record_type: str
    record_id: str
    base_version: int
    hlc: str
    author: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    collection: str | None = None
    item: Mapping[str, Any] | None = None
    reason: str | None = None
    # The number the device made it with, when it numbered it again (a store's first sign-in
    # under a device id used before, protocol §3): copies of the store agree on it.
    made_seq: int | None = None
    # The clock stamp it was made with, when the device stamped it again (after clock_ahead).
    # ``made_hlc`` or else ``hlc`` is the operation's identity among its device's: unchanged
    # by a new stamp or a new number, shared by every copy of the store (protocol §4.1).
    made_hlc: str | None = None
    # Random, on an edit (update, delete, resolve): two edits with the same change made by two
    # copies of a store at the same stamp are still two operations (a create or an append has
    # a random record or item id already; protocol §4.1).
    nonce: str | None = None

    @property
    def identity(self) -> str:
        """Its identity among its device's operations (protocol §4.1): the clock stamp it was
        made with — ``made_hlc`` once it was stamped again, else ``hlc``. No new stamp or
        number changes it, and every copy of the store has it."""
        return self.made_hlc or self.hlc

    @property
    def key(self) -> str:
        """The idempotency key: ``device_id:seq``."""
        return f"{self.device_id}:{self.seq}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "device_id": self.device_id,
            "seq": self.seq,
            "kind": str(self.kind),
            "record_type": self.record_type,
            "record_id": self.record_id,
            "base_version": self.base_version,
            "hlc": self.hlc,
            "author": self.author,
        }
        if self.kind in (OpKind.CREATE, OpKind.UPDATE, OpKind.RESOLVE):
            data["fields"] = dict(self.fields)
        if self.kind is OpKind.APPEND:
            data["collection"] = self.collection
            data["item"] = dict(self.item or {})
        if self.reason is not None:
            data["reason"] = self.reason
        if self.made_seq is not None:
            data["made_seq"] = self.made_seq
        if self.made_hlc is not None:
            data["made_hlc"] = self.made_hlc
        if self.nonce is not None:
            data["nonce"] = self.nonce
        return data

    def canonical(self, encode: Callable[[Any], str] = canonical_json) -> str:
        """The canonical JSON of the operation as the device sent it, without ``author`` (the
        server sets that): what the digest covers and what the server keeps as history.
        ``encode``: a faster spelling of :func:`canonical_json`, giving exactly its text."""
        payload = self.to_dict()
        del payload["author"]
        return encode(payload)

    def digest(self, canonical: str | None = None) -> str:
        """SHA-256 of :meth:`canonical` (pass it if already computed)."""
        return hashlib.sha256((canonical or self.canonical()).encode()).hexdigest()

    @classmethod
    def from_dict(cls, data: object, *, author: str | None = None) -> Operation:
        """Decode and check the shape of one operation; raise a WireFormatError subclass.

        ``author``, if given, is who the operation is attributed to instead of the ``author`` it
        carries (the server's attribution; what the device sent is still checked)."""
        return _decode_plain(cls, data, author) or cls._decode(data, author)

    @classmethod
    def _decode(cls, data: object, author: str | None = None) -> Operation:
        """The careful decoder: every check in order, each failure its own error."""
        d = c.mapping(data, "operation")
        kind_text = c.string(c.req(d, "kind", "operation"), "operation.kind", max_len=16)
        try:
            kind = OpKind(kind_text)
        except ValueError:
            raise WrongType(
                f"unknown operation kind {kind_text!r}", field="operation.kind"
            ) from None
        rtype = c.string(c.req(d, "record_type", "operation"), "operation.record_type", max_len=32)
        if rtype not in RECORD_TYPES:
            raise UnknownRecordType(f"unknown record type {rtype!r}", record_type=rtype)
        hlc = c.string(c.req(d, "hlc", "operation"), "operation.hlc", max_len=90)
        HLC.parse(hlc)
        fields: dict[str, Any] = {}
        collection = item = None
        if kind in (OpKind.CREATE, OpKind.UPDATE, OpKind.RESOLVE):
            raw = c.mapping(c.req(d, "fields", "operation"), "operation.fields")
            if len(raw) > MAX_FIELDS:
                raise WrongType(f"at most {MAX_FIELDS} fields per operation", field="fields")
            if not raw and kind is not OpKind.CREATE:
                raise WrongType("an update needs at least one field", field="operation.fields")
            for name, value in raw.items():
                c.string(name, "operation.fields key", max_len=_NAME_MAX)
                fields[name] = c.json_value(value, f"operation.fields.{name}")
        elif kind is OpKind.APPEND:
            collection = c.string(
                c.req(d, "collection", "operation"), "operation.collection", max_len=_NAME_MAX
            )
            if collection not in RECORD_TYPES[rtype].collections:
                raise WrongType(
                    f"{rtype} has no collection {collection!r}", field="operation.collection"
                )
            item = dict(c.mapping(c.req(d, "item", "operation"), "operation.item"))
            item["id"] = c.uuid_text(c.req(item, "id", "operation.item"), "operation.item.id")
            c.json_value(item, "operation.item", max_bytes=8 * 1024)
        return cls(
            device_id=c.string(
                c.req(d, "device_id", "operation"), "operation.device_id", max_len=64
            ),
            seq=c.integer(c.req(d, "seq", "operation"), "operation.seq", minimum=1),
            kind=kind,
            record_type=rtype,
            record_id=c.uuid_text(c.req(d, "record_id", "operation"), "operation.record_id"),
            base_version=c.integer(c.req(d, "base_version", "operation"), "operation.base_version"),
            hlc=hlc,
            author=_attributed(
                c.string(d.get("author", ""), "operation.author", max_len=64, empty=True), author
            ),
            fields=fields,
            collection=collection,
            item=item,
            reason=c.opt_string(d.get("reason"), "operation.reason", max_len=1000),
            made_seq=None
            if d.get("made_seq") is None
            else c.integer(d["made_seq"], "operation.made_seq", minimum=1),
            made_hlc=None if d.get("made_hlc") is None else _stamp(d["made_hlc"]),
            nonce=None if d.get("nonce") is None else _nonce(d["nonce"]),
        )


# --- the fast path -------------------------------------------------------------------------------

_KINDS = {str(k): k for k in OpKind}
_WITH_FIELDS = frozenset({OpKind.CREATE, OpKind.UPDATE, OpKind.RESOLVE})
_INT_MAX = 2**63 - 1
_TEXT_FITS = (c.MAX_VALUE_BYTES - 2) // 4  # characters of text surely within the value limit


def _unicode(text: str) -> bool:
    """True unless ``text`` holds an unpaired surrogate (which no UTF-8 text can hold)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(value: object, min_len: int, max_len: int) -> bool:
    """What ``c.string`` accepts, for the exact ``str`` type (False: ask ``c.string``)."""
    return type(value) is str and min_len <= len(value) <= max_len and _unicode(value)


def _stamp(value: object) -> str:
    """A clock stamp other than the operation's own (``made_hlc``), checked as ``hlc`` is."""
    text = c.string(value, "operation.made_hlc", max_len=90)
    HLC.parse(text)
    return text


_NONCE_RE = re.compile(r"[A-Za-z0-9_\-]{1,32}", re.ASCII)


def _nonce(value: object) -> str:
    """An edit's nonce: 1-32 characters of ``A-Z a-z 0-9 _ -``."""
    text = c.string(value, "operation.nonce", max_len=32)
    if not _NONCE_RE.fullmatch(text):
        raise WrongType("operation.nonce must be 1-32 of A-Z a-z 0-9 _ -", field="operation.nonce")
    return text


def _attributed(sent: str, author: str | None) -> str:
    return sent if author is None else author


def _decode_plain(cls: type[Operation], d: object, author: str | None = None) -> Operation | None:
    """The operation in ``d`` when it is a well-formed one of plain JSON, else None.

    It accepts only what :meth:`Operation._decode` accepts, and returns the same operation; for
    anything unusual or wrong it answers None and the careful decoder decides (and names the
    error). It never raises.
    """
    if type(d) is not dict:
        return None
    get = d.get
    kind = _KINDS.get(text) if type(text := get("kind")) is str else None
    rtype = get("record_type")
    hlc = get("hlc")
    if (
        kind is None
        or type(rtype) is not str
        or not 0 < len(rtype) <= 32
        or rtype not in RECORD_TYPES
        or type(hlc) is not str
        or len(hlc) > 90
        or not _HLC_RE.fullmatch(hlc)
    ):
        return None
    fields: dict[str, Any] = {}
    collection = item = None
    if kind in _WITH_FIELDS:
        raw = get("fields")
        if (
            type(raw) is not dict
            or len(raw) > MAX_FIELDS
            or (not raw and kind is not OpKind.CREATE)
        ):
            return None
        for name, value in raw.items():
            if type(name) is not str or not 0 < len(name) <= _NAME_MAX or not name.isascii():
                return None
            kind_of = type(value)
            if kind_of is str:  # at most 4 UTF-8 bytes a character: within the limit
                if len(value) > _TEXT_FITS:
                    return None
                if not value.isascii():
                    try:
                        value.encode("utf-8")
                    except UnicodeEncodeError:
                        return None
            elif kind_of is float:
                if not math.isfinite(value):
                    return None
            elif (
                value is not None
                and kind_of is not int
                and kind_of is not bool
                and c.plain_size(value, c.MAX_VALUE_BYTES) is None
            ):
                return None
            fields[name] = value
    elif kind is OpKind.APPEND:
        collection = get("collection")
        raw_item = get("item")
        if (
            type(collection) is not str
            or collection not in RECORD_TYPES[rtype].collections
            or not _text(collection, 1, _NAME_MAX)
            or type(raw_item) is not dict
        ):
            return None
        item_id = raw_item.get("id")
        if type(item_id) is not str or not _UUID_RE.fullmatch(item_id):
            return None
        if c.plain_size(raw_item, 8 * 1024) is None:
            return None
        item = dict(raw_item)
    device_id = get("device_id")
    seq = get("seq")
    record_id = get("record_id")
    base_version = get("base_version")
    sent_author = get("author", "")
    reason = get("reason")
    made_seq = get("made_seq")
    made_hlc = get("made_hlc")
    nonce = get("nonce")
    if not (
        _text(device_id, 1, 64)
        and type(seq) is int
        and 1 <= seq <= _INT_MAX
        and type(record_id) is str
        and _UUID_RE.fullmatch(record_id)
        and type(base_version) is int
        and 0 <= base_version <= _INT_MAX
        and _text(sent_author, 0, 64)
        and (reason is None or _text(reason, 0, 1000))
        and (made_seq is None or (type(made_seq) is int and 1 <= made_seq <= _INT_MAX))
        and (
            made_hlc is None
            or (type(made_hlc) is str and len(made_hlc) <= 90 and _HLC_RE.fullmatch(made_hlc))
        )
        and (nonce is None or (type(nonce) is str and _NONCE_RE.fullmatch(nonce)))
    ):
        return None
    return cls(
        device_id,
        seq,
        kind,
        rtype,
        record_id,
        base_version,
        hlc,
        _attributed(sent_author, author),
        fields,
        collection,
        item,
        reason,
        made_seq,
        made_hlc,
        nonce,
    )
