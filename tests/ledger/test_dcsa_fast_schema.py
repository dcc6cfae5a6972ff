"""jsonschema-rs and fastjsonschema agree on the DCSA eBL 3.0.3 schema (consortium/ledger/dcsa.py).

validate_schema asks jsonschema-rs (Rust) first and accepts what it calls valid; any
other document goes through fastjsonschema, whose exception makes the refusal. That is
exactly today's behaviour if and only if the two agree on validity. The schema's
patterns are Python `re` patterns (as fastjsonschema runs them), rewritten for Rust by
dcsa._rs_pattern; the only format fastjsonschema checks in draft 4 (date-time) is
decided in both by fastjsonschema's own regular expression; the formats it ignores
(date, int32, float) are left out for Rust too.

Shown here: the rewritten character classes match exactly Python's over every code
point; each schema pattern gives the same verdict on Hypothesis strings in both
engines; the two validators give the same verdict on our documents, the DCSA
original, the workload's documents, generated schema-valid documents and Hypothesis
mutations of all of them (dropped required fields, wrong types, bad dates and
date-times, bad enum values, extra properties, too long or empty strings and arrays,
whitespace and Unicode-digit variants); and validate_schema refuses with exactly the
message fastjsonschema alone gives.
"""

from __future__ import annotations

import copy
import json
import random
import re
from pathlib import Path
from typing import Any

import fastjsonschema
import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consortium import codec
from consortium.ledger import dcsa
from consortium.ledger.fields import TxError
from consortium.ledger.workload import Workload
from tests.conftest import SHARED_DCSA
from tests.ledger.dcsa_strategies import from_schema, inlined_transport_document
from tests.ledger.helpers import GENESIS, KEYS

SCHEMA = dcsa.transport_document_schema()
FJS = fastjsonschema.compile(SCHEMA, use_default=False)  # today's validator, alone
RS = dcsa._rs_validator()
EXAMPLES_DIR = Path(dcsa.__file__).parent / "examples"
NOT_SURROGATES = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]


def _walk(node: Any, found: dict[str, set[Any]]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("pattern", "format") and isinstance(v, str):
                found[k].add(v)
            elif k == "enum":
                found[k].update(v)
            else:
                _walk(v, found)
    elif isinstance(node, list):
        for v in node:
            _walk(v, found)


FOUND: dict[str, set[Any]] = {"pattern": set(), "format": set(), "enum": set()}
_walk(SCHEMA, FOUND)
PATTERNS = sorted(FOUND["pattern"])
RUST_PATTERNS = {p: jsonschema_rs.Draft4Validator({"pattern": dcsa._rs_pattern(p)},
                                                  pattern_options=jsonschema_rs.RegexOptions()) for p in PATTERNS}
ENUMS = sorted(FOUND["enum"])


def fjs_valid(doc: Any) -> bool:
    try:
        FJS(doc)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


def today(doc: Any) -> str | None:
    """The refusal today's validate_schema (fastjsonschema alone) gives, None if valid."""
    try:
        FJS(doc)
    except fastjsonschema.JsonSchemaValueException as exc:
        path = "$" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in exc.path[1:])
        message = str(exc.message).replace("data", "value", 1)[:160]
        return str(dcsa.refuse("DCSA-SCHEMA", path, f"{exc.rule} ({message})").detail)
    return None


def now(doc: Any) -> str | None:
    try:
        dcsa.validate_schema(doc)
    except TxError as exc:
        return str(exc.detail)
    return None


# ------------------------------------------------------------------ character classes and patterns


def test_py_space_is_what_python_re_calls_whitespace() -> None:
    """dcsa._PY_SPACE (written out for Rust) is exactly the set `\\s` matches in a Python
    str pattern, over every code point."""
    everything = "".join(chr(c) for c in range(0x110000))
    expected = "".join(re.findall(r"\s", everything))
    assert "".join(c for c in re.findall(f"[{dcsa._PY_SPACE}]", everything)) == expected


@pytest.mark.parametrize("python", [r"^\S\Z", r"^\s\Z", r"^.\Z"])
def test_rewritten_classes_match_exactly_what_python_matches_over_every_code_point(python: str) -> None:
    """Each rewritten class (`\\S`, `\\s`, `.`) accepts in Rust exactly the
    code points Python's `re` accepts (all of Unicode but the surrogates, which never
    reach Rust: a document holding one goes to fastjsonschema)."""
    rx = re.compile(python)
    accepted = {i for i, c in enumerate(NOT_SURROGATES) if rx.search(c)}
    mostly = len(accepted) > len(NOT_SURROGATES) // 2  # Rust reports the minority, as errors: fast
    items = {"pattern": dcsa._rs_pattern(python)}
    rust = jsonschema_rs.Draft4Validator({"type": "array", "items": items if mostly else {"not": items}},
                                         pattern_options=jsonschema_rs.RegexOptions())
    minority = {e.instance_path[0] for e in rust.iter_errors(NOT_SURROGATES)}
    assert minority == (set(range(len(NOT_SURROGATES))) - accepted if mostly else accepted)


