"""The body of every transaction kind: fields, their checks, and stateless rules.

Kinds named after DCSA PINT action codes (ISSUE, TRANSFER, ENDORSE, ...) are
the PINT acts; PLEDGE, RELEASE, TRUST_RECEIPT and VOID are this ledger's
extensions for trade finance and reissue. Every body is a map on the wire
with exactly these fields (optional ones present as nil).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, ClassVar

from consortium import limits
from consortium.ledger import dcsa
from consortium.ledger.fields import (
    Amount,
    Blob,
    Currency,
    DateText,
    Digest32,
    Flag,
    Hex64,
    Id,
    Int,
    Many,
    Nested,
    OneOf,
    Opt,
    OptDate,
    OptHex64,
    OptPartyId,
    PartyId,
    Ref,
    Shape,
    Text,
    UnLoc,
    bad,
)

PARTY_ROLES = ("shipper", "consignee", "bank", "carrier")
JURISDICTIONS = ("CN-SH", "HK")
AMENDMENT_REASONS = ("SWTP", "COD", "SWI")  # PINT Transaction.reasonCode
LC_DOCUMENTS = ("BL", "INVOICE", "PACKING_LIST", "INSURANCE", "CERT_ORIGIN", "INSPECTION")
#: Discrepancies the ledger detects itself at presentation (see rules/credit.py).
LEDGER_DISCREPANCIES = ("AMOUNT_EXCEEDS", "CURRENCY", "LATE_SHIPMENT", "LATE_PRESENTATION",
                        "PORT_OF_LOADING", "PORT_OF_DISCHARGE", "MISSING_DOCUMENT", "NOT_ON_BOARD",
                        "PRESENTED_AFTER_EXPIRY")
#: Discrepancies only a document examiner can see; a refusal notice may cite them too.
EXAMINER_DISCREPANCIES = ("GOODS_DESCRIPTION", "INCONSISTENT_DATA", "INVOICE_PARTY", "OTHER")
DISPOSALS = ("HOLD", "HOLD_PENDING_WAIVER", "RETURN", "PRIOR_INSTRUCTIONS")  # UCP 600 art. 16(c)(iii)
FINANCING_KINDS = ("PRE_SHIPMENT", "RECEIVABLES", "CARGO_PLEDGE")
COLLATERAL_TYPES = ("EBL", "INVOICE", "PO", "WAREHOUSE_RECEIPT")
DATA_CATEGORIES = ("KYC", "INVOICE", "CUSTOMS", "LOGISTICS", "PAYMENT")
PURPOSES = ("TRADE_FINANCE", "LC_EXAMINATION", "CREDIT_ASSESSMENT", "COMPLIANCE")


@dataclass(frozen=True, slots=True)
class Body(Shape):
    KIND: ClassVar[str] = ""


# ------------------------------------------------------------------ parties


@dataclass(frozen=True, slots=True)
class RegisterParty(Body):
    KIND: ClassVar[str] = "REGISTER_PARTY"
    party_id: PartyId
    name: Annotated[str, Text(140)]
    role: Annotated[str, OneOf(PARTY_ROLES)]
    jurisdiction: Annotated[str, OneOf(JURISDICTIONS)]
    public_key: Annotated[bytes, Blob(limits.public_key_bytes, limits.public_key_bytes)]


# ------------------------------------------------------------------ eBL (DCSA PINT 3.0)


@dataclass(frozen=True, slots=True)
class Issue(Body):
    """ISSUE by the carrier from a DCSA transport document (JSON text).

    `checksum` is the carrier's declaration (PINT IssuanceManifest.documentChecksum);
    the ledger recomputes it (INCD on mismatch). `issue_to` is PINT's issueTo;
    `consignee` (straight bills) and `endorsee` (to-order bills) map the document's
    parties to ledger parties and must be given exactly when the document names
    them. `supersedes` names the voided eBL this amended document reissues."""

    KIND: ClassVar[str] = "ISSUE"
    document: Annotated[str, Text(limits.tx_bytes_max)]  # DCSA sets no size: the tx bound is the one bound
    checksum: Hex64
    issue_to: PartyId
    consignee: OptPartyId
    endorsee: OptPartyId
    supersedes: OptHex64
    doc: dcsa.TransportDoc = field(init=False, repr=False, compare=False)

    def validate(self) -> None:
        doc = dcsa.parse_transport_document(self.document)
        if doc.checksum != self.checksum:
            raise dcsa.refuse("ISSUE-CHECKSUM", "Issue.checksum", f"declared {self.checksum[:12]}... but the "
                              f"document's RFC 8785 SHA-256 is {doc.checksum[:12]}...")
        if (self.consignee is not None) != doc.has_consignee:
            raise dcsa.refuse("ISSUE-CONSIGNEE", "Issue.consignee", "the ledger party of documentParties.consignee "
                              "is given exactly when the document names a consignee (a straight bill)")
        if (self.endorsee is not None) != doc.has_endorsee:
            raise dcsa.refuse("ISSUE-ENDORSEE", "Issue.endorsee", "the ledger party of documentParties.endorsee "
                              "is given exactly when the document names an endorsee")
        object.__setattr__(self, "doc", doc)


@dataclass(frozen=True, slots=True)
class Transfer(Body):
    KIND: ClassVar[str] = "TRANSFER"
    ebl: Hex64
    recipient: PartyId


@dataclass(frozen=True, slots=True)
class Endorse(Body):
    KIND: ClassVar[str] = "ENDORSE"
    ebl: Hex64
    recipient: PartyId


@dataclass(frozen=True, slots=True)
class EndorseToOrder(Body):
    KIND: ClassVar[str] = "ENDORSE_TO_ORDER"
    ebl: Hex64
    recipient: PartyId


@dataclass(frozen=True, slots=True)
class BlankEndorse(Body):
    KIND: ClassVar[str] = "BLANK_ENDORSE"
    ebl: Hex64


@dataclass(frozen=True, slots=True)
class Sign(Body):
    KIND: ClassVar[str] = "SIGN"
    ebl: Hex64


@dataclass(frozen=True, slots=True)
class SurrenderForDelivery(Body):
    KIND: ClassVar[str] = "SURRENDER_FOR_DELIVERY"
    ebl: Hex64
    recipient: PartyId


@dataclass(frozen=True, slots=True)
class SurrenderForAmendment(Body):
    KIND: ClassVar[str] = "SURRENDER_FOR_AMENDMENT"
    ebl: Hex64
    recipient: PartyId
    reason_code: Annotated[str | None, Opt(OneOf(AMENDMENT_REASONS))]


@dataclass(frozen=True, slots=True)
class Sacc(Body):
    KIND: ClassVar[str] = "SACC"
    ebl: Hex64


@dataclass(frozen=True, slots=True)
class Srej(Body):
    KIND: ClassVar[str] = "SREJ"
    ebl: Hex64


@dataclass(frozen=True, slots=True)
class Void(Body):
    """VOID by the issuing carrier after SACC of a surrender for amendment.
    `paper` records a switch to paper (reason SWTP): the title now lives off-ledger."""

    KIND: ClassVar[str] = "VOID"
    ebl: Hex64
    paper: Annotated[bool, Flag()]


@dataclass(frozen=True, slots=True)
class Pledge(Body):
    """The possessor pledges the eBL: possession passes to the pledgee bank.
    `financing` ties the pledge to that financing's collateral reservation."""

    KIND: ClassVar[str] = "PLEDGE"
    ebl: Hex64
    pledgee: PartyId
    financing: Annotated[str | None, Opt(Text(64, r"[A-Za-z0-9][A-Za-z0-9._:-]*"))]


