"""The trade stories of issue 4, each with its expected outcome and reason code.

Every block of every story is followed by check_invariants (tests.ledger.helpers.Net).
"""

from __future__ import annotations

from consortium import crypto
from consortium.errors import RemoteError
from consortium.ledger import builders, queries
from tests.ledger.helpers import KEYS, Net, example

HK_LC = {
    "lc_id": "LC-HK-001", "applicant": "hk-importer", "beneficiary": "sh-exporter", "advising_bank": "bank-sh",
    "currency": "USD", "amount": 250_000_00, "expiry_date": "2026-05-29", "latest_shipment_date": "2026-03-31",
    "port_of_loading": "CNSHA", "port_of_discharge": "HKHKG", "goods": "Printed circuit board assemblies",
    "documents_required": ["BL", "INVOICE", "PACKING_LIST"], "presentation_days": 21,
    "nominated_bank": None, "confirming_bank": None,
}


def presentation(ebl: str, amount: int = 240_000_00, documents: tuple[str, ...] = ("INVOICE", "PACKING_LIST"),
                 lc_id: str = "LC-HK-001", pid: str = "P1") -> dict[str, object]:
    return {"lc_id": lc_id, "presentation_id": pid, "ebl": ebl, "invoice_amount": amount, "currency": "USD",
            "documents": list(documents), "bank": None}


def test_lc_happy_path_shanghai_exporter_to_hong_kong_importer() -> None:
    """An advised LC, a shipped-on-board to-order eBL presented within 21 days with every
    required document: no discrepancy, honoured; the bank passes the eBL to the importer,
    who takes delivery. Expected: every act OK, LC UTILIZED, eBL SURRENDERED_FOR_DELIVERY."""
    net = Net()
    net.ok("LC_ISSUE", "bank-hk", HK_LC)
    net.ok("LC_ADVISE", "bank-sh", {"lc_id": "LC-HK-001"})
    net.load_examples()
    ebl = net.issue(example("transport-document-to-order.json"), "carrier-sh", "sh-exporter",
                    endorsee="sh-exporter")
    net.ok("BLANK_ENDORSE", "sh-exporter", {"ebl": ebl})
    net.on("2026-03-05")
    net.ok("LC_PRESENT", "sh-exporter", presentation(ebl))
    lc = queries.lc(net.ledger, "LC-HK-001")
    assert lc is not None and lc["presentation_records"][0]["discrepancies"] == []
    assert lc["presentation_records"][0]["deadline"] == "2026-03-12"  # 5 HK banking days after Thu 5 Mar
    assert net.ebl(ebl)["possessor"] == "bank-hk"
    net.ok("LC_HONOUR", "bank-hk", {"lc_id": "LC-HK-001", "presentation_id": "P1"})
    net.ok("TRANSFER", "bank-hk", {"ebl": ebl, "recipient": "hk-importer"})
    net.ok("SURRENDER_FOR_DELIVERY", "hk-importer", {"ebl": ebl, "recipient": "carrier-sh"})
    net.ok("SACC", "carrier-sh", {"ebl": ebl})
    assert queries.lc(net.ledger, "LC-HK-001")["status"] == "UTILIZED"  # type: ignore[index]
    view = net.ebl(ebl)
    assert view["status"] == "SURRENDERED_FOR_DELIVERY" and view["possessor"] == "carrier-sh"
    assert [e["action"] for e in view["chain"]] == ["ISSUE", "BLANK_ENDORSE", "TRANSFER", "TRANSFER",
                                                     "SURRENDER_FOR_DELIVERY", "SACC"]


def _importer_holds_to_order_ebl(net: Net, reference: str = "PLG0001") -> str:
    ebl = net.shipment(reference, consignee=None, endorsee="sh-exporter")
    net.ok("ENDORSE_TO_ORDER", "sh-exporter", {"ebl": ebl, "recipient": "hk-importer"})
    net.ok("TRANSFER", "sh-exporter", {"ebl": ebl, "recipient": "hk-importer"})
    return ebl


