"""Production password hashing: Argon2id at or above OWASP's minimum, weak values refused."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from server.passwords import hash_password, needs_rehash, verify_password

PROBE = "from server.passwords import hash_password; print(hash_password('pw'))"


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LINLI_ARGON2")}
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_default_is_argon2id_at_owasp_minimum():
    result = _run({})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


@pytest.mark.parametrize(
    "env", [{"LINLI_ARGON2_MEMORY_KIB": "1024"}, {"LINLI_ARGON2_TIME_COST": "1"}]
)
def test_weaker_parameters_are_refused_outside_tests(env):
    result = _run(env)
    assert result.returncode != 0 and "below OWASP" in result.stderr


def test_verify_and_rehash():
    stored = hash_password("正确的密码")
    assert verify_password(stored, "正确的密码")
    assert not verify_password(stored, "wrong")
    assert not verify_password(None, "anything") and not verify_password("garbage", "x")
    owasp = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"
    assert needs_rehash(owasp) is True  # the suite's cheap parameters differ from it
