"""Detecting plaintext personal data of mainland (CN) parties in a transaction.

Mainland personal data may cross to the shared ledger only as a salted hash,
metadata, or a payload sealed to a consenting recipient (see rules/data.py).
Every transaction is scanned before it may enter a block; a hit makes the tx
invalid (code PII), so such data never even reaches a committed block.

What counts as a hit (stated rule, deliberately precise to avoid false alarms):
1. A PRC Resident Identity Card number anywhere in any text or bytes field:
   18 characters, a plausible birth date, and a valid ISO 7064 MOD 11-2
   check character (so random digit runs almost never match).
2. A mainland mobile number: 1[3-9] + 9 digits (also grouped 3-4-4 by spaces or
   dashes), standing alone or after a +86 / 0086 prefix, in any text or bytes field.
3. Inside a DCSA transport document: a document party whose address is in
   mainland China (countryCode CN) that is a natural person (typeOfPerson
   NATURAL_PERSON) or that carries partyContactDetails (names, phones and
   e-mails of contact persons are personal information under the PIPL).
Ciphertext (a sealed box) is random bytes and does not match rules 1-2.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from consortium import limits

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


def value_finding(value: Any, where: str) -> str | None:
    """Scan every text and bytes leaf of a decoded value; describe the first hit.

    Fast path: all leaves joined by NUL and searched once; only on a hit is the
    value walked again to name the leaf."""
    leaves: list[str] = []
    _collect(value, leaves, 0)
    if text_finding("\x00".join(leaves)) is None:
        return None
    return _locate(value, where, 0)


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


def _locate(value: Any, where: str, depth: int) -> str | None:
    if depth > limits.privacy_walk_depth_max:
        return None
    if isinstance(value, (str, bytes)):
        found = text_finding(value if isinstance(value, str) else value.decode("latin-1"))
        return None if found is None else f"{where} carries {found}"
    if isinstance(value, dict):
        items: list[tuple[str, Any]] = [(f"{where}.{k}", value[k]) for k in sorted(value)]
    elif isinstance(value, (list, tuple)):
        items = [(f"{where}[{i}]", v) for i, v in enumerate(value)]
    else:
        return None
    for path, v in items:
        hit = _locate(v, path, depth + 1)
        if hit is not None:
            return hit
    return None


def document_party_findings(document_parties: Any) -> list[str]:
    """Rule 3 over a DCSA `documentParties` object (any shape is tolerated)."""
    if not isinstance(document_parties, dict):
        return []
    out: list[str] = []
    for role in sorted(document_parties):
        for i, party in enumerate(_parties_under(document_parties[role])):
            hit = _party_finding(party)
            if hit is not None:
                out.append(f"documentParties.{role}[{i}] {hit}")
    return out


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


def _party_finding(party: dict[str, Any]) -> str | None:
    address = party.get("address")
    country = address.get("countryCode") if isinstance(address, dict) else None
    if country != "CN":
        return None
    if party.get("typeOfPerson") == "NATURAL_PERSON":
        return "is a mainland natural person"
    if party.get("partyContactDetails"):
        return "carries contact-person details of a mainland party"
    return None
