"""A record as the server holds it: for each field, the competing writes that are still live.

Each field keeps the set of writes that no later write has *seen* (its maximal writes). One live
write means the field is settled; several live writes with different values mean a conflict that
a person must resolve. Whatever the set holds, the current value is the write with the greatest
(HLC, device id) — a rule that does not depend on the order in which operations arrived.

The deletion state is the pseudo-field ``_deleted``: a delete writes True, every other edit writes
False, so an edit made without seeing a concurrent delete (or the reverse) is a conflict, never a
silent resurrection or a silent loss.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from .operation import canonical_json

__all__ = ["DELETED", "RecordState", "Write"]

DELETED = "_deleted"


class Write(NamedTuple):
    """One value written to one field (or one collection item), with its provenance.

    A named tuple: records hold many of these, and they are built for every field of every
    operation, so they must be cheap to create.
    """

    value: Any
    version: int  # the record version the write produced
    hlc: str
    device_id: str
    seq: int
    author: str
    base_version: int

    def saw(self, other: Write) -> bool:
        """True if the author of this write had seen ``other`` when making it."""
        return other.version <= self.base_version or (
            other.device_id == self.device_id and other.seq < self.seq
        )

    @property
    def rank(self) -> tuple[str, str]:
        """Deterministic precedence among concurrent writes: HLC, then device id."""
        return (self.hlc, self.device_id)

    def to_list(self) -> list[Any]:
        return list(self)

    @classmethod
    def from_list(cls, row: list[Any]) -> Write:
        return cls(*row)

    def describe(self) -> dict[str, Any]:
        """The write as a person sees it in a conflict: value, who, from which device, when."""
        return {
            "value": self.value,
            "author": self.author,
            "device_id": self.device_id,
            "hlc": self.hlc,
            "version": self.version,
            "base_version": self.base_version,
        }


_new_write = tuple.__new__  # Write(*items) without the keyword-argument wrapper


def current(writes: tuple[Write, ...]) -> Write:
    """The write whose value is shown: the greatest by (HLC, device id)."""
    if len(writes) == 1:  # a settled field, by far the common case
        return writes[0]
    return max(writes, key=lambda w: w.rank)


def in_conflict(writes: tuple[Write, ...]) -> bool:
    """More than one distinct value among the live writes."""
    if len(writes) < 2:
        return False
    first = canonical_json(writes[0].value)
    return any(canonical_json(w.value) != first for w in writes[1:])


@dataclass(frozen=True, slots=True)
class RecordState:
    """A record's merge state. Treat as immutable: merge returns a new one."""

    record_type: str
    record_id: str
    version: int
    fields: Mapping[str, tuple[Write, ...]]
    collections: Mapping[str, Mapping[str, Write]]

    @property
    def deleted(self) -> bool:
        writes = self.fields.get(DELETED)
        return bool(writes) and current(writes).value is True

    def values(self) -> dict[str, Any]:
        """Current value of every field (deletion state excluded)."""
        return {
            name: (ws[0] if len(ws) == 1 else current(ws)).value
            for name, ws in self.fields.items()
            if name != DELETED and ws
        }

    def conflicts(self) -> dict[str, tuple[Write, ...]]:
        """Fields with competing values, each with all its live writes, in rank order."""
        return {
            name: tuple(sorted(ws, key=lambda w: w.rank))
            for name, ws in self.fields.items()
            if len(ws) > 1 and in_conflict(ws)
        }

    def items(self, collection: str, *, arrival_order: bool = False) -> list[Any]:
        """Items of an append-only collection, in (HLC, device) order — the order they were
        written — or, with ``arrival_order``, in the order the server accepted them."""
        entries = self.collections.get(collection, {}).values()
        if arrival_order:
            ordered = sorted(entries, key=lambda w: (w.version, w.value["id"]))
        else:
            ordered = sorted(entries, key=lambda w: (w.rank, w.value["id"]))
        return [w.value for w in ordered]

    def provenance(self, name: str) -> Write | None:
        ws = self.fields.get(name)
        return current(ws) if ws else None

    def to_dict(self, *, values_kept: bool = False) -> dict[str, Any]:
        """Compact form for storage. Every write is ``[value, stamp]``, ``stamp`` indexing
        ``stamps``: the provenance (version, HLC, device, seq, author, base version) that writes
        made by one operation share is kept once — a created record's fields all share one.

        With ``values_kept`` the caller keeps :meth:`values` beside this form (the server's
        ``data`` column): a field with a single live write — its value is the current value —
        is then just its stamp, and :meth:`from_dict` takes the value from ``values``.
        """
        stamps: dict[tuple[Any, ...], int] = {}
        known = stamps.get

        def stamp_of(w: Write) -> int:
            stamp = w[1:]
            index = known(stamp)
            if index is None:
                index = stamps[stamp] = len(stamps)
            return index

        fields: dict[str, Any] = {}
        for name, writes in self.fields.items():
            if values_kept and len(writes) == 1 and name != DELETED:
                stamp = writes[0][1:]  # stamp_of, inline: every field of every record
                index = known(stamp)
                if index is None:
                    index = stamps[stamp] = len(stamps)
                fields[name] = index
            else:
                fields[name] = [[w[0], stamp_of(w)] for w in writes]
        collections = {
            name: [[w[0], stamp_of(w)] for w in entries.values()]
            for name, entries in self.collections.items()
        }
        return {
            "type": self.record_type,
            "id": self.record_id,
            "version": self.version,
            "stamps": [list(s) for s in stamps],
            "fields": fields,
            "collections": collections,
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], values: Mapping[str, Any] | None = None
    ) -> RecordState:
        """Read :meth:`to_dict`'s form (``values``: the current values kept beside it, needed
        if it was written with ``values_kept``), or the earlier one (each write a full 7-item
        list)."""
        if "stamps" not in data:
            return cls(
                data["type"],
                data["id"],
                data["version"],
                {n: tuple(map(Write._make, rows)) for n, rows in data["fields"].items()},
                {
                    n: {r[0]["id"]: Write._make(r) for r in rows}
                    for n, rows in data["collections"].items()
                },
            )
        stamps = [tuple(s) for s in data["stamps"]]
        new, w = _new_write, Write
        fields: dict[str, tuple[Write, ...]] = {}
        for n, rows in data["fields"].items():
            if rows.__class__ is int:  # a single write whose value is kept in ``values``
                if values is None or n not in values:
                    raise ValueError(f"field {n!r}: its value is kept beside the state")
                fields[n] = (new(w, (values[n], *stamps[rows])),)
            else:
                fields[n] = tuple([new(w, (v, *stamps[i])) for v, i in rows])
        return cls(
            data["type"],
            data["id"],
            data["version"],
            fields,
            {
                n: {v["id"]: new(w, (v, *stamps[i])) for v, i in rows}
                for n, rows in data["collections"].items()
            },
        )
