"""The scenarios. Each is a function of a :class:`Bench` returning JSON-ready result dicts.

S1 initial push · S2 initial pull · S3 incremental sync at N held (with S3a, the first sync after
the download, and S3z, a sync with nothing to do) · S4 conflicts · S5 concurrent pushes ·
S6 end-of-day burst (PostgreSQL) · L raw limits (SQLite executemany, gzip floor, the server's
apply path in process).
"""

from __future__ import annotations

import gc
import gzip
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .devices import PhaseTimer, enter_visits, new_device, reset_peak, self_peak_mb
from .records import gzip_floor, raw_sqlite_rate, storage_floor_rate, visits
from .server import BenchDatabase, ServerProcess, postgres_cpu_s

__all__ = ["SCENARIOS", "Bench", "Scale"]


@dataclass(frozen=True)
class Scale:
    s1: int = 10_000
    s2: int = 100_000
    s3: tuple[int, ...] = (1_000, 10_000, 100_000)
    s3_edits: int = 100
    s4: int = 1_000
    s5_devices: int = 20
    s5_each: int = 500
    s6_syncs: int = 2_000
    s6_pool: int = 32
    s6_devices: int = 128
    s6_ops: int = 20

    @classmethod
    def quick(cls) -> Scale:
        return cls(
            s1=500,
            s2=2_000,
            s3=(100, 2_000),
            s3_edits=20,
            s4=100,
            s5_devices=3,
            s5_each=100,
            s6_syncs=100,
            s6_pool=8,
            s6_devices=16,
            s6_ops=20,
        )


@dataclass
class Bench:
    scale: Scale
    pg_base: str | None
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="linli-bench-")))
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    s2_done: bool = False
    s3_from_s2: list[dict[str, Any]] = field(default_factory=list)  # printed with S3

    @property
    def db_kind(self) -> str:
        return "postgresql" if self.pg_base else "sqlite"

    @contextmanager
    def database(self, name: str) -> Iterator[BenchDatabase]:
        folder = self.root / name
        database = BenchDatabase(folder, self.pg_base).create()
        try:
            yield database
        finally:
            database.drop()
            shutil.rmtree(folder, ignore_errors=True)

    def line(self, scenario: str, records: int, seconds: float, **extra: Any) -> dict[str, Any]:
        line = {
            "scenario": scenario,
            "db": self.db_kind,
            "records": records,
            "seconds": round(seconds, 3),
            "records_per_s": round(records / seconds, 1) if seconds > 0 and records else 0.0,
            "bytes_up": 0,
            "bytes_down": 0,
            "requests": 0,
            "server_peak_mb": 0.0,
            "client_peak_mb": 0.0,
            **extra,
        }
        self.results.setdefault(scenario, []).append(line)
        return line

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _wire(report: Any) -> dict[str, int]:
    return {
        "bytes_up": report.bytes_sent,
        "bytes_down": report.bytes_received,
        "requests": report.requests,
    }


def _target(line: dict[str, Any], target: str, met: bool) -> dict[str, Any]:
    line["target"], line["met"] = target, bool(met)
    return line


# --- L: raw limits ----------------------------------------------------------------------------


def scenario_l(bench: Bench) -> list[dict[str, Any]]:
    """Raw SQLite executemany rate and the gzip floor of S1's records, and the server's apply
    path measured in process (push handler through the Flask test client, no sockets, no SDK);
    with, as a diagnostic, the rate of storing what the apply path stored and nothing else."""
    n = bench.scale.s1
    records = list(visits(n, "990101001001001", seed=11))
    raw = raw_sqlite_rate(records, str(bench.root))
    floor = gzip_floor(records)
    with bench.database("L") as database:
        apply_rate = _apply_rate(database, records)
        batch = database.app.config["SYNC_MAX_BATCH"]
        floor_rate = storage_floor_rate(database.url, batch, str(bench.root))
    ratio = apply_rate / raw
    line = bench.line(
        "L",
        n,
        n / raw,
        raw_sqlite_records_per_s=round(raw, 1),
        gzip_floor_bytes=floor,
        gzip_floor_bytes_per_record=round(floor / n, 1),
        raw_json_bytes_per_record=round(
            sum(len(json.dumps(f, ensure_ascii=False).encode()) for _, f in records) / n, 1
        ),
        server_apply_records_per_s=round(apply_rate, 1),
        server_apply_ratio=round(ratio, 3),
        # Diagnostic, not a target: storing the same rows alone (SQLite, the server's schema).
        storage_floor_records_per_s=round(floor_rate, 1),
        storage_floor_ratio=round(floor_rate / raw, 3),
    )
    line["records_per_s"] = round(raw, 1)
    return [_target(line, "server apply >= 0.3 x raw SQLite insert", ratio >= 0.3)]


