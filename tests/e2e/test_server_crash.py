"""The server crashes for real: `linli serve` (gunicorn, 2 workers) on PostgreSQL is SIGKILLed —
master and workers at once — and restarted several times while six SDK devices push over HTTP.

What must hold afterwards (DESIGN.md §4, invariants 2 and 9):

- every operation a device saw acknowledged (applied / duplicate / conflict in a push answer it
  received) has exactly one receipt in ``sync_op`` and its record exists: nothing acknowledged
  is lost, nothing is applied twice;
- every operation that was not acknowledged (server down, answer cut by the kill) arrives on
  retry: outboxes drain, records on the server = records created on the devices, one each;
- the audit hash chain still verifies (``linli audit verify`` exits 0), and the restarted
  server never answers 5xx.

Each round, besides the random kill, one device's next push answer (already committed) is held
back until the kill and then dropped: the lost-acknowledgement case happens every round instead
of by luck, and those operations must come back as ``duplicate``.

More rounds: ``LINLI_CRASH_ROUNDS=20 .venv/bin/pytest tests/e2e/test_server_crash.py -s``;
replay a run's timing with ``LINLI_CRASH_SEED=<seed printed in the summary>``.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from client_sdk import Client, ClientError, HTTPTransport, NetworkError
from client_sdk.transport import Request, Response
from tests.conftest import GRID_1, TEST_SECRET

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROUNDS = int(os.environ.get("LINLI_CRASH_ROUNDS", "5"))
DEVICES = 6  # two per worker account
PASSWORD = "crash-test-pw-1"
MAX_RECORDS_PER_DEVICE = 400 + 40 * ROUNDS  # bounds the work however long a round takes
ACKED = {"applied", "duplicate", "conflict"}


# --- the server, a process group we can kill --------------------------------------------------


_MAIN = "import sys; from linli.cli import main; sys.exit(main())"


def _linli() -> list[str]:
    """The `linli` console script next to this interpreter (the venv's), else the module."""
    script = Path(sys.executable).with_name("linli")
    return [str(script)] if script.exists() else [sys.executable, "-c", _MAIN]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    """`linli serve` in its own process group; ``kill`` SIGKILLs the whole group."""

    def __init__(self, env: dict[str, str], port: int, logs: Path) -> None:
        self.env, self.port, self.logs = env, port, logs
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> float:
        self.starts += 1
        log = self.logs / f"serve-{self.starts}.log"
        started = time.monotonic()
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    *_linli(),
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--workers",
                    "2",
                ],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                pytest.fail(f"linli serve exited {self.proc.returncode}:\n{self._tail(log)}")
            try:
                if httpx.get(f"{self.url}/api/openapi.json", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        pytest.fail(f"linli serve not ready in {timeout:.0f} s:\n{self._tail(log)}")

    def kill(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    @staticmethod
    def _tail(log: Path) -> str:
        return log.read_text(errors="replace")[-3000:]


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*_linli(), *args], env=env, capture_output=True, text=True, timeout=120)


def _seed_accounts(pg_url: str, instance: Path, count: int) -> list[str]:
    """Territory and grid workers, written through the app in process."""
    from server import create_app
    from server.extensions import db
    from server.models import AdminUnit, User, UserGrid, level_of, parent_code_of
    from server.passwords import hash_password

    app = create_app(
        {"DATABASE_URL": pg_url, "SECRET_KEY": TEST_SECRET, "INSTANCE_PATH": str(instance)}
    )
    names = [f"crash_worker{i}" for i in range(count)]
    with app.app_context():
        chain = [GRID_1]
        while (parent := parent_code_of(chain[-1])) is not None:
            chain.append(parent)
        for code in reversed(chain):
            db.session.add(
                AdminUnit(
                    code=code,
                    name=f"Unit {code}",
                    level=level_of(code).value,
                    parent_code=parent_code_of(code),
                )
            )
            db.session.flush()
        for name in names:
            db.session.add(
                User(
                    username=name,
                    display_name=name,
                    role="grid_worker",
                    unit_code=chain[1],
                    password_hash=hash_password(PASSWORD),
                    grids=[UserGrid(grid_code=GRID_1)],
                )
            )
        db.session.commit()
        for engine in db.engines.values():
            engine.dispose()
    return names


