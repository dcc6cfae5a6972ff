"""DCSA compatibility: the originals in shared/dcsa are accepted as they are (with a
reference set), our own examples too, and checksums follow PINT (SHA-256 of RFC 8785)."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest
import rfc8785

from consortium.ledger import builders, dcsa, queries
from consortium.ledger.fields import TxError
from tests.conftest import SHARED_DCSA
from tests.ledger.helpers import Net, example

needs_shared = pytest.mark.skipif(not SHARED_DCSA.is_dir(),
                                  reason=f"DCSA originals not present at {SHARED_DCSA} (no ../shared)")


def original(name: str) -> dict[str, Any]:
    return json.loads((SHARED_DCSA / name).read_text())


def dcsa_load_event() -> dict[str, Any]:
    """The LOAD the original document's on-board notation needs: its container at its port
    of loading (DKAAR) on its shippedOnBoardDate (2023-12-19)."""
    return builders.load_event("hmm-load-NARU3472484", "NARU3472484", "DKAAR", "2023-12-19T16:00:00+01:00")


@needs_shared
def test_the_dcsa_transport_document_is_accepted_as_it_is_with_a_reference_set() -> None:
    """The original DCSA eBL 3.0 document, unchanged but for its reference, becomes an eBL once
    its container's LOAD is on the ledger; its id is SHA-256 of its RFC 8785 form. The
    placeholder reference (40 characters) exceeds DCSA's 20 and is refused (BENV)."""
    raw = (SHARED_DCSA / "transport-document-straight.json").read_text()
    with pytest.raises(TxError) as exc:
        dcsa.parse_transport_document(raw)
    assert exc.value.code == "BENV"
    doc = builders.with_reference(json.loads(raw), "DCSA0000001")
    expected = hashlib.sha256(rfc8785.dumps(doc)).hexdigest()
    net = Net()
    body = builders.issue_body(doc, "sh-exporter", consignee="hk-importer")
    assert body["checksum"] == expected
    assert net.do("ISSUE", "carrier-hk", body).code == "MDOC"  # shipped on board, no LOAD yet
    net.ok("CARGO_EVENT", "carrier-hk", builders.events_body([dcsa_load_event()]))
    net.ok("ISSUE", "carrier-hk", body)
    view = queries.ebl(net.ledger, expected, with_document=True)
    assert view is not None and view["carrier_code"] == "HMM" and view["reference"] == "DCSA0000001"
    assert hashlib.sha256(view["document"].encode()).hexdigest() == expected


@needs_shared
def test_the_dcsa_tnt_event_is_accepted_as_it_is() -> None:
    """The original T&T 3.0 transport event file, byte for byte, is a CARGO_EVENT; the same
    eventID again from that carrier is a duplicate (DUPE)."""
    text = (SHARED_DCSA / "tnt-transport-event.json").read_text()
    net = Net()
    net.ok("CARGO_EVENT", "carrier-hk", {"events": text})
    assert net.do("CARGO_EVENT", "carrier-hk", {"events": text}).code == "DUPE"
    assert net.do("CARGO_EVENT", "sh-exporter", {"events": text}).code == "ROLE"


@needs_shared
def test_a_to_order_variant_of_the_dcsa_document_goes_through_endorsement_pledge_release_surrender() -> None:
    """The DCSA document made negotiable (isToOrder true, consignee replaced by an endorsee)
    travels: endorsed to order of the importer, transferred, pledged to a bank, released,
    surrendered for delivery and accepted. Every act OK; the chain replays end to end."""
    doc = builders.with_reference(original("transport-document-straight.json"), "DCSA0000002")
    doc["isToOrder"] = True
    endorsee = copy.deepcopy(doc["documentParties"].pop("consignee"))
    endorsee.pop("partyContactDetails", None)
    doc["documentParties"]["endorsee"] = endorsee
    net = Net()
    net.ok("CARGO_EVENT", "carrier-hk", builders.events_body([dcsa_load_event()]))
    ebl = net.issue(doc, "carrier-hk", "sh-exporter", endorsee="sh-exporter")
    net.ok("ENDORSE_TO_ORDER", "sh-exporter", {"ebl": ebl, "recipient": "hk-importer"})
    net.ok("TRANSFER", "sh-exporter", {"ebl": ebl, "recipient": "hk-importer"})
    net.ok("PLEDGE", "hk-importer", {"ebl": ebl, "pledgee": "bank-hk", "financing": None})
    assert net.ebl(ebl)["pledgee"] == "bank-hk"
    net.ok("RELEASE", "bank-hk", {"ebl": ebl})
    net.ok("SURRENDER_FOR_DELIVERY", "hk-importer", {"ebl": ebl, "recipient": "carrier-hk"})
    net.ok("SACC", "carrier-hk", {"ebl": ebl})
    view = net.ebl(ebl)
    assert view["status"] == "SURRENDERED_FOR_DELIVERY" and view["title_holder"] == "hk-importer"
    assert [e["action"] for e in view["chain"]] == ["ISSUE", "ENDORSE_TO_ORDER", "TRANSFER", "PLEDGE", "RELEASE",
                                                     "SURRENDER_FOR_DELIVERY", "SACC"]