def _apply_rate(database: BenchDatabase, records: list[tuple[str, dict[str, Any]]]) -> float:
    from fixtures import DEMO_PASSWORD
    from server.serving import tune_gc
    from sync import HybridClock, Operation, OpKind

    grid = records[0][1]["grid_code"]
    client = database.app.test_client()
    device_id = str(uuid.uuid4())
    answer = client.post(
        "/api/v1/auth/login",
        json={
            "username": f"gw_{grid}",
            "password": DEMO_PASSWORD,
            "device_id": device_id,
            "device_name": "apply-path",
        },
    )
    headers = {
        "Authorization": f"Bearer {answer.get_json()['access_token']}",
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }
    clock = HybridClock(device_id.replace("-", "")[:20])
    size = database.app.config["SYNC_MAX_BATCH"]  # the batches the server takes, as the SDK sends
    ops = [
        Operation(device_id, seq, OpKind.CREATE, "visit", rid, 0, str(clock.now()), "", fields=f)
        for seq, (rid, f) in enumerate(records, start=1)
    ]
    bodies = [
        gzip.compress(
            json.dumps(
                {"device_id": device_id, "operations": [o.to_dict() for o in ops[i : i + size]]},
                ensure_ascii=False,
            ).encode(),
            6,
        )
        for i in range(0, len(ops), size)
    ]
    # The collector as a server worker has it (server.serving.tune_gc), for this part only.
    before = tune_gc()
    try:
        started = time.perf_counter()
        for body in bodies:
            reply = client.post("/api/v1/sync/push", data=body, headers=headers)
            assert reply.status_code == 200, reply.get_data(as_text=True)[:300]
        return len(ops) / (time.perf_counter() - started)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


# --- S1: initial push -------------------------------------------------------------------------


def scenario_s1(bench: Bench) -> list[dict[str, Any]]:
    n = bench.scale.s1
    with bench.database("S1") as database, ServerProcess(database, workers=2) as server:
        grid = database.grids[0]
        records = list(visits(n, grid, seed=1))
        device = new_device(server.base_url, bench.root / "S1", f"gw_{grid}", "s1")
        try:
            enter_visits(device, records)
            reset_peak()
            timer = PhaseTimer()
            started = time.perf_counter()
            report = device.sync(progress=timer)
            seconds = time.perf_counter() - started
            client_peak = self_peak_mb()
        finally:
            device.close()
        floor = gzip_floor(records)
        push_s = timer.between("push", "pull") or seconds
        line = bench.line(
            "S1",
            report.pushed,
            seconds,
            **_wire(report),
            server_peak_mb=server.peak_mb(),
            client_peak_mb=client_peak,
            applied=report.applied,
            rejected=report.rejected,
            pulled_back=report.pulled,
            push_seconds=round(push_s, 3),
            push_records_per_s=round(n / push_s, 1),
            gzip_floor_bytes=floor,
            bytes_up_ratio=round(report.bytes_sent / floor, 2),
        )
    return [
        _target(
            line,
            ">= 10000 records/s end to end; bytes_up <= 2 x gzip floor",
            line["records_per_s"] >= 10_000 and line["bytes_up_ratio"] <= 2 and report.applied == n,
        )
    ]


# --- S2 and S3: initial pull, then incremental syncs at N held -------------------------------