def test_cargo_pledge_with_trust_receipt() -> None:
    """A pledged eBL moves only with the pledgee: the importer pledges it to its bank under
    a cargo-pledge financing; the bank hands it back under a trust receipt so the importer
    can take delivery, but the importer cannot sell it on or pledge it again. Expected:
    TRANSFER by the importer while pledged -> DISE (the bank possesses it), under the trust
    receipt -> PLEDGED, a second pledge -> DISE, delivery OK, repayment frees the collateral."""
    net = Net()
    ebl = _importer_holds_to_order_ebl(net)
    net.ok("FIN_REQUEST", "hk-importer", {"fin_id": "CP-1", "kind": "CARGO_PLEDGE", "lender": "bank-hk",
                                          "currency": "USD", "amount": 90_000_00,
                                          "collateral": [{"type": "EBL", "fingerprint": ebl}]})
    assert net.do("FIN_APPROVE", "bank-hk", {"fin_id": "CP-1"}).code == "STATE"  # pledge first
    net.ok("PLEDGE", "hk-importer", {"ebl": ebl, "pledgee": "bank-hk", "financing": "CP-1"})
    net.ok("FIN_APPROVE", "bank-hk", {"fin_id": "CP-1"})
    assert net.do("TRANSFER", "hk-importer", {"ebl": ebl, "recipient": "hk-distributor"}).code == "DISE"
    net.ok("TRUST_RECEIPT", "bank-hk", {"ebl": ebl})
    view = net.ebl(ebl)
    assert (view["possessor"], view["pledgee"], view["trust_receipt"]) == ("hk-importer", "bank-hk", True)
    assert net.do("TRANSFER", "hk-importer", {"ebl": ebl, "recipient": "hk-distributor"}).code == "PLEDGED"
    assert net.do("PLEDGE", "hk-importer", {"ebl": ebl, "pledgee": "bank-sh", "financing": None}).code == "DISE"
    net.ok("SURRENDER_FOR_DELIVERY", "hk-importer", {"ebl": ebl, "recipient": "carrier-sh"})
    net.ok("SACC", "carrier-sh", {"ebl": ebl})
    assert net.ebl(ebl)["pledgee"] is None  # delivered: the claim continues on the financing
    assert queries.collateral(net.ledger, ebl)["financing"] == "CP-1"  # type: ignore[index]
    assert net.do("FIN_REPAY", "bank-hk", {"fin_id": "CP-1", "amount": 90_000_01}).code == "AMOUNT"
    net.ok("FIN_REPAY", "bank-hk", {"fin_id": "CP-1", "amount": 90_000_00})
    assert queries.financing(net.ledger, "CP-1")["status"] == "REPAID"  # type: ignore[index]
    assert queries.collateral(net.ledger, ebl) is None


def test_qingdao_style_multiple_pledging_of_one_ebl_and_one_warehouse_receipt() -> None:
    """A fingerprint backs at most one live financing or pledge: the same eBL and the same
    warehouse receipt offered to three banks. Expected: the first pledge/financing OK, the
    second and third DISE, for the eBL and for the warehouse receipt alike."""
    net = Net()
    third = crypto.keypair_from_seed(bytes(32))
    net.signers["hk-trust-bank"] = crypto.Signer(third)
    net.ok("REGISTER_PARTY", "hkma", {"party_id": "hk-trust-bank", "name": "Harbour Trust Bank", "role": "bank",
                                      "jurisdiction": "HK", "public_key": third.public_key})
    ebl = _importer_holds_to_order_ebl(net)
    net.ok("PLEDGE", "hk-importer", {"ebl": ebl, "pledgee": "bank-hk", "financing": None})
    second = net.do("PLEDGE", "hk-importer", {"ebl": ebl, "pledgee": "bank-sh", "financing": None})
    third_try = net.do("FIN_REQUEST", "hk-importer", {
        "fin_id": "Q-EBL-3", "kind": "CARGO_PLEDGE", "lender": "hk-trust-bank", "currency": "USD",
        "amount": 1_000_000, "collateral": [{"type": "EBL", "fingerprint": ebl}]})
    assert (second.code, third_try.code) == ("DISE", "DISE")

    receipt = builders.fingerprint({"warehouseReceipt": "QD-WR-7781", "goods": "copper cathode", "tonnes": 2000})
    outcomes = [net.do("FIN_REQUEST", "sh-supplier", {
        "fin_id": f"Q-WR-{bank}", "kind": "CARGO_PLEDGE", "lender": bank, "currency": "CNY", "amount": 50_000_000,
        "collateral": [{"type": "WAREHOUSE_RECEIPT", "fingerprint": receipt}]}).code
        for bank in ("bank-sh", "bank-hk", "hk-trust-bank")]
    assert outcomes == ["OK", "DISE", "DISE"]
    assert queries.collateral(net.ledger, receipt)["holder"] == "bank-sh"  # type: ignore[index]