@dataclass(frozen=True, slots=True)
class Release(Body):
    KIND: ClassVar[str] = "RELEASE"
    ebl: Hex64


@dataclass(frozen=True, slots=True)
class TrustReceipt(Body):
    KIND: ClassVar[str] = "TRUST_RECEIPT"
    ebl: Hex64


# ------------------------------------------------------------------ cargo events (DCSA T&T 3.0)


@dataclass(frozen=True, slots=True)
class CargoEvents(Body):
    """A T&T payload as published, `{"events": [...]}` (JSON text)."""

    KIND: ClassVar[str] = "CARGO_EVENT"
    events: Annotated[str, Text(limits.document_text_chars_max)]
    parsed: tuple[dcsa.CargoEvent, ...] = field(init=False, repr=False, compare=False)

    def validate(self) -> None:
        object.__setattr__(self, "parsed", dcsa.parse_events(self.events))


@dataclass(frozen=True, slots=True)
class VsaDeclare(Body):
    """A carrier declares a vessel-sharing agreement: the partners' actual LOAD events count
    for the shipped-on-board check of this carrier's documents (rules/cargo.py)."""

    KIND: ClassVar[str] = "VSA_DECLARE"
    vsa_id: Ref
    partners: Annotated[tuple[str, ...], Many(Id(), 1, limits.vsa_partners_max)]


