"""The rich part of a trace, the same on both back-ends: per height, per node, per
transaction, and the business lane (what each decided transaction did to the eBL,
the letter of credit, the financing or the consent it names).

The business lane is computed after the run by applying the decided blocks, in
order, to a fresh Ledger and reading the state of the named objects after each
block: the simulator and live processes decide the same blocks, so both back-ends
give the same lane without recording anything during the run."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from consortium.consensus.app import BlockContext
from consortium.consensus.messages import Decided
from consortium.genesis import Genesis
from consortium.ledger import queries
from consortium.ledger.fields import TxError
from consortium.ledger.ledger import Ledger
from consortium.ledger.tx import decode_tx
from consortium.sim.recorder import Recorder

#: which lane of the business timeline a transaction kind belongs to
LANES = {"ebl": ("ISSUE", "TRANSFER", "ENDORSE", "ENDORSE_TO_ORDER", "BLANK_ENDORSE", "SIGN",
                 "SURRENDER_FOR_DELIVERY", "SURRENDER_FOR_AMENDMENT", "SACC", "SREJ", "VOID", "PLEDGE",
                 "RELEASE", "TRUST_RECEIPT", "CARGO_EVENT"),
         "lc": ("LC_ISSUE", "LC_ADVISE", "LC_AMEND", "LC_AMEND_ACCEPT", "LC_AMEND_REJECT", "LC_PRESENT",
                "LC_HONOUR", "LC_REFUSE", "LC_WAIVE"),
         "financing": ("FIN_REQUEST", "FIN_APPROVE", "FIN_DECLINE", "FIN_REPAY"),
         "data": ("DATA_ATTEST", "CONSENT_GRANT", "CONSENT_REVOKE", "DATA_SHARE"),
         "payment": ("TOKEN_ISSUE", "TOKEN_REDEEM", "PAY", "INTERBANK_SETTLE", "DVP_OFFER", "DVP_CANCEL", "DVP")}
LANE_OF = {k: lane for lane, kinds in LANES.items() for k in kinds}


def business(genesis: Genesis, decided: Iterable[Decided]) -> list[dict[str, Any]]:
    """One record per transaction in the decided blocks: height, kind, actor, outcome
    code, the objects it names and their state after its block (eBL status and
    possessor, LC status, presentation status and examination deadline, financing
    status, consent status)."""
    ledger = Ledger(genesis)
    out: list[dict[str, Any]] = []
    for d in decided:
        b = d.block
        results = ledger.apply_block(BlockContext(b.height, b.time_ms, b.proposer), b.txs)
        for raw, res in zip(b.txs, results, strict=True):
            rec: dict[str, Any] = {"hash": res.tx_hash.hex(), "height": b.height, "code": res.code,
                                   "detail": res.detail, "ledger_time_ms": b.time_ms}
            try:
                tx = decode_tx(raw)
            except TxError:
                rec.update(kind="?", actor="?", lane="other")
                out.append(rec)
                continue
            rec.update(kind=tx.kind, actor=tx.actor, lane=LANE_OF.get(tx.kind, "other"))
            rec.update(_objects(ledger, tx.kind, tx.body))
            out.append(rec)
    return out


def _objects(ledger: Ledger, kind: str, body: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ebl_id = body.checksum if kind == "ISSUE" else getattr(body, "ebl", None)
    if isinstance(ebl_id, str):
        e = queries.ebl(ledger, ebl_id)
        out["ebl"] = ebl_id
        if e is not None:
            out.update(ebl_status=e.get("status"), possessor=e.get("possessor"), pledgee=e.get("pledgee"))
    lc_id = getattr(body, "lc_id", None)
    if isinstance(lc_id, str):
        out["lc"] = lc_id
        lc = queries.lc(ledger, lc_id)
        if lc is not None:
            out["lc_status"] = lc.get("status")
            pid = getattr(body, "presentation_id", None)
            if isinstance(pid, str):
                out["presentation"] = pid
            for p in lc.get("presentation_records", []):
                if p.get("presentation_id") == pid:
                    out.update(presentation=pid, presentation_status=p.get("status"),
                               presented_date=p.get("presented_date"), deemed_date=p.get("deemed_date"),
                               deadline=p.get("deadline"), discrepancies=list(p.get("discrepancies", [])))
    fin_id = getattr(body, "fin_id", None) or (getattr(body, "financing", None) if kind == "PLEDGE" else None)
    if isinstance(fin_id, str):
        out["financing"] = fin_id
        f = queries.financing(ledger, fin_id)
        if f is not None:
            out["financing_status"] = f.get("status")
    data_id = getattr(body, "data_id", None)
    if isinstance(data_id, str):
        out["data"] = data_id
        grantee = getattr(body, "grantee", None) or getattr(body, "recipient", None)
        purpose = getattr(body, "purpose", None)
        if isinstance(grantee, str) and isinstance(purpose, str):
            c = queries.consent(ledger, data_id, grantee, purpose)
            out.update(grantee=grantee, purpose=purpose,
                       consent_status=c.get("status") if c is not None else None)
    return out


def recording(rec: Recorder, nodes: list[dict[str, Any]], blocks: list[dict[str, Any]],
              business_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything the trace writes beyond steps and result, as plain records."""
    heights = []
    for b in blocks:
        h = dict(rec.heights.get(b["height"], {}))
        h.update(b)  # block id and state root from the back-end's own record
        heights.append(h)
    return {"nodes": nodes, "heights": heights, "node_steps": list(rec.steps), "timeouts": list(rec.timeouts),
            "faults": list(rec.faults), "messages": list(rec.messages), "message_counts": rec.count_records(),
            "messages_omitted": rec.messages_omitted, "txs": rec.tx_records(), "business": business_rows}


def write_sim_trace(path: Any, command: dict[str, Any], sim: Any, result: Any) -> None:
    """The trace of a `consortium sim` run (same format as a scenario's; the header holds
    the command's arguments instead of a scenario, so it is a record, not replayable)."""
    from consortium.scenario.runner import TRACE_VERSION, write_lines
    from consortium.scenario.sim_backend import sim_nodes

    rec = sim.recorder
    assert rec is not None, "a Recorder was attached before the run"
    c = sim.checkers
    blocks = [{"height": h, "block": c.decided[h].hex(), "state_root": c.roots[h].hex()} for h in sorted(c.roots)]
    nodes = sim_nodes(sim)
    header = {"version": TRACE_VERSION, "kind": "sim", "scenario": "sim", "backend": "sim",
              "seed": sim.cfg.seed, "command": command, "nodes": nodes, "clock": "virtual",
              "byzantine": dict(sim.cfg.byzantine)}
    record = recording(rec, nodes, blocks, [])
    heights = {h["height"]: h for h in record["heights"]}
    out = result.to_dict()
    write_lines(path, header, [], [heights.get(b["height"], b) for b in blocks], record,
                {"ok": result.ok, "checks": {k: out[k] for k in ("ok", "checks", "violations") if k in out},
                 "trace_digest": result.trace_digest, "virtual_ms": result.virtual_ms})