def test_duplicate_receivables_financing_of_one_invoice_at_two_banks() -> None:
    """One invoice, two banks: the fingerprint is reserved at request time, so the second
    bank never sees a financeable request. Expected: second request DISE; after the first
    bank declines, the second bank may finance it (OK)."""
    net = Net()
    invoice = builders.fingerprint({"invoiceNumber": "MHE-2026-0315", "amount": 180_000_00, "currency": "USD"})
    request = {"kind": "RECEIVABLES", "currency": "USD", "amount": 150_000_00,
               "collateral": [{"type": "INVOICE", "fingerprint": invoice}]}
    net.ok("FIN_REQUEST", "sh-exporter", {"fin_id": "RX-1", "lender": "bank-sh", **request})
    dup = net.do("FIN_REQUEST", "sh-exporter", {"fin_id": "RX-2", "lender": "bank-hk", **request})
    assert dup.code == "DISE" and "RX-1" in dup.detail
    net.ok("FIN_DECLINE", "bank-sh", {"fin_id": "RX-1"})
    net.ok("FIN_REQUEST", "sh-exporter", {"fin_id": "RX-3", "lender": "bank-hk", **request})
    assert net.do("FIN_APPROVE", "bank-sh", {"fin_id": "RX-3"}).code == "AUTH"
    net.ok("FIN_APPROVE", "bank-hk", {"fin_id": "RX-3"})


def test_forged_issuance_by_a_non_carrier_and_reuse_of_a_reference() -> None:
    """Only the issuing carrier issues, and a reference names one authoritative eBL per
    carrier. Expected: ISSUE by a shipper -> ROLE; an ISSUE claiming to be the carrier but
    signed by the shipper's key -> BSIG; the same document again -> DUPE; another document
    under the same reference -> DISE; the same reference at another carrier -> OK."""
    net = Net()
    net.load_examples()
    doc = example("transport-document-straight.json")
    body = builders.issue_body(doc, "sh-exporter", consignee="hk-importer")
    assert net.do("ISSUE", "sh-exporter", body).code == "ROLE"
    assert net.do("ISSUE", "carrier-sh", body, signer="sh-exporter").code == "BSIG"
    net.ok("ISSUE", "carrier-sh", body)
    assert net.do("ISSUE", "carrier-sh", body).code == "DUPE"
    other = dict(doc, termsAndConditions="Different terms, same reference.")
    assert net.do("ISSUE", "carrier-sh", builders.issue_body(other, "sh-exporter", consignee="hk-importer")
                  ).code == "DISE"
    net.ok("CARGO_EVENT", "carrier-hk", builders.events_body([builders.load_event(
        "hk-load-1", "TSTU7000001", "CNSHA", "2026-03-02T08:00:00+08:00")]))
    at_other_carrier = builders.transport_document(
        doc["transportDocumentReference"], carrier_code="VOLN", shipper="sh-exporter", consignee="hk-importer",
        endorsee=None, equipment=["TSTU7000001"], port_of_loading="CNSHA", port_of_discharge="HKHKG",
        on_board_date="2026-03-02")
    net.issue(at_other_carrier, "carrier-hk", "sh-exporter", consignee="hk-importer")


