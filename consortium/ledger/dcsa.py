"""DCSA documents: the eBL 3.0 transport document and Track & Trace 3.0 events.

The ledger accepts these as the JSON the standards define (the originals in
shared/dcsa/ pass as they are, with a reference set). It keeps what its rules
need (reference, parties present, dates, ports, equipment) and the document's
checksum: SHA-256 over the RFC 8785 (JCS) form, the `rfc8785` library's (jcs.py
gives its bytes at C speed), as PINT's IssuanceManifest.documentChecksum
prescribes. JSON numbers may be floats in a document; they never reach the state
(only the canonical text and ints, strings and booleans derived from it do).

A transport document is validated against the DCSA eBL 3.0.3 schema shipped as
package data (schema/EBL_v3.0.3.json, read and compiled once, at the first
document; no other I/O; jsonschema-rs accepts, fastjsonschema words a refusal),
then against the DCSA conditions the schema cannot say and the project's own
rules. Every refusal names its rule (RULES), the JSON path and the problem:
"RULE: $.path: problem" (docs/LEDGER.md, sections 5 and 10).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import fastjsonschema
import fastjsonschema.draft04
import jsonschema_rs
import rfc8785

from consortium import limits
from consortium.ledger import jcs
from consortium.ledger.codes import Code
from consortium.ledger.fields import TxError
from consortium.ledger.privacy import PartyFact, document_party_facts

_NO_EDGE_SPACE = re.compile(r"\S(?:.*\S)?", re.DOTALL)
_UNLOC = re.compile(r"[A-Z]{2}[A-Z2-9]{3}")
_CODE = re.compile(r"[A-Z][A-Z_]{1,49}")


class _Strict(json.JSONDecoder):
    """JSON as RFC 8259 says: no NaN/Infinity, no duplicate keys (they would make
    the canonical form, hence the checksum, ambiguous)."""

    def __init__(self) -> None:
        super().__init__(object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_STRICT = _Strict()  # one decoder for every call: building one (and its C scanner) cost as much as a small load


def load_json(text: str, where: str) -> Any:
    try:
        return _STRICT.decode(text)
    except (ValueError, RecursionError) as exc:
        raise TxError(Code.BENV, f"DCSA-JSON: $: {where} is not strict JSON ({str(exc)[:120]})") from None


def canonical(value: Any, where: str) -> bytes:
    """RFC 8785 bytes of a JSON value: the rfc8785 library's (jcs.dumps: the same bytes and
    errors, at C speed where it proves them equal)."""
    try:
        return jcs.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise TxError(Code.BENV, f"DCSA-JSON: $: {where} has no RFC 8785 form ({str(exc)[:120]})") from None


def checksum_of(value: Any) -> str:
    """PINT documentChecksum: hex SHA-256 of the RFC 8785 form."""
    return hashlib.sha256(canonical(value, "document")).hexdigest()


# ------------------------------------------------------------------ transport document


@dataclass(frozen=True, slots=True)
class TransportDoc:
    """What the ledger keeps from a DCSA eBL 3.0 transport document."""

    reference: str
    carrier_code: str
    carrier_code_list_provider: str
    is_to_order: bool
    is_shipped_on_board: bool
    shipped_on_board_date: str | None
    received_for_shipment_date: str | None
    port_of_loading: str | None
    port_of_discharge: str | None
    equipment: tuple[str, ...]
    has_consignee: bool
    has_endorsee: bool
    checksum: str
    canonical: str
    party_facts: tuple[PartyFact, ...]  # what the privacy policy judges (privacy.py)

    def __post_init__(self) -> None:
        assert len(self.checksum) == 64
        assert (self.shipped_on_board_date is None) != (self.received_for_shipment_date is None)

    @property
    def shipment_date(self) -> str:
        """The date UCP 600 art. 20(a)(ii) reads as the date of shipment."""
        date = self.shipped_on_board_date or self.received_for_shipment_date
        assert date is not None
        return date


def parse_transport_document(text: str) -> TransportDoc:
    """Check a DCSA transport document (JSON text) and summarise it; TxError BENV.

    Order: strict JSON (DCSA-JSON), the DCSA eBL 3.0.3 schema (DCSA-SCHEMA, naming the
    JSON path and the keyword), then the DCSA conditions the schema cannot express and
    the project's own rules (RULES). Personal data is judged by the genesis policy
    where the transaction is decoded (tx.py, privacy.py); `party_facts` carries what
    the policy needs."""
    known = jcs.decode_canonical(text)  # a text in its RFC 8785 form: loaded and canonicalised in one go
    doc = known[0] if known is not None else load_json(text, "document")
    validate_schema(doc)
    _td_kind(doc)
    on_board, received = _td_dates(doc)
    parties = _td_parties(doc)
    transports = doc["transports"]
    port_of_loading = _unloc(transports.get("portOfLoading"))
    if doc["isShippedOnBoardType"] and port_of_loading is None:
        raise refuse("SOB-POL-UNLOC", "$.transports.portOfLoading.UNLocationCode",
                     "a shipped-on-board document names its port of loading by UN/LOCODE: the LOAD events "
                     "that prove shipment are matched on it")
    canon = known[1] if known is not None else canonical(doc, "document")
    return TransportDoc(
        reference=doc["transportDocumentReference"],
        carrier_code=doc["carrierCode"],
        carrier_code_list_provider=doc["carrierCodeListProvider"],
        is_to_order=doc["isToOrder"],
        is_shipped_on_board=doc["isShippedOnBoardType"],
        shipped_on_board_date=on_board,
        received_for_shipment_date=received,
        port_of_loading=port_of_loading,
        port_of_discharge=_unloc(transports.get("portOfDischarge")),
        equipment=_td_equipment(doc["utilizedTransportEquipments"]),
        has_consignee="consignee" in parties,
        has_endorsee="endorsee" in parties,
        checksum=hashlib.sha256(canon).hexdigest(),
        canonical=canon.decode("utf-8"),
        party_facts=document_party_facts(parties),
    )


def refuse(rule: str, path: str, problem: str) -> TxError:
    """The refusal of a document by a named rule (RULES): 'RULE: $.path: problem'."""
    assert rule in RULES, rule
    return TxError(RULES[rule][0], f"{rule}: {path}: {problem}")


def _td_kind(doc: dict[str, Any]) -> None:
    if doc["transportDocumentStatus"] != "ISSUED":
        raise refuse("TD-ISSUED", "$.transportDocumentStatus",
                     "only a transport document in status ISSUED can become an eBL")
    if doc["transportDocumentTypeCode"] != "BOL":
        raise refuse("TD-BOL", "$.transportDocumentTypeCode",
                     "only a bill of lading (BOL) is a document of title; a sea waybill is not")
    if doc["isElectronic"] is not True:
        raise refuse("TD-ELECTRONIC", "$.isElectronic", "must be true for an eBL")


def _td_dates(doc: dict[str, Any]) -> tuple[str | None, str | None]:
    """Exactly one of shippedOnBoardDate / receivedForShipmentDate, matching isShippedOnBoardType."""
    on_board = doc.get("shippedOnBoardDate")
    received = doc.get("receivedForShipmentDate")
    if (on_board is None) == (received is None) or (on_board is not None) != doc["isShippedOnBoardType"]:
        raise refuse("TD-DATES", "$.shippedOnBoardDate" if doc["isShippedOnBoardType"] else "$.receivedForShipmentDate",
                     "exactly one of shippedOnBoardDate and receivedForShipmentDate is given, "
                     "shippedOnBoardDate exactly when isShippedOnBoardType is true")
    for name, value in (("shippedOnBoardDate", on_board), ("receivedForShipmentDate", received)):
        if value is not None and not _is_date(value):
            raise refuse("DCSA-SCHEMA", f"$.{name}", "must be a date YYYY-MM-DD (format date)")
    return on_board, received


def _td_parties(doc: dict[str, Any]) -> dict[str, Any]:
    parties: dict[str, Any] = doc["documentParties"]
    if not doc["isToOrder"] and "consignee" not in parties:
        raise refuse("TD-STRAIGHT-CONSIGNEE", "$.documentParties.consignee",
                     "a straight bill of lading (isToOrder false) names its consignee")
    if not doc["isToOrder"] and "endorsee" in parties:
        raise refuse("TD-ENDORSEE-TO-ORDER", "$.documentParties.endorsee",
                     "only a to-order bill of lading (isToOrder true) has an endorsee")
    if doc["isToOrder"] and "consignee" in parties:
        raise refuse("TD-ORDER-CONSIGNEE", "$.documentParties.consignee",
                     "the document is to order (isToOrder true) and also names documentParties.consignee: "
                     "this ledger takes a to-order bill's holder from documentParties.endorsee (none: blank "
                     "endorsed) and records no consignee on it: name the party to whose order it is made "
                     "out as documentParties.endorsee instead")
    return parties


def _td_equipment(value: list[dict[str, Any]]) -> tuple[str, ...]:
    refs = tuple(item["equipment"]["equipmentReference"] for item in value)
    if len(set(refs)) != len(refs):
        raise refuse("TD-EQUIPMENT-UNIQUE", "$.utilizedTransportEquipments",
                     "repeats an equipment reference (each container is listed once)")
    return refs


# ------------------------------------------------------------------ the DCSA schema

#: The DCSA eBL 3.0.3 OpenAPI document shipped with the package (schema/README.md).
SCHEMA_FILE = "EBL_v3.0.3.json"
_DRAFT4 = "http://json-schema.org/draft-04/schema#"


def schema_text() -> str:
    """The shipped OpenAPI document (JSON text)."""
    return resources.files("consortium.ledger").joinpath("schema", SCHEMA_FILE).read_text(encoding="utf-8")


def _ecma_pattern(pattern: str) -> str:
    """A JSON Schema (ECMA-262) pattern in Python `re` terms: `$` matches only at the very
    end (Python's `$` also matches before a final newline), `\\d` only ASCII digits."""
    out = pattern.replace("\\d", "[0-9]")
    if out.endswith("$") and not out.endswith("\\$"):
        out = out[:-1] + "\\Z"
    return out


def _ecma(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (_ecma_pattern(v) if k == "pattern" and isinstance(v, str) else _ecma(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_ecma(v) for v in value]
    return value


def transport_document_schema() -> dict[str, Any]:
    """components.schemas.TransportDocument of the shipped spec as a JSON Schema (draft 4,
    the dialect of OpenAPI 3.0; patterns in ECMA-262 sense), with every component it refers to."""
    openapi = json.loads(schema_text())
    return {"$schema": _DRAFT4, "$ref": "#/components/schemas/TransportDocument",
            "components": {"schemas": _ecma(openapi["components"]["schemas"])}}


_VALIDATE: Any = None
_IS_VALID: Any = None
#: The formats fastjsonschema checks in draft 4 (name -> its regular expression).
_FJS_FORMATS: dict[str, str] = fastjsonschema.draft04.CodeGeneratorDraft04.FORMAT_REGEXS

#: What `\s` matches in a Python `re` str pattern (str.isspace(); tests/ledger/test_dcsa_fast_schema.py checks).
_PY_SPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_PY_CLASS = re.compile(r"\[\^?[^\[\]\\&~-]+(?:-[^\[\]\\&~-]+)*\]")  # a plain class: literals and ranges only


def _rs_pattern(pattern: str) -> str:
    """A pattern in Python `re` terms (as fastjsonschema runs it) written so that the
    Rust `regex` crate matches exactly the same strings: `\\S` and `\\s` as the explicit
    classes of Python's whitespace, `.` as "anything but a newline", a final `\\Z` as `$`.
    Anything else that reads differently in the two dialects is refused (ValueError)."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            escaped = pattern[i + 1]
            if escaped == "S":
                out.append(f"[^{_PY_SPACE}]")
            elif escaped == "s":
                out.append(f"[{_PY_SPACE}]")
            elif escaped == "Z" and i + 2 == len(pattern):
                out.append("$")
            elif escaped.isalnum() or not escaped.isascii():
                raise ValueError(f"no jsonschema-rs form for \\{escaped} in {pattern!r}")
            else:
                out.append(pattern[i:i + 2])
            i += 2
            continue
        if c == "[":
            klass = _PY_CLASS.match(pattern, i)
            if klass is None:
                raise ValueError(f"no jsonschema-rs form for the class at {i} in {pattern!r}")
            out.append(klass.group())
            i = klass.end()
            continue
        if c == "$" or pattern.startswith(("(?", "{,"), i) and not pattern.startswith("(?:", i):
            raise ValueError(f"no jsonschema-rs form for {pattern[i:i + 3]!r} in {pattern!r}")
        out.append("[^\n]" if c == "." else c)
        i += 1
    return "".join(out)


def _rs_schema(node: Any) -> Any:
    """The fastjsonschema schema for jsonschema-rs: patterns in Rust terms (`_rs_pattern`), and
    only the formats fastjsonschema's draft 4 checks (date-time; it ignores date, int32, float)."""
    if isinstance(node, dict):
        return {k: (_rs_pattern(v) if k == "pattern" and isinstance(v, str) else _rs_schema(v)) for k, v in node.items()
                if not (k == "format" and isinstance(v, str) and v not in _FJS_FORMATS)}
    if isinstance(node, list):
        return [_rs_schema(v) for v in node]
    return node


def _rs_validator() -> Any:
    """jsonschema-rs (Rust) over the same schema: `is_valid` only. fastjsonschema's own
    regular expression decides format date-time (`match`, as its generated code does)."""
    formats = {name: (lambda value, rx=re.compile(regex): rx.match(value) is not None)
               for name, regex in _FJS_FORMATS.items()}
    validator = jsonschema_rs.Draft4Validator(_rs_schema(transport_document_schema()), formats=formats,
                                              validate_formats=True, pattern_options=jsonschema_rs.RegexOptions())
    return validator.is_valid


def validate_schema(doc: Any) -> None:
    """TxError BENV (rule DCSA-SCHEMA) naming the JSON path and the schema keyword.

    jsonschema-rs (Rust, compiled once at first use) says whether the document is valid:
    a valid one is done (10-15x faster than fastjsonschema on our documents). Any
    other document (invalid, or not convertible to Rust: a lone surrogate) goes through
    fastjsonschema, which compiles the schema into Python once; it stops at the first
    violation and its exception makes the refusal message, exactly as before the Rust
    check existed (tests/ledger/test_dcsa_fast_schema.py holds the two to the same verdicts).
    `use_default=False`: validation never writes defaults into the document (its
    checksum must not change)."""
    global _VALIDATE, _IS_VALID
    if _IS_VALID is None:
        _IS_VALID = _rs_validator()
    try:
        if _IS_VALID(doc):
            return
    except (ValueError, TypeError, OverflowError):  # not JSON to Rust: fastjsonschema decides
        pass
    if _VALIDATE is None:
        _VALIDATE = fastjsonschema.compile(transport_document_schema(), use_default=False)
    try:
        _VALIDATE(doc)
    except fastjsonschema.JsonSchemaValueException as exc:
        path = "$" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in exc.path[1:])
        message = str(exc.message).replace("data", "value", 1)[:160]
        raise refuse("DCSA-SCHEMA", path, f"{exc.rule} ({message})") from None


#: Every rule a document refusal names: id -> (reason code, what it requires, where it comes
#: from). docs/LEDGER.md lists each (a test checks).
RULES: dict[str, tuple[Code, str, str]] = {
    "DCSA-JSON": (Code.BENV, "strict JSON: no duplicate keys, no NaN/Infinity", "RFC 8259, RFC 8785"),
    "DCSA-SCHEMA": (Code.BENV, "valid against TransportDocument of EBL 3.0.3", "DCSA eBL 3.0"),
    "TD-ISSUED": (Code.BENV, "transportDocumentStatus ISSUED", "DCSA eBL 3.0 / PINT"),
    "TD-BOL": (Code.BENV, "transportDocumentTypeCode BOL", "MLETR art. 10; a sea waybill is no title"),
    "TD-ELECTRONIC": (Code.BENV, "isElectronic true", "MLETR art. 10"),
    "TD-DATES": (Code.BENV, "exactly one of shippedOnBoardDate / receivedForShipmentDate", "DCSA eBL 3.0"),
    "TD-STRAIGHT-CONSIGNEE": (Code.BENV, "a straight bill names its consignee", "DCSA eBL 3.0 Consignee"),
    "TD-ENDORSEE-TO-ORDER": (Code.BENV, "an endorsee only on a to-order bill", "DCSA eBL 3.0 Endorsee"),
    "TD-ORDER-CONSIGNEE": (Code.BENV, "a to-order bill names no consignee", "project rule"),
    "TD-EQUIPMENT-UNIQUE": (Code.BENV, "each container listed once", "project rule"),
    "SOB-POL-UNLOC": (Code.BENV, "a shipped-on-board bill's port of loading has a UN/LOCODE", "project rule"),
    "ISSUE-CHECKSUM": (Code.INCD, "the declared checksum is SHA-256 of the RFC 8785 form", "DCSA PINT"),
    "ISSUE-CONSIGNEE": (Code.BENV, "Issue.consignee given exactly when the document names one", "project rule"),
    "ISSUE-ENDORSEE": (Code.BENV, "Issue.endorsee given exactly when the document names one", "project rule"),
    "PRIVACY-POLICY": (Code.PII, "no personal data the genesis privacy policy refuses (resident_id, mobile, "
                       "natural_person, business_contact per jurisdiction)", "PIPL art. 4, 13, 38-39"),
    "SOB-LOAD": (Code.MDOC, "every container has an actual LOAD at the port of loading (LOAD_MISMATCH if "
                 "not there or not then)", "UCP 600 art. 20(a)(ii); DCSA shippedOnBoardDate"),
}


# ------------------------------------------------------------------ Track & Trace events

_SYNONYMS = {
    "ACTUAL": "ACT", "PLANNED": "PLN", "ESTIMATED": "EST", "LOADED": "LOAD", "DISCHARGED": "DISC",
    "ARRIVED": "ARRI", "DEPARTED": "DEPA", "GATED_IN": "GTIN", "GATED_OUT": "GTOT",
}
EVENT_TYPES = ("TRANSPORT", "EQUIPMENT", "SHIPMENT")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class CargoEvent:
    """What the ledger keeps from one DCSA T&T event."""

    event_id: str
    event_type: str  # TRANSPORT | EQUIPMENT | SHIPMENT
    classifier: str  # ACT | PLN | EST
    type_code: str  # ARRI, DEPA, LOAD, DISC, ..., ISSU, ...
    date_time: str  # as published (ISO 8601 with offset)
    local_date: str  # the calendar date at the place of the event, as written
    utc_ms: int
    location: str | None  # UN/LOCODE
    equipment: str | None
    documents: tuple[str, ...]  # "TYPE:reference"
    checksum: str

    @property
    def is_actual_load(self) -> bool:
        return self.event_type == "EQUIPMENT" and self.classifier == "ACT" and self.type_code == "LOAD"


def parse_events(text: str) -> tuple[CargoEvent, ...]:
    """A T&T 3.0 payload `{"events": [...]}` as published; TxError BENV on a bad shape."""
    payload = load_json(text, "events")
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list) or not 1 <= len(events) <= limits.events_per_tx_max:
        raise TxError(Code.BENV, f'a T&T payload is {{"events": [...]}} with 1..{limits.events_per_tx_max} events')
    out = tuple(_event(e, f"events[{i}]") for i, e in enumerate(events))
    if len({e.event_id for e in out}) != len(out):
        raise TxError(Code.BENV, "events repeat an eventID")
    return out


def _event(raw: Any, where: str) -> CargoEvent:
    if not isinstance(raw, dict):
        raise TxError(Code.BENV, f"{where} must be an object")
    event_id = _short_text(raw.get("eventID"), f"{where}.eventID", 100)
    when = _datetime(raw.get("eventDateTime"), f"{where}.eventDateTime")
    cls = raw.get("eventClassification")
    if not isinstance(cls, dict):
        raise TxError(Code.BENV, f"{where}.eventClassification is required")
    event_type = _code(cls.get("eventTypeCode", cls.get("eventType")), f"{where}.eventTypeCode")
    if event_type not in EVENT_TYPES:
        raise TxError(Code.BENV, f"{where}: event type must be one of {EVENT_TYPES}")
    classifier = _code(cls.get("eventClassifierCode", cls.get("eventClassifier")), f"{where}.classifier")
    if classifier not in ("ACT", "PLN", "EST"):
        raise TxError(Code.BENV, f"{where}: classifier must be ACT, PLN or EST")
    key = event_type.lower()
    type_code = _code(cls.get(f"{key}EventTypeCode", cls.get(f"{key}EventType")), f"{where}.{key}EventTypeCode")
    return CargoEvent(
        event_id=event_id, event_type=event_type, classifier=classifier, type_code=type_code,
        date_time=raw["eventDateTime"], local_date=when.date().isoformat(),
        utc_ms=(when - _EPOCH) // dt.timedelta(milliseconds=1),  # integer maths, no float
        location=_unloc(raw.get("eventLocation")),
        equipment=_event_equipment(raw, event_type, where),
        documents=_event_documents(raw.get("shipmentDetails")),
        checksum=hashlib.sha256(canonical(raw, where)).hexdigest(),
    )


def _event_equipment(raw: dict[str, Any], event_type: str, where: str) -> str | None:
    details = raw.get("equipmentDetails")
    ref = details.get("equipmentReference") if isinstance(details, dict) else raw.get("equipmentReference")
    if ref is None and event_type != "EQUIPMENT":
        return None
    return _short_text(ref, f"{where}.equipmentDetails.equipmentReference", 11)


def _event_documents(details: Any) -> tuple[str, ...]:
    if not isinstance(details, dict):
        return ()
    refs = [details.get("documentReference")]
    extra = details.get("additionalDocumentReferences")
    refs += extra if isinstance(extra, list) else []
    out: list[str] = []
    for r in refs:
        if isinstance(r, dict) and isinstance(r.get("reference"), str):
            kind = r.get("typeCode", r.get("type", "REF"))
            out.append(f"{kind}:{r['reference']}"[:120])
    return tuple(out[:16])


# ------------------------------------------------------------------ small helpers


def _short_text(value: Any, where: str, max_len: int) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= max_len or not _NO_EDGE_SPACE.fullmatch(value):
        raise TxError(Code.BENV, f"{where} must be text of 1..{max_len} characters")
    return value


def _code(value: Any, where: str) -> str:
    value = _SYNONYMS.get(value, value) if isinstance(value, str) else value
    if not isinstance(value, str) or not _CODE.fullmatch(value):
        raise TxError(Code.BENV, f"{where} must be an upper-case code")
    return value


def _unloc(location: Any) -> str | None:
    code = location.get("UNLocationCode") if isinstance(location, dict) else None
    return code if isinstance(code, str) and _UNLOC.fullmatch(code) else None


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != 10:
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _datetime(value: Any, where: str) -> dt.datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise TxError(Code.BENV, f"{where} must be an ISO 8601 date-time")
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise TxError(Code.BENV, f"{where} must be an ISO 8601 date-time") from None
    if when.tzinfo is None:
        raise TxError(Code.BENV, f"{where} needs a UTC offset")
    return when


# ------------------------------------------------------------------ our example documents


def example(name: str) -> str:
    """The text of one of our example documents (consortium/ledger/examples/NAME)."""
    return resources.files("consortium.ledger").joinpath("examples", name).read_text(encoding="utf-8")
