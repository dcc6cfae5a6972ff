"""The fast RFC 8785 path (consortium/ledger/jcs.py) is the rfc8785 library, byte for byte.

`jcs.dumps` encodes with msgspec where a walk proves msgspec and `rfc8785.dumps` agree,
and calls the library elsewhere. These tests hold it to the library on arbitrary JSON
values (Hypothesis: every float, ints beyond 2**53, control characters, private-use,
non-BMP and lone-surrogate keys and strings, non-str keys, subclasses) and on every DCSA
document we have (our examples, the DCSA originals in ../shared/dcsa, the workload's
documents and T&T events), and check that those documents take the fast path.
"""

from __future__ import annotations

import enum
import json
import random
from pathlib import Path
from typing import Any

import rfc8785
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from consortium import codec
from consortium.ledger import dcsa, jcs
from consortium.ledger.workload import Workload
from tests.conftest import SHARED_DCSA
from tests.ledger.helpers import GENESIS, KEYS

EXAMPLES_DIR = Path(dcsa.__file__).parent / "examples"


class _Str(str):
    pass


class _Colour(enum.IntEnum):
    RED = 1


def outcome(dumps: Any, value: Any) -> tuple[Any, ...]:
    """What a canonicaliser does with `value`: its bytes, or its exception's type and text."""
    try:
        return ("bytes", dumps(value))
    except Exception as exc:  # the library's errors are part of what must stay identical
        return ("error", type(exc), str(exc))


_CHARS = st.one_of(
    st.characters(max_codepoint=0x7F),  # ASCII, control characters included
    st.characters(min_codepoint=0x80, max_codepoint=0xD7FF),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=()),  # lone surrogates
    st.characters(min_codepoint=0xE000, max_codepoint=0xFFFF),  # private use, specials: after surrogates in UTF-16
    st.characters(min_codepoint=0x10000),  # beyond the BMP: surrogate pairs in UTF-16
)
TEXT = st.text(_CHARS, max_size=6)
_EDGE_INTS = [2**53 - 1, 2**53, -(2**53) + 1, -(2**53), 2**63, -(2**64), 10**30]
_EDGE_FLOATS = [0.0, -0.0, 1e-4, 9.99e-5, 1e-6, 1e-7, 1e16, 1e16 - 2, 2.0**53, 2.0**53 - 1, 2.0**53 + 2, 1e21, 1e22,
                12000.0, 9400.5, 0.1, 5e-324, 1.7976931348623157e308, float("inf"), float("-inf"), float("nan")]
SCALARS = st.one_of(
    st.none(), st.booleans(), TEXT,
    st.integers(), st.sampled_from(_EDGE_INTS), st.integers(-(2**54), 2**54),
    st.floats(), st.sampled_from(_EDGE_FLOATS), st.floats(1e-7, 1e22), st.floats(-1e17, 1e17).map(float.__floor__).map(float),
    st.sampled_from([_Str("x"), _Colour.RED, b"bytes", 1j]),  # subclasses and types outside JSON
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(TEXT, inner, max_size=4),
        st.dictionaries(st.one_of(st.integers(), st.none(), st.booleans(), st.floats()), inner, min_size=1, max_size=2),
    ),
    max_leaves=12,
)


@settings(max_examples=max(300, settings().max_examples))
@given(VALUES)
@example({"\ue000": 1, "\U0001f600": 2, "a": [1.5, 12000.0, -0.0]})  # UTF-16 order differs from code points
@example({"k": "\x00\x1f\x7f\"\\\b\f\n\r\t\u2028"})
@example([2**53 - 1, -(2**53) + 1, 2**53])
@example(["\ud800"])
def test_jcs_dumps_is_rfc8785_byte_for_byte_and_error_for_error(value: Any) -> None:
    """For every value, JSON or not, jcs.dumps gives exactly what rfc8785.dumps gives:
    the same bytes, or the same exception type with the same message."""
    assert outcome(jcs.dumps, value) == outcome(rfc8785.dumps, value)


def test_the_fast_domain_constants_are_the_librarys() -> None:
    """The integer range the fast path accepts is rfc8785's own (its _impl module)."""
    from rfc8785 import _impl

    assert (jcs._INT_FLOOR, jcs._INT_CEIL) == (_impl._INT_MIN, _impl._INT_MAX)


def _corpus_texts() -> list[tuple[str, str]]:
    """(name, JSON text) of every DCSA document and T&T payload we have."""
    out = [(p.name, p.read_text()) for p in sorted(EXAMPLES_DIR.glob("*.json"))]
    if SHARED_DCSA.is_dir():
        out += [(f"shared/{p.name}", p.read_text()) for p in sorted(SHARED_DCSA.glob("*.json"))]
    txs = Workload(GENESIS, KEYS, random.Random(7)).take(400, GENESIS.genesis_time_ms + 86_400_000)
    for tx in txs:
        kind, body = codec.decode(tx)[2], codec.decode(tx)[5]
        if kind == "ISSUE":
            out.append(("workload ISSUE", body["document"]))
        elif kind == "CARGO_EVENT":
            out.append(("workload CARGO_EVENT", body["events"]))
    return out