# ------------------------------------------------------------------ letters of credit (UCP 600)


@dataclass(frozen=True, slots=True)
class LcIssue(Body):
    KIND: ClassVar[str] = "LC_ISSUE"
    lc_id: Ref
    applicant: PartyId
    beneficiary: PartyId
    advising_bank: PartyId
    currency: Currency
    amount: Amount
    expiry_date: DateText
    latest_shipment_date: DateText
    port_of_loading: UnLoc
    port_of_discharge: UnLoc
    goods: Annotated[str, Text(512)]
    documents_required: Annotated[tuple[str, ...], Many(OneOf(LC_DOCUMENTS), 1, len(LC_DOCUMENTS))]
    presentation_days: Annotated[int, Int(1, 90)]
    nominated_bank: OptPartyId  # the credit is available with it (UCP 600 art. 6(a), 12); nil: issuing bank
    confirming_bank: OptPartyId  # asked to add its confirmation (art. 8); nil: unconfirmed

    def validate(self) -> None:
        if self.latest_shipment_date > self.expiry_date:
            raise bad("LcIssue.latest_shipment_date", "must not be after the expiry date")
        if len({self.applicant, self.beneficiary}) != 2:
            raise bad("LcIssue.beneficiary", "must differ from the applicant")


@dataclass(frozen=True, slots=True)
class LcAdvise(Body):
    KIND: ClassVar[str] = "LC_ADVISE"
    lc_id: Ref


@dataclass(frozen=True, slots=True)
class LcAmend(Body):
    """Proposed changes; nil keeps a term. Binding only once the beneficiary accepts."""

    KIND: ClassVar[str] = "LC_AMEND"
    lc_id: Ref
    amount: Annotated[int | None, Opt(Int(1, 10**15))]
    expiry_date: OptDate
    latest_shipment_date: OptDate
    documents_required: Annotated[tuple[str, ...] | None,
                                  Opt(Many(OneOf(LC_DOCUMENTS), 1, len(LC_DOCUMENTS)))]

    def validate(self) -> None:
        if all(v is None for v in (self.amount, self.expiry_date, self.latest_shipment_date,
                                   self.documents_required)):
            raise bad("LcAmend", "must change at least one term")


@dataclass(frozen=True, slots=True)
class LcAmendAccept(Body):
    KIND: ClassVar[str] = "LC_AMEND_ACCEPT"
    lc_id: Ref
    amendment: Annotated[int, Int(1, 64)]


@dataclass(frozen=True, slots=True)
class LcAmendReject(Body):
    KIND: ClassVar[str] = "LC_AMEND_REJECT"
    lc_id: Ref
    amendment: Annotated[int, Int(1, 64)]


@dataclass(frozen=True, slots=True)
class LcPresent(Body):
    """The beneficiary presents: the eBL passes to the issuing bank (a TRANSFER in its
    chain) together with the listed documents; the ledger records its own findings."""

    KIND: ClassVar[str] = "LC_PRESENT"
    lc_id: Ref
    presentation_id: Ref
    ebl: Hex64
    invoice_amount: Amount
    currency: Currency
    documents: Annotated[tuple[str, ...], Many(OneOf(LC_DOCUMENTS), 0, len(LC_DOCUMENTS))]
    bank: OptPartyId  # presented to: the issuing (nil), nominated or confirming bank (UCP 600 art. 6(d)(ii))


@dataclass(frozen=True, slots=True)
class LcHonour(Body):
    KIND: ClassVar[str] = "LC_HONOUR"
    lc_id: Ref
    presentation_id: Ref


@dataclass(frozen=True, slots=True)
class LcRefuse(Body):
    """The single notice of refusal (UCP 600 art. 16(c)): every discrepancy, and the
    bank's disposal of the documents."""

    KIND: ClassVar[str] = "LC_REFUSE"
    lc_id: Ref
    presentation_id: Ref
    discrepancies: Annotated[tuple[str, ...],
                             Many(OneOf(LEDGER_DISCREPANCIES + EXAMINER_DISCREPANCIES), 1, 12)]
    disposal: Annotated[str, OneOf(DISPOSALS)]


@dataclass(frozen=True, slots=True)
class LcWaive(Body):
    KIND: ClassVar[str] = "LC_WAIVE"
    lc_id: Ref
    presentation_id: Ref


