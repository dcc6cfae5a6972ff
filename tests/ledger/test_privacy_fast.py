"""The fast personal-data scan finds exactly what the straightforward one found (issue 12).

Invariants, in words:
1. `text_finding` (byte translation, substring prefilter, the full patterns run only in
   windows around the shapes they need) names the same finding as the reference scan
   (the full patterns over the whole text), for any text: valid and invalid PRC ID
   numbers, mainland mobiles in every documented form (plain, grouped 3-4-4 by spaces
   or dashes, after +86 / 0086 with or without a separator), with digits, letters,
   "+", separators, X, non-ASCII digits and letters, NUL and lone surrogates around.
2. `value_finding` returns the same description (or None) as the reference for nested
   values of text and bytes leaves, under the default, a lenient and a strict policy.
3. On the real corpora (every workload transaction body; the DCSA documents in
   consortium/ledger/examples and ../shared/dcsa, also with PII inserted at many
   offsets) both scans agree.

The reference is the implementation before issue 12, copied here (it is not live code).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from pathlib import Path
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from consortium import codec, limits
from consortium.genesis import PRIVACY_ALLOW, default_privacy
from consortium.ledger import privacy
from consortium.ledger.privacy import DEFAULT_POLICY, Policy, is_prc_id_number
from consortium.ledger.workload import Workload
from tests.ledger.helpers import GENESIS, KEYS

# ------------------------------------------------------------------ the reference (before issue 12)

_OLD_ID_RE = re.compile(
    r"(?<![0-9])([1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])"
    r"(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx])(?![0-9])"
)
_OLD_MOBILE_RE = re.compile(r"(?<![0-9A-Za-z+])(?:(?:\+|00)86[- ]?)?1[3-9][0-9](?:[- ]?[0-9]{4}){2}(?![0-9A-Za-z])")
_OLD_CANDIDATE = re.compile(r"[0-9]{7}|[0-9]{4}[- ][0-9]{4}")
_OLD_CATEGORY = {"a PRC resident identity card number": "resident_id", "a mainland mobile phone number": "mobile"}


def old_text_finding(text: str) -> str | None:
    if not _OLD_CANDIDATE.search(text):
        return None
    for m in _OLD_ID_RE.finditer(text):
        if is_prc_id_number(m.group(1)):
            return "a PRC resident identity card number"
    if _OLD_MOBILE_RE.search(text):
        return "a mainland mobile phone number"
    return None


def old_action(policy: Policy, country: str | None, category: str) -> tuple[str, str]:
    for jurisdiction in sorted(policy):
        rule = policy[jurisdiction]
        if country in rule.get("countries", ()):
            return str(rule.get(category, PRIVACY_ALLOW)), f"{jurisdiction} {rule.get('law', '')}".strip()
    return PRIVACY_ALLOW, "no policy"


def old_value_finding(value: Any, where: str, policy: Policy = DEFAULT_POLICY) -> str | None:
    if all(old_action(policy, "CN", c)[0] == PRIVACY_ALLOW for c in _OLD_CATEGORY.values()):
        return None
    leaves: list[str] = []
    _old_collect(value, leaves, 0)
    if old_text_finding("\x00".join(leaves)) is None:
        return None
    return _old_locate(value, where, 0, policy)


def _old_collect(value: Any, out: list[str], depth: int) -> None:
    if depth > limits.privacy_walk_depth_max:
        return
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, bytes):
        out.append(value.decode("latin-1"))
    elif isinstance(value, dict):
        for v in value.values():
            _old_collect(v, out, depth + 1)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _old_collect(v, out, depth + 1)


def _old_locate(value: Any, where: str, depth: int, policy: Policy) -> str | None:
    if depth > limits.privacy_walk_depth_max:
        return None
    if isinstance(value, (str, bytes)):
        found = old_text_finding(value if isinstance(value, str) else value.decode("latin-1"))
        if found is None:
            return None
        category = _OLD_CATEGORY[found]
        verdict, by = old_action(policy, "CN", category)
        if verdict == PRIVACY_ALLOW:
            return None
        return f"PRIVACY-POLICY: {where} carries {found} ({category}: {verdict} under {by})"
    if isinstance(value, dict):
        items: list[tuple[str, Any]] = [(f"{where}.{k}", value[k]) for k in sorted(value)]
    elif isinstance(value, (list, tuple)):
        items = [(f"{where}[{i}]", v) for i, v in enumerate(value)]
    else:
        return None
    for path, v in items:
        hit = _old_locate(v, path, depth + 1, policy)
        if hit is not None:
            return hit
    return None


# ------------------------------------------------------------------ what texts are made of

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _check_char(first17: str) -> str:
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True)) % 11]


@st.composite
def id_numbers(draw: st.DrawFn) -> str:
    """A valid ID number, or one spoilt: wrong check character, impossible date, a digit off."""
    region = draw(st.integers(100000, 999999))
    born = draw(st.dates(dt.date(1800, 1, 1), dt.date(2099, 12, 31)))
    first17 = f"{region}{born:%Y%m%d}{draw(st.integers(0, 999)):03d}"
    check = _check_char(first17)
    spoil = draw(st.sampled_from(["none", "none", "lower", "check", "date", "digit"]))
    if spoil == "lower":
        check = check.lower()
    elif spoil == "check":
        check = draw(st.sampled_from([c for c in "0123456789Xx" if c.upper() != check]))
    elif spoil == "date":
        first17 = first17[:10] + draw(st.sampled_from(["1301", "0230", "0431", "0001", "0100"])) + first17[14:]
    elif spoil == "digit":
        i = draw(st.integers(0, 16))
        first17 = first17[:i] + str((int(first17[i]) + 1) % 10) + first17[i + 1:]
    return first17 + check


@st.composite
def mobiles(draw: st.DrawFn) -> str:
    """A mainland mobile in a documented form, or a near miss (wrong second digit, short)."""
    second = draw(st.sampled_from("3456789" * 3 + "0125"))
    digits = "1" + second + "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=9, max_size=9)))
    if draw(st.booleans()):
        digits = digits[:draw(st.integers(7, 10))] if draw(st.booleans()) else digits + draw(st.sampled_from("05"))
    sep1, sep2 = draw(st.sampled_from(["", "-", " "])), draw(st.sampled_from(["", "-", " "]))
    body = digits[:3] + sep1 + digits[3:7] + sep2 + digits[7:]
    prefix = draw(st.sampled_from(["", "", "+86", "0086", "+86-", "+86 ", "0086-", "0086 ", "86", "+8", "+", "00",
                                   "+86--", "0", "1"]))
    return prefix + body


FILLER = st.text(alphabet=st.sampled_from(list("0123456789") * 3 + list("aXxZz+-  .:/\x00\t") +
                                          ["\u0660", "\uff10", "\u4e2d", "\u00e9", "\ud800", "\U0001f600"]),
                 max_size=24)
FRAGMENTS = st.one_of(FILLER, id_numbers(), mobiles(), st.text(max_size=8),
                      st.text(alphabet="0123456789", min_size=4, max_size=22))
TEXTS = st.lists(FRAGMENTS, max_size=8).map("".join)

STRICT = default_privacy()
STRICT["CN-SH"]["mobile"] = "ALLOW"  # refuses ID numbers only: a mobile is found but allowed
LENIENT = default_privacy()
LENIENT["CN-SH"]["resident_id"] = LENIENT["CN-SH"]["mobile"] = "ALLOW"
POLICIES = [DEFAULT_POLICY, STRICT, LENIENT]

LEAVES = st.one_of(TEXTS, TEXTS.map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary(max_size=40),
                   st.integers(), st.none(), st.booleans())
VALUES = st.recursive(LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.lists(inner, max_size=3).map(tuple),
    st.dictionaries(st.text(max_size=6), inner, max_size=4)), max_leaves=12)


# ------------------------------------------------------------------ the properties


@settings(max_examples=400)
@given(TEXTS)
@example("holder 11010519491231002X")
@example("+86 138 0013 8000")
@example("+86-138-0013-80000")
@example("x13800138000")
@example("1381234 5678 11010519491231002X")
@example("0" * 30 + " 11010519491231002x")
@example("\ud80011010519491231002X\u0660")
def test_text_finding_matches_the_reference(text: str) -> None:
    """Any text: the fast scan names the same finding (ID number, mobile or none) as the
    full patterns over the whole text."""
    assert privacy.text_finding(text) == old_text_finding(text)


@settings(max_examples=120)
@given(VALUES, st.sampled_from(range(len(POLICIES))))
def test_value_finding_matches_the_reference(value: Any, which: int) -> None:
    """Any nested value of text and bytes leaves, under a default, strict or lenient policy:
    the same description (leaf path, category, verdict) or None as the reference."""
    policy = POLICIES[which]
    assert privacy.value_finding(value, "body", policy) == old_value_finding(value, "body", policy)


def test_the_depth_guard_stops_where_it_did() -> None:
    """Leaves nested around the recursion guard's depth (privacy_walk_depth_max): found
    or left alone exactly as the reference does, in lists, tuples and maps."""
    for depth in range(limits.privacy_walk_depth_max - 2, limits.privacy_walk_depth_max + 3):
        for leaf in ["11010519491231002X", b"+86 138 0013 8000", "none here"]:
            for wrap in (lambda v: [v], lambda v: (v, 1), lambda v: {"k": v, "n": None}):
                value: Any = leaf
                for _ in range(depth):
                    value = wrap(value)
                for policy in POLICIES:
                    assert privacy.value_finding(value, "body", policy) == old_value_finding(value, "body", policy)


def _documents() -> list[str]:
    here = Path(privacy.__file__).parent / "examples"
    shared = Path(__file__).resolve().parents[3] / "shared" / "dcsa"
    paths = sorted(here.glob("*.json")) + (sorted(shared.glob("*.json")) if shared.is_dir() else [])
    assert paths
    return [p.read_text(encoding="utf-8") for p in paths]


def test_corpora_scan_the_same() -> None:
    """Every workload transaction body (valid flows and faults) and every DCSA example
    document, as they are and with an ID number, a spoilt ID number or a mobile inserted
    at many offsets: the fast and the reference scans agree."""
    work = Workload(GENESIS, KEYS, random.Random(12), invalid_ratio=0.1)
    wire = [codec.decode(tx) for tx in work.take(1000, GENESIS.genesis_time_ms + 86_400_000)]
    bodies = [w[5] for w in wire]
    for body in bodies:
        for policy in POLICIES:
            assert privacy.value_finding(body, "body", policy) == old_value_finding(body, "body", policy)
    assert len({w[2] for w in wire}) >= 20  # every kind the workload sends
    inserts = ["11010519491231002X", "110105194912310021", "+86 138 0013 8000", "138-0013-8000", "13800138000",
               "0086138001380001", "A13800138000"]
    docs = _documents() + [b["document"] for b in bodies[:300] if "document" in b]
    docs += [b["events"] for b in bodies[:300] if "events" in b]
    seen = set()
    for doc in docs:
        assert privacy.text_finding(doc) == old_text_finding(doc)
        compact = json.dumps(json.loads(doc), separators=(",", ":"))
        for at in range(0, len(compact), 59):
            for insert in inserts:
                text = compact[:at] + insert + compact[at:]
                found = privacy.text_finding(text)
                assert found == old_text_finding(text), (at, insert)
                seen.add(found)
    assert seen == {None, "a PRC resident identity card number", "a mainland mobile phone number"}