def test_every_dcsa_document_we_have_takes_the_fast_path_to_the_librarys_bytes() -> None:
    """Every DCSA document and T&T payload (examples, the DCSA originals, the workload's),
    and every event in them, is in the fast domain and canonicalises to rfc8785's bytes;
    dcsa.canonical and checksum_of give the library's form and its SHA-256."""
    corpus = _corpus_texts()
    assert sum(name.startswith("workload ISSUE") for name, _ in corpus) >= 20
    for name, text in corpus:
        value = json.loads(text)
        parts = [value] + (value["events"] if "events" in value else [])
        for part in parts:
            assert jcs._fast_domain(part) != jcs._OUTSIDE, name
            assert jcs.dumps(part) == rfc8785.dumps(part), name
            assert dcsa.canonical(part, "document") == rfc8785.dumps(part), name


def strict_load(text: str) -> Any:
    """Today's strict loader, built afresh: no duplicate keys, no NaN/Infinity."""
    return json.JSONDecoder(object_pairs_hook=dcsa._no_duplicates, parse_constant=dcsa._no_constant).decode(text)


def _members_twice(canon: str) -> str:
    return "{" + canon[1:-1] + "," + canon[1:-1] + "}"


BMP_KEYS = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)), max_size=4)
#: JSON values most of which lie in the fast domain (no surrogates, ints and floats in range).
PLAIN = st.recursive(
    st.one_of(st.none(), st.booleans(), st.text(st.characters(exclude_categories=("Cs",)), max_size=8),
              st.integers(-(2**53) + 1, 2**53 - 1), st.floats(-1e15, 1e15).filter(lambda x: abs(x) >= 1e-4)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(BMP_KEYS, inner, max_size=3),
    max_leaves=10,
)


@st.composite
def json_texts(draw: st.DrawFn) -> str:
    """Object texts: canonical ones, and near misses (spaces, escapes, 1.0, duplicate keys,
    NaN, lone-surrogate escapes, big ints)."""
    value = draw(st.one_of(st.dictionaries(BMP_KEYS, PLAIN, min_size=1, max_size=4),
                           st.dictionaries(TEXT, VALUES, min_size=1, max_size=4)))
    try:
        canon = jcs.dumps(value).decode()
    except Exception:
        return json.dumps(value, default=str)
    return draw(st.sampled_from([
        canon, canon, canon, canon, canon, json.dumps(value, default=str), json.dumps(value, ensure_ascii=True, default=str),
        _members_twice(canon), canon.replace(":1", ":1.0", 1), canon.replace('"', '\\u0022', 1),
        canon[:-1] + ',"~":NaN}', canon[:-1] + ',"~":"\\ud800"}', canon[:-1] + f',"~":{2**64}}}', canon + " ",
    ]))


@settings(max_examples=max(200, settings().max_examples))
@given(json_texts())
@example('{"a":1,"a":1}')
@example('{"a":100000000000000000000}')
@example('{"a":1e-7}')
def test_decode_canonical_gives_the_strict_loaders_value_and_the_librarys_bytes_or_nothing(text: str) -> None:
    """jcs.decode_canonical(text) is None, or (the value today's strict loader gives, with
    the same types, and rfc8785's bytes of it, which are the text itself); it is never
    None for the canonical text of a value in the fast domain."""
    known = jcs.decode_canonical(text)
    event("fast" if known is not None else "strict loader")
    try:
        value = strict_load(text)
    except ValueError:
        assert known is None
        return
    if known is None:
        assert jcs._fast_domain(value) != jcs._AS_IS or outcome(rfc8785.dumps, value) != ("bytes", text.encode())
        return
    assert repr(known[0]) == repr(value)  # repr tells 1 from 1.0 and True, and keeps the key order
    assert known[1] == rfc8785.dumps(value) == text.encode()


def test_a_document_parses_alike_as_canonical_text_and_as_published() -> None:
    """Each of our transport documents gives the same TransportDoc whether its text is its
    RFC 8785 form (loaded by msgspec, canonicalised once) or pretty-printed (the strict
    loader and the canonical form computed after the checks)."""
    for name in ("transport-document-straight.json", "transport-document-to-order.json"):
        doc = json.loads(dcsa.example(name))
        canon = jcs.dumps(doc).decode()
        assert jcs.decode_canonical(canon) is not None
        assert jcs.decode_canonical(json.dumps(doc, indent=2)) is None
        assert dcsa.parse_transport_document(canon) == dcsa.parse_transport_document(json.dumps(doc, indent=2))