def _discrepant_presentation(net: Net) -> str:
    """Shipped 2 Mar, but the LC allows shipment until 1 Mar; invoice above the credit;
    the packing list is missing."""
    net.ok("LC_ISSUE", "bank-hk", dict(HK_LC, latest_shipment_date="2026-03-01"))
    net.ok("LC_ADVISE", "bank-sh", {"lc_id": "LC-HK-001"})
    ebl = net.shipment("DSC0001", consignee=None, endorsee=None)
    net.ok("LC_PRESENT", "sh-exporter", presentation(ebl, amount=260_000_00, documents=("INVOICE",)))
    return ebl


def test_discrepant_presentation_refusal_and_waiver() -> None:
    """A refusal is one notice stating the discrepancies the bank refuses on (UCP 600 art.
    16(c)(ii), 14(a): the bank's own examination, not the ledger's list); the applicant may
    waive. Expected: the ledger finds AMOUNT_EXCEEDS, LATE_SHIPMENT, MISSING_DOCUMENT; the
    bank's notice (three of them and GOODS_DESCRIPTION) OK; a second notice -> NOTICE;
    honour before the waiver -> STATE; waiver OK; honour OK."""
    net = Net()
    _discrepant_presentation(net)
    pres = queries.lc(net.ledger, "LC-HK-001")["presentation_records"][0]  # type: ignore[index]
    assert pres["discrepancies"] == ["AMOUNT_EXCEEDS", "LATE_SHIPMENT", "MISSING_DOCUMENT"]
    refuse = {"lc_id": "LC-HK-001", "presentation_id": "P1", "disposal": "HOLD_PENDING_WAIVER"}
    net.ok("LC_REFUSE", "bank-hk", dict(refuse, discrepancies=[
        "AMOUNT_EXCEEDS", "LATE_SHIPMENT", "MISSING_DOCUMENT", "GOODS_DESCRIPTION"]))
    assert net.do("LC_REFUSE", "bank-hk", dict(refuse, discrepancies=["OTHER"] + pres["discrepancies"])
                  ).code == "NOTICE"
    honour = {"lc_id": "LC-HK-001", "presentation_id": "P1"}
    assert net.do("LC_HONOUR", "bank-hk", honour).code == "STATE"
    assert net.do("LC_WAIVE", "sh-exporter", honour).code == "AUTH"  # only the applicant waives
    net.ok("LC_WAIVE", "hk-importer", honour)
    net.ok("LC_HONOUR", "bank-hk", honour)
    assert queries.lc(net.ledger, "LC-HK-001")["status"] == "UTILIZED"  # type: ignore[index]


def test_late_refusal_is_precluded_and_deadlines_follow_the_issuing_banks_calendar() -> None:
    """The issuing bank has five banking days following presentation, in its own
    jurisdiction's calendar, else it is precluded (UCP 600 art. 14(b), 16(f)). Presented on
    Thu 30 Apr 2026: Hong Kong closes 1 May, so a HK bank's last day is Fri 8 May; the
    mainland closes 1-5 May and works Sat 9 May, so a CN bank's last day is Mon 11 May.
    Expected: on 11 May the HK bank's refusal -> PRECLUDED (then honour OK), the CN bank's OK."""
    net = Net(date="2026-04-20")
    ebl_hk = net.shipment("LATE001", consignee=None, container="TSTU2000001", date="2026-04-20")
    ebl_sh = net.shipment("LATE002", consignee=None, container="TSTU2000002", date="2026-04-20")
    net.ok("LC_ISSUE", "bank-hk", dict(HK_LC, latest_shipment_date="2026-04-25", expiry_date="2026-06-30"))
    net.ok("LC_ISSUE", "bank-sh", dict(HK_LC, lc_id="LC-SH-001", advising_bank="bank-hk",
                                       latest_shipment_date="2026-04-25", expiry_date="2026-06-30"))
    net.ok("LC_ADVISE", "bank-sh", {"lc_id": "LC-HK-001"})
    net.ok("LC_ADVISE", "bank-hk", {"lc_id": "LC-SH-001"})
    net.on("2026-04-30")
    net.ok("LC_PRESENT", "sh-exporter", presentation(ebl_hk, amount=300_000_00))
    net.ok("LC_PRESENT", "sh-exporter", presentation(ebl_sh, amount=300_000_00, lc_id="LC-SH-001"))
    deadlines = [queries.lc(net.ledger, i)["presentation_records"][0]["deadline"]  # type: ignore[index]
                 for i in ("LC-HK-001", "LC-SH-001")]
    assert deadlines == ["2026-05-08", "2026-05-11"]
    net.on("2026-05-11")
    notice = {"presentation_id": "P1", "discrepancies": ["AMOUNT_EXCEEDS"], "disposal": "RETURN"}
    late = net.do("LC_REFUSE", "bank-hk", dict(notice, lc_id="LC-HK-001"))
    assert late.code == "PRECLUDED"
    assert queries.lc(net.ledger, "LC-HK-001")["presentation_records"][0]["refusal_precluded"]  # type: ignore[index]
    net.ok("LC_HONOUR", "bank-hk", {"lc_id": "LC-HK-001", "presentation_id": "P1"})
    net.ok("LC_REFUSE", "bank-sh", dict(notice, lc_id="LC-SH-001"))
    assert net.ebl(ebl_sh)["possessor"] == "sh-exporter"  # RETURN: the eBL went back