# --- devices: the real SDK over HTTP, with our own bookkeeping of what went over the wire -------


@dataclass
class _Device:
    index: int
    username: str
    path: Path
    device_id: str = ""
    created: dict[str, str] = field(default_factory=dict)  # record id -> findings
    sent: dict[int, str] = field(default_factory=dict)  # seq -> record id, from push bodies
    acked: dict[int, str] = field(default_factory=dict)  # seq -> first acknowledging status
    attempts: Counter[int] = field(default_factory=Counter)  # seq -> push requests carrying it
    rejected: list[dict[str, Any]] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    failed_syncs: int = 0
    server_errors: list[str] = field(default_factory=list)  # 5xx answers (retried by the SDK)
    cut_pushes: int = 0  # push requests that got no answer (refused, reset, timed out)
    cut_in_flight: int = 0  # ... of which were accepted, then cut by the kill
    dropped: set[int] = field(default_factory=set)  # seqs whose committed answer was lost
    pending_after: int = -1
    errors: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)


class _LostAnswer:
    """One round's crash aimed at a push: the armed device's next push answer — committed by the
    server — is held until the server has been SIGKILLed, then thrown away as if the kill had cut
    it. The device must get it back as ``duplicate`` on retry, never applied a second time."""

    def __init__(self, device_index: int | None = None) -> None:
        self.device_index = device_index
        self.held = threading.Event()
        self.killed = threading.Event()
        self._lock = threading.Lock()

    def take(self, device_index: int) -> bool:
        with self._lock:
            if self.held.is_set() or self.killed.is_set() or device_index != self.device_index:
                return False
            self.held.set()
            return True


class _Recording(HTTPTransport):
    """HTTP, noting each push's operations and the answers the device actually received."""

    def __init__(self, base_url: str, device: _Device, crash: list[_LostAnswer], **options: Any):
        super().__init__(base_url, **options)
        self.device = device
        self.crash = crash  # crash[0] is the current round's

    def handle(self, request: Request) -> Response:
        if not request.path.endswith("/sync/push"):
            response = super().handle(request)
            if response.status >= 500:
                self.device.server_errors.append(f"{request.path} {response.status}")
            return response
        body = request.content
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        for op in json.loads(body)["operations"]:
            self.device.sent[op["seq"]] = op["record_id"]
            self.device.attempts[op["seq"]] += 1
        try:
            response = super().handle(request)
        except ClientError as exc:
            self.device.cut_pushes += 1
            self.device.cut_in_flight += not str(exc).startswith("ConnectError")
            raise
        if response.status != 200:
            if response.status >= 500:
                self.device.server_errors.append(f"{request.path} {response.status}")
            return response
        results = [
            (int(r["key"].rsplit(":", 1)[1]), r["status"], r)
            for r in json.loads(response.content)["results"]
        ]
        crash = self.crash[0]
        if crash.take(self.device.index):
            self.device.dropped.update(seq for seq, status, _ in results if status in ACKED)
            crash.killed.wait(10)
            raise NetworkError("RemoteProtocolError: the answer was lost in the crash")
        for seq, status, result in results:
            self.device.outcomes[status] += 1
            if status in ACKED:
                self.device.acked.setdefault(seq, status)
            else:
                self.device.rejected.append(result)
        return response


