"""DCSA documents: the eBL 3.0 transport document and Track & Trace 3.0 events.

The ledger accepts these as the JSON the standards define (the originals in
shared/dcsa/ pass as they are, with a reference set). It keeps what its rules
need (reference, parties present, dates, ports, equipment) and the document's
checksum: SHA-256 over the RFC 8785 (JCS) form, computed with the `rfc8785`
library, as PINT's IssuanceManifest.documentChecksum prescribes. JSON numbers
may be floats in a document; they never reach the state (only the canonical
text and ints, strings and booleans derived from it do).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import rfc8785

from consortium import limits
from consortium.ledger.codes import Code
from consortium.ledger.fields import TxError
from consortium.ledger.privacy import document_party_findings

#: TransportDocument.required in EBL_v3.0.3.yaml.
TD_REQUIRED = (
    "transportDocumentReference", "transportDocumentStatus", "transportDocumentTypeCode",
    "isShippedOnBoardType", "isElectronic", "isToOrder", "invoicePayableAt", "partyContactDetails",
    "documentParties", "consignmentItems", "utilizedTransportEquipments", "termsAndConditions",
    "receiptTypeAtOrigin", "deliveryTypeAtDestination", "cargoMovementTypeAtOrigin",
    "cargoMovementTypeAtDestination", "carrierCode", "carrierCodeListProvider", "transports",
)
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


def load_json(text: str, where: str) -> Any:
    try:
        return _Strict().decode(text)
    except (ValueError, RecursionError) as exc:
        raise TxError(Code.BENV, f"{where} is not strict JSON ({str(exc)[:120]})") from None


def canonical(value: Any, where: str) -> bytes:
    """RFC 8785 bytes of a JSON value (the rfc8785 library, not our own)."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise TxError(Code.BENV, f"{where} has no RFC 8785 form ({exc})") from None


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
    """Check a DCSA transport document (JSON text) and summarise it; TxError BENV/PII."""
    doc = load_json(text, "document")
    if not isinstance(doc, dict):
        raise TxError(Code.BENV, "document must be a JSON object")
    missing = [k for k in TD_REQUIRED if k not in doc]
    if missing:
        raise TxError(Code.BENV, f"document lacks required fields {missing}")
    reference = _td_reference(doc)
    _td_kind(doc)
    on_board, received = _td_dates(doc)
    parties = _td_parties(doc)
    canon = canonical(doc, "document")
    transports = doc["transports"] if isinstance(doc["transports"], dict) else {}
    return TransportDoc(
        reference=reference,
        carrier_code=_short_text(doc["carrierCode"], "carrierCode", 4),
        carrier_code_list_provider=_one_of(doc["carrierCodeListProvider"], "carrierCodeListProvider",
                                           ("SMDG", "NMFTA")),
        is_to_order=doc["isToOrder"],
        is_shipped_on_board=doc["isShippedOnBoardType"],
        shipped_on_board_date=on_board,
        received_for_shipment_date=received,
        port_of_loading=_unloc(transports.get("portOfLoading")),
        port_of_discharge=_unloc(transports.get("portOfDischarge")),
        equipment=_td_equipment(doc["utilizedTransportEquipments"]),
        has_consignee="consignee" in parties,
        has_endorsee="endorsee" in parties,
        checksum=hashlib.sha256(canon).hexdigest(),
        canonical=canon.decode("utf-8"),
    )


def _td_reference(doc: dict[str, Any]) -> str:
    ref = doc["transportDocumentReference"]
    if not isinstance(ref, str) or not 1 <= len(ref) <= limits.dcsa_reference_chars_max or not _NO_EDGE_SPACE.fullmatch(ref):
        raise TxError(Code.BENV, f"transportDocumentReference must be 1..{limits.dcsa_reference_chars_max} characters "
                                 "without edge spaces (set a reference in place of the placeholder)")
    return ref


def _td_kind(doc: dict[str, Any]) -> None:
    if doc["transportDocumentStatus"] != "ISSUED":
        raise TxError(Code.BENV, "only a transport document in status ISSUED can become an eBL")
    if doc["transportDocumentTypeCode"] != "BOL":
        raise TxError(Code.BENV, "only a bill of lading (BOL) is a document of title; a sea waybill is not")
    if doc["isElectronic"] is not True:
        raise TxError(Code.BENV, "isElectronic must be true for an eBL")
    for flag in ("isToOrder", "isShippedOnBoardType"):
        if not isinstance(doc[flag], bool):
            raise TxError(Code.BENV, f"{flag} must be a boolean")


def _td_dates(doc: dict[str, Any]) -> tuple[str | None, str | None]:
    """Exactly one of shippedOnBoardDate / receivedForShipmentDate, matching isShippedOnBoardType."""
    on_board = doc.get("shippedOnBoardDate")
    received = doc.get("receivedForShipmentDate")
    if (on_board is None) == (received is None):
        raise TxError(Code.BENV, "exactly one of shippedOnBoardDate and receivedForShipmentDate is required")
    if (on_board is not None) != doc["isShippedOnBoardType"]:
        raise TxError(Code.BENV, "shippedOnBoardDate must be given exactly when isShippedOnBoardType is true")
    for name, value in (("shippedOnBoardDate", on_board), ("receivedForShipmentDate", received)):
        if value is not None and not _is_date(value):
            raise TxError(Code.BENV, f"{name} must be a date YYYY-MM-DD")
    return on_board, received


def _td_parties(doc: dict[str, Any]) -> dict[str, Any]:
    parties = doc["documentParties"]
    if not isinstance(parties, dict) or "shipper" not in parties or "issuingParty" not in parties:
        raise TxError(Code.BENV, "documentParties needs a shipper and an issuingParty")
    if not doc["isToOrder"] and "consignee" not in parties:
        raise TxError(Code.BENV, "a straight bill of lading names its consignee")
    if not doc["isToOrder"] and "endorsee" in parties:
        raise TxError(Code.BENV, "only a to-order bill of lading has an endorsee")
    findings = document_party_findings(parties)
    if findings:
        raise TxError(Code.PII, "; ".join(findings))
    return parties


def _td_equipment(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= limits.equipment_per_document_max:
        raise TxError(Code.BENV, f"utilizedTransportEquipments must list 1..{limits.equipment_per_document_max} items")
    refs: list[str] = []
    for i, item in enumerate(value):
        eq = item.get("equipment") if isinstance(item, dict) else None
        ref = eq.get("equipmentReference") if isinstance(eq, dict) else None
        refs.append(_short_text(ref, f"utilizedTransportEquipments[{i}].equipment.equipmentReference", 11))
    if len(set(refs)) != len(refs):
        raise TxError(Code.BENV, "utilizedTransportEquipments repeats an equipment reference")
    return tuple(refs)


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


def _one_of(value: Any, where: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise TxError(Code.BENV, f"{where} must be one of {allowed}")
    assert isinstance(value, str)
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
