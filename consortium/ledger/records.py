"""The records the ledger state holds: frozen, slotted, asserting their own invariants.

Records hold only str, int, bool, bytes, None, tuples and other records, so
their value form (`to_value`) encodes canonically (no floats, no sets) and
`from_value` rebuilds them exactly (snapshot/restore).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, fields
from types import NoneType, UnionType
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

import msgspec

from consortium import crypto, limits

EBL_STATUSES = ("ISSUED", "PENDING_SURRENDER_FOR_DELIVERY", "PENDING_SURRENDER_FOR_AMENDMENT",
                "SURRENDERED_FOR_DELIVERY", "SURRENDERED_FOR_AMENDMENT", "VOIDED")  # DCSA TD statuses
PENDING = {"SURRENDER_FOR_DELIVERY": "PENDING_SURRENDER_FOR_DELIVERY",
           "SURRENDER_FOR_AMENDMENT": "PENDING_SURRENDER_FOR_AMENDMENT"}
SURRENDERED = {"PENDING_SURRENDER_FOR_DELIVERY": "SURRENDERED_FOR_DELIVERY",
               "PENDING_SURRENDER_FOR_AMENDMENT": "SURRENDERED_FOR_AMENDMENT"}
CHAIN_DOMAIN = b"consortium/ebl-chain/v1\x00"
ZERO_HASH = bytes(32)


@dataclass(frozen=True, slots=True)
class Record:
    """Base of every state record."""


@dataclass(frozen=True, slots=True)
class PartyRecord(Record):
    id: str
    name: str
    role: str
    jurisdiction: str
    public_key: bytes
    member: bool  # a consortium member (genesis.members), also acting as a party
    registered_by: str  # "genesis", "hkma" or "sdb"
    height: int


@dataclass(frozen=True, slots=True)
class NonceWindow(Record):
    floor: int  # every nonce <= floor is spent
    used: tuple[int, ...]  # spent nonces above the floor, ascending

    def __post_init__(self) -> None:
        assert len(self.used) <= limits.used_nonces_max
        assert self.used == tuple(sorted(set(self.used))), "ascending, no repeats"  # C speed: per tx
        assert not self.used or self.used[0] > self.floor

    def spend(self, nonce: int) -> NonceWindow:
        """This window with a fresh `nonce` (above the floor, not used) spent; past
        used_nonces_max the oldest raises the floor. Equal to building the window from the
        sorted nonces, without re-checking the whole order: `used` is ascending (asserted
        when this window was built) and the new nonce goes in between its neighbours."""
        used = self.used
        i = bisect_left(used, nonce)
        assert nonce > self.floor and (i == len(used) or used[i] != nonce), "a fresh nonce"
        used = used[:i] + (nonce,) + used[i:]
        floor = self.floor
        if len(used) > limits.used_nonces_max:
            floor, used = used[0], used[1:]  # everything at or below the oldest is spent
        new = object.__new__(NonceWindow)
        _set_floor(new, floor)
        _set_used(new, used)
        return new


def _slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    """Sets a slot of a frozen record as its dataclass __init__ does (object.__setattr__)."""
    return getattr(cls, name).__set__  # type: ignore[no-any-return]


_set_floor = _slot_setter(NonceWindow, "floor")
_set_used = _slot_setter(NonceWindow, "used")


@dataclass(frozen=True, slots=True)
class Meta(Record):
    height: int
    time_ms: int


@dataclass(frozen=True, slots=True)
class Ebl(Record):
    """The one authoritative record of an eBL, keyed by its document checksum."""

    id: str  # document checksum (hex SHA-256 of the RFC 8785 form)
    carrier: str  # issuing carrier (member id)
    reference: str  # transportDocumentReference
    carrier_code: str
    is_to_order: bool
    on_board: bool  # isShippedOnBoardType
    shipment_date: str  # shippedOnBoardDate or receivedForShipmentDate
    port_of_loading: str | None
    port_of_discharge: str | None
    issue_to: str
    consignee: str | None  # straight bills: the named consignee (ledger id)
    status: str
    possessor: str
    endorsee: str | None  # to-order bills: current endorsee (None + blank = bearer)
    issued_endorsee: str | None  # the endorsee at issue (the chain replay starts from it)
    blank: bool  # blank endorsed: the possessor is the holder
    endorsable: bool  # False after ENDORSE (PINT: that endorsee cannot endorse further)
    pledgee: str | None
    pledgor: str | None
    pledge_financing: str | None
    trust_receipt: bool  # pledgee handed possession back for delivery under a trust receipt
    surrendered_by: str | None
    amendment_reason: str | None
    paper: bool  # voided because switched to paper
    supersedes: str | None
    superseded_by: str | None
    chain_len: int
    chain_head: bytes  # digest of the last transfer-chain entry
    issued_height: int

    def __post_init__(self) -> None:
        assert self.status in EBL_STATUSES, self.status
        assert (self.pledgee is None) == (self.pledgor is None)
        assert not self.trust_receipt or self.pledgee is not None
        assert self.pledge_financing is None or self.pledgee is not None
        assert self.is_to_order or (self.endorsee is None and not self.blank)
        assert self.is_to_order or self.consignee is not None
        assert self.chain_len >= 1 and len(self.chain_head) == 32
        assert not self.paper or self.status == "VOIDED"

    @property
    def active(self) -> bool:
        """Not surrendered, voided or pending surrender: acts may proceed."""
        return self.status == "ISSUED"

    def title_holder(self) -> str | None:
        """Who may claim the goods: the consignee (straight), the endorsee, or the
        possessor of a blank-endorsed bill (bearer)."""
        if not self.is_to_order:
            return self.consignee
        return self.possessor if self.blank else self.endorsee


@dataclass(frozen=True, slots=True)
class ChainEntry(Record):
    """One act in an eBL's transfer chain; `prev` is the previous entry's digest."""

    ebl: str
    seq: int
    action: str
    actor: str
    recipient: str | None
    reason_code: str | None
    time_ms: int
    tx_hash: bytes
    prev: bytes
    document_checksum: str

    def __post_init__(self) -> None:
        assert self.seq >= 0 and len(self.prev) == 32 and len(self.tx_hash) == 32
        assert (self.seq == 0) == (self.action == "ISSUE")

    def digest(self) -> bytes:
        return crypto.digest(CHAIN_DOMAIN + encode(self))


@dataclass(frozen=True, slots=True)
class Doc(Record):
    text: str  # the RFC 8785 form of the transport document


@dataclass(frozen=True, slots=True)
class RefIndex(Record):
    """(carrier, reference) -> the authoritative eBL and its voided predecessors."""

    carrier: str
    reference: str
    current: str
    history: tuple[str, ...]

    def __post_init__(self) -> None:
        assert self.history and self.history[-1] == self.current


@dataclass(frozen=True, slots=True)
class CargoEventRec(Record):
    carrier: str
    event_id: str
    event_type: str
    classifier: str
    type_code: str
    date_time: str
    local_date: str
    utc_ms: int
    location: str | None
    equipment: str | None
    documents: tuple[str, ...]
    checksum: str
    height: int


@dataclass(frozen=True, slots=True)
class LoadRef(Record):
    local_date: str
    location: str | None
    event_id: str


@dataclass(frozen=True, slots=True)
class LoadIndex(Record):
    """Actual LOAD events of one container by one carrier (most recent last)."""

    carrier: str
    equipment: str
    loads: tuple[LoadRef, ...]


@dataclass(frozen=True, slots=True)
class LcTerms(Record):
    currency: str
    amount: int
    expiry_date: str
    latest_shipment_date: str
    port_of_loading: str
    port_of_discharge: str
    goods: str
    documents_required: tuple[str, ...]
    presentation_days: int


@dataclass(frozen=True, slots=True)
class Amendment(Record):
    seq: int
    amount: int | None
    expiry_date: str | None
    latest_shipment_date: str | None
    documents_required: tuple[str, ...] | None
    status: str  # PROPOSED | ACCEPTED | REJECTED
    height: int

    def __post_init__(self) -> None:
        assert self.status in ("PROPOSED", "ACCEPTED", "REJECTED")


@dataclass(frozen=True, slots=True)
class Lc(Record):
    lc_id: str
    issuing_bank: str
    applicant: str
    beneficiary: str
    advising_bank: str
    original: LcTerms  # the terms as issued: irrevocable (UCP 600 art. 3, 7(b))
    terms: LcTerms  # original + accepted amendments, in order
    advised: bool
    status: str  # ISSUED | UTILIZED
    amendments: tuple[Amendment, ...]
    presentations: tuple[str, ...]
    open_presentation: str | None
    issue_date: str
    nominated_bank: str | None  # the credit is available with it (UCP 600 art. 6(a), 12)
    confirming_bank: str | None  # asked by the issuing bank to confirm (art. 8)
    confirmed: bool  # the confirming bank added its own undertaking

    def __post_init__(self) -> None:
        assert self.status in ("ISSUED", "UTILIZED")
        assert not self.confirmed or self.confirming_bank is not None
        assert sum(a.status == "PROPOSED" for a in self.amendments) <= 1


@dataclass(frozen=True, slots=True)
class Presentation(Record):
    lc_id: str
    presentation_id: str
    ebl: str
    presenter: str
    invoice_amount: int
    currency: str
    documents: tuple[str, ...]
    presented_date: str
    deemed_date: str  # first banking day on or after presentation (issuing bank's calendar)
    deadline: str  # last banking day for a refusal (UCP 600 art. 14(b))
    discrepancies: tuple[str, ...]  # found by the ledger at presentation
    status: str  # PRESENTED | REFUSED | HONOURED
    refusal: tuple[str, ...]
    disposal: str | None
    waived: bool
    refused_date: str | None
    honoured_date: str | None
    bank: str  # the examining bank: presented to (issuing, nominated or confirming), or forwarded to
    forwarded_date: str | None  # a nominated/confirming bank forwarded the documents (art. 15(c))
    reimbursement: str | None  # None | DUE | DISCREPANT | PAID: the issuing bank's debt to the honouring bank
    reimbursed_date: str | None

    def __post_init__(self) -> None:
        assert self.status in ("PRESENTED", "REFUSED", "HONOURED")
        assert self.reimbursement in (None, "DUE", "DISCREPANT", "PAID")
        assert self.reimbursement is None or self.status == "HONOURED"
        assert (self.reimbursement == "PAID") == (self.reimbursed_date is not None)
        assert bool(self.refusal) == (self.refused_date is not None) == (self.disposal is not None)
        assert self.status != "REFUSED" or self.refusal
        assert (self.status == "HONOURED") == (self.honoured_date is not None)

    @property
    def open(self) -> bool:
        """Still blocks a new presentation: not honoured and documents not returned."""
        return self.status == "PRESENTED" or (self.status == "REFUSED" and self.disposal != "RETURN")


@dataclass(frozen=True, slots=True)
class CollateralRec(Record):
    type: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Financing(Record):
    fin_id: str
    kind: str
    borrower: str
    lender: str
    currency: str
    amount: int
    outstanding: int
    collateral: tuple[CollateralRec, ...]
    status: str  # REQUESTED | LIVE | DECLINED | REPAID
    height: int

    def __post_init__(self) -> None:
        assert self.status in ("REQUESTED", "LIVE", "DECLINED", "REPAID")
        assert 0 <= self.outstanding <= self.amount
        assert (self.status == "REPAID") == (self.outstanding == 0)

    @property
    def live(self) -> bool:
        """Holds its collateral: requested (reserved) or approved and not repaid."""
        return self.status in ("REQUESTED", "LIVE")


@dataclass(frozen=True, slots=True)
class Lien(Record):
    """The one security interest a collateral fingerprint may back."""

    fingerprint: str
    holder: str  # the bank
    financing: str | None  # a live financing reserving it
    pledged_ebl: str | None  # an eBL pledge holding it

    def __post_init__(self) -> None:
        assert self.financing is not None or self.pledged_ebl is not None


@dataclass(frozen=True, slots=True)
class Attestation(Record):
    data_id: str
    owner: str
    category: str
    salted_hash: bytes
    schema: str
    size: int
    attested_by: str
    height: int


@dataclass(frozen=True, slots=True)
class Consent(Record):
    data_id: str
    grantee: str
    purpose: str
    status: str  # GRANTED | REVOKED
    expires: str | None
    granted_height: int
    revoked_height: int | None
    uses: int
    shares: tuple[str, ...]  # shares made under this consent (erased on revoke)

    def __post_init__(self) -> None:
        assert self.status in ("GRANTED", "REVOKED")
        assert (self.status == "REVOKED") == (self.revoked_height is not None)


@dataclass(frozen=True, slots=True)
class Share(Record):
    share_id: str
    data_id: str
    owner: str
    sender: str
    recipient: str
    purpose: str
    sealed: bytes | None  # erased (None) once consent is revoked
    regulator_sealed: bytes | None
    status: str  # ACTIVE | ERASED
    height: int

    def __post_init__(self) -> None:
        assert self.status in ("ACTIVE", "ERASED")
        assert (self.status == "ERASED") == (self.sealed is None)


# ------------------------------------------------------------------ settlement in tokenised deposits


@dataclass(frozen=True, slots=True)
class Account(Record):
    """`holder`'s deposit tokens issued by `bank` in `currency` (a claim on that bank)."""

    bank: str
    currency: str
    holder: str
    balance: int  # minor units; the invariant checker, not the record, asserts >= 0