def _run_device(
    dev: _Device,
    url: str,
    crash: list[_LostAnswer],
    chaos_over: threading.Event,
    drain: threading.Event,
    deadline: float,
    seed: int,
) -> None:
    rng = random.Random(seed * 1000 + dev.index)
    client: Client | None = None
    try:
        client = Client(
            db_path=dev.path,
            device_name=f"crash-{dev.index}",
            max_attempts=3,
            backoff=0.1,
            transport=_Recording(url, dev, crash, timeout=3.0),
        )
        dev.device_id = client.device_id
        client.login(dev.username, PASSWORD)
        dev.ready.set()
        n = 0
        while not chaos_over.is_set() and time.monotonic() < deadline:
            for _ in range(rng.randint(1, 3)):
                if len(dev.created) < MAX_RECORDS_PER_DEVICE:
                    n += 1
                    findings = f"crash d{dev.index} n{n}"
                    dev.created[client.record_visit(grid_code=GRID_1, findings=findings)["id"]] = (
                        findings
                    )
            try:
                client.sync()
            except ClientError:
                dev.failed_syncs += 1
            chaos_over.wait(rng.uniform(0.0, 0.05))
        drain.wait(timeout=max(0.0, deadline - time.monotonic()))
        for _ in range(30):  # the server is up again: sync until the outbox is empty
            if time.monotonic() > deadline + 30:
                break
            try:
                client.sync()
            except ClientError:
                dev.failed_syncs += 1
                time.sleep(0.2)
            if client.pending_count() == 0:
                break
        dev.pending_after = client.pending_count()
        dev.rejected.extend(client.rejected())
    except BaseException:
        dev.errors.append(traceback.format_exc())
    finally:
        dev.ready.set()
        if client is not None:
            client.close()


# --- the test ---------------------------------------------------------------------------------


def _server_rows(pg_url: str, device_ids: list[str]) -> tuple[list[tuple], list[tuple]]:
    import psycopg

    dsn = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        receipts = conn.execute(
            "SELECT device_id, seq, record_id, outcome FROM sync_op WHERE device_id = ANY(%s)",
            [device_ids],
        ).fetchall()
        records = conn.execute(
            "SELECT id, device_id, data::text FROM record"  # a fresh database: every record
        ).fetchall()
    return receipts, records


