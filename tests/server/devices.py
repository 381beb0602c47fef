"""A minimal device speaking the sync protocol over the HTTP API (the real SDK is tested in
tests/client_sdk; this one keeps server tests independent of it)."""

from __future__ import annotations

import uuid
from typing import Any

from flask.testing import FlaskClient

from sync import HybridClock, Operation, OpKind, overlay

GRID_1 = "990101001001001"


class ApiDevice:
    def __init__(self, client: FlaskClient, login: Any) -> None:
        self.client = client
        self.login = login
        self.device_id = login.device_id
        self.clock = HybridClock(self.device_id.replace("-", "")[:20])
        self.next_seq = 1
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.outbox: list[Operation] = []
        self.acked: list[Operation] = []
        self.cursor = 0
        self.scope_token: str | None = None
        self.last_results: list[dict[str, Any]] = []
        self.last_pull: dict[str, Any] = {}

    # --- offline edits ---
    def op(
        self,
        kind: OpKind,
        rtype: str,
        rid: str,
        *,
        base: int | None = None,
        author: str = "ignored-by-server",
        queue: bool = True,
        **kw: Any,
    ) -> Operation:
        """The next operation of this device (base: the version last pulled, unless given);
        kept in the outbox unless ``queue`` is false."""
        snap = self.snapshots.get(rid)
        op = Operation(
            device_id=self.device_id,
            seq=self.next_seq,
            kind=kind,
            record_type=rtype,
            record_id=rid,
            base_version=base if base is not None else (snap["version"] if snap else 0),
            hlc=str(self.clock.now()),
            author=author,
            **kw,
        )
        self.next_seq += 1
        if queue:
            self.outbox.append(op)
        return op

    def create(self, rtype: str = "visit", **fields: Any) -> str:
        rid = str(uuid.uuid4())
        defaults = {
            "visit": {"grid_code": GRID_1, "visited_at": "2026-11-27T09:00:00+08:00"},
            "household": {"grid_code": GRID_1, "address": "1号楼1单元101"},
            "resident": {"grid_code": GRID_1, "name": "测试居民"},
            "dispute": {"grid_code": GRID_1, "title": "邻里噪音", "category": "0201"},
        }
        self.op(OpKind.CREATE, rtype, rid, fields={**defaults[rtype], **fields})
        return rid

    def update(self, rid: str, rtype: str = "visit", **fields: Any) -> Operation:
        return self.op(OpKind.UPDATE, rtype, rid, fields=fields)

    def delete(self, rid: str, rtype: str = "visit") -> Operation:
        return self.op(OpKind.DELETE, rtype, rid)

    def note(self, rid: str, text: str, rtype: str = "visit") -> Operation:
        return self.op(
            OpKind.APPEND,
            rtype,
            rid,
            collection="notes",
            item={"id": str(uuid.uuid4()), "text": text},
        )

    def step(self, rid: str, action: str, **params: Any) -> Operation:
        return self.op(
            OpKind.APPEND,
            "dispute",
            rid,
            collection="steps",
            item={"id": str(uuid.uuid4()), "action": action, "params": params},
        )

    def resolve(self, rid: str, rtype: str = "visit", **fields: Any) -> Operation:
        return self.op(OpKind.RESOLVE, rtype, rid, fields=fields, reason="checked on site")

    # --- sync ---
    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.client.post(f"/api/v1/sync/{path}", json=body, headers=self.login.headers)

    def push(self, ops: list[Operation] | None = None) -> list[dict[str, Any]]:
        batch = list(self.outbox if ops is None else ops)
        response = self.post(
            "push", {"device_id": self.device_id, "operations": [o.to_dict() for o in batch]}
        )
        assert response.status_code == 200, response.get_json()
        self.last_results = response.get_json()["results"]
        done = {o.key for o in batch}
        self.acked += [
            o for o, r in zip(batch, self.last_results, strict=True) if r["status"] != "rejected"
        ]
        self.outbox = [o for o in self.outbox if o.key not in done]
        return self.last_results

    def pull(self, limit: int = 1000) -> None:
        while True:
            response = self.post(
                "pull", {"cursor": self.cursor, "limit": limit, "scope_token": self.scope_token}
            )
            assert response.status_code == 200, response.get_json()
            page = self.last_pull = response.get_json()
            if page["reset"]:
                prefixes = tuple(page["scope"]["prefixes"])
                self.snapshots = {
                    k: v
                    for k, v in self.snapshots.items()
                    if (v.get("grid_code") or "").startswith(prefixes)
                }
            for removal in page["removals"]:
                self.snapshots.pop(removal["record_id"], None)
            for snap in page["changes"]:
                self.snapshots[snap["id"]] = snap
            self.cursor = page["cursor"]
            self.scope_token = page["scope"]["token"]
            if not page["has_more"]:
                self.acked = []
                return

    def sync(self) -> None:
        if self.outbox:
            self.push()
        self.pull()

    def view(self, rid: str) -> dict[str, Any] | None:
        mine = [o for o in self.acked + self.outbox if o.record_id == rid]
        return overlay(self.snapshots.get(rid), mine)

    def checksum(self) -> dict[str, int]:
        return {
            "count": len(self.snapshots),
            "version_sum": sum(s["version"] for s in self.snapshots.values()),
        }


def push_one(
    dev: ApiDevice, kind: OpKind, rtype: str, rid: str, base: int, **kw: Any
) -> dict[str, Any]:
    """Push one operation from ``dev`` with an explicit base version; return its result.

    The operation claims another author: the server must ignore the claim.
    """
    op = dev.op(kind, rtype, rid, base=base, author="device-claims-someone-else", queue=False, **kw)
    [result] = dev.push([op])
    return result