# ------------------------------------------------------------------ financing


@dataclass(frozen=True, slots=True)
class Collateral(Shape):
    """A fingerprint: an eBL's document checksum, or SHA-256 (hex) of another document."""

    type: Annotated[str, OneOf(COLLATERAL_TYPES)]
    fingerprint: Hex64


@dataclass(frozen=True, slots=True)
class FinRequest(Body):
    KIND: ClassVar[str] = "FIN_REQUEST"
    fin_id: Ref
    kind: Annotated[str, OneOf(FINANCING_KINDS)]
    lender: PartyId
    currency: Currency
    amount: Amount
    collateral: Annotated[tuple[Collateral, ...], Many(Nested(Collateral), 1, 8)]

    def validate(self) -> None:
        if len({c.fingerprint for c in self.collateral}) != len(self.collateral):
            raise bad("FinRequest.collateral", "must not list a fingerprint twice")
        types = {c.type for c in self.collateral}
        need = {"PRE_SHIPMENT": {"PO"}, "RECEIVABLES": {"INVOICE"},
                "CARGO_PLEDGE": {"EBL", "WAREHOUSE_RECEIPT"}}[self.kind]
        if not types & need:
            raise bad("FinRequest.collateral", f"of a {self.kind} financing must include one of {sorted(need)}")


@dataclass(frozen=True, slots=True)
class FinApprove(Body):
    KIND: ClassVar[str] = "FIN_APPROVE"
    fin_id: Ref


@dataclass(frozen=True, slots=True)
class FinDecline(Body):
    KIND: ClassVar[str] = "FIN_DECLINE"
    fin_id: Ref


@dataclass(frozen=True, slots=True)
class FinRepay(Body):
    """The lender acknowledges a repayment (money moves off-ledger)."""

    KIND: ClassVar[str] = "FIN_REPAY"
    fin_id: Ref
    amount: Amount


# ------------------------------------------------------------------ cross-border data


@dataclass(frozen=True, slots=True)
class DataAttest(Body):
    """SDB attests mainland data: SHA-256(salt || payload) and metadata, never the data."""

    KIND: ClassVar[str] = "DATA_ATTEST"
    data_id: Ref
    owner: PartyId
    category: Annotated[str, OneOf(DATA_CATEGORIES)]
    salted_hash: Digest32
    schema: Ref
    size: Annotated[int, Int(1, 2**32)]


@dataclass(frozen=True, slots=True)
class ConsentGrant(Body):
    KIND: ClassVar[str] = "CONSENT_GRANT"
    data_id: Ref
    grantee: PartyId
    purpose: Annotated[str, OneOf(PURPOSES)]
    expires: OptDate


@dataclass(frozen=True, slots=True)
class ConsentRevoke(Body):
    KIND: ClassVar[str] = "CONSENT_REVOKE"
    data_id: Ref
    grantee: PartyId
    purpose: Annotated[str, OneOf(PURPOSES)]


@dataclass(frozen=True, slots=True)
class DataShare(Body):
    """The payload sealed (client-side) to the recipient; when the recipient is a Hong
    Kong bank, a second copy sealed to HKMA, its supervisor (see rules/data.py)."""

    KIND: ClassVar[str] = "DATA_SHARE"
    share_id: Ref
    data_id: Ref
    recipient: PartyId
    purpose: Annotated[str, OneOf(PURPOSES)]
    sealed: Annotated[bytes, Blob(limits.sealed_bytes_min, limits.sealed_bytes_max)]
    regulator_sealed: Annotated[bytes | None, Opt(Blob(limits.sealed_bytes_min, limits.sealed_bytes_max))]


# ------------------------------------------------------------------ settlement in tokenised deposits

#: What a payment may claim to settle (rules/settlement.py): the LC honour of a presentation
#: (ref "lc_id/presentation_id"), a financing's disbursement or its repayment (ref fin_id).
OBLIGATIONS = ("LC_HONOUR", "LOAN_DISBURSE", "LOAN_REPAY")
OBLIGATION_REF_RE = r"[A-Za-z0-9][A-Za-z0-9._:-]*(/[A-Za-z0-9][A-Za-z0-9._:-]*)?"


@dataclass(frozen=True, slots=True)
class TokenIssue(Body):
    """A bank issues its deposit tokens to a customer's account (cash deposited off-ledger)."""

    KIND: ClassVar[str] = "TOKEN_ISSUE"
    holder: PartyId
    currency: Currency
    amount: Amount


