"""server.jsontext reads exactly what json.loads reads (and refuses what it refuses), whether
orjson or the standard library does the reading; request bodies go through it. Its canonical
text is exactly sync.canonical_json's, the one spelling digests cover."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server import jsontext
from sync import canonical_json


def _typed(value: Any) -> str:
    """A spelling that tells 1 from 1.0 and True, and -0.0 from 0.0."""
    return json.dumps(value, sort_keys=True, ensure_ascii=True)


def _outcome(read: Any, data: Any) -> tuple[str, str]:
    try:
        return "ok", _typed(read(data))
    except (ValueError, RecursionError) as exc:
        return "error", type(exc).__name__


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@pytest.mark.parametrize(
    "text",
    [
        '{"a":[1,2.5,-0.0,true,null,"x\\u00e9"]}',
        '{"v":18446744073709551615,"w":-9223372036854775808}',
        '{"v":18446744073709551616}',
        '{"v":-9223372036854775809}',
        '{"v":123456789012345678901234567890}',
        '{"f":1.2345678901234567890123}',
        '{"id":"110101199001011234","n":1}',
        '{"v":NaN,"w":Infinity}',
        '{"v":1e400}',
        '["\\ud800"]',
        '{"a":1,"a":2}',
        " [1] \n",
        "[" * 1100 + "]" * 1100,
        "",
        "[01]",
        '{"a":1} x',
    ],
)
@pytest.mark.parametrize("as_bytes", [False, True])
def test_reads_what_json_loads_reads(text, as_bytes):
    data = text.encode("utf-8", "surrogatepass") if as_bytes else text
    assert _outcome(jsontext.loads, data) == _outcome(json.loads, data)


@pytest.mark.parametrize("raw", [b"\xef\xbb\xbf[1]", '{"名":"值"}'.encode("utf-16"), b"\xff\xfe"])
def test_bytes_json_loads_would_detect_or_refuse(raw):
    assert _outcome(jsontext.loads, raw) == _outcome(json.loads, raw)


@settings(max_examples=200, deadline=None)
@given(_json, st.booleans())
def test_any_json_text_reads_as_json_loads_reads_it(value, as_bytes):
    text = json.dumps(value, ensure_ascii=False)
    data = text.encode("utf-8", "surrogatepass") if as_bytes else text
    assert _outcome(jsontext.loads, data) == _outcome(json.loads, data)


def test_request_bodies_keep_integers_beyond_64_bits(app):
    body = b'{"v":18446744073709551616,"w":1}'
    with app.test_request_context("/", method="POST", data=body, content_type="application/json"):
        from flask import request

        assert request.get_json() == {"v": 2**64, "w": 1}
        assert type(request.get_json()["v"]) is int


_BODIES = [
    b'{"a":[1,2.5,-0.0,true,null,"x\\u00e9"]}',
    b'{"v":123456789012345678901234567890}',
    b'{"v":NaN}',
    b'{"v":1e400}',
    b'["\\ud800"]',
    b'{"a":1,"a":2}',
    b"[" * 1100 + b"]" * 1100,
    b"",
    b"[01]",
    b'{"a":1} x',
    b"\xef\xbb\xbf[1]",
    '{"名":"值"}'.encode("utf-16"),
    b"\xff\xfe",
    b'{"name":"\xe5\xbc\xa0"}',
]


@pytest.mark.parametrize("body", _BODIES)
def test_the_arguments_parser_reads_a_body_as_webargs_does(app, body):
    """The blueprints' parser (orjson where it reads alike) gives webargs' values and errors."""
    from webargs.flaskparser import FlaskParser

    from server.api import Parser

    with app.test_request_context("/", method="POST", data=body, content_type="application/json"):
        from flask import request

        ours = _outcome(lambda r: Parser()._raw_load_json(r), request)
        theirs = _outcome(lambda r: FlaskParser()._raw_load_json(r), request)
    assert ours == theirs


_any_text = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, categories=None))
_canonical_cases = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | _any_text,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(_any_text | st.integers(), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(_canonical_cases)
def test_canonical_text_is_sync_canonical_json_exactly(value):
    try:
        expected = canonical_json(value)
    except (TypeError, ValueError) as exc:  # e.g. keys of mixed kinds cannot be sorted
        with pytest.raises(type(exc)):
            jsontext.canonical(value)
    else:
        assert jsontext.canonical(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        {"b": '\x00\x1f\x7f\u2028\u2029\ufeff"\\/', "a": [1, True, None]},
        {"名": 1, "é": 2, "\U0001f600": 3, "\uffff": 4, "Z": 5},
        {"v": 2**63, "w": -(2**63) - 1, "x": 2**64},
        {"f": 1.0, "g": 1e16, "h": 1.5e-7, "i": float("nan"), "j": float("inf")},
        {"s": "\ud800"},
        {1: "a", 2: "b"},
        {"t": (1, 2)},
        [],
        "",
    ],
)
def test_canonical_text_of_the_edge_cases(value):
    assert jsontext.canonical(value) == canonical_json(value)