@dataclass(frozen=True, slots=True)
class Liabilities(Record):
    """What `bank` records it owes its token holders in `currency`."""

    bank: str
    currency: str
    amount: int


@dataclass(frozen=True, slots=True)
class Position(Record):
    """Net interbank position of a pair of banks in one currency: `debtor` owes `creditor`."""

    currency: str
    debtor: str
    creditor: str
    amount: int


@dataclass(frozen=True, slots=True)
class Flow(Record):
    """Payments from parties of one jurisdiction to parties of another, per currency."""

    origin: str
    destination: str
    currency: str
    count: int
    total: int


@dataclass(frozen=True, slots=True)
class Settled(Record):
    """What token payments have settled so far against one obligation."""

    obligation: str  # bodies.OBLIGATIONS
    ref: str  # "lc_id/presentation_id" or fin_id
    payer: str
    payee: str
    currency: str
    paid: int


@dataclass(frozen=True, slots=True)
class DvpRec(Record):
    """A buyer's DvP offer and its outcome."""

    dvp_id: str
    ebl: str
    buyer: str
    bank: str
    seller: str
    seller_bank: str
    currency: str
    amount: int
    status: str  # OFFERED | SETTLED | CANCELLED
    height: int
    settled_height: int | None

    def __post_init__(self) -> None:
        assert self.status in ("OFFERED", "SETTLED", "CANCELLED")
        assert (self.status == "SETTLED") == (self.settled_height is not None)


