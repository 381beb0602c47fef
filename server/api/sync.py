"""The sync API for devices: handshake, push, pull (docs/protocol.md).

Bodies are JSON; a request body may be gzip-compressed (Content-Encoding: gzip) and responses
are gzip-compressed when the device accepts it. Envelopes are checked by the schemas; the
operations themselves by sync.wire, one at a time.
"""

from __future__ import annotations

import gzip
import zlib
from typing import Any

from flask import Response, current_app, g, request

from server import jsontext
from server import pull as pulling
from server import push as pushing
from server.api import URL_PREFIX, Blueprint
from server.auth import authenticate, bearer_token, require_auth
from server.db import utcnow
from server.errors import APIError, BadRequest, Forbidden, PayloadTooLarge, ValidationFailed
from server.extensions import db
from server.schemas import (
    HandshakeResultSchema,
    HandshakeSchema,
    PullResultSchema,
    PullSchema,
    PushResultSchema,
    PushSchema,
)
from sync import (
    DEFAULT_MAX_DRIFT_MS,
    SCHEMA_VERSION,
    HandshakeResponse,
    OversizeValue,
    ProtocolVersionError,
    PullRequest,
    PushRequest,
    ScopeInfo,
    SyncError,
    negotiate,
)

blp = Blueprint("sync", __name__, url_prefix=f"{URL_PREFIX}/sync", description="Device sync")


class UpgradeRequired(APIError):
    status, default_code = 426, "protocol_unsupported"


PROTOCOL_HEADER, SCHEMA_HEADER = "Linli-Protocol", "Linli-Schema"


@blp.before_request
def _check_versions() -> None:
    """A push or pull may say which protocol and record schema it was made for (headers
    ``Linli-Protocol`` and ``Linli-Schema``, as negotiated in a handshake): one this server does
    not speak is answered 426, as the handshake would answer, and nothing is applied. A client
    can therefore reuse a recent handshake without its operations ever reaching a server rolled
    back to an older schema. A request without the headers is taken as before."""
    if request.endpoint not in ("sync.push", "sync.pull"):
        return
    protocol, schema = request.headers.get(PROTOCOL_HEADER), request.headers.get(SCHEMA_HEADER)
    if protocol is not None:
        version = _header_int(PROTOCOL_HEADER, protocol)
        try:
            negotiate([version])
        except ProtocolVersionError as exc:
            raise UpgradeRequired(exc.message, details=exc.context) from None
    if schema is not None and _header_int(SCHEMA_HEADER, schema) > SCHEMA_VERSION:
        raise UpgradeRequired(
            "The device's record schema is newer than the server's.",
            details={"server": SCHEMA_VERSION},
        )


def _header_int(name: str, value: str) -> int:
    value = value.strip()
    if not (value.isascii() and value.isdigit() and len(value) <= 6):
        raise BadRequest(f"{name}: a version number is required.", code="bad_header")
    return int(value)


@blp.before_request
def _inflate_gzip_body() -> None:
    """Decompress a gzip body of an authenticated device, refusing one that inflates beyond
    the configured limit."""
    if request.headers.get("Content-Encoding", "").lower() != "gzip":
        return
    authenticate(bearer_token())  # no inflating (up to the limit) for anonymous callers
    limit = current_app.config["SYNC_MAX_BODY_BYTES"]
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(request.get_data(cache=False), limit + 1)
    except zlib.error:
        raise BadRequest("The gzip body is corrupt.", code="bad_gzip") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"The body inflates beyond {limit} bytes.")
    request._cached_data = data  # what get_json() reads


def _reply(payload: bytes | dict[str, Any]) -> Response:
    body = payload if isinstance(payload, bytes) else jsontext.dumps_bytes(payload)
    response = Response(body, mimetype="application/json")
    if "gzip" in request.headers.get("Accept-Encoding", "").lower() and len(body) > 512:
        response.set_data(gzip.compress(body, compresslevel=5))
        response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    return response


