"""Timings in process (run with -s to see them): the cost of a sync follows the changes."""

from __future__ import annotations

import time

import pytest

from .conftest import GRID_1


@pytest.mark.slow
def test_sync_of_1000_changes_and_first_download_of_10000(make_user, make_device):
    writer = make_device(make_user(grids=[GRID_1]), "writer")
    started = time.perf_counter()
    for n in range(10_000):
        writer.create_household(grid_code=GRID_1, address=f"幸福里 {n} 号", head_name="张三")
    saved = time.perf_counter() - started
    batched_device = make_device(None, "batched")
    started = time.perf_counter()
    with batched_device.batch():
        for n in range(10_000):
            batched_device.create_household(grid_code=GRID_1, address=f"{n} 号", head_name="张三")
    batched = time.perf_counter() - started
    assert batched_device.pending_count() == 10_000
    bulk = writer.sync()
    assert bulk.pushed == 10_000 and bulk.rejected == 0

    reader = make_device(make_user(grids=[GRID_1]), "reader")
    first = reader.sync()
    assert first.pulled == 10_000 and first.checksum_ok

    ids = [h["id"] for h in writer.households()[:1000]]
    started = time.perf_counter()
    for rid in ids:
        writer.update(rid, head_name="李四")
    edits = time.perf_counter() - started
    thousand = writer.sync()
    assert thousand.pushed == 1000 and thousand.applied == 1000
    print(
        f"\n10,000 local saves: {saved:.1f}s ({10_000 / saved:.0f}/s), in one batch(): "
        f"{batched:.1f}s; "
        f"push of 10,000: {bulk.duration:.1f}s, {bulk.requests} requests, "
        f"{bulk.bytes_sent / 1e6:.2f} MB sent"
    )
    print(
        f"first download of 10,000: {first.duration:.1f}s, {first.requests} requests, "
        f"{first.bytes_received / 1e6:.2f} MB received"
    )
    print(
        f"1,000 local edits: {edits:.2f}s; sync of 1,000 changes: {thousand.duration:.1f}s, "
        f"{thousand.requests} requests, {thousand.bytes_sent / 1e3:.0f} kB sent, "
        f"{thousand.bytes_received / 1e3:.0f} kB received"
    )