def test_acknowledged_pushes_survive_sigkill_of_the_whole_server(pg_url, tmp_path):
    began = time.monotonic()
    seed = int(os.environ.get("LINLI_CRASH_SEED") or random.randrange(2**31))
    rng = random.Random(seed)
    instance = tmp_path / "instance"
    env = {
        **os.environ,
        "LINLI_DATABASE_URL": pg_url,
        "LINLI_SECRET_KEY": TEST_SECRET,
        "LINLI_INSTANCE_PATH": str(instance),
    }
    upgraded = _cli(env, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    names = _seed_accounts(pg_url, instance, DEVICES // 2)
    server = _Server(env, _free_port(), tmp_path)
    devices = [
        _Device(i, names[i % len(names)], tmp_path / f"device{i}.sqlite3") for i in range(DEVICES)
    ]
    chaos_over, drain = threading.Event(), threading.Event()
    crash = [_LostAnswer()]
    answers_lost_in_crash = 0
    deadline = time.monotonic() + 30 + 10 * ROUNDS
    threads = [
        threading.Thread(
            target=_run_device,
            args=(d, server.url, crash, chaos_over, drain, deadline, seed),
            daemon=True,
        )
        for d in devices
    ]
    boot_times: list[float] = []
    try:
        boot_times.append(server.start())
        for t in threads:
            t.start()
        for d in devices:
            assert d.ready.wait(30), f"device {d.index} did not sign in"
        assert not any(d.errors for d in devices), [e for d in devices for e in d.errors]
        for _ in range(ROUNDS):
            crash[0] = _LostAnswer(rng.randrange(DEVICES))
            time.sleep(rng.uniform(0.2, 1.5))
            crash[0].held.wait(2.0)  # not before one committed answer is on its way (bounded)
            server.kill()
            crash[0].killed.set()
            answers_lost_in_crash += crash[0].held.is_set()
            boot_times.append(server.start())
        time.sleep(rng.uniform(0.2, 1.0))  # a little traffic on the last server before draining
        chaos_over.set()
        drain.set()
        for t in threads:
            t.join(timeout=max(1.0, deadline + 40 - time.monotonic()))
        assert not any(t.is_alive() for t in threads), "a device did not finish draining"
        audit = _cli(env, "audit", "verify")
    finally:
        chaos_over.set()
        drain.set()
        server.kill()
        crash[0].killed.set()

    errors = [e for d in devices for e in d.errors]
    assert not errors, "\n".join(errors)
    receipts, records = _server_rows(pg_url, [d.device_id for d in devices])
    per_key = Counter((dev_id, seq) for dev_id, seq, _, _ in receipts)
    receipt = {(dev_id, seq): (rid, outcome) for dev_id, seq, rid, outcome in receipts}
    acknowledged = [(d, seq) for d in devices for seq in d.acked]
    lost = [(d.device_id, s) for d, s in acknowledged if per_key[(d.device_id, s)] == 0]
    duplicated_receipts = [key for key, n in per_key.items() if n > 1]
    wrong = [
        (d.device_id, s, receipt[(d.device_id, s)])
        for d, s in acknowledged
        if (d.device_id, s) in receipt and receipt[(d.device_id, s)] != (d.sent[s], "applied")
    ]
    record_ids = Counter(rid for rid, _, _ in records)
    findings = Counter(json.loads(data).get("findings") for _, _, data in records)
    duplicated = (
        duplicated_receipts
        + [r for r, n in record_ids.items() if n > 1]
        + [f for f, n in findings.items() if n > 1]
    )
    created = {rid: d for d in devices for rid in d.created}
    missing_records = sorted(set(created) - set(record_ids))
    extra_records = sorted(set(record_ids) - set(created))
    outcomes = sum((d.outcomes for d in devices), Counter())
    summary = (
        f"server crash: seed={seed} rounds={ROUNDS} server starts={server.starts} "
        f"slowest boot={max(boot_times):.1f}s devices={DEVICES} created={len(created)} "
        f"acknowledged={len(acknowledged)} lost={len(lost)} "
        f"duplicated={len(duplicated)} results={dict(outcomes)} "
        f"pushes cut={sum(d.cut_pushes for d in devices)} "
        f"(in flight {sum(d.cut_in_flight for d in devices)}) "
        f"failed syncs={sum(d.failed_syncs for d in devices)} "
        f"5xx answers={sum(len(d.server_errors) for d in devices)} "
        f"ops sent more than once={sum(n > 1 for d in devices for n in d.attempts.values())} "
        f"answers lost in the crash={answers_lost_in_crash} rounds, "
        f"{sum(len(d.dropped) for d in devices)} ops "
        f"runtime={time.monotonic() - began:.1f}s"
    )
    print(summary)

    assert server.starts == ROUNDS + 1, summary
    assert sum(d.failed_syncs for d in devices) > 0, "no device ever saw the server down"
    assert answers_lost_in_crash > 0, "no crash landed between a commit and its answer"
    assert not [e for d in devices for e in d.server_errors], f"5xx after a restart\n{summary}"
    assert not lost, f"acknowledged but not on the server: {lost[:10]}\n{summary}"
    assert not duplicated, f"applied more than once: {duplicated[:10]}\n{summary}"
    assert not wrong, f"receipts that do not match what was acknowledged: {wrong[:10]}"
    assert all(d.pending_after == 0 for d in devices), (
        f"outboxes not drained: {[d.pending_after for d in devices]}\n{summary}"
    )
    assert not [r for d in devices for r in d.rejected], summary
    assert not missing_records and not extra_records, (
        f"missing {missing_records[:10]}, unexpected {extra_records[:10]}\n{summary}"
    )
    assert len(records) == len(created), summary
    for d in devices:
        assert all(d.acked[s] == "duplicate" for s in d.dropped), (
            f"device {d.index}: a committed op whose answer was lost was not recognised on "
            f"retry: {[(s, d.acked.get(s)) for s in sorted(d.dropped)][:10]}"
        )
        assert set(d.sent.values()) == set(d.created), f"device {d.index} sent what it created"
        assert set(d.acked) == set(d.sent), f"device {d.index}: every sent op acknowledged"
        assert sorted(s for dev_id, s, _, _ in receipts if dev_id == d.device_id) == sorted(
            d.sent
        ), f"device {d.index}: exactly one receipt per operation"
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "audit chain ok" in audit.stdout
