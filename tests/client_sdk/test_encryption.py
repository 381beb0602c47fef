"""The encrypted device store (SQLCipher): no plaintext on disk, the right key reads it back,
a wrong or missing key is refused with WrongKey, and the whole SDK, sync included, works on it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from client_sdk import AppTransport, Client, ClientError, StorageError
from client_sdk.errors import WrongKey

from .conftest import GRID_1, id_number

pytest.importorskip("sqlcipher3")

KEY = "邻里 tablet passphrase, with a ' quote"
NAME = "欧阳秘密"
ID_NUMBER = id_number("19750607", "481")  # region 990101: synthetic, valid check digit
PHONE = "17098765432"
FINDINGS = "独居老人，低保待复核"
SECRETS = [NAME.encode(), ID_NUMBER.encode(), PHONE.encode(), FINDINGS.encode()]


def _files(path: Path) -> dict[str, bytes]:
    """The raw bytes of the database and its -wal / -shm files (those that exist)."""
    found = {}
    for suffix in ("", "-wal", "-shm"):
        f = Path(f"{path}{suffix}")
        if f.exists():
            found[f.name] = f.read_bytes()
    return found


def _leaks(files: dict[str, bytes]) -> list[tuple[str, bytes]]:
    return [(name, s) for name, data in files.items() for s in SECRETS if s in data]


def _write_resident(client: Client) -> dict:
    home = client.create_household(grid_code=GRID_1, address="幸福里 3-301", head_name=NAME)
    resident = client.create_resident(
        grid_code=GRID_1, name=NAME, household_id=home["id"], id_number=ID_NUMBER, phone=PHONE
    )
    client.record_visit(grid_code=GRID_1, household_id=home["id"], findings=FINDINGS)
    return resident


@pytest.mark.parametrize("key", [None, KEY], ids=["plain", "encrypted"])
def test_plaintext_is_on_disk_only_without_a_key(tmp_path, key):
    path = tmp_path / "tablet.sqlite3"
    client = Client(db_path=path, encryption_key=key)
    _write_resident(client)
    while_open = _files(path)
    assert while_open.get("tablet.sqlite3-wal"), "the write-ahead log should hold the edits"
    client.close()
    after_close = _files(path)
    if key is None:  # the control: the same check finds the plaintext of a plain store
        assert {s for _, s in _leaks(while_open)} == set(SECRETS)
        assert {s for _, s in _leaks(after_close)} == set(SECRETS)
    else:
        assert _leaks(while_open) == [] and _leaks(after_close) == []
        for data in (while_open["tablet.sqlite3"], after_close["tablet.sqlite3"]):
            assert b"SQLite format 3" not in data and b"CREATE TABLE" not in data


def test_the_right_key_reads_everything_back(tmp_path):
    path = tmp_path / "tablet.sqlite3"
    with Client(db_path=path, encryption_key=KEY) as client:
        resident = _write_resident(client)
        device_id = client.device_id
    with Client(db_path=path, encryption_key=KEY) as client:
        assert client.device_id == device_id
        again = client.get(resident["id"])
        assert again["fields"]["name"] == NAME
        assert again["fields"]["id_number"] == ID_NUMBER
        assert again["fields"]["phone"] == PHONE
        assert [v["fields"]["findings"] for v in client.visits()] == [FINDINGS]
        assert client.pending_count() == 3
        assert client.store.integrity() == "ok"


@pytest.mark.parametrize(
    "other", ["a wrong passphrase", None, os.urandom(32)], ids=["wrong", "none", "raw-bytes"]
)
def test_a_wrong_or_missing_key_is_refused_and_changes_nothing(tmp_path, other):
    path = tmp_path / "tablet.sqlite3"
    with Client(db_path=path, encryption_key=KEY) as client:
        _write_resident(client)
    before = _files(path)
    with pytest.raises(WrongKey, match=r"^wrong encryption key or not a Linli database$") as err:
        Client(db_path=path, encryption_key=other)
    assert isinstance(err.value, StorageError) and err.value.code == "wrong_key"
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert _files(path) == before
    with Client(db_path=path, encryption_key=KEY) as client:  # still opens with the right key
        assert client.pending_count() == 3


def test_a_plain_store_opened_with_a_key_is_refused(tmp_path):
    path = tmp_path / "tablet.sqlite3"
    with Client(db_path=path) as client:
        _write_resident(client)
    with pytest.raises(WrongKey):
        Client(db_path=path, encryption_key=KEY)
    with Client(db_path=path) as client:
        assert client.pending_count() == 3


def test_a_raw_32_byte_key_from_a_keystore(tmp_path):
    path = tmp_path / "tablet.sqlite3"
    raw = os.urandom(32)
    with Client(db_path=path, encryption_key=raw) as client:
        resident = _write_resident(client)
    assert _leaks(_files(path)) == []
    with Client(db_path=path, encryption_key=raw) as client:
        assert client.get(resident["id"])["fields"]["phone"] == PHONE
    with pytest.raises(WrongKey):
        Client(db_path=path, encryption_key=raw.hex())  # the hex text is a different passphrase


@pytest.mark.parametrize("bad", ["", "nul\x00inside", b"too short", 1234])
def test_an_unusable_key_is_refused_before_the_file_is_touched(tmp_path, bad):
    path = tmp_path / "tablet.sqlite3"
    with pytest.raises(ClientError) as err:
        Client(db_path=path, encryption_key=bad)
    assert err.value.code == "invalid_key"
    assert not path.exists()


def test_without_sqlcipher3_the_error_says_to_install_the_extra(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        sys.modules["sqlcipher3"] = None  # as if the "encrypt" extra were not installed
        from client_sdk import Client, ClientError
        try:
            Client(db_path={str(tmp_path / "t.sqlite3")!r}, encryption_key="k")
        except ClientError as exc:
            print(type(exc).__name__, exc.code, exc)
        with Client(db_path={str(tmp_path / "plain.sqlite3")!r}) as c:  # no key: still works
            print("plain", c.pending_count())
    """)
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
        check=True,
        timeout=60,
    )
    first, second = done.stdout.splitlines()
    assert first.startswith("ClientError encryption_unavailable ")
    assert "encrypt" in first and "sqlcipher3" in first
    assert second == "plain 0"
    assert not (tmp_path / "t.sqlite3").exists()