# ------------------------------------------------------------------ banking calendar (UCP 600)


@dataclass(frozen=True, slots=True)
class CalendarRec(Record):
    """One jurisdiction's banking calendar, installed from the genesis (ledger/banking.py)."""

    jurisdiction: str
    source: str  # the library version the days were taken from, e.g. "holidays 0.109"
    first_year: int
    last_year: int
    closed: tuple[str, ...]  # weekdays banks are closed (ISO dates, ascending)
    open: tuple[str, ...]  # weekend days banks work (mainland make-up working days)
    provisional: tuple[int, ...]  # years whose calendar was not yet published


# ------------------------------------------------------------------ vessel sharing (rules/cargo.py)


@dataclass(frozen=True, slots=True)
class Vsa(Record):
    """A carrier's vessel-sharing agreements: its partners' actual LOAD events count for the
    shipped-on-board check of its documents (keyed by the declaring carrier)."""

    carrier: str
    agreements: tuple[str, ...]  # vsa ids, in declaration order
    partners: tuple[str, ...]  # partner carriers, sorted, once each
    height: int


# ------------------------------------------------------------------ value form

R = TypeVar("R", bound=Record)


def to_value(rec: Record) -> dict[str, Any]:
    return {f.name: _plain(getattr(rec, f.name)) for f in fields(rec)}