def test_rs_pattern_refuses_what_it_cannot_rewrite() -> None:
    """A pattern construct that reads differently in Python and Rust is refused when the
    Rust validator is built, never silently translated."""
    for bad in [r"^\d+$", r"^\w\Z", r"a$b", r"(?=x)", r"[a&&b]", r"[\S]", r"x{,3}", r"^é\Z".replace("é", r"\é")]:
        with pytest.raises(ValueError):
            dcsa._rs_pattern(bad)


_TRICKY_CHARS = st.sampled_from(list(dcsa._PY_SPACE.replace("-", "")) + ["\x85", "\u180e", "\ufeff", "\u200b", "\x7f",
                                                                       "٣", "\uff10", "\U0001d7ce", "a", "A", "0", "+",
                                                                       ".", "@", "é", "\U0001f600"])


@st.composite
def near_misses(draw: st.DrawFn, pattern: str) -> str:
    """A string the pattern accepts, perhaps with a tricky character inserted or appended."""
    text = draw(st.from_regex(pattern))
    if draw(st.booleans()):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(_TRICKY_CHARS) + text[at:]
    return text


@settings(max_examples=max(150, settings().max_examples))
@given(st.sampled_from(PATTERNS).flatmap(lambda p: st.tuples(st.just(p), st.one_of(
    near_misses(p), st.text(st.one_of(_TRICKY_CHARS, st.characters(exclude_categories=("Cs",))), max_size=20)))))
def test_every_schema_pattern_gives_the_same_verdict_in_rust_and_python(case: tuple[str, str]) -> None:
    """Every pattern of the schema, rewritten for Rust, accepts exactly the strings Python's
    `re.search` (fastjsonschema's check) accepts."""
    pattern, text = case
    assert RUST_PATTERNS[pattern].is_valid(text) == bool(re.compile(pattern).search(text)), (pattern, text)


def test_the_formats_are_the_ones_we_handle() -> None:
    """The schema uses date-time (checked in both by fastjsonschema's expression) and date,
    int32, float, which fastjsonschema's draft 4 ignores (so the Rust schema leaves them out)."""
    assert FOUND["format"] == {"date-time", "date", "int32", "float"}
    assert set(dcsa._FJS_FORMATS) & FOUND["format"] == {"date-time"}


# ------------------------------------------------------------------ documents


def _corpus() -> list[dict[str, Any]]:
    docs = [json.loads((EXAMPLES_DIR / n).read_text()) for n in ("transport-document-straight.json",
                                                                  "transport-document-to-order.json")]
    if SHARED_DCSA.is_dir():  # the original carries a placeholder reference longer than the schema allows
        original = json.loads((SHARED_DCSA / "transport-document-straight.json").read_text())
        docs.append({**original, "transportDocumentReference": "HMMU2312190001"})
    txs = Workload(GENESIS, KEYS, random.Random(11)).take(300, GENESIS.genesis_time_ms + 86_400_000)
    docs += [json.loads(codec.decode(tx)[5]["document"]) for tx in txs if codec.decode(tx)[2] == "ISSUE"][:12]
    return docs


CORPUS = _corpus()
_STRINGS = [
    "", " ", "x", " x", "x ", "x\n", "\nx", "\x1cx", "x\u2028", "\u3000", "ABC", "abc", "CNSHA", "cnsha", "CNSH1",
    "CN SHA", "HKHKG", "ABCU1234567", "22G1", "BOL", "ISSUED", "issued", "KGM", "LBR", "a@b", "a@b c", "@b",
    "+86 21 1234 5678", "+8621", "US", "U", "USA", "2026-03-02", "2026-02-30", "2024-02-29", "2023-02-29",
    "2026-13-01", "2026-3-2", "٢٠٢٦-03-02", "2026-03-02T08:00:00+08:00", "2026-03-02T08:00:00Z",
    "2026-03-02t08:00:00z", "2026-03-02 08:00:00Z", "2026-03-02T25:00:00Z", "2026-03-02T08:00:60Z",
    "2026-02-30T08:00:00Z", "٢٠٢٦-03-02T08:00:00Z", "2026-03-02T08:00:00.123+0800", "0", "12", "1.5", "9",
    "847130", "84713", "8471301234567", "x" * 36, "x" * 101, "x" * 5001, *ENUMS[:40],
]
VALUE_POOL: list[Any] = [None, True, False, -1, 0, 1, 3, 7000, 99999999, 100000000, 10**20, 0.0, 1.0, 12000.0, 2.5,
                         -0.5, [], {}, ["x"], [None], *_STRINGS]
