"""The rich part of a trace, the same on both back-ends: per height, per node, per
transaction, and the business lane (what each decided transaction did to the eBL,
the letter of credit, the financing or the consent it names).

The business lane is computed after the run by applying the decided blocks, in
order, to a fresh Ledger and reading the state of the named objects after each
block: the simulator and live processes decide the same blocks, so both back-ends
give the same lane without recording anything during the run."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from consortium import limits
from consortium.consensus.app import BlockContext
from consortium.consensus.messages import Decided
from consortium.genesis import Genesis
from consortium.ledger import queries
from consortium.ledger.fields import TxError
from consortium.ledger.ledger import Ledger
from consortium.ledger.tx import decode_tx
from consortium.sim.recorder import STEP_KINDS, TIMEOUT_KINDS, Recorder

if TYPE_CHECKING:
    from consortium.bus.observer import BusObserver

_log = logging.getLogger(__name__)

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
              business_rows: list[dict[str, Any]], counts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Everything the trace writes beyond steps and result, as plain records (`counts`:
    message counters beyond the recorder's, e.g. a live run's `observed()`)."""
    heights = []
    for b in blocks:
        h = dict(rec.heights.get(b["height"], {}))
        h.update(b)  # block id and state root from the back-end's own record
        heights.append(h)
    return {"nodes": nodes, "heights": heights, "node_steps": list(rec.steps), "timeouts": list(rec.timeouts),
            "faults": list(rec.faults), "messages": list(rec.messages), "message_counts": rec.count_records() + (counts or []),
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


# ---------------------------------------------------------------- live runs: the bus observer


def start_observer(home: Any, run_dir: Any, url: str) -> BusObserver:
    """A read-only observer of the consensus traffic on the broker at `url` (bus/observer.py),
    connected as the observer user of a broker this run started (mosquitto: its ACL lets it
    read only the broadcast proposal, prevote, precommit and status topics), else with the
    run's client credentials (embedded or external brokers). It is started and subscribed,
    or still trying (limits.observer_connect_wait_ms): a run does not fail for its trace."""
    from pathlib import Path

    from consortium.bus.broker import OBSERVER_FILE, observer_credentials
    from consortium.bus.endpoint import endpoint
    from consortium.bus.observer import BusObserver

    ep = endpoint(Path(home), url)
    user, password = (observer_credentials(Path(run_dir)) if (Path(run_dir) / OBSERVER_FILE).is_file()
                      else (ep.username, ep.password))
    obs = BusObserver(host=ep.host, port=ep.port, chain_id=ep.chain_id, keys=ep.keys, username=user,
                      password=password)
    obs.start()
    obs.wait_connected(limits.observer_connect_wait_ms)
    return obs


def observed(rec: Recorder, observer: BusObserver | None, t0: float) -> list[dict[str, Any]]:
    """Put what the bus observer saw into `rec`, as the simulator's recorder has it: each
    validator's steps (the first proposal, prevote or precommit it broadcast at a height and
    round, at its arrival at the observer; times in ms since `t0`, the run's start on
    time.monotonic(): frames of the nodes' start-up are before it, negative) and its messages
    (broadcasts: `dst` "*", seen when the observer got them). Returns the message counters:
    per validator and kind the broadcasts it sent (received and dropped per kind are not
    observed: None), and per node (`kind` "all") its own counters from its newest status
    record: frames published, received (past its checks and its network filter) and dropped
    (by its checks, its queue, or its network filter: `dropped_by`)."""
    if observer is None:
        return []
    seen = observer.snapshot()
    names = {str(k): v for k, v in STEP_KINDS.items()}
    for f in sorted(seen.frames, key=lambda f: f.t):
        t_ms = int((f.t - t0) * 1000)
        rec.step(t_ms, f.sender, names[f.kind], f.height, f.round)
        if len(rec.messages) >= rec.messages_max:
            rec.messages_omitted += 1
            continue
        rec.messages.append({"t_ms": t_ms, "src": f.sender, "dst": "*", "kind": f.kind, "height": f.height,
                             "round": f.round, "recv_ms": t_ms, "dropped": False, "due_ms": None})
    rec.messages_omitted += seen.omitted
    rec.steps.sort(key=lambda x: (x["t_ms"], x["node"]))
    counts: list[dict[str, Any]] = [{"node": n, "kind": k, "sent": c, "dropped": None, "received": None,
                                     "source": "observer"} for (n, k), c in sorted(seen.sent.items())]
    for node, info in sorted(seen.status.items()):
        bus: dict[str, Any] = info["bus"] if isinstance(info.get("bus"), dict) else {}
        dropped_by = {str(k): v for k, v in (info.get("dropped") or {}).items() if isinstance(v, int)}
        filtered = info.get("filtered") or {}
        for verdict in ("blocked", "dropped", "delay_overflow"):
            if isinstance(filtered.get(verdict), int) and filtered[verdict]:
                dropped_by[f"filter_{verdict}"] = filtered[verdict]
        lost = sum(v for k, v in dropped_by.items() if k.startswith("filter_"))
        counts.append({"node": node, "kind": "all", "sent": bus.get("published"),
                       "received": max(0, int(bus.get("received") or 0) - lost),
                       "dropped": sum(dropped_by.values()), "dropped_by": dropped_by, "source": "status",
                       "height": info.get("height")})
        by_kind = info.get("filtered_kinds")
        for kind, n in sorted(by_kind.items() if isinstance(by_kind, dict) else ()):  # what its network filter dropped, by kind
            c = next((c for c in counts if c["node"] == node and c["kind"] == kind), None)
            if c is None:
                counts.append({"node": node, "kind": str(kind), "sent": None, "dropped": n, "received": None,
                               "source": "status"})
            elif isinstance(n, int):
                c["dropped"] = n
                c["source"] += "+status"
    return counts


# ---------------------------------------------------------------- live runs: the nodes' input logs


def from_input_logs(rec: Recorder, home: Any, nodes: list[str], t0: float, counts: list[dict[str, Any]],
                    since: float | None = None) -> list[dict[str, Any]]:
    """Add to `rec` what only a node itself sees, from its input log (node/record.py, every boot
    of the node; a traced live run turns recording on): each input's `mono_ms` (the host's
    monotonic clock, as the observer's and the run's `t0`) puts it on the trace's clock.
    - timeouts (propose, prevote, precommit) that mattered, as the simulator's Recorder keeps
      them: the node had not committed the height nor taken, before the timeout, the step it
      stands in for (its own commit from the log; its prevote/precommit as the observer saw it);
    - each frame the node's replica received (past its checks and its network filter) as a
      `msg` record to it: `recv_ms` when the node got it, `t_ms` when the observer saw it
      broadcast (the latest such broadcast up to limits.trace_receipt_match_ms after the
      receipt, at most the receipt time; the receipt time if the observer saw none: a message
      sent to this node alone, or one the observer missed), up to rec.messages_max (then
      counted in messages_omitted);
    - the steps the observer missed (a proposal or vote no observer frame shows: its earliest
      receipt by any node) and each node's commits at the moment it committed (its store is
      only polled): a height's decision time and its transactions' latency follow;
    - per node and kind the frames received (`tx`: transactions handed to the replica),
      merged into `counts` (observed()'s) and returned.
    Records older than `since` (monotonic s: an earlier run in a reused home) are skipped. A
    log that cannot be read to its end gives what was read before (a run never fails for its
    trace)."""
    from pathlib import Path

    from consortium import codec
    from consortium.errors import ConsortiumError
    from consortium.node.record import INPUT_TAGS, LogError, LogReader, log_path, mono_ms_of

    base_ms, start_ms = t0 * 1000, (since or 0.0) * 1000
    got: dict[tuple[str, str], int] = {}
    receipts: list[tuple[int, str, str, str, int, int]] = []  # received at, by, from, kind, height, round
    fired: list[tuple[int, str, str, int, int]] = []  # at, node, kind, height, round
    committed: dict[tuple[str, int], int] = {}  # (node, height) -> when it committed
    for node in nodes:
        path = log_path(Path(home), node)
        if not path.is_file():
            continue
        for k in STEP_KINDS:  # a node with a log received 0 of the consensus kinds it does not list
            got.setdefault((node, str(k)), 0)
        last: int | None = None
        try:
            for _, r in LogReader(path).records():
                tag = r[0]
                if tag == "C":
                    if last is not None and type(r[2]) is int:
                        committed.setdefault((node, r[2]), last)
                    continue
                if tag not in INPUT_TAGS:
                    continue
                mono = mono_ms_of(r)
                if mono < start_ms:
                    last = None
                    continue
                last = t = int(mono - base_ms)
                if tag == "R":
                    env = codec.decode_unverified(r[3])
                    kind = str(env.kind)
                    got[(node, kind)] = got.get((node, kind), 0) + 1
                    h, rnd = _height_round(env.body)
                    receipts.append((t, node, env.sender, kind, h, rnd))
                elif tag == "X":
                    got[(node, "tx")] = got.get((node, "tx"), 0) + 1
                elif tag == "T":
                    fired.append((t, node, str(r[3]), int(r[4]), int(r[5])))
        except (LogError, ConsortiumError, ValueError, TypeError, IndexError) as exc:
            _log.warning("trace: input log %s read up to an error: %s", path, exc)
    _commits_from_logs(rec, committed)
    first: dict[tuple[str, int, int, str], int] = {}
    for st in rec.steps:
        key = (st["node"], st["height"], st["round"], st["step"])
        first[key] = min(first.get(key, st["t_ms"]), st["t_ms"])
    names = {str(k): v for k, v in STEP_KINDS.items()}
    seen_first: dict[tuple[str, int, int, str], int] = {}
    for t, _, src, kind, h, rnd in receipts:
        if kind in names and src in nodes:
            key = (src, h, rnd, names[kind])
            seen_first[key] = min(seen_first.get(key, t), t)
    for key, t in sorted(seen_first.items(), key=lambda x: x[1]):
        if key not in first:  # a step no observer frame shows: when its first receiver got it
            rec.step(t, key[0], key[3], key[1], key[2])
            first[key] = t
    rec.steps.sort(key=lambda x: (x["t_ms"], x["node"]))
    casts: dict[tuple[str, str, int, int], list[int]] = {}
    for m in rec.messages:
        if m["dst"] == "*":
            casts.setdefault((m["src"], m["kind"], m["height"], m["round"]), []).append(m["t_ms"])
    for times in casts.values():
        times.sort()
    for t, dst, src, kind, h, rnd in sorted(receipts):
        if len(rec.messages) >= rec.messages_max:
            rec.messages_omitted += 1
            continue
        sent = casts.get((src, kind, h, rnd), [])
        before = [s for s in sent if s <= t + limits.trace_receipt_match_ms]
        rec.messages.append({"t_ms": min(before[-1], t) if before else t, "src": src, "dst": dst, "kind": kind,
                             "height": h, "round": rnd, "recv_ms": t, "dropped": False, "due_ms": None})
    rec.messages.sort(key=lambda m: m["t_ms"])
    done = {(n, h): t for (n, h, _, step), t in first.items() if step == "commit"}
    after = {"propose": "prevote", "prevote": "precommit"}
    for t, node, kind, h, rnd in sorted(fired):
        if kind not in TIMEOUT_KINDS:
            continue
        if done.get((node, h), t + 1) <= t:  # the node had committed the height (logged before the timer)
            continue
        step = after.get(kind)
        if step is not None and first.get((node, h, rnd, step), t) < t:  # it had taken the step already
            continue
        rec.timeouts.append({"node": node, "t_ms": t, "kind": kind, "height": h, "round": rnd})
    rec.timeouts.sort(key=lambda x: (x["t_ms"], x["node"]))
    return _merge_received(counts, got)


def _height_round(body: Any) -> tuple[int, int]:
    if isinstance(body, dict):
        h, r = body.get("height", 0), body.get("round", 0)
        return (h if isinstance(h, int) else 0, r if isinstance(r, int) else 0)
    return 0, 0


def _commits_from_logs(rec: Recorder, committed: dict[tuple[str, int], int]) -> None:
    """Each node's commit step at the moment its log says it committed (the back-end saw it in
    the node's store up to limits.scenario_live_poll_ms later, or not at all for a node that
    crashed right after), and each height's decision (its first commit) and its transactions'
    decision time and latency with it."""
    steps = {(st["node"], st["height"]): st for st in rec.steps if st["step"] == "commit"}
    for (node, h), t in sorted(committed.items(), key=lambda x: x[1]):
        st = steps.get((node, h))
        if st is None:
            rnd = rec.heights.get(h, {}).get("round", 0)
            rec.step(t, node, "commit", h, rnd)
        elif t < st["t_ms"]:
            st["t_ms"] = t
    first: dict[int, int] = {}
    for (_, h), t in committed.items():
        first[h] = min(first.get(h, t), t)
    for h, info in rec.heights.items():
        at = first.get(h)
        if at is None or at >= info["decided_ms"]:
            continue
        info["decided_ms"] = at
        for tx in rec.txs.values():
            if tx.get("height") == h:
                tx["decided_ms"] = at


def _merge_received(counts: list[dict[str, Any]], got: dict[tuple[str, str], int]) -> list[dict[str, Any]]:
    out = [dict(c) for c in counts]
    index = {(c["node"], c["kind"]): c for c in out if c["kind"] != "all"}
    for (node, kind), n in sorted(got.items()):
        c = index.get((node, kind))
        if c is None:
            c = index[(node, kind)] = {"node": node, "kind": kind, "sent": None, "dropped": None, "received": n,
                                       "source": "input_log"}
            out.append(c)
        else:
            c["received"] = n
            c["source"] = f"{c['source']}+input_log"
    return out
