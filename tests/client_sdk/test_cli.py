"""``linli field``: every command documented; notes, workflow steps and an encrypted store
from the command line, offline and against the real app in process."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from client_sdk import AppTransport, Client
from client_sdk.cli import field

from .conftest import GRID_1

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _run(db, *args, obj=None, env=None):
    result = CliRunner().invoke(field, ["--db", str(db), *args], obj=obj, env=env)
    return result


def _new_dispute(db, *options) -> str:
    result = _run(db, *options, "dispute", "--grid", GRID_1, "--title", "楼上漏水",
                  "--category", "0201")  # fmt: skip
    assert result.exit_code == 0, result.output
    return UUID.search(result.output).group()


@pytest.mark.parametrize("name", sorted(field.commands))
def test_every_command_has_help(name):
    assert field.commands[name].help
    result = CliRunner().invoke(field, [name, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def test_note_adds_to_an_existing_record(tmp_path):
    db = tmp_path / "d.sqlite3"
    case = _new_dispute(db)
    result = _run(db, "note", case, "电话回访：已修好")
    assert result.exit_code == 0, result.output
    assert f"Note added to dispute {case}" in result.output
    with Client(db_path=db) as device:
        assert [n["text"] for n in device.get(case)["collections"]["notes"]] == ["电话回访：已修好"]
    missing = _run(db, "note", "0b7b4d2e-0000-4000-8000-000000000001", "x")
    assert missing.exit_code == 1 and "[not_found]" in missing.output
    empty = _run(db, "note", case, " ")
    assert empty.exit_code == 1 and "invalid note" in empty.output


def test_advance_takes_workflow_steps_with_params_and_opinion(tmp_path):
    db = tmp_path / "d.sqlite3"
    case = _new_dispute(db)
    refused = _run(db, "advance", case, "accept")  # a grid worker may not accept a case
    assert refused.exit_code == 1 and "[illegal_transition]" in refused.output
    with Client(db_path=db) as device:
        device.store.set(user={"username": "head1", "role": "community_head"})
    accepted = _run(db, "advance", case, "accept", "--opinion", "受理")
    assert accepted.exit_code == 0, accepted.output
    assert "Step accept saved" in accepted.output and "assign" in accepted.output
    missing = _run(db, "advance", case, "assign", "--param", "responsible_unit=调委会")
    assert missing.exit_code == 1 and "[illegal_transition]" in missing.output
    assigned = _run(db, "advance", case, "assign", "--param", "responsible_unit=调委会",
                    "--param", "responsible_person=李")  # fmt: skip
    assert assigned.exit_code == 0, assigned.output
    bad = _run(db, "advance", case, "assign", "--param", "no-equals-sign")
    assert bad.exit_code == 2 and "key=value" in bad.output
    with Client(db_path=db) as device:
        steps = device.get(case)["collections"]["steps"]
    assert [s["action"] for s in steps] == ["accept", "assign"]
    assert steps[0]["opinion"] == "受理"
    assert steps[1]["params"] == {"responsible_unit": "调委会", "responsible_person": "李"}


def test_note_and_step_reach_the_server(app, make_user, make_device, tmp_path):
    worker = make_user(grids=[GRID_1])
    db = tmp_path / "field.sqlite3"

    def online(*args):
        result = _run(db, *args, obj={"transport": AppTransport(app)})
        assert result.exit_code == 0, result.output
        return result

    online("login", worker.username, "--password", worker.password)
    case = _new_dispute(db)
    online("note", case, "双方同意调解")
    synced = online("sync")
    assert "Sent 2 " in synced.output
    head = make_device(make_user(role="community_head"), "head")
    head.sync()
    assert [n["text"] for n in head.get(case)["collections"]["notes"]] == ["双方同意调解"]


def test_key_opens_an_encrypted_store(tmp_path):
    pytest.importorskip("sqlcipher3")
    db = tmp_path / "secret.sqlite3"
    case = _new_dispute(db, "--key", "邻里 passphrase")
    assert (
        _run(db, "note", case, "现场查看", env={"LINLI_FIELD_KEY": "邻里 passphrase"}).exit_code
        == 0
    )
    for args in ([], ["--key", "wrong"]):
        refused = _run(db, *args, "status")
        assert refused.exit_code == 1 and "[wrong_key]" in refused.output
    with Client(db_path=db, encryption_key="邻里 passphrase") as device:
        assert len(device.get(case)["collections"]["notes"]) == 1
