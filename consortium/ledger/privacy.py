"""Detecting plaintext personal data of mainland (CN) parties in a transaction.

Mainland personal data may cross to the shared ledger only as a salted hash,
metadata, or a payload sealed to a consenting recipient (see rules/data.py).
Every transaction is scanned before it may enter a block; a hit makes the tx
invalid (code PII), so such data never even reaches a committed block.

What is found (stated rule, deliberately precise to avoid false alarms), and its
policy category:
1. resident_id: a PRC Resident Identity Card number anywhere in any text or bytes
   field: 18 characters, a plausible birth date, and a valid ISO 7064 MOD 11-2
   check character (so random digit runs almost never match). A mainland identifier.
2. mobile: a mainland mobile number: 1[3-9] + 9 digits (also grouped 3-4-4 by
   spaces or dashes), standing alone or after a +86 / 0086 prefix, in any text or
   bytes field. A mainland identifier.
3. Inside a DCSA transport document, per document party, in the country of its
   address (`address.countryCode`): natural_person (typeOfPerson NATURAL_PERSON)
   or business_contact (partyContactDetails of a party that is not a natural person:
   a company's desk e-mail or phone).
What is done with a finding is data in the genesis (`Genesis.privacy`, see
consortium.genesis.default_privacy): per jurisdiction, the countries it covers and,
per category, ALLOW or the reason code that refuses it (PII). The default: the
mainland (CN-SH, PIPL) refuses 1, 2 and natural persons and allows business
contacts; Hong Kong (PDPO) allows what the mainland policy does not cover. A
mainland natural person's identifiers reach the ledger only sealed to a
consenting recipient (DATA_SHARE, rules/data.py), never in plaintext.
Ciphertext (a sealed box) is random bytes and does not match rules 1-2.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from consortium import limits
from consortium.genesis import PRIVACY_ALLOW, default_privacy

#: Genesis.privacy: jurisdiction -> {"law", "countries", category -> ALLOW | reason code}.
Policy = Mapping[str, Mapping[str, Any]]
DEFAULT_POLICY: Policy = default_privacy()
#: The rule a refusal names (consortium.ledger.dcsa.RULES lists it).
RULE = "PRIVACY-POLICY"
#: Rules 1 and 2 find mainland identifiers: judged by the policy covering this country.
IDENTIFIER_COUNTRY = "CN"

# Digits only at the edges: "ID110105..." is still an ID number (the check character
# and the birth date keep false alarms away, not the surrounding letters).
_ID_RE = re.compile(
    r"(?<![0-9])([1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])"
    r"(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx])(?![0-9])"
)
_MOBILE_RE = re.compile(r"(?<![0-9A-Za-z+])(?:(?:\+|00)86[- ]?)?1[3-9][0-9](?:[- ]?[0-9]{4}){2}(?![0-9A-Za-z])")
#: The same two patterns over UTF-8 bytes, where the scan runs: every character they
#: name is ASCII and every other character encodes to bytes >= 0x80 that no class or
#: look-around of theirs accepts, so a text matches exactly when its UTF-8 form does.
_ID_BYTES = re.compile(_ID_RE.pattern.encode())
_MOBILE_BYTES = re.compile(_MOBILE_RE.pattern.encode())
#: Prefilter: both patterns hold 7 digits in a row or 4 + separator + 4 digits. Found by
#: byte translation (digits -> "0", "-" and space -> "-", the rest -> ".") and a plain
#: substring search for the two shapes: a regex scan of a document costs ~10x more.
_SHAPE = bytes(0x30 if 0x30 <= b <= 0x39 else 0x2D if b in b"- " else 0x2E for b in range(256))
_CANDIDATES = (b"0000000", b"0000-0000")
#: The shapes a match must contain: an ID number's 17 digits; a mobile number's 3 + 4 + 4
#: digits, each group of 4 after an optional separator.
_ID_SHAPES = (b"0" * 17,)
_MOBILE_SHAPES = (b"00000000000", b"000-00000000", b"0000000-0000", b"000-0000-0000")
#: Every character either pattern can match (digits, X/x, "+", "-", space): a match lies
#: inside one run of these, together with the shape it contains.
_RUN = re.compile(rb"[0-9Xx +-]*")
#: A match is at most 18 characters (an ID number; "0086-138-1234-5678"), so one that
#: overlaps a shape found starts at most 17 characters before it.
_REACH = 17
_NEEDLES = _ID_SHAPES + _MOBILE_SHAPES
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def is_prc_id_number(candidate: str) -> bool:
    """ISO 7064 MOD 11-2 check and a real birth date (GB 11643-1999)."""
    if len(candidate) != 18 or not candidate[:17].isdigit():
        return False
    try:
        dt.date(int(candidate[6:10]), int(candidate[10:12]), int(candidate[12:14]))
    except ValueError:
        return False
    total = sum(int(c) * w for c, w in zip(candidate[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == candidate[17].upper()


def text_finding(text: str) -> str | None:
    """What personal data `text` carries in plaintext, or None."""
    return _finding(text.encode("utf-8", "surrogatepass"))


def _finding(data: bytes) -> str | None:
    """text_finding over UTF-8 bytes, or over a bytes field as it is (its latin-1 text
    has the same matches: a byte >= 0x80 is one character no pattern accepts)."""
    shape = data.translate(_SHAPE)
    if _CANDIDATES[0] not in shape and _CANDIDATES[1] not in shape:
        return None  # neither an ID number nor a mobile fits without such a digit run
    if _ID_SHAPES[0] in shape:
        for start, end in _windows(data, shape, _ID_SHAPES):
            for m in _ID_BYTES.finditer(data, start, end):
                if is_prc_id_number(m.group(1).decode("ascii")):
                    return "a PRC resident identity card number"
    plain, after3, after7, both = _MOBILE_SHAPES
    if plain in shape or after3 in shape or after7 in shape or both in shape:
        for start, end in _windows(data, shape, _MOBILE_SHAPES):
            if _MOBILE_BYTES.search(data, start, end):
                return "a mainland mobile phone number"
    return None


def may_hold_identifier(encoded: bytes) -> bool:
    """False when no text or bytes value inside the canonical msgpack bytes `encoded`
    can hold rules 1-2's identifiers, so value_finding of its decoding is None.

    msgpack stores each text as its UTF-8 bytes and each bytes value as it is, so every
    leaf value_finding joins lies in `encoded` whole; _finding runs its patterns only
    around the shapes of _ID_SHAPES and _MOBILE_SHAPES (each longer than a candidate's)
    inside one leaf (the NUL between leaves breaks a shape), and `encoded` then holds
    that shape too."""
    shape = encoded.translate(_SHAPE)
    if _CANDIDATES[0] not in shape and _CANDIDATES[1] not in shape:
        return False
    for needle in _NEEDLES:
        if needle in shape:
            return True
    return False


def _windows(data: bytes, shape: bytes, needles: tuple[bytes, ...]) -> list[tuple[int, int]]:
    """Where a pattern's full regex must run: around every place its shapes occur, from
    17 characters before to one past the end of that run of pattern characters.

    The regex's look-behind sees the real bytes before a window and its look-ahead the
    real byte after it (no match can contain that byte), so a match in a window is a
    match of the whole text; every match of the whole text contains a shape and lies in
    that shape's window (or the window of an earlier hit of the same run)."""
    size = len(data)
    out: list[tuple[int, int]] = []
    for needle in needles:
        at = shape.find(needle)
        while at >= 0:
            run_end = _RUN.match(data, at).end()  # type: ignore[union-attr]  # `*` always matches
            out.append((max(0, at - _REACH), min(size, run_end + 1)))
            at = shape.find(needle, run_end)  # later hits of this run share its window
    return out


_CATEGORY = {"a PRC resident identity card number": "resident_id", "a mainland mobile phone number": "mobile"}


def action(policy: Policy, country: str | None, category: str) -> tuple[str, str]:
    """(ALLOW or the reason code, the jurisdiction and law that decide it) for a finding
    of `category` in `country`; a country no jurisdiction covers is not ours to judge."""
    for jurisdiction in sorted(policy):
        rule = policy[jurisdiction]
        if country in rule.get("countries", ()):
            return str(rule.get(category, PRIVACY_ALLOW)), f"{jurisdiction} {rule.get('law', '')}".strip()
    return PRIVACY_ALLOW, "no policy"


def _refuses_identifiers(policy: Policy) -> bool:
    """Whether `policy` refuses a resident_id or mobile finding: action() of both
    categories in IDENTIFIER_COUNTRY, with one walk of the policy."""
    for jurisdiction in sorted(policy):
        rule = policy[jurisdiction]
        if IDENTIFIER_COUNTRY in rule.get("countries", ()):
            return (str(rule.get("resident_id", PRIVACY_ALLOW)) != PRIVACY_ALLOW
                    or str(rule.get("mobile", PRIVACY_ALLOW)) != PRIVACY_ALLOW)
    return False


def value_finding(value: Any, where: str, policy: Policy = DEFAULT_POLICY) -> str | None:
    """Scan every text and bytes leaf of a decoded value; describe the first hit the
    policy refuses (rules 1-2).

    Fast path: all leaves joined by NUL and searched once; only on a hit is the
    value walked again to name the leaf."""
    if not _refuses_identifiers(policy):
        return None
    leaves: list[bytes] = []
    _collect(value, leaves, 0)
    if _finding(b"\x00".join(leaves)) is None:
        return None
    return _locate(value, where, 0, policy)


def _collect(value: Any, out: list[bytes], depth: int) -> None:
    """Every text leaf as UTF-8 and every bytes leaf as it is (see _finding)."""
    if depth > limits.privacy_walk_depth_max:
        return  # the codec already bounds nesting; this only guards recursion
    if isinstance(value, str):
        out.append(value.encode("utf-8", "surrogatepass"))
        return
    if isinstance(value, bytes):
        out.append(value)
        return
    if isinstance(value, dict):
        children: Any = value.values()
    elif isinstance(value, (list, tuple)):
        children = value
    else:
        return
    if depth == limits.privacy_walk_depth_max:
        return  # its children are below the guard
    for v in children:  # the common leaves inline, the rest one level down
        kind = type(v)
        if kind is str:
            out.append(v.encode("utf-8", "surrogatepass"))
        elif kind is bytes:
            out.append(v)
        elif kind is not int and v is not None:
            _collect(v, out, depth + 1)


def _locate(value: Any, where: str, depth: int, policy: Policy) -> str | None:
    if depth > limits.privacy_walk_depth_max:
        return None
    if isinstance(value, (str, bytes)):
        found = text_finding(value if isinstance(value, str) else value.decode("latin-1"))
        if found is None:
            return None
        category = _CATEGORY[found]
        verdict, by = action(policy, IDENTIFIER_COUNTRY, category)
        if verdict == PRIVACY_ALLOW:
            return None
        return f"{RULE}: {where} carries {found} ({category}: {verdict} under {by})"
    if isinstance(value, dict):
        items: list[tuple[str, Any]] = [(f"{where}.{k}", value[k]) for k in sorted(value)]
    elif isinstance(value, (list, tuple)):
        items = [(f"{where}[{i}]", v) for i, v in enumerate(value)]
    else:
        return None
    for path, v in items:
        hit = _locate(v, path, depth + 1, policy)
        if hit is not None:
            return hit
    return None


@dataclass(frozen=True, slots=True)
class PartyFact:
    """Rule 3: one document party's personal-data category, where its address is."""

    path: str  # documentParties.shipper, documentParties.notifyParties[1], ...
    country: str
    category: str  # natural_person | business_contact


def document_party_facts(document_parties: Any) -> tuple[PartyFact, ...]:
    """Rule 3 over a DCSA `documentParties` object (any shape is tolerated)."""
    if not isinstance(document_parties, dict):
        return ()
    out: list[PartyFact] = []
    for role in sorted(document_parties):
        value = document_parties[role]
        for i, party in enumerate(_parties_under(value)):
            path = f"documentParties.{role}" + (f"[{i}]" if isinstance(value, list) else "")
            fact = _party_fact(party, path)
            if fact is not None:
                out.append(fact)
    return tuple(out)


def fact_findings(facts: tuple[PartyFact, ...], policy: Policy = DEFAULT_POLICY) -> list[tuple[str, str]]:
    """(reason code, description) of every party fact the policy refuses."""
    out: list[tuple[str, str]] = []
    for f in facts:
        verdict, by = action(policy, f.country, f.category)
        if verdict != PRIVACY_ALLOW:
            what = ("is a natural person" if f.category == "natural_person"
                    else "carries business contact details")
            out.append((verdict, f"{RULE}: {f.path} {what} in {f.country} ({f.category}: {verdict} under {by}); "
                                 "a natural person's identifiers cross only sealed under consent (DATA_SHARE)"))
    return out


def document_party_findings(document_parties: Any, policy: Policy = DEFAULT_POLICY) -> list[str]:
    """Descriptions of the document parties the policy refuses (the invariant checker's view)."""
    return [text for _, text in fact_findings(document_party_facts(document_parties), policy)]


def party_finding(body: Any, policy: Policy = DEFAULT_POLICY) -> tuple[str, str] | None:
    """(reason code, description) of the first document party `policy` refuses in a
    decoded tx body (an ISSUE's document; other bodies carry none)."""
    doc = getattr(body, "doc", None)
    facts = getattr(doc, "party_facts", ())
    refused = fact_findings(facts, policy) if facts else []
    return refused[0] if refused else None


def _parties_under(value: Any) -> list[dict[str, Any]]:
    """`shipper` is one party, `notifyParties` a list, `other` a list of {party: ...}."""
    items = value if isinstance(value, list) else [value]
    out: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("party"), dict):
            out.append(item["party"])
        elif isinstance(item, dict):
            out.append(item)
    return out


def _party_fact(party: dict[str, Any], path: str) -> PartyFact | None:
    address = party.get("address")
    country = address.get("countryCode") if isinstance(address, dict) else None
    if not isinstance(country, str):
        return None
    if party.get("typeOfPerson") == "NATURAL_PERSON":
        return PartyFact(path, country, "natural_person")
    if party.get("partyContactDetails"):
        return PartyFact(path, country, "business_contact")
    return None