def _own_device(device_id: str) -> None:
    if device_id != g.device.id:
        raise Forbidden("The body names another device than the token.", code="device_mismatch")


def _decode(error: SyncError) -> APIError:
    if isinstance(error, OversizeValue):
        return PayloadTooLarge(error.message, code="batch_too_large", details=error.context)
    return ValidationFailed(error.message, code=error.code, details=error.context)


@blp.post("/handshake")
@require_auth()
@blp.arguments(HandshakeSchema)
@blp.response(200, HandshakeResultSchema)
def handshake(args: dict[str, Any]) -> Response:
    """Negotiate the protocol, learn the server time and scope; the clock skew is recorded."""
    _own_device(args["device_id"])
    try:
        version = negotiate(args["protocol_versions"])
    except ProtocolVersionError as exc:
        raise UpgradeRequired(exc.message, details=exc.context) from None
    if args["schema_version"] > SCHEMA_VERSION:
        raise UpgradeRequired(
            "The device's record schema is newer than the server's.",
            details={"server": SCHEMA_VERSION},
        )
    now_ms = int(utcnow().timestamp() * 1000)
    skew = args["device_time_ms"] - now_ms
    if g.device.skew_mark_due(skew):  # kept to the second: not a write at every handshake
        g.device.clock_skew_ms = skew
        db.session.commit()
    config = current_app.config
    return _reply(
        HandshakeResponse(
            protocol_version=version,
            schema_version=SCHEMA_VERSION,
            server_time_ms=now_ms,
            clock_skew_ms=skew,
            max_clock_drift_ms=config.get("MAX_CLOCK_DRIFT_MS", DEFAULT_MAX_DRIFT_MS),
            max_batch=config["SYNC_MAX_BATCH"],
            max_page=config["SYNC_MAX_PAGE"],
            scope=ScopeInfo(g.scope.prefixes, g.scope.token),
            # the token's device (checked above): not g.device, which the skew commit expired
            last_seq=pushing.last_seq(args["device_id"]),
        ).to_dict()
    )


@blp.post("/push")
@require_auth()
@blp.arguments(PushSchema)
@blp.response(200, PushResultSchema)
def push(args: dict[str, Any]) -> Response:
    """Apply a batch of operations; one result per operation, in order."""
    _own_device(args["device_id"])
    config = current_app.config
    try:
        batch = PushRequest.from_dict(
            args, max_batch=config["SYNC_MAX_BATCH"], author=str(g.user.id)
        )
        page = args.get("pull")
        page = PullRequest.from_dict(page, max_page=config["SYNC_MAX_PAGE"]) if page else None
    except SyncError as exc:
        raise _decode(exc) from None
    response, scope = pushing.push(batch, user=g.user, device=g.device, scope=g.scope)
    body = jsontext.dumps_bytes(response.to_dict())
    if page is not None and scope is not None:  # (None: not judged, sent again later)
        # Read after the push committed, in a snapshot of its own: the page a pull sent now
        # would get (the device's own changes included). The push kept the device's last
        # sync; its committed (expired) row is not loaded again to ask. The jurisdiction is
        # the one the push was judged by, read under the write lock (a grid removed since
        # the request was authenticated is not sent).
        pulled = pulling.pull(page, device=g.device, scope=scope, mark_synced=False)
        body = body[:-1] + b',"pull":' + pulled + b"}"
    return _reply(body)


@blp.post("/pull")
@require_auth()
@blp.arguments(PullSchema)
@blp.response(200, PullResultSchema)
def pull(args: dict[str, Any]) -> Response:
    """One page of changes in your scope after ``cursor``; removals; the checksum at the end."""
    try:
        page = PullRequest.from_dict(args, max_page=current_app.config["SYNC_MAX_PAGE"])
    except SyncError as exc:
        raise _decode(exc) from None
    return _reply(pulling.pull(page, device=g.device, scope=g.scope))