def test_our_examples_are_dcsa_documents_from_shanghai_to_hong_kong() -> None:
    """Our own examples parse as DCSA documents: own references, CNSHA -> HKHKG, a straight
    and a to-order bill, and LOAD events that make them shipped on board."""
    straight = dcsa.parse_transport_document(json.dumps(example("transport-document-straight.json")))
    to_order = dcsa.parse_transport_document(json.dumps(example("transport-document-to-order.json")))
    assert (straight.is_to_order, to_order.is_to_order) == (False, True)
    assert {straight.port_of_loading, to_order.port_of_loading} == {"CNSHA"}
    assert {straight.port_of_discharge, to_order.port_of_discharge} == {"HKHKG"}
    events = dcsa.parse_events(dcsa.example("tnt-load-events.json"))
    loaded = {e.equipment for e in events if e.is_actual_load}
    assert set(straight.equipment) | set(to_order.equipment) <= loaded


def test_the_checksum_is_the_rfc8785_form_whatever_the_formatting() -> None:
    """The same document with other whitespace and key order has the same checksum (RFC 8785
    canonical form); a declared checksum that differs is INCD."""
    doc = example("transport-document-straight.json")
    pretty = json.dumps(doc, indent=4)
    compact = json.dumps(dict(reversed(list(doc.items()))), separators=(",", ":"))
    assert builders.issue_body(pretty, "x1")["checksum"] == builders.issue_body(compact, "x1")["checksum"]
    body = builders.issue_body(pretty, "sh-exporter", consignee="hk-importer")
    net = Net()
    net.load_examples()
    assert net.do("ISSUE", "carrier-sh", dict(body, checksum="0" * 64), validate=False).code == "INCD"
    net.ok("ISSUE", "carrier-sh", body)


@pytest.mark.parametrize("change, code", [
    (lambda d: d.update(shippedOnBoardDate="2026-03-03"), "LOAD_MISMATCH"),  # loaded on the 2nd
    (lambda d: d["transports"]["portOfLoading"].update(UNLocationCode="CNNGB"), "LOAD_MISMATCH"),
    (lambda d: d["utilizedTransportEquipments"][0]["equipment"].update(equipmentReference="ZZZU0000001"), "MDOC"),
])
def test_a_shipped_on_board_ebl_must_match_its_load_events(change: Any, code: str) -> None:
    """Stated rule: every container of a shipped-on-board document has an actual LOAD event by
    the issuing carrier at the port of loading within 30 days up to shippedOnBoardDate, and
    the last load falls on that date. A wrong date or port -> LOAD_MISMATCH, a container
    never loaded -> MDOC."""
    doc = example("transport-document-straight.json")
    change(doc)
    net = Net(date="2026-03-03")
    net.load_examples()
    assert net.do("ISSUE", "carrier-sh", builders.issue_body(doc, "sh-exporter", consignee="hk-importer")
                  ).code == code


def test_a_received_for_shipment_bill_needs_no_load_event() -> None:
    """A received-for-shipment bill is issued before loading (no LOAD required)."""
    doc = builders.transport_document("RFS0001", carrier_code="HPCS", shipper="sh-exporter", consignee="hk-importer",
                                      endorsee=None, equipment=["TSTU3000001"], port_of_loading="CNSHA",
                                      port_of_discharge="HKHKG", on_board_date=None, received_date="2026-03-02")
    Net().issue(doc, "carrier-sh", "sh-exporter", consignee="hk-importer")


@pytest.mark.parametrize("change, words", [
    (lambda d: d.update(transportDocumentTypeCode="SWB"), "sea waybill"),
    (lambda d: d.update(isElectronic=False), "isElectronic"),
    (lambda d: d.update(transportDocumentStatus="DRAFT"), "ISSUED"),
    (lambda d: d.pop("carrierCode"), "required"),
    (lambda d: d.update(receivedForShipmentDate="2026-03-01"), "exactly one"),
    (lambda d: d["documentParties"].pop("consignee"), "consignee"),
])
def test_documents_that_cannot_be_an_ebl_are_refused(change: Any, words: str) -> None:
    """A sea waybill, a paper or draft document, a document missing a required field or with
    both dates, a straight bill without consignee: BENV naming the problem."""
    doc = example("transport-document-straight.json")
    change(doc)
    with pytest.raises(TxError) as exc:
        dcsa.parse_transport_document(json.dumps(doc))
    assert exc.value.code == "BENV" and words in exc.value.detail


def test_duplicate_keys_and_nan_are_not_json() -> None:
    """A document whose canonical form would be ambiguous is refused (BENV)."""
    for text in ('{"a": 1, "a": 2}', '{"a": NaN}'):
        with pytest.raises(TxError):
            dcsa.load_json(text, "document")
