"""What a device shows: the last snapshot the server sent, with its own unsynced edits on top.

This is the read-your-writes rule: until an edit is acknowledged and pulled back, the device
shows the edit, never an older server value. Pure; the client SDK stores snapshots and pending
operations and calls ``overlay`` to build what the field worker sees.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from .operation import Operation, OpKind
from .record import DELETED

__all__ = ["overlay"]


def _fresh(op: Operation) -> dict[str, Any]:
    return {
        "type": op.record_type,
        "id": op.record_id,
        "version": 0,
        "grid_code": op.fields.get("grid_code"),
        "deleted": False,
        "fields": {},
        "conflicts": {},
        "collections": {},
        "review": None,
    }


def overlay(
    snapshot: Mapping[str, Any] | None, pending: Iterable[Operation]
) -> dict[str, Any] | None:
    """The record as the device shows it: ``snapshot`` plus ``pending`` operations in order."""
    view = copy.deepcopy(dict(snapshot)) if snapshot is not None else None
    for op in sorted(pending, key=lambda o: o.seq):
        if op.kind is OpKind.CREATE and view is None:
            view = _fresh(op)
        if view is None:
            continue
        if op.kind in (OpKind.CREATE, OpKind.UPDATE, OpKind.RESOLVE):
            for name, value in op.fields.items():
                if name == DELETED:
                    view["deleted"] = value is True
                else:
                    view["fields"][name] = value
            if op.kind is OpKind.RESOLVE:
                for name in op.fields:
                    view["conflicts"].pop(name, None)
            if op.kind is OpKind.UPDATE and view.get("deleted"):
                view["deleted"] = False
        elif op.kind is OpKind.DELETE:
            view["deleted"] = True
        elif op.kind is OpKind.APPEND and op.collection and op.item:
            items = view["collections"].setdefault(op.collection, [])
            if all(i.get("id") != op.item["id"] for i in items):
                items.append(dict(op.item))
    return view
