"""Pull pages as the SDK reads them: decoded on a checked fast path when they have their usual
shape, and their snapshots marked for the store's fast encoder when orjson read them.

The server's answer is not trusted: :func:`pull_page` takes a page whose changes all have the
usual shape (a ``dict`` with a canonical UUID ``id``, an integer ``version`` from 1, a ``dict``
of ``fields``, a boolean ``deleted``, ``conflicts`` and ``collections`` absent, null or a
``dict``) only where ``PullResponse.from_dict`` would accept them and give the same values, and
hands everything else to ``PullResponse.from_dict``, which raises the same errors. The rest of
the page (removals, cursor, scope, checksum) is always decoded by ``PullResponse.from_dict``.

A page's snapshots are stored as JSON text. When the answer was read by orjson, its numbers are
finite and within 64 bits and its text is valid Unicode, so orjson writes the same values back,
several times faster than the standard library: :class:`Snapshots` carries that mark to
``Store.save_snapshots``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sync import PullResponse

__all__ = ["Snapshots", "pull_page"]

_MAX_CHANGES = 100_000  # PullResponse.from_dict's limit
_MAX_INT = 2**63 - 1  # sync._check.integer's default maximum
#: The canonical UUID text ``sync._check.uuid_text`` takes as it is.
_canonical_uuid = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII
).fullmatch


class Snapshots(list[dict[str, Any]]):
    """A pull page's snapshots; ``plain`` when orjson read them (the store may then write them
    with orjson: the same values)."""

    __slots__ = ("plain",)

    def __init__(self, items: Iterable[dict[str, Any]] = (), *, plain: bool = False) -> None:
        super().__init__(items)
        self.plain = plain


def pull_page(answer: Any, *, plain: bool = False) -> PullResponse:
    """``PullResponse.from_dict(answer)``: the same page and the same errors.

    ``plain`` says the answer was read by orjson (``Api.plain_answer``); the page's changes are
    then a :class:`Snapshots` marked plain.
    """
    changes = answer.get("changes") if type(answer) is dict else None
    if type(changes) is not list or len(changes) > _MAX_CHANGES or not _usual(changes):
        page = PullResponse.from_dict(answer)
        return _with_changes(page, Snapshots(page.changes, plain=plain))
    # Every change passes the full check, so the rest of the page decodes (or fails) exactly
    # as the whole page would: PullResponse.from_dict checks the changes in between.
    rest = PullResponse.from_dict({**answer, "changes": []})
    return _with_changes(rest, Snapshots(changes, plain=plain))


def _usual(changes: list[Any]) -> bool:
    """True if every change has the usual shape (then ``_check_snapshot`` accepts it as is)."""
    for ch in changes:
        if type(ch) is not dict or "type" not in ch:
            return False
        rid, version = ch.get("id"), ch.get("version")
        conflicts, collections = ch.get("conflicts"), ch.get("collections")
        if not (
            type(rid) is str
            and _canonical_uuid(rid)
            and type(version) is int
            and 1 <= version <= _MAX_INT
            and type(ch.get("fields")) is dict
            and type(ch.get("deleted")) is bool
            and (conflicts is None or type(conflicts) is dict)
            and (collections is None or type(collections) is dict)
        ):
            return False
    return True


def _with_changes(page: PullResponse, changes: Snapshots) -> PullResponse:
    return PullResponse(
        changes=changes,
        removals=page.removals,
        cursor=page.cursor,
        has_more=page.has_more,
        scope=page.scope,
        reset=page.reset,
        checksum=page.checksum,
    )