def scenario_s2(bench: Bench) -> list[dict[str, Any]]:
    return _held(bench, bench.scale.s2, s2=True, s3="S3" in _selected(bench))


def scenario_s3(bench: Bench) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for n in bench.scale.s3:
        if n == bench.scale.s2 and bench.s2_done:
            continue  # measured together with S2, on the same server and device
        lines += _held(bench, n, s2=False, s3=True)
    lines += bench.s3_from_s2
    _s3_curve(bench)
    return lines


def _selected(bench: Bench) -> set[str]:
    return getattr(bench, "selected", set(SCENARIOS))


def _held(bench: Bench, n: int, *, s2: bool, s3: bool) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    name = f"held{n}"
    with bench.database(name) as database:
        grid = database.grids[1]
        records = list(visits(n, grid, seed=2))
        started = time.perf_counter()
        database.load(records)
        load_s = time.perf_counter() - started
        with ServerProcess(database, workers=2) as server:
            device = new_device(server.base_url, bench.root / name, f"gw_{grid}", name)
            try:
                reset_peak()
                started = time.perf_counter()
                first = device.sync()
                seconds = time.perf_counter() - started
                if s2:
                    floor = gzip_floor(records)
                    line = bench.line(
                        "S2",
                        first.pulled,
                        seconds,
                        **_wire(first),
                        server_peak_mb=server.peak_mb(),
                        client_peak_mb=self_peak_mb(),
                        checksum_ok=first.checksum_ok,
                        gzip_floor_bytes=floor,
                        bytes_down_ratio=round(first.bytes_received / floor, 2),
                        server_load_records_per_s=round(n / load_s, 1),
                    )
                    lines.append(
                        _target(
                            line,
                            ">= 10000 records/s end to end; bytes_down <= 2 x gzip floor",
                            line["records_per_s"] >= 10_000
                            and line["bytes_down_ratio"] <= 2
                            and first.pulled == n
                            and first.checksum_ok,
                        )
                    )
                    bench.s2_done = True
                if s3 and s2:  # printed with S3, once the cost curve is known
                    bench.s3_from_s2 = _incremental(bench, device, server, records, n)
                elif s3:
                    lines += _incremental(bench, device, server, records, n)
            finally:
                device.close()
    return lines


