"""Over real HTTP: the server on a loopback socket, the SDK and the `linli field` CLI."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from client_sdk import Client, HTTPTransport
from client_sdk.cli import field

from .conftest import GRID_1
from .flaky import Flaky


def test_a_journey_over_real_http(live_server, make_user, tmp_path):
    worker = make_user(grids=[GRID_1])
    with (
        Client(base_url=live_server, db_path=tmp_path / "a.sqlite3", timeout=10) as a,
        Client(base_url=live_server, db_path=tmp_path / "b.sqlite3", timeout=10) as b,
    ):
        a.login(worker.username, worker.password)
        b.login(worker.username, worker.password)
        for n in range(30):  # big enough for gzip both ways
            a.record_visit(grid_code=GRID_1, findings="走访情况良好，" * 20 + str(n))
        report = a.sync()
        assert report.pushed == 30 and report.rejected == 0
        assert report.bytes_sent < 30 * 400  # the push went gzip-compressed
        assert b.sync().pulled == 30
        assert len(b.visits()) == 30


def test_the_field_cli(live_server, make_user, tmp_path):
    worker = make_user(grids=[GRID_1])
    runner = CliRunner()
    env = {"LINLI_FIELD_SERVER": live_server, "LINLI_FIELD_DB": str(tmp_path / "cli.sqlite3")}

    def run(*args, input=None):
        result = runner.invoke(field, list(args), env=env, input=input)
        assert result.exit_code == 0, result.output
        return result.output

    assert "Signed in" in run("login", worker.username, input=f"{worker.password}\n")
    assert "Unlocked" in run("unlock", "--password", worker.password)
    bad = runner.invoke(field, ["unlock", "--password", "nope"], env=env)
    assert bad.exit_code == 1 and "wrong password" in bad.output
    run("add-household", "--grid", GRID_1, "--address", "和平里 2-202")
    run("visit", "--grid", GRID_1, "--findings", "独居", "--note", "下周复访")
    run("dispute", "--grid", GRID_1, "--title", "楼道堆物", "--category", "0201")
    assert "4 changes not yet synced" in run("status")  # the note is a change too
    invalid = runner.invoke(field, ["visit", "--grid", "123"], env=env)
    assert invalid.exit_code == 1 and "grid_code" in invalid.output
    out = run("sync")
    assert "Sent 4" in out and "push" in out
    assert "0 changes not yet synced" in run("status")
    assert "和平里 2-202" in run("households")
    assert run("conflicts") == "" and run("returned") == ""
    for command in field.commands.values():
        assert command.help, command.name


def _filled(live_server, make_user, tmp_path, n=23):
    worker = make_user(grids=[GRID_1])
    with Client(base_url=live_server, db_path=tmp_path / "source.sqlite3", timeout=10) as a:
        a.login(worker.username, worker.password)
        for i in range(n):
            a.record_visit(grid_code=GRID_1, findings=f"第{i}户 走访")
        assert a.sync().pushed == n
    return worker


@pytest.mark.parametrize("fail", [{}, {2: "lost"}, {3: "5xx"}, {2: "expired"}, {6: "lost"}])
def test_the_next_page_is_asked_for_while_one_is_saved(live_server, make_user, tmp_path, fail):
    """Over HTTP the next pull page travels while the device saves the one before; a request
    that fails on the way is asked again the careful way. Either way the device ends with the
    same records, cursor and checksum as a device that pulls one page after another."""
    worker = _filled(live_server, make_user, tmp_path)
    flaky = Flaky(live_server, "/pull", dict(fail))
    one_by_one = HTTPTransport(live_server, timeout=10)
    one_by_one.concurrent = False
    with (
        Client(db_path=tmp_path / "ahead.sqlite3", transport=flaky, page_size=4) as ahead,
        Client(db_path=tmp_path / "one.sqlite3", transport=one_by_one, page_size=4) as one,
    ):
        for device in (ahead, one):
            device.login(worker.username, worker.password)
        report, expected = ahead.sync(), one.sync()
        assert report.pulled == expected.pulled == 23 and report.checksum_ok
        assert sorted(v["id"] for v in ahead.visits()) == sorted(v["id"] for v in one.visits())
        assert ahead.store.get("cursor") == one.store.get("cursor")
        assert "linli-request" in flaky.threads  # pages 2-6 were asked for ahead
        assert flaky.fail == {}  # the planned failure happened
        assert flaky.count == 6 + len(fail)  # six pages of 4; a failed request asked again
        assert report.requests == expected.requests + len(fail)
