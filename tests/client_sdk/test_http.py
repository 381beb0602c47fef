"""Over real HTTP: the server on a loopback socket, the SDK and the `linli field` CLI."""

from __future__ import annotations

from click.testing import CliRunner

from client_sdk import Client
from client_sdk.cli import field

from .conftest import GRID_1


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
