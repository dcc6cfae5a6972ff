"""A test consortium and a small driver for ledger tests: blocks with controlled dates."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from consortium import crypto
from consortium.consensus.app import BlockContext, TxResult
from consortium.genesis import DEFAULT_GENESIS_TIME_MS, Genesis
from consortium.ledger import Ledger, builders, make_tx, queries
from consortium.ledger.invariants import check_invariants
from consortium.types import Jurisdiction, Member, Party, Role

CHAIN = "test-chain"
MEMBERS = [
    ("hkma", Role.REGULATOR, Jurisdiction.HK), ("sdb", Role.DATA_BUREAU, Jurisdiction.CN_SH),
    ("nticbc", Role.TECH_CENTER, Jurisdiction.CN_SH), ("bank-hk", Role.BANK, Jurisdiction.HK),
    ("bank-sh", Role.BANK, Jurisdiction.CN_SH), ("carrier-hk", Role.CARRIER, Jurisdiction.HK),
    ("carrier-sh", Role.CARRIER, Jurisdiction.CN_SH),
]
PARTIES = [
    ("sh-exporter", Role.SHIPPER, Jurisdiction.CN_SH), ("sh-supplier", Role.SHIPPER, Jurisdiction.CN_SH),
    ("hk-importer", Role.CONSIGNEE, Jurisdiction.HK), ("hk-distributor", Role.CONSIGNEE, Jurisdiction.HK),
]
IDS = [m[0] for m in MEMBERS] + [p[0] for p in PARTIES]


def keypair(ident: str) -> crypto.KeyPair:
    return crypto.keypair_from_seed(crypto.digest(b"tests/ledger/key/" + ident.encode()))


KEYS = {i: keypair(i) for i in IDS}
SIGNERS = {i: crypto.Signer(k) for i, k in KEYS.items()}
GENESIS = Genesis(
    chain_id=CHAIN, genesis_time_ms=DEFAULT_GENESIS_TIME_MS,
    members=tuple(Member(i, i.upper(), r, j, True, 10, KEYS[i].public_key) for i, r, j in MEMBERS),
    parties=tuple(Party(i, i.title(), r, j, KEYS[i].public_key) for i, r, j in PARTIES),
)
LOCAL = dt.timezone(dt.timedelta(hours=8))


def at(date: str, hour: int = 10) -> int:
    """Block time (ms) of `date` at `hour` o'clock in Shanghai / Hong Kong."""
    d = dt.datetime.fromisoformat(f"{date}T{hour:02d}:00:00").replace(tzinfo=LOCAL)
    return int(d.timestamp()) * 1000


class Net:
    """One ledger driven block by block; checks every invariant after each block."""

    def __init__(self, genesis: Genesis = GENESIS, date: str = "2026-03-02", hour: int = 18) -> None:
        self.ledger = Ledger(genesis)
        self.height = 0
        self.time_ms = at(date, hour)
        self.nonces: dict[str, int] = {}
        self.blocks: list[tuple[BlockContext, list[bytes]]] = []
        self.signers = dict(SIGNERS)

    def tx(self, kind: str, actor: str, body: dict[str, Any], *, signer: str | None = None,
           validate: bool = True, nonce: int | None = None, chain: str = CHAIN) -> bytes:
        if nonce is None:
            nonce = self.nonces[actor] = self.nonces.get(actor, 0) + 1
        return make_tx(kind, actor, body, self.signers[signer or actor], nonce, chain, validate=validate)

    def block(self, *txs: bytes) -> list[TxResult]:
        self.height += 1
        self.time_ms += 1000
        ctx = BlockContext(height=self.height, time_ms=self.time_ms, proposer="hkma")
        results = self.ledger.apply_block(ctx, list(txs))
        self.blocks.append((ctx, list(txs)))
        problems = check_invariants(self.ledger)
        assert problems == [], problems
        assert all(r.code != "INTERNAL" for r in results), results
        return results

    def do(self, kind: str, actor: str, body: dict[str, Any], **kw: Any) -> TxResult:
        return self.block(self.tx(kind, actor, body, **kw))[0]

    def ok(self, kind: str, actor: str, body: dict[str, Any], **kw: Any) -> TxResult:
        result = self.do(kind, actor, body, **kw)
        assert result.code == "OK", (kind, actor, result)
        return result

    def on(self, date: str, hour: int = 10) -> None:
        """Move block time to `date` (never backwards)."""
        self.time_ms = max(self.time_ms, at(date, hour))

    # ------------------------------------------------------------ common setups

    def load_examples(self, carrier: str = "carrier-sh") -> None:
        self.ok("CARGO_EVENT", carrier, builders.events_body(builders.dcsa.example("tnt-load-events.json")))

    def issue(self, document: dict[str, Any], carrier: str, issue_to: str, **kw: Any) -> str:
        self.ok("ISSUE", carrier, builders.issue_body(document, issue_to, **kw))
        return builders.ebl_id(document)

    def shipment(self, reference: str, *, carrier: str = "carrier-sh", shipper: str = "sh-exporter",
                 consignee: str | None = "hk-importer", endorsee: str | None = None,
                 container: str = "TSTU1000001", date: str = "2026-03-02",
                 pol: str = "CNSHA", pod: str = "HKHKG") -> str:
        """A LOAD event and the ISSUE of a shipped-on-board document; returns the eBL id."""
        event = builders.load_event(f"load-{reference}", container, pol, f"{date}T08:00:00+08:00")
        self.ok("CARGO_EVENT", carrier, builders.events_body([event]))
        doc = builders.transport_document(reference, carrier_code="HPCS", shipper=shipper, consignee=consignee,
                                          endorsee=endorsee, equipment=[container], port_of_loading=pol,
                                          port_of_discharge=pod, on_board_date=date)
        return self.issue(doc, carrier, shipper, consignee=consignee, endorsee=endorsee)

    def ebl(self, ebl_id: str) -> dict[str, Any]:
        found = queries.ebl(self.ledger, ebl_id)
        assert found is not None
        return found


def example(name: str, reference: str | None = None) -> dict[str, Any]:
    return builders.example_document(name, reference)


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