def test_consent_granted_used_revoked_then_refused() -> None:
    """Mainland data leaves only sealed to a consenting recipient; revoking consent erases
    the copies and stops further sharing. Expected: share OK and openable by bank-hk and by
    HKMA (its supervisor), not by bank-sh; after revocation the copies are gone and a new
    share -> NO_CONSENT."""
    net = Net()
    payload = b'{"legalRepresentative": "...", "registeredCapital": "..."}'
    salt = b"s" * 16
    net.ok("DATA_ATTEST", "sdb", {"data_id": "KYC-MHE-1", "owner": "sh-exporter", "category": "KYC",
                                  "salted_hash": builders.salted_hash(salt, payload), "schema": "kyc-v1",
                                  "size": len(payload)})
    assert net.do("CONSENT_GRANT", "hk-importer", {"data_id": "KYC-MHE-1", "grantee": "bank-hk",
                                                   "purpose": "TRADE_FINANCE", "expires": None}).code == "AUTH"
    net.ok("CONSENT_GRANT", "sh-exporter", {"data_id": "KYC-MHE-1", "grantee": "bank-hk",
                                            "purpose": "TRADE_FINANCE", "expires": "2026-12-31"})
    share = builders.share_body("SH-1", "KYC-MHE-1", "bank-hk", "TRADE_FINANCE", payload,
                                KEYS["bank-hk"].public_key, KEYS["hkma"].public_key)
    no_copy = dict(share, share_id="SH-0", regulator_sealed=None)
    assert net.do("DATA_SHARE", "sh-exporter", no_copy).code == "BENV"  # HKMA's copy is required
    net.ok("DATA_SHARE", "sh-exporter", share)
    [mine] = queries.readable_by(net.ledger, "bank-hk")
    assert builders.open_share(KEYS["bank-hk"], bytes.fromhex(mine["sealed"])) == payload
    [hkma] = queries.readable_by(net.ledger, "hkma")
    assert builders.open_share(KEYS["hkma"], bytes.fromhex(hkma["sealed"])) == payload
    try:
        builders.open_share(KEYS["bank-sh"], bytes.fromhex(mine["sealed"]))
        raise AssertionError("bank-sh opened a payload sealed to bank-hk")
    except RemoteError as exc:
        assert exc.reason == "NOT_RECIPIENT"
    other_purpose = builders.share_body("SH-2", "KYC-MHE-1", "bank-hk", "CREDIT_ASSESSMENT", payload,
                                        KEYS["bank-hk"].public_key, KEYS["hkma"].public_key)
    assert net.do("DATA_SHARE", "sh-exporter", other_purpose).code == "NO_CONSENT"
    net.ok("CONSENT_REVOKE", "sh-exporter", {"data_id": "KYC-MHE-1", "grantee": "bank-hk",
                                             "purpose": "TRADE_FINANCE"})
    assert queries.readable_by(net.ledger, "bank-hk") == [] and queries.readable_by(net.ledger, "hkma") == []
    again = dict(share, share_id="SH-3")
    refused = net.do("DATA_SHARE", "sh-exporter", again)
    assert refused.code == "NO_CONSENT" and "revoked" in refused.detail


