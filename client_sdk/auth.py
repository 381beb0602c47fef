"""Signing in: online login (tokens + device registration) and offline unlock.

After an online login the device keeps an offline verifier — an Argon2id hash of the password,
never the password — so the worker can unlock the app with no signal. Tokens live in the store;
:class:`~client_sdk.api.Api` refreshes them when they expire.
"""

from __future__ import annotations

from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import Argon2Error, InvalidHashError, VerifyMismatchError

from sync.wire import LAST_SEQ_MAX

from .api import Api, _tokens
from .errors import AuthError, InvalidCredentials, ProtocolError, StorageError
from .store import Store

__all__ = ["login", "unlock"]

# OWASP's minimum for Argon2id: m = 19 MiB, t = 2, p = 1.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def login(
    api: Api, store: Store, *, username: str, password: str, device_id: str, device_name: str
) -> dict[str, Any]:
    """Sign in online; store the tokens, the user and the offline verifier. Return the user."""
    answer = api.call(
        "/api/v1/auth/login",
        {
            "username": username,
            "password": password,
            "device_id": device_id,
            "device_name": device_name,
        },
        auth=False,
    )
    tokens = _tokens(answer)
    user = answer.get("user") if isinstance(answer, dict) else None
    if not isinstance(user, dict):
        raise ProtocolError("the login answer has no user")
    last_seq = answer.get("last_seq", 0)  # a server from before it was added sends none
    if type(last_seq) is not int or not 0 <= last_seq <= LAST_SEQ_MAX:
        raise ProtocolError("the login answer's last_seq is not a sequence number")
    verifier = _HASHER.hash(password)
    with store.tx():
        # A store that never signed in has sent nothing (sending needs its tokens).
        first = store.get("user") is None
        store.set(
            tokens=tokens,
            user=user,
            username=username,
            login_scope=answer.get("scope"),
            verifier=verifier,
        )
        # The device id may have pushed from another store (a tablet wiped and enrolled again
        # with its id): this store's operations are numbered above the server's (protocol §3),
        # those recorded before this first sign-in included.
        store.number_above(last_seq, unsent=first)
    return user


def unlock(store: Store, password: str) -> dict[str, Any]:
    """Check ``password`` against the offline verifier; return the stored user."""
    verifier = store.get("verifier")
    user = store.get("user")
    if not verifier or not user:
        raise AuthError(
            "nobody has signed in on this device; log in online first", code="no_session"
        )
    try:
        _HASHER.verify(verifier, password)
    except VerifyMismatchError:
        raise InvalidCredentials("wrong password") from None
    except InvalidHashError as exc:
        raise StorageError("the offline verifier is damaged; log in online again") from exc
    except Argon2Error as exc:
        raise AuthError(f"cannot verify the password: {exc}") from exc
    return dict(user)