def _incremental(
    bench: Bench,
    device: Any,
    server: ServerProcess,
    records: list[tuple[str, dict[str, Any]]],
    n: int,
) -> list[dict[str, Any]]:
    def sync() -> tuple[Any, float, float]:
        reset_peak()
        started = time.perf_counter()
        report = device.sync()
        return report, time.perf_counter() - started, self_peak_mb()

    after, after_s, after_mb = sync()  # S3a: right after the initial download
    idle, idle_s, idle_mb = sync()  # S3z: nothing to do
    edits = bench.scale.s3_edits
    step = max(1, n // edits)
    for i, (rid, _) in enumerate(records[::step][:edits]):
        device.update(rid, findings=f"复访：情况稳定，已更新联系方式（第{i}次修改）。")
    changed, changed_s, changed_mb = sync()
    peak = server.peak_mb()
    z = bench.line(
        "S3z",
        0,
        idle_s,
        held=n,
        **_wire(idle),
        server_peak_mb=peak,
        client_peak_mb=idle_mb,
        pulled=idle.pulled,
        pushed=idle.pushed,
    )
    _target(
        z,
        "<= 2 requests and <= 2048 bytes",
        idle.requests <= 2 and idle.bytes_sent + idle.bytes_received <= 2048,
    )
    a = bench.line(
        "S3a",
        after.pulled,
        after_s,
        held=n,
        **_wire(after),
        server_peak_mb=peak,
        client_peak_mb=after_mb,
        pulled=after.pulled,
        pushed=after.pushed,
    )
    a_bytes = after.bytes_sent + after.bytes_received
    z_bytes = idle.bytes_sent + idle.bytes_received
    _target(
        a,
        "no more costly than S3z plus its changes (requests, bytes, time)",
        after.pulled == 0
        and after.requests <= idle.requests
        and a_bytes <= z_bytes + 256
        and after_s <= 2 * idle_s + 0.05,
    )
    s3 = bench.line(
        "S3",
        edits,
        changed_s,
        held=n,
        **_wire(changed),
        server_peak_mb=peak,
        client_peak_mb=changed_mb,
        pushed=changed.pushed,
        pulled=changed.pulled,
        applied=changed.applied,
    )
    return [z, a, s3]


def _s3_curve(bench: Bench) -> list[dict[str, Any]]:
    by_n = {line["held"]: line for line in bench.results.get("S3", [])}
    if not by_n:
        return []
    small, big = by_n[min(by_n)], by_n[max(by_n)]
    ratio = big["seconds"] / small["seconds"] if small["seconds"] else 0
    for line in bench.results["S3"]:
        line["time_vs_smallest"] = round(line["seconds"] / small["seconds"], 2)
    _target(big, f"time at {big['held']} held <= 2 x time at {small['held']} held", ratio <= 2)
    return []


# --- S4: conflicts ----------------------------------------------------------------------------


def scenario_s4(bench: Bench) -> list[dict[str, Any]]:
    from server.models import snapshot_text

    n = bench.scale.s4
    half = n // 2
    with bench.database("S4") as database:
        grid = database.grids[2]
        records = list(visits(n, grid, seed=4))
        ids = [rid for rid, _ in records]
        database.load(records)
        with ServerProcess(database, workers=2) as server:
            a = new_device(server.base_url, bench.root / "S4", f"gw_{grid}", "a")
            b = new_device(server.base_url, bench.root / "S4", f"gw_{grid}", "b")
            try:
                a.sync()
                b.sync()
                edits: list[tuple[str, str, str]] = []  # (record, field, value)
                for i, rid in enumerate(ids):
                    value = f"A设备记录：第{i}户已复访。"
                    a.update(rid, findings=value)
                    edits.append((rid, "findings", value))
                for i, rid in enumerate(ids):
                    if i < half:
                        field_name, value = "findings", f"B设备记录：第{i}户情况有变化。"
                    else:
                        field_name, value = "address", f"幸福里{i}号"
                    b.update(rid, **{field_name: value})
                    edits.append((rid, field_name, value))
                reset_peak()
                reports = []
                started = time.perf_counter()
                for device in (a, b, a, b):
                    reports.append(device.sync())
                seconds = time.perf_counter() - started
                client_peak = self_peak_mb()
                converged = sum(_same(a.get(rid), b.get(rid)) for rid in ids)
            finally:
                a.close()
                b.close()
            peak = server.peak_mb()
        rows = database.query(
            "SELECT id, has_conflict, envelope, CAST(data AS TEXT) FROM record "
            "WHERE grid_code = :g",
            g=grid,
        )
    snaps = {row[0]: json.loads(snapshot_text(row[2], row[3])) for row in rows}
    in_conflict = sum(1 for row in rows if row[1])
    kept = lost = 0
    for rid, field_name, value in edits:
        snap = snaps.get(rid, {})
        competing = [w["value"] for w in snap.get("conflicts", {}).get(field_name, [])]
        if snap.get("fields", {}).get(field_name) == value or value in competing:
            kept += 1
        else:
            lost += 1
    wire = {
        "bytes_up": sum(r.bytes_sent for r in reports),
        "bytes_down": sum(r.bytes_received for r in reports),
        "requests": sum(r.requests for r in reports),
    }
    line = bench.line(
        "S4",
        n,
        seconds,
        **wire,
        server_peak_mb=peak,
        client_peak_mb=client_peak,
        records_in_conflict=in_conflict,
        expected_in_conflict=half,
        edits=len(edits),
        edits_kept=kept,
        edits_lost=lost,
        converged_records=converged,
        convergence=converged == n,
        conflicts_reported=sum(r.conflicts for r in reports),
    )
    return [
        _target(
            line,
            f"exactly {half} records in conflict, 0 edits lost, full convergence",
            in_conflict == half and lost == 0 and converged == n,
        )
    ]


def _same(x: dict[str, Any], y: dict[str, Any]) -> bool:
    keys = ("version", "fields", "conflicts", "deleted", "collections")
    return all(x.get(k) == y.get(k) for k in keys)


# --- S5 and S6: concurrency -------------------------------------------------------------------


def _meter(server: ServerProcess, database: BenchDatabase) -> Callable[[], dict[str, float]]:
    """What S5 and S6 report besides wall time: CPU seconds of the server's processes (and of
    PostgreSQL), so that a result on a shared 2-core machine can be read as a budget."""

    def read() -> dict[str, float]:
        cpu = {"server": server.cpu_s()}
        if database.kind == "postgresql":
            cpu["db"] = postgres_cpu_s()
        return cpu

    return read


def _cpu_fields(outcome: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in outcome.items() if k.endswith("_cpu_s")}


def scenario_s5(bench: Bench) -> list[dict[str, Any]]:
    from .concurrent import run_s5

    scale = bench.scale
    with bench.database("S5") as database, ServerProcess(database, workers=4) as server:
        outcome = run_s5(
            server.base_url,
            bench.root / "S5",
            database.grids[: scale.s5_devices],
            scale.s5_each,
            meter=_meter(server, database),
        )
        peak = server.peak_mb()
    total = outcome["pushed"]
    line = bench.line(
        "S5",
        total,
        outcome["seconds"],
        bytes_up=outcome["bytes_up"],
        bytes_down=outcome["bytes_down"],
        requests=outcome["requests"],
        server_peak_mb=peak,
        client_peak_mb=outcome["client_peak_mb"],
        devices=scale.s5_devices,
        per_device=scale.s5_each,
        applied=outcome["applied"],
        errors=outcome["errors"],
        server_workers=4,
        **_cpu_fields(outcome),
    )
    return [
        _target(
            line,
            ">= 8000 records/s total",
            line["records_per_s"] >= 8_000 and outcome["errors"] == 0,
        )
    ]


def scenario_s6(bench: Bench) -> list[dict[str, Any]]:
    if not bench.pg_base:
        line = {"scenario": "S6", "skipped": "needs PostgreSQL"}
        bench.results.setdefault("S6", []).append(line)
        return [line]
    from .concurrent import run_s6

    scale = bench.scale
    workers = max(4, min(2 * (os.cpu_count() or 1) + 1, 9))
    with bench.database("S6") as database:
        grids = database.grids
        database.load([r for g in grids for r in visits(max(10, scale.s6_syncs // 20), g, seed=6)])
        with ServerProcess(database, workers=workers) as server:
            outcome = run_s6(
                server.base_url, bench.root / "S6", grids, scale, meter=_meter(server, database)
            )
            peak = server.peak_mb()
    line = bench.line(
        "S6",
        outcome["pushed"],
        outcome["seconds"],
        bytes_up=outcome["bytes_up"],
        bytes_down=outcome["bytes_down"],
        requests=outcome["requests"],
        server_peak_mb=peak,
        client_peak_mb=outcome["client_peak_mb"],
        syncs=outcome["syncs"],
        pool=scale.s6_pool,
        devices=scale.s6_devices,
        ops_per_sync=scale.s6_ops,
        errors=outcome["errors"],
        p50_s=outcome["p50"],
        p95_s=outcome["p95"],
        p99_s=outcome["p99"],
        pulled=outcome["pulled"],
        server_workers=workers,
        syncs_per_s=round(outcome["syncs"] / outcome["seconds"], 1),
        **_cpu_fields(outcome),
    )
    return [
        _target(
            line,
            f"all {scale.s6_syncs} syncs < 60 s with zero errors",
            outcome["syncs"] == scale.s6_syncs
            and outcome["seconds"] < 60
            and outcome["errors"] == 0,
        )
    ]


SCENARIOS = {
    "L": scenario_l,
    "S1": scenario_s1,
    "S2": scenario_s2,
    "S3": scenario_s3,
    "S4": scenario_s4,
    "S5": scenario_s5,
    "S6": scenario_s6,
}