VALUES = st.one_of(st.sampled_from(VALUE_POOL), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                   st.text(max_size=12), st.lists(st.sampled_from(_STRINGS), min_size=1, max_size=3))
_OPS = ["drop", "replace", "replace", "perturb", "array", "add"]
_NEW_KEYS = ["extra", "x-note", "transportDocumentReference", "UNLocationCode"]


def _slots(node: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key or index) of a document."""
    if isinstance(node, dict):
        for k, v in node.items():
            out.append((node, k))
            _slots(v, out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.append((node, i))
            _slots(v, out)
    return out


def mutate(doc: dict[str, Any], choose: Any, new_value: Any, times: int) -> dict[str, Any]:
    """A copy of `doc` with `times` mutations: drop a field or an item, replace a value
    (another type, a tricky string, a number out of range), perturb a string (edge spaces,
    control characters, case, length, a Unicode digit), empty or grow an array, add a
    property. `choose(list)` picks one element, `new_value()` gives a replacement value."""
    doc = copy.deepcopy(doc)
    for _ in range(times):
        slots = _slots(doc, [])
        if not slots:
            break
        parent, key = choose(slots)
        op, value = choose(_OPS), parent[key]
        if op == "drop":
            del parent[key]
        elif op == "perturb" and isinstance(value, str):
            parent[key] = choose([value + " ", " " + value, value + "\n", value + "\x1c", value.lower(), value * 40,
                                  value[:-1], value + "\u2028", value + "0", "٣" + value[1:]])
        elif op == "array" and isinstance(value, list):
            parent[key] = choose([[], value * 3, value + value[:1], [None]])
        elif op == "add" and isinstance(value, dict):
            value[choose(_NEW_KEYS)] = new_value()
        else:
            parent[key] = new_value()
    return doc


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A document of `base` with one to three mutations (`mutate`)."""
    return mutate(draw(base), lambda seq: draw(st.sampled_from(seq)), lambda: draw(VALUES), draw(st.integers(1, 3)))


DOCUMENTS = from_schema(inlined_transport_document())
GENERATED = max(8, settings().max_examples // 10)  # generating from the schema is slow (test_dcsa_property.py)


def test_the_validators_agree_on_every_document_we_have() -> None:
    """Our examples, the DCSA original and the workload's documents are valid for both."""
    assert len(CORPUS) >= 10
    for doc in CORPUS:
        assert RS(doc) and fjs_valid(doc)
        assert now(doc) is None


@settings(max_examples=max(200, settings().max_examples))
@given(mutated(st.sampled_from(CORPUS)))
def test_the_validators_agree_on_mutated_documents_and_the_refusal_is_todays(doc: dict[str, Any]) -> None:
    """On mutations of every kind of our documents, jsonschema-rs calls a document valid
    exactly when fastjsonschema does, and validate_schema's refusal is word for word the
    one fastjsonschema alone gives."""
    assert RS(doc) == fjs_valid(doc)
    assert now(doc) == today(doc)


@settings(max_examples=GENERATED)
@given(DOCUMENTS, st.randoms(use_true_random=False))
def test_the_validators_agree_on_generated_documents_and_their_mutations(doc: dict[str, Any],
                                                                         rnd: random.Random) -> None:
    """Schema-valid documents generated from the schema (every optional part, enum and
    pattern) are valid for both; so are, or are not, a few mutations of each, alike."""
    assert RS(doc) and fjs_valid(doc)
    for _ in range(8):
        variant = mutate(doc, rnd.choice, lambda: rnd.choice(VALUE_POOL), rnd.randint(1, 3))
        assert RS(variant) == fjs_valid(variant)
        assert now(variant) == today(variant)


_DANGEROUS_GOODS = from_schema(inlined_transport_document()["properties"]["consignmentItems"]["items"]["properties"]
                               ["cargoItems"]["items"]["properties"]["outerPackaging"]["properties"]["dangerousGoods"]
                               ["items"])
_DATE_TIMES = st.one_of(
    st.sampled_from([s for s in _STRINGS if len(s) >= 10]),
    st.datetimes().map(lambda d: d.isoformat() + "Z"), st.datetimes().map(lambda d: d.isoformat()),
    st.from_regex(r"\A[0-9٣]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([zZ]|[+-][0-9]{2}:?[0-9]{2})?\Z"),
)


@settings(max_examples=max(120, settings().max_examples))
@given(_DANGEROUS_GOODS, _DATE_TIMES)
def test_format_date_time_is_decided_alike_in_a_document(goods: dict[str, Any], when: str) -> None:
    """DangerousGoods.fumigationDateTime (format date-time, the one format fastjsonschema's
    draft 4 checks) is accepted or refused alike by both validators, inside a document."""
    doc = copy.deepcopy(CORPUS[0])
    doc["consignmentItems"][0]["cargoItems"][0]["outerPackaging"]["dangerousGoods"] = [
        {**goods, "fumigationDateTime": when}]
    assert RS(doc) == fjs_valid(doc)
    assert now(doc) == today(doc)