def encode(rec: Record) -> bytes:
    """The canonical encoding of a record: equal to codec.encode(to_value(rec)), but built
    at C speed (msgspec packs the dataclass itself, fields sorted by name; the names are
    ASCII, so that is the order of their UTF-8 bytes, and the values are known canonical),
    because the state root encodes every record a block touches. tests/ledger/test_state.py
    and test_apply_fast.py hold it equal to the generic encoder and to the former one."""
    return ENCODER.encode(rec)


ENCODER = msgspec.msgpack.Encoder(order="sorted")  # encode's (the state root calls it directly)


_MISSING: Any = object()
_REPLACERS: dict[type, Callable[..., Any]] = {}


def replace(rec: R, /, **changes: Any) -> R:
    """dataclasses.replace for records, about three times faster (the rules replace a
    record for nearly every write): a copy of `rec` with `changes`, its __post_init__ run.
    Same result and same errors for a misspelt field (TypeError)."""
    fn = _REPLACERS.get(type(rec))
    if fn is None:
        fn = _REPLACERS[type(rec)] = _replacer(type(rec))
    return fn(rec, **changes)  # type: ignore[no-any-return]


def _replacer(cls: type) -> Callable[..., Any]:
    """Generated per record class: every slot set once through its member descriptor, as
    the frozen dataclass __init__ would, then __post_init__ (if any). Locals and helpers
    start with "_", which no field name does."""
    names = [f.name for f in fields(cls)]
    assert all(n.isidentifier() and not n.startswith("_") for n in names), names
    params = "".join(f", {n}=_M" for n in names)
    setters = "".join(f", _s_{n}=_S[{n!r}]" for n in names)
    body = "".join(f"    _s_{n}(_obj, _rec.{n} if {n} is _M else {n})\n" for n in names)
    post = "    _obj.__post_init__()\n" if hasattr(cls, "__post_init__") else ""
    src = (f"def replace(_rec, /, *{params}, _new=object.__new__, _cls=_C{setters}):\n"
           f"    _obj = _new(_cls)\n{body}{post}    return _obj\n")
    scope: dict[str, Any] = {"_M": _MISSING, "_C": cls, "_S": {n: _slot_setter(cls, n) for n in names}}
    exec(src, scope)  # noqa: S102 - source built above from the class's own field names
    return scope["replace"]  # type: ignore[no-any-return]