@dataclass(frozen=True, slots=True)
class TokenRedeem(Body):
    """The holder redeems deposit tokens of `bank` (paid out off-ledger): they are burnt."""

    KIND: ClassVar[str] = "TOKEN_REDEEM"
    bank: PartyId
    currency: Currency
    amount: Amount


@dataclass(frozen=True, slots=True)
class Pay(Body):
    """The actor pays `payee` (account at `payee_bank`) from its tokens of `bank`; a bank
    paying from its own funds names itself. `obligation` + `ref` claim what it settles."""

    KIND: ClassVar[str] = "PAY"
    bank: PartyId
    payee: PartyId
    payee_bank: PartyId
    currency: Currency
    amount: Amount
    obligation: Annotated[str | None, Opt(OneOf(OBLIGATIONS))]
    ref: Annotated[str | None, Opt(Text(129, OBLIGATION_REF_RE))]

    def validate(self) -> None:
        if (self.obligation is None) != (self.ref is None):
            raise bad("Pay.ref", "must be given exactly when an obligation is claimed")


@dataclass(frozen=True, slots=True)
class InterbankSettle(Body):
    """The creditor bank acknowledges that `debtor` settled part of its position (RTGS)."""

    KIND: ClassVar[str] = "INTERBANK_SETTLE"
    debtor: PartyId
    currency: Currency
    amount: Amount


@dataclass(frozen=True, slots=True)
class DvpOffer(Body):
    """The buyer's standing instruction: pay `amount` from its tokens of `bank` to `seller`
    (account at `seller_bank`) against the eBL; settled only by the seller's DVP."""

    KIND: ClassVar[str] = "DVP_OFFER"
    dvp_id: Ref
    ebl: Hex64
    seller: PartyId
    bank: PartyId
    seller_bank: PartyId
    currency: Currency
    amount: Amount


@dataclass(frozen=True, slots=True)
class DvpCancel(Body):
    KIND: ClassVar[str] = "DVP_CANCEL"
    dvp_id: Ref


@dataclass(frozen=True, slots=True)
class Dvp(Body):
    """Delivery versus payment: the seller's eBL transfer and the buyer's payment, one tx."""

    KIND: ClassVar[str] = "DVP"
    dvp_id: Ref


# ------------------------------------------------------------------ UCP 600 roles (rules/credit.py)


@dataclass(frozen=True, slots=True)
class LcConfirm(Body):
    """The bank the issuing bank named adds its confirmation: its own undertaking (art. 8)."""

    KIND: ClassVar[str] = "LC_CONFIRM"
    lc_id: Ref


@dataclass(frozen=True, slots=True)
class LcForward(Body):
    """A nominated bank that does not honour forwards the documents to the issuing bank,
    which examines them from their receipt (art. 12(a), 14(b))."""

    KIND: ClassVar[str] = "LC_FORWARD"
    lc_id: Ref
    presentation_id: Ref


@dataclass(frozen=True, slots=True)
class LcReimburse(Body):
    """The issuing bank reimburses the nominated or confirming bank that honoured (art. 7(c), 8(c))."""

    KIND: ClassVar[str] = "LC_REIMBURSE"
    lc_id: Ref
    presentation_id: Ref


# ------------------------------------------------------------------ the registry

ALL: tuple[type[Body], ...] = (
    RegisterParty, Issue, Transfer, Endorse, EndorseToOrder, BlankEndorse, Sign, SurrenderForDelivery,
    SurrenderForAmendment, Sacc, Srej, Void, Pledge, Release, TrustReceipt, CargoEvents, LcIssue, LcAdvise,
    LcAmend, LcAmendAccept, LcAmendReject, LcPresent, LcHonour, LcRefuse, LcWaive, FinRequest, FinApprove,
    FinDecline, FinRepay, DataAttest, ConsentGrant, ConsentRevoke, DataShare,
    TokenIssue, TokenRedeem, Pay, InterbankSettle, DvpOffer, DvpCancel, Dvp,
    LcConfirm, LcForward, LcReimburse,
    VsaDeclare,
)
BY_KIND: dict[str, type[Body]] = {cls.KIND: cls for cls in ALL}
KINDS: tuple[str, ...] = tuple(sorted(BY_KIND))

assert len(BY_KIND) == len(ALL), "kinds are unique"
assert all(len(k) <= limits.kind_bytes_max for k in BY_KIND)