def test_switch_to_paper_mid_voyage() -> None:
    """Switching to paper is a surrender for amendment with reason SWTP, accepted by the
    carrier and voided: the title leaves the ledger. Expected: VOID with paper before SACC
    -> STATE; after SACC OK; the eBL is VOIDED and switched to paper; a later transfer
    -> BENV; a reissue of it -> STATE."""
    net = Net()
    net.load_examples()
    ebl = net.issue(example("transport-document-straight.json"), "carrier-sh", "sh-exporter",
                    consignee="hk-importer")
    net.ok("TRANSFER", "sh-exporter", {"ebl": ebl, "recipient": "hk-importer"})
    net.on("2026-03-03")  # at sea
    net.ok("SURRENDER_FOR_AMENDMENT", "hk-importer", {"ebl": ebl, "recipient": "carrier-sh", "reason_code": "SWTP"})
    assert net.do("VOID", "carrier-sh", {"ebl": ebl, "paper": True}).code == "STATE"
    net.ok("SACC", "carrier-sh", {"ebl": ebl})
    net.ok("VOID", "carrier-sh", {"ebl": ebl, "paper": True})
    view = net.ebl(ebl)
    assert view["status"] == "VOIDED" and view["switched_to_paper"] and view["possessor"] == "carrier-sh"
    assert net.do("TRANSFER", "hk-importer", {"ebl": ebl, "recipient": "hk-distributor"}).code == "BENV"
    amended = dict(example("transport-document-straight.json"), termsAndConditions="Amended.")
    reissue = builders.issue_body(amended, "hk-importer", consignee="hk-importer", supersedes=ebl)
    assert net.do("ISSUE", "carrier-sh", reissue).code == "STATE"


def test_amendment_void_and_reissue_keeps_the_title_with_the_surrendering_party() -> None:
    """VOID and reissue of an amended document: the reference keeps one authoritative
    record, and the reissue goes to whoever surrendered it. Expected: reissue to another
    party -> DISE; to the surrendering party OK; the reference now names the new eBL."""
    net = Net()
    net.load_examples()
    doc = example("transport-document-straight.json")
    old = net.issue(doc, "carrier-sh", "sh-exporter", consignee="hk-importer")
    net.ok("SURRENDER_FOR_AMENDMENT", "sh-exporter", {"ebl": old, "recipient": "carrier-sh", "reason_code": "COD"})
    net.ok("SACC", "carrier-sh", {"ebl": old})
    net.ok("VOID", "carrier-sh", {"ebl": old, "paper": False})
    amended = dict(doc, termsAndConditions="Amended: change of destination.")
    wrong = builders.issue_body(amended, "hk-importer", consignee="hk-importer", supersedes=old)
    assert net.do("ISSUE", "carrier-sh", wrong).code == "DISE"
    new = net.issue(amended, "carrier-sh", "sh-exporter", consignee="hk-importer", supersedes=old)
    ref = queries.ebl_by_reference(net.ledger, "carrier-sh", doc["transportDocumentReference"])
    assert ref is not None and ref["id"] == new and ref["history"] == [old, new]
    assert net.ebl(old)["superseded_by"] == new


def test_surrender_then_a_transfer_attempt() -> None:
    """Surrender goes only to the issuing carrier, and after it the holder can no longer
    move the eBL; after SACC nothing more is recorded. Expected: surrender to another
    carrier -> BENV; transfer while pending -> BENV; SACC by another carrier -> AUTH; SACC
    OK; transfer after SACC -> BENV; SREJ after SACC -> BENV."""
    net = Net()
    ebl = net.shipment("SUR0001")
    net.ok("TRANSFER", "sh-exporter", {"ebl": ebl, "recipient": "hk-importer"})
    wrong = net.do("SURRENDER_FOR_DELIVERY", "hk-importer", {"ebl": ebl, "recipient": "carrier-hk"})
    assert wrong.code == "BENV"
    net.ok("SURRENDER_FOR_DELIVERY", "hk-importer", {"ebl": ebl, "recipient": "carrier-sh"})
    assert net.do("TRANSFER", "hk-importer", {"ebl": ebl, "recipient": "hk-distributor"}).code == "BENV"
    assert net.do("SACC", "carrier-hk", {"ebl": ebl}).code == "AUTH"
    net.ok("SACC", "carrier-sh", {"ebl": ebl})
    assert net.do("TRANSFER", "hk-importer", {"ebl": ebl, "recipient": "hk-distributor"}).code == "BENV"
    assert net.do("SREJ", "carrier-sh", {"ebl": ebl}).code == "BENV"
    chain = [e["action"] for e in net.ebl(ebl)["chain"]]
    assert chain == ["ISSUE", "TRANSFER", "SURRENDER_FOR_DELIVERY", "SACC"]  # nothing after SACC


