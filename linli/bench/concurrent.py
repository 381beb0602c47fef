"""Many devices at once, in separate processes (one Python process cannot load a server with
the GIL held by its own clients): S5 concurrent pushes and S6 the end-of-day burst.

Each process signs its devices in and prepares their offline records first, says it is ready,
and waits for the common start; only then is anything timed.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import statistics
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["run_s5", "run_s6"]


Meter = Callable[[], dict[str, float]]


def _ctx() -> Any:
    return mp.get_context("spawn")


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


def _metered(meter: Meter | None, before: dict[str, float]) -> dict[str, float]:
    """CPU seconds each metered part used since ``before``."""
    if meter is None:
        return {}
    return {f"{k}_cpu_s": round(v - before.get(k, 0.0), 1) for k, v in meter().items()}


def _s5_device(
    base_url: str,
    folder: str,
    grid: str,
    count: int,
    seed: int,
    ready: Any,
    go: Any,
    out: Any,
    release: Any,
) -> None:
    from .devices import enter_visits, new_device, reset_peak, self_peak_mb
    from .records import visits

    result: dict[str, Any] = {"error": None}
    device = None
    try:
        device = new_device(base_url, Path(folder), f"gw_{grid}", f"s5-{seed}")
        enter_visits(device, visits(count, grid, seed=500 + seed))
        reset_peak()
        ready.put(seed)
        go.wait()
        started, cpu = time.monotonic(), _cpu_s()
        report = device.sync()
        result.update(
            started=started,
            finished=time.monotonic(),
            cpu=_cpu_s() - cpu,
            pushed=report.pushed,
            applied=report.applied,
            rejected=report.rejected,
            bytes_up=report.bytes_sent,
            bytes_down=report.bytes_received,
            requests=report.requests,
            peak=self_peak_mb(),
        )
    except Exception:  # reported, counted as an error
        result["error"] = traceback.format_exc()[-2000:]
        ready.put(seed)
    out.put(result)
    _linger(release)
    if device is not None:
        device.close()


def _linger(release: Any) -> None:
    """Stay until every process has reported: a process that exits tears its interpreter down
    on the same two cores as the syncs still being timed (S5: about 0.4 s of 1.6)."""
    release.wait(timeout=900)


def run_s5(
    base_url: str, folder: Path, grids: list[str], each: int, meter: Meter | None = None
) -> dict[str, Any]:
    """20 devices push at once; ``meter`` reads the CPU seconds of the server (and database)."""
    ctx = _ctx()
    ready, out, go, release = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Event()
    procs = [
        ctx.Process(
            target=_s5_device,
            args=(base_url, str(folder), grid, each, i, ready, go, out, release),
        )
        for i, grid in enumerate(grids)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=300)
    before = meter() if meter else {}
    go.set()
    results = [out.get(timeout=600) for _ in procs]
    cpu = _metered(meter, before)
    release.set()
    for p in procs:
        p.join(timeout=30)
    ok = [r for r in results if r["error"] is None]
    errors = [r["error"] for r in results if r["error"] is not None]
    for e in errors[:3]:
        print(e, file=__import__("sys").stderr)
    seconds = (max(r["finished"] for r in ok) - min(r["started"] for r in ok)) if ok else 0.0
    return {
        "seconds": seconds,
        "pushed": sum(r["pushed"] for r in ok),
        "applied": sum(r["applied"] for r in ok),
        "errors": len(errors) + sum(r["rejected"] for r in ok),
        "bytes_up": sum(r["bytes_up"] for r in ok),
        "bytes_down": sum(r["bytes_down"] for r in ok),
        "requests": sum(r["requests"] for r in ok),
        "client_peak_mb": round(sum(r["peak"] for r in ok), 1),
        "client_cpu_s": round(sum(r["cpu"] for r in ok), 1),
        **cpu,
    }


def _s6_process(
    base_url: str,
    folder: str,
    grids: list[str],
    threads: int,
    devices: int,
    jobs: list[int],
    ops: int,
    index: int,
    ready: Any,
    go: Any,
    out: Any,
    release: Any,
) -> None:
    from .devices import enter_visits, new_device, reset_peak, self_peak_mb
    from .records import visits

    latencies: list[float] = []
    errors: list[str] = []
    totals = {"pushed": 0, "pulled": 0, "bytes_up": 0, "bytes_down": 0, "requests": 0}
    lock = threading.Lock()
    prepared = threading.Barrier(threads + 1)
    finished: list[float] = []

    def worker(t: int) -> None:
        mine = []
        try:
            for d in range(devices):
                grid = grids[(index * threads * devices + t * devices + d) % len(grids)]
                device = new_device(base_url, Path(folder), f"gw_{grid}", f"s6-{index}-{t}-{d}")
                device.sync()
                mine.append((device, grid))
        except Exception:
            with lock:
                errors.append(traceback.format_exc()[-2000:])
        prepared.wait()
        go.wait()
        for j in range(jobs[t]):
            if not mine:
                break
            device, grid = mine[j % len(mine)]
            try:
                enter_visits(device, visits(ops, grid, seed=hash((index, t, j)) & 0xFFFFFF))
                started = time.monotonic()
                report = device.sync()
                took = time.monotonic() - started
                with lock:
                    latencies.append(took)
                    totals["pushed"] += report.pushed
                    totals["pulled"] += report.pulled
                    totals["bytes_up"] += report.bytes_sent
                    totals["bytes_down"] += report.bytes_received
                    totals["requests"] += report.requests
                    if report.rejected or report.pushed != ops:
                        errors.append(f"rejected {report.rejected}, pushed {report.pushed}")
            except Exception:
                with lock:
                    errors.append(traceback.format_exc()[-2000:])
        with lock:
            finished.append(time.monotonic())
        _linger(release)
        for device, _ in mine:
            device.close()

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    prepared.wait()
    reset_peak()
    ready.put(index)
    go.wait()
    cpu = _cpu_s()
    while len(finished) < threads and any(th.is_alive() for th in pool):
        time.sleep(0.01)  # the threads stay (lingering) until every process has reported
    cpu = _cpu_s() - cpu
    out.put(
        {
            "latencies": latencies,
            "errors": errors,
            "finished": max(finished, default=0),
            "peak": self_peak_mb(),
            "cpu": cpu,
            **totals,
        }
    )
    for th in pool:
        th.join()


def run_s6(
    base_url: str, folder: Path, grids: list[str], scale: Any, meter: Meter | None = None
) -> dict[str, Any]:
    """The end-of-day burst; ``meter`` reads the CPU seconds of the server (and database)."""
    ctx = _ctx()
    # One process per pool client (up to 32), as every field device has its own interpreter:
    # clients sharing a process also share its GIL and queue behind each other's JSON and
    # SQLite work, which no real device does (8 processes of 4 threads: 5-17% more client
    # CPU for the same syncs in two A/B rounds).
    processes = min(32, scale.s6_pool)
    threads = max(1, scale.s6_pool // processes)
    devices = max(1, scale.s6_devices // (processes * threads))
    slots = processes * threads
    jobs = [
        scale.s6_syncs // slots + (1 if i < scale.s6_syncs % slots else 0) for i in range(slots)
    ]
    ready, out, go, release = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Event()
    procs = [
        ctx.Process(
            target=_s6_process,
            args=(
                base_url,
                str(folder),
                grids,
                threads,
                devices,
                jobs[i * threads : (i + 1) * threads],
                scale.s6_ops,
                i,
                ready,
                go,
                out,
                release,
            ),
        )
        for i in range(processes)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=600)
    before = meter() if meter else {}
    started = time.monotonic()
    go.set()
    results = [out.get(timeout=900) for _ in procs]
    cpu = _metered(meter, before)
    release.set()
    for p in procs:
        p.join(timeout=30)
    latencies = sorted(x for r in results for x in r["latencies"])
    errors = [e for r in results for e in r["errors"]]
    for e in errors[:3]:
        print(e, file=__import__("sys").stderr)

    def pct(q: float) -> float:
        if not latencies:
            return 0.0
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 3)

    return {
        "seconds": max(r["finished"] for r in results) - started,
        "syncs": len(latencies),
        "errors": len(errors),
        "p50": round(statistics.median(latencies), 3) if latencies else 0.0,
        "p95": pct(0.95),
        "p99": pct(0.99),
        "client_peak_mb": round(sum(r["peak"] for r in results), 1),
        "client_cpu_s": round(sum(r["cpu"] for r in results), 1),
        **cpu,
        **{
            k: sum(r[k] for r in results)
            for k in ("pushed", "pulled", "bytes_up", "bytes_down", "requests")
        },
    }
