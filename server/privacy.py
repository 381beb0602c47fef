"""Masking of sensitive fields (ID numbers, phones, health and poverty tags) by default."""

from __future__ import annotations

from typing import Any

from sync.schema import RECORD_TYPES
from sync.validators import mask_id_number, mask_phone

__all__ = ["MASKED_TAGS", "mask_snapshot", "mask_value", "sensitive_fields"]

MASKED_TAGS = "***"


def sensitive_fields(record_type: str) -> set[str]:
    rtype = RECORD_TYPES.get(record_type)
    return {n for n, spec in rtype.fields.items() if spec.sensitive} if rtype else set()


def mask_value(record_type: str, name: str, value: Any) -> Any:
    """The masked form of one field's value (unchanged if the field is not sensitive)."""
    rtype = RECORD_TYPES.get(record_type)
    spec = rtype.fields.get(name) if rtype else None
    if spec is None or not spec.sensitive or value in (None, "", []):
        return value
    if spec.kind == "id_number":
        return mask_id_number(value)
    if spec.kind == "phone":
        return mask_phone(value)
    return MASKED_TAGS


def mask_snapshot(snap: dict[str, Any]) -> dict[str, Any]:
    """A copy of a record snapshot with every sensitive field masked, conflicts included."""
    rtype = snap.get("type", "")
    out = dict(snap)
    out["fields"] = {k: mask_value(rtype, k, v) for k, v in snap.get("fields", {}).items()}
    out["conflicts"] = {
        f: [{**w, "value": mask_value(rtype, f, w.get("value"))} for w in ws]
        for f, ws in (snap.get("conflicts") or {}).items()
    }
    return out