def test_surrender_rejected_returns_possession_to_the_surrendering_party() -> None:
    """SREJ is the one act that moves possession without the possessor's signature: it
    returns the eBL to whoever surrendered it. Expected: a transfer by the former
    possessor -> DISE; SREJ OK, possessor hk-importer,
    status ISSUED; a straight bill cannot be endorsed (BENV); delivery by a non-consignee
    possessor -> TITLE."""
    net = Net()
    ebl = net.shipment("SRJ0001")
    net.ok("TRANSFER", "sh-exporter", {"ebl": ebl, "recipient": "hk-importer"})
    stale = net.do("TRANSFER", "sh-exporter", {"ebl": ebl, "recipient": "hk-distributor"})
    assert stale.code == "DISE"  # the shipper no longer possesses it
    net.ok("SURRENDER_FOR_DELIVERY", "hk-importer", {"ebl": ebl, "recipient": "carrier-sh"})
    net.ok("SREJ", "carrier-sh", {"ebl": ebl})
    view = net.ebl(ebl)
    assert (view["status"], view["possessor"]) == ("ISSUED", "hk-importer")
    assert net.do("ENDORSE", "hk-importer", {"ebl": ebl, "recipient": "hk-distributor"}).code == "BENV"
    net.ok("TRANSFER", "hk-importer", {"ebl": ebl, "recipient": "hk-distributor"})
    assert net.do("SURRENDER_FOR_DELIVERY", "hk-distributor", {"ebl": ebl, "recipient": "carrier-sh"}
                  ).code == "TITLE"


def test_an_issued_lc_changes_only_with_the_beneficiarys_consent() -> None:
    """Irrevocability (UCP 600 art. 10): an amendment binds only once the beneficiary
    accepts it. Expected: proposal OK but terms unchanged; acceptance by the applicant
    -> AUTH; a second proposal while one is pending -> STATE; rejection keeps the terms;
    acceptance of the next one changes them."""
    net = Net()
    net.ok("LC_ISSUE", "bank-hk", HK_LC)
    amend = {"lc_id": "LC-HK-001", "amount": 200_000_00, "expiry_date": None, "latest_shipment_date": None,
             "documents_required": None}
    net.ok("LC_AMEND", "bank-hk", amend)
    assert queries.lc(net.ledger, "LC-HK-001")["terms"]["amount"] == 250_000_00  # type: ignore[index]
    assert net.do("LC_AMEND", "bank-hk", amend).code == "STATE"
    assert net.do("LC_AMEND_ACCEPT", "hk-importer", {"lc_id": "LC-HK-001", "amendment": 1}).code == "AUTH"
    net.ok("LC_AMEND_REJECT", "sh-exporter", {"lc_id": "LC-HK-001", "amendment": 1})
    assert queries.lc(net.ledger, "LC-HK-001")["terms"]["amount"] == 250_000_00  # type: ignore[index]
    net.ok("LC_AMEND", "bank-hk", dict(amend, amount=300_000_00))
    net.ok("LC_AMEND_ACCEPT", "sh-exporter", {"lc_id": "LC-HK-001", "amendment": 2})
    lc = queries.lc(net.ledger, "LC-HK-001")
    assert lc is not None and lc["terms"]["amount"] == 300_000_00 and lc["original"]["amount"] == 250_000_00