def test_login_unlock_and_a_full_sync_on_encrypted_stores(app, make_user, make_device, tmp_path):
    worker = make_user(grids=[GRID_1])
    device = make_device(worker, "w1", encryption_key=KEY)
    resident = _write_resident(device)
    report = device.sync()
    assert (report.pushed, report.applied, report.rejected) == (3, 3, 0)
    assert report.checksum_ok is True and device.pending_count() == 0

    colleague = make_device(make_user(grids=[GRID_1]), "w2", encryption_key="another key")
    colleague.sync()
    assert colleague.get(resident["id"])["fields"]["id_number"] == ID_NUMBER
    colleague.update(resident["id"], phone="17000000001")
    colleague.sync()

    device.sync()
    assert device.get(resident["id"])["fields"]["phone"] == "17000000001"
    device.close()
    path = tmp_path / "w1.sqlite3"
    assert _leaks(_files(path)) == []  # pulled snapshots, tokens and verifier included
    assert worker.username.encode() not in b"".join(_files(path).values())

    with Client(
        db_path=path, encryption_key=KEY, transport=AppTransport(app), sleep=lambda s: None
    ) as again:
        assert again.unlock(worker.password)["username"] == worker.username  # offline verifier
        assert again.get(resident["id"])["fields"]["name"] == NAME
        assert again.sync().checksum_ok is True  # stored tokens still work
    with pytest.raises(WrongKey):
        Client(db_path=path, transport=AppTransport(app))
