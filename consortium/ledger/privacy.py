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
#: Prefilter: both patterns hold 7 digits in a row or 4 + separator + 4 digits; scanning
#: for this first is much cheaper than the full patterns on long documents.
_CANDIDATE = re.compile(r"[0-9]{7}|[0-9]{4}[- ][0-9]{4}")
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
    if not _CANDIDATE.search(text):
        return None  # neither an ID number nor a mobile fits without such a digit run
    for m in _ID_RE.finditer(text):
        if is_prc_id_number(m.group(1)):
            return "a PRC resident identity card number"
    if _MOBILE_RE.search(text):
        return "a mainland mobile phone number"
    return None


_CATEGORY = {"a PRC resident identity card number": "resident_id", "a mainland mobile phone number": "mobile"}


def action(policy: Policy, country: str | None, category: str) -> tuple[str, str]:
    """(ALLOW or the reason code, the jurisdiction and law that decide it) for a finding
    of `category` in `country`; a country no jurisdiction covers is not ours to judge."""
    for jurisdiction in sorted(policy):
        rule = policy[jurisdiction]
        if country in rule.get("countries", ()):
            return str(rule.get(category, PRIVACY_ALLOW)), f"{jurisdiction} {rule.get('law', '')}".strip()
    return PRIVACY_ALLOW, "no policy"


def value_finding(value: Any, where: str, policy: Policy = DEFAULT_POLICY) -> str | None:
    """Scan every text and bytes leaf of a decoded value; describe the first hit the
    policy refuses (rules 1-2).

    Fast path: all leaves joined by NUL and searched once; only on a hit is the
    value walked again to name the leaf."""
    if all(action(policy, IDENTIFIER_COUNTRY, c)[0] == PRIVACY_ALLOW for c in _CATEGORY.values()):
        return None
    leaves: list[str] = []
    _collect(value, leaves, 0)
    if text_finding("\x00".join(leaves)) is None:
        return None
    return _locate(value, where, 0, policy)


def _collect(value: Any, out: list[str], depth: int) -> None:
    if depth > limits.privacy_walk_depth_max:
        return  # the codec already bounds nesting; this only guards recursion
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, bytes):
        out.append(value.decode("latin-1"))
    elif isinstance(value, dict):
        for v in value.values():
            _collect(v, out, depth + 1)
    elif isinstance(value, (list, tuple)):
        for v in value:
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
