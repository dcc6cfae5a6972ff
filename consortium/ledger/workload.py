"""A deterministic generator of plausible trade flows, as signed transaction bytes.

For simulators, scenarios and the benchmark. Randomness comes only from the
`rng` passed in (any object with random/randrange/getrandbits, e.g. a seeded
random.Random), time only from the `now_ms` of each call: the same genesis,
keys, seed and calls give the same bytes.

Flows (each a fixed sequence of acts; acts of one flow come out in order, flows
interleave):
- straight eBL: LOAD event, ISSUE, TRANSFER to the consignee, SURRENDER_FOR_DELIVERY, SACC
- cargo pledge: LOAD, ISSUE (to order of the shipper), ENDORSE_TO_ORDER, TRANSFER,
  FIN_REQUEST (CARGO_PLEDGE), PLEDGE, FIN_APPROVE, TRUST_RECEIPT, SURRENDER_FOR_DELIVERY,
  SACC, FIN_REPAY
- letter of credit: LC_ISSUE, LC_ADVISE, LOAD, ISSUE (blank endorsed), LC_PRESENT,
  LC_HONOUR, TRANSFER to the applicant, SURRENDER_FOR_DELIVERY, SACC
- receivables: FIN_REQUEST (RECEIVABLES), FIN_APPROVE, FIN_REPAY twice
- data: DATA_ATTEST, CONSENT_GRANT, DATA_SHARE (sealed), CONSENT_REVOKE
With `invalid_ratio` > 0, some outputs are deliberate faults: a replay, a forged
signature, an act by a non-possessor, an ISSUE by a non-carrier.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from consortium import crypto
from consortium.genesis import Genesis
from consortium.ledger import builders
from consortium.ledger.banking import LOCAL_OFFSET_MS, local_date
from consortium.ledger.tx import make_tx
from consortium.types import Jurisdiction, Role

WorkloadTx = tuple[str, str, dict[str, Any]]  # kind, actor, body
_LOCAL = dt.timezone(dt.timedelta(milliseconds=LOCAL_OFFSET_MS))


class RandomLike(Protocol):
    def random(self) -> float: ...
    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int: ...
    def getrandbits(self, k: int, /) -> int: ...


class Workload:
    """Signed transactions for interleaved flows; see the module docstring."""

    def __init__(self, genesis: Genesis, keys: Mapping[str, crypto.KeyPair], rng: RandomLike, *,
                 prefix: str = "W", concurrency: int = 16, invalid_ratio: float = 0.0) -> None:
        assert 0 <= invalid_ratio < 1 and concurrency >= 1 and prefix.isalnum() and len(prefix) <= 3
        self.chain_id = genesis.chain_id
        self.rng = rng
        self.prefix = prefix.upper()
        self.concurrency = concurrency
        self.invalid_ratio = invalid_ratio
        self.signers = {i: crypto.Signer(k) for i, k in sorted(keys.items())}
        self.keys = {i: k.public_key for i, k in sorted(keys.items())}
        self.now_ms = genesis.genesis_time_ms
        self._seq = 0
        self._nonce: dict[str, int] = {}
        self._flows: list[Iterator[WorkloadTx]] = []
        self._sent: list[bytes] = []  # a few recent txs, for replays
        self._hk: set[str] = set()
        self._roles = self._cast(genesis)

    def _cast(self, genesis: Genesis) -> dict[str, list[str]]:
        roles: dict[str, list[str]] = {}
        everyone = [(m.id, m.role, m.jurisdiction) for m in genesis.members]
        everyone += [(p.id, p.role, p.jurisdiction) for p in genesis.parties]
        self._hk = {i for i, _, j in everyone if j == Jurisdiction.HK}
        for ident, role, _ in everyone:
            if ident in self.signers:
                roles.setdefault(role.value, []).append(ident)
        for need in (Role.CARRIER, Role.BANK, Role.SHIPPER, Role.CONSIGNEE):
            assert roles.get(need.value), f"a workload needs a {need.value} with a key"
        return roles

    # ---------------------------------------------------------------- output

    def take(self, n: int, now_ms: int) -> list[bytes]:
        """The next `n` transactions, dated for a block at (or after) `now_ms`."""
        self.now_ms = now_ms
        out: list[bytes] = []
        while len(out) < n:
            if self.invalid_ratio and self.rng.random() < self.invalid_ratio:
                out.append(self._fault())
                continue
            if len(self._flows) < self.concurrency:
                self._flows.append(self._new_flow())
            i = self.rng.randrange(len(self._flows))
            step = next(self._flows[i], None)
            if step is None:
                self._flows.pop(i)
                continue
            out.append(self._sign(*step))
        return out

    def _sign(self, kind: str, actor: str, body: dict[str, Any]) -> bytes:
        self._nonce[actor] = self._nonce.get(actor, 0) + 1
        data = make_tx(kind, actor, body, self.signers[actor], self._nonce[actor], self.chain_id)
        self._sent = (self._sent + [data])[-32:]
        return data

    def _pick(self, role: str) -> str:
        people = self._roles.get(role) or self._roles[Role.SHIPPER.value]
        return people[self.rng.randrange(len(people))]

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _new_flow(self) -> Iterator[WorkloadTx]:
        roll = self.rng.randrange(100)
        if roll < 25:
            return self._straight_flow()
        if roll < 45:
            return self._pledge_flow()
        if roll < 70:
            return self._lc_flow()
        if roll < 85:
            return self._receivables_flow()
        if self._mainland_owners() and Role.DATA_BUREAU.value in self._roles and Role.REGULATOR.value in self._roles:
            return self._data_flow()
        return self._receivables_flow()

    # ---------------------------------------------------------------- eBL helpers

    def _shipment(self, carrier: str, shipper: str, consignee: str | None, endorsee: str | None,
                  ) -> tuple[list[WorkloadTx], str]:
        """LOAD event + ISSUE of a fresh shipped-on-board document; returns the steps and the eBL id."""
        n = self._next()
        reference = f"{self.prefix}{n:08d}"
        container = f"{self.prefix[0]}KLU{n % 10_000_000:07d}"
        loaded = dt.datetime.fromtimestamp((self.now_ms - 7_200_000) // 1000, tz=_LOCAL)
        event = builders.load_event(f"{reference}-load", container, "CNSHA", loaded.isoformat(),
                                    document=reference)
        doc = builders.transport_document(
            reference, carrier_code="HPCS", shipper=shipper, consignee=consignee, endorsee=endorsee,
            equipment=[container], port_of_loading="CNSHA", port_of_discharge="HKHKG",
            on_board_date=loaded.date().isoformat())
        body = builders.issue_body(doc, shipper, consignee=consignee, endorsee=endorsee)
        return [("CARGO_EVENT", carrier, builders.events_body([event])), ("ISSUE", carrier, body)], body["checksum"]

    def _straight_flow(self) -> Iterator[WorkloadTx]:
        carrier, shipper, consignee = self._pick("carrier"), self._pick("shipper"), self._pick("consignee")
        steps, ebl = self._shipment(carrier, shipper, consignee, None)
        yield from steps
        yield "TRANSFER", shipper, {"ebl": ebl, "recipient": consignee}
        yield "SURRENDER_FOR_DELIVERY", consignee, {"ebl": ebl, "recipient": carrier}
        yield "SACC", carrier, {"ebl": ebl}

    def _pledge_flow(self) -> Iterator[WorkloadTx]:
        carrier, shipper, buyer, bank = (self._pick("carrier"), self._pick("shipper"), self._pick("consignee"),
                                         self._pick("bank"))
        steps, ebl = self._shipment(carrier, shipper, None, shipper)
        yield from steps
        yield "ENDORSE_TO_ORDER", shipper, {"ebl": ebl, "recipient": buyer}
        yield "TRANSFER", shipper, {"ebl": ebl, "recipient": buyer}
        fin = f"{self.prefix}F{self._next()}"
        amount = 10_000 * (1 + self.rng.randrange(50))
        yield "FIN_REQUEST", buyer, {"fin_id": fin, "kind": "CARGO_PLEDGE", "lender": bank, "currency": "USD",
                                     "amount": amount, "collateral": [{"type": "EBL", "fingerprint": ebl}]}
        yield "PLEDGE", buyer, {"ebl": ebl, "pledgee": bank, "financing": fin}
        yield "FIN_APPROVE", bank, {"fin_id": fin}
        yield "TRUST_RECEIPT", bank, {"ebl": ebl}
        yield "SURRENDER_FOR_DELIVERY", buyer, {"ebl": ebl, "recipient": carrier}
        yield "SACC", carrier, {"ebl": ebl}
        yield "FIN_REPAY", bank, {"fin_id": fin, "amount": amount}

    def _lc_flow(self) -> Iterator[WorkloadTx]:
        carrier, exporter, importer = self._pick("carrier"), self._pick("shipper"), self._pick("consignee")
        issuing, advising = self._pick("bank"), self._pick("bank")
        lc_id = f"{self.prefix}LC{self._next()}"
        today = local_date(self.now_ms)
        amount = 100_000 * (1 + self.rng.randrange(20))
        yield "LC_ISSUE", issuing, {
            "lc_id": lc_id, "applicant": importer, "beneficiary": exporter, "advising_bank": advising,
            "currency": "USD", "amount": amount, "expiry_date": (today + dt.timedelta(days=60)).isoformat(),
            "latest_shipment_date": (today + dt.timedelta(days=30)).isoformat(), "port_of_loading": "CNSHA",
            "port_of_discharge": "HKHKG", "goods": "Consumer electronics", "presentation_days": 21,
            "documents_required": ["BL", "INVOICE", "PACKING_LIST"], "nominated_bank": None,
            "confirming_bank": None}
        yield "LC_ADVISE", advising, {"lc_id": lc_id}
        steps, ebl = self._shipment(carrier, exporter, None, None)
        yield from steps
        yield "LC_PRESENT", exporter, {"lc_id": lc_id, "presentation_id": "P1", "ebl": ebl, "invoice_amount": amount,
                                       "currency": "USD", "documents": ["INVOICE", "PACKING_LIST"], "bank": None}
        yield "LC_HONOUR", issuing, {"lc_id": lc_id, "presentation_id": "P1"}
        yield "TRANSFER", issuing, {"ebl": ebl, "recipient": importer}
        yield "SURRENDER_FOR_DELIVERY", importer, {"ebl": ebl, "recipient": carrier}
        yield "SACC", carrier, {"ebl": ebl}

    def _receivables_flow(self) -> Iterator[WorkloadTx]:
        seller, bank = self._pick("shipper"), self._pick("bank")
        fin = f"{self.prefix}R{self._next()}"
        invoice = builders.fingerprint({"invoice": fin, "seller": seller, "amount": self._seq})
        amount = 5_000 * (1 + self.rng.randrange(100))
        yield "FIN_REQUEST", seller, {"fin_id": fin, "kind": "RECEIVABLES", "lender": bank, "currency": "USD",
                                      "amount": amount, "collateral": [{"type": "INVOICE", "fingerprint": invoice}]}
        yield "FIN_APPROVE", bank, {"fin_id": fin}
        yield "FIN_REPAY", bank, {"fin_id": fin, "amount": amount // 2}
        yield "FIN_REPAY", bank, {"fin_id": fin, "amount": amount - amount // 2}

    def _data_flow(self) -> Iterator[WorkloadTx]:
        owners = self._mainland_owners()
        owner = owners[self.rng.randrange(len(owners))]
        sdb, hkma = self._pick("data_bureau"), self._pick("regulator")
        banks = self._roles["bank"]
        bank = banks[self.rng.randrange(len(banks))]
        data_id = f"{self.prefix}D{self._next()}"
        payload = f"KYC record {data_id} of {owner}".encode()
        salt = self.rng.getrandbits(128).to_bytes(16, "big")
        yield "DATA_ATTEST", sdb, {"data_id": data_id, "owner": owner, "category": "KYC",
                                   "salted_hash": builders.salted_hash(salt, payload), "schema": "kyc-v1",
                                   "size": len(payload)}
        yield "CONSENT_GRANT", owner, {"data_id": data_id, "grantee": bank, "purpose": "TRADE_FINANCE",
                                       "expires": None}
        seeds = (self.rng.getrandbits(256).to_bytes(32, "big"), self.rng.getrandbits(256).to_bytes(32, "big"))
        hk_bank = bank in self._hk
        yield "DATA_SHARE", owner, builders.share_body(
            f"{data_id}-S1", data_id, bank, "TRADE_FINANCE", payload, self.keys[bank],
            self.keys[hkma] if hk_bank else None, seeds)
        yield "CONSENT_REVOKE", owner, {"data_id": data_id, "grantee": bank, "purpose": "TRADE_FINANCE"}

    def _mainland_owners(self) -> list[str]:
        """SDB attests data of mainland parties: the CN-SH shippers."""
        return [p for p in self._roles.get("shipper", []) if p not in self._hk]

    # ---------------------------------------------------------------- faults

    def _fault(self) -> bytes:
        roll = self.rng.randrange(4)
        if roll == 0 and self._sent:
            return self._sent[self.rng.randrange(len(self._sent))]  # replay: DUPE
        actor = self._pick("shipper")
        n = self._next()
        if roll == 1:  # forged: signed by someone else's key -> BSIG
            other = self._pick("consignee")
            return make_tx("SIGN", actor, {"ebl": "0" * 64}, self.signers[other], 10**12 + n, self.chain_id)
        if roll == 2:  # an act on an eBL the actor does not hold -> MDOC / DISE
            return self._sign("TRANSFER", actor, {"ebl": "f" * 64, "recipient": self._pick("consignee")})
        doc = builders.transport_document(f"{self.prefix}X{n:07d}", carrier_code="HPCS", shipper=actor,
                                          consignee=None, endorsee=None, equipment=["FAKU0000001"],
                                          port_of_loading="CNSHA", port_of_discharge="HKHKG", on_board_date=None,
                                          received_date=local_date(self.now_ms).isoformat())
        return self._sign("ISSUE", actor, builders.issue_body(doc, actor))  # not a carrier -> ROLE