def _plain(v: Any) -> Any:
    if isinstance(v, Record):
        return to_value(v)
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


def from_value(cls: type[R], value: Any) -> R:
    """Rebuild a record from its value form (snapshot restore); ValueError if it does not fit."""
    if not isinstance(value, dict):
        raise ValueError(f"{cls.__name__}: expected a map")
    hints = _hints(cls)
    if set(value) != set(hints):
        raise ValueError(f"{cls.__name__}: fields {sorted(value)} != {sorted(hints)}")
    return cls(**{name: _from(hints[name], value[name]) for name in hints})


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    found = _HINTS.get(cls)
    if found is None:
        hints = get_type_hints(cls)
        found = _HINTS[cls] = {f.name: hints[f.name] for f in fields(cls)}
    return found


def _from(hint: Any, v: Any) -> Any:
    origin = get_origin(hint)
    if origin in (Union, UnionType):
        if v is None:
            return None
        inner = [a for a in get_args(hint) if a is not NoneType]
        return _from(inner[0], v)
    if origin is tuple:
        if not isinstance(v, list):
            raise ValueError("expected a list")
        item = get_args(hint)[0]
        return tuple(_from(item, x) for x in v)
    if isinstance(hint, type) and issubclass(hint, Record):
        return from_value(hint, v)
    if not isinstance(v, hint) or (hint is int and isinstance(v, bool)):
        raise ValueError(f"expected {hint.__name__}, got {type(v).__name__}")
    return v


# encode sorts the fields by name as str; that is the canonical (UTF-8 byte) order for ASCII names
assert all(f.name.isascii() for c in Record.__subclasses__() for f in fields(c)), "record field names are ASCII"
