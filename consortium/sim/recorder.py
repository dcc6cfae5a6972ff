"""What a trace records beyond the digest: per height its decision, per node its
steps, timeouts, faults and messages, per transaction its submit and decision.

A `Recorder` is attached to a Simulation (`Simulation.recorder`, None by default:
the simulator then records nothing and runs as fast as before, with the same trace
digest). The live scenario back-end fills one from what it observes, so both
back-ends write the same trace lines (consortium.scenario.runner.write_trace).
Times are ms since the start of the run (virtual on the simulator)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from consortium import codec, crypto, limits
from consortium.codec import Kind

#: the consensus steps a lane shows; each is recorded once per (node, height, round)
STEP_KINDS = {Kind.PROPOSAL: "propose", Kind.PREVOTE: "prevote", Kind.PRECOMMIT: "precommit"}
#: the timeouts worth a mark (commit/retransmit/sync timers fire all the time and only are counted)
TIMEOUT_KINDS = ("propose", "prevote", "precommit")


def _hr(body: Any) -> tuple[int, int]:
    if isinstance(body, dict):
        h, r = body.get("height", 0), body.get("round", 0)
        return (h if isinstance(h, int) else 0, r if isinstance(r, int) else 0)
    return 0, 0


@dataclass
class Recorder:
    messages_max: int = limits.trace_messages_max
    steps: list[dict[str, Any]] = field(default_factory=list)  # node, t_ms, height, round, step
    timeouts: list[dict[str, Any]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    heights: dict[int, dict[str, Any]] = field(default_factory=dict)  # first commit of each height
    txs: dict[str, dict[str, Any]] = field(default_factory=dict)  # tx hash (hex) -> submit/decision
    messages: list[dict[str, Any]] = field(default_factory=list)  # one by one, up to messages_max
    counts: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (node, kind) -> sent, dropped, received
    messages_omitted: int = 0
    _last_step: dict[tuple[str, int, int, str], int] = field(default_factory=dict)
    _frames: dict[bytes, list[Any]] = field(default_factory=dict)  # frame in flight -> kind, deliveries due
    _pending: dict[tuple[bytes, str], list[dict[str, Any]]] = field(default_factory=dict)  # (frame, dst) -> msgs

    # ------------------------------------------------------------ hooks (the simulator calls these)

    def step(self, t_ms: int, node: str, step: str, height: int, rnd: int) -> None:
        """A node entered a step (it signed a proposal/vote, or committed) at (height, round)."""
        key = (node, height, rnd, step)
        if key in self._last_step:
            return  # a retransmission, not a new step
        self._last_step[key] = t_ms
        self.steps.append({"node": node, "t_ms": t_ms, "height": height, "round": rnd, "step": step})

    def sent(self, t_ms: int, src: str, dst: str, env: codec.Envelope, frame: bytes, delays: list[int]) -> None:
        """One frame from src to dst, arriving after each of `delays` ms ([]: the network lost or cut it)."""
        kind = str(env.kind)
        h, r = _hr(env.body)
        if env.kind in STEP_KINDS and env.sender == src:
            self.step(t_ms, src, STEP_KINDS[env.kind], h, r)
        c = self._count(src, kind)
        c[0] += 1
        if not delays:
            c[1] += 1
        else:
            due = self._frames.setdefault(frame, [kind, 0])
            due[1] += len(delays)
        if len(self.messages) >= self.messages_max:
            self.messages_omitted += 1
            return
        planned: list[int | None] = list(delays) or [None]
        for d in planned:
            m = {"t_ms": t_ms, "src": src, "dst": dst, "kind": kind, "height": h, "round": r,
                 "recv_ms": None, "dropped": d is None, "due_ms": None if d is None else t_ms + d}
            self.messages.append(m)
            if d is not None:
                self._pending.setdefault((frame, dst), []).append(m)

    def received(self, t_ms: int, dst: str, frame: bytes) -> None:
        known = self._frames.get(frame)
        if known is None:
            return
        self._count(dst, known[0])[2] += 1
        known[1] -= 1
        if known[1] <= 0:
            del self._frames[frame]  # every copy arrived (frames to a crashed node stay: few)
        waiting = self._pending.get((frame, dst))
        if waiting:
            waiting.pop(0)["recv_ms"] = t_ms
            if not waiting:
                del self._pending[(frame, dst)]

    def timeout(self, t_ms: int, node: str, kind: str, height: int, rnd: int) -> None:
        """A timer fired; recorded only if it still mattered: the node had not yet taken the
        step the timeout stands in for (prevote after propose, precommit after prevote) nor
        committed the height (a stale timer is ignored by the replica, and here)."""
        if kind not in TIMEOUT_KINDS or (node, height, -1, "commit") in self._last_step:
            return
        if kind == "propose" and (node, height, rnd, "prevote") in self._last_step:
            return
        if kind == "prevote" and (node, height, rnd, "precommit") in self._last_step:
            return
        self.timeouts.append({"node": node, "t_ms": t_ms, "kind": kind, "height": height, "round": rnd})

    def fault(self, t_ms: int, op: str, *, node: str = "", groups: Any = (), value: float = 0.0,
              behaviour: str = "", describe: str = "") -> None:
        self.faults.append({"t_ms": t_ms, "op": op, "node": node, "groups": [list(g) for g in groups],
                            "value": value, "behaviour": behaviour, "describe": describe})

    def commit(self, t_ms: int, node: str, height: int, rnd: int, proposer: str, block_id: bytes,
               txs: tuple[bytes, ...], results: Any, honest: bool = True) -> None:
        """A node committed a height; the first honest commit is the height's decision."""
        self.step(t_ms, node, "commit", height, rnd)
        self._last_step[(node, height, -1, "commit")] = t_ms
        if not honest or height in self.heights:
            return
        self.heights[height] = {"height": height, "decided_ms": t_ms, "round": rnd, "proposer": proposer,
                                "txs": len(txs), "bytes": sum(len(t) for t in txs), "block": block_id.hex()}
        for res in results:
            rec = self.txs.setdefault(res.tx_hash.hex(), {"hash": res.tx_hash.hex(), "submit_ms": None})
            if rec.get("height") is None:
                rec.update(height=height, decided_ms=t_ms, code=res.code, detail=res.detail)

    def submitted(self, t_ms: int, tx: bytes) -> None:
        h = crypto.digest(tx).hex()
        rec = self.txs.setdefault(h, {"hash": h, "submit_ms": t_ms})
        if rec.get("submit_ms") is None:
            rec["submit_ms"] = t_ms

    # ------------------------------------------------------------ output

    def _count(self, node: str, kind: str) -> list[int]:
        c = self.counts.get((node, kind))
        if c is None:
            c = self.counts[(node, kind)] = [0, 0, 0]
        return c

    def tx_records(self) -> list[dict[str, Any]]:
        """Every transaction seen: submit and decision time, height, outcome code, latency."""
        out = []
        for rec in self.txs.values():
            r = {"hash": rec["hash"], "submit_ms": rec.get("submit_ms"), "decided_ms": rec.get("decided_ms"),
                 "height": rec.get("height"), "code": rec.get("code", "PENDING"), "detail": rec.get("detail", "")}
            sub, dec = r["submit_ms"], r["decided_ms"]
            r["latency_ms"] = dec - sub if sub is not None and dec is not None else None
            out.append(r)
        out.sort(key=lambda r: (r["submit_ms"] if r["submit_ms"] is not None else -1, r["hash"]))
        return out

    def count_records(self) -> list[dict[str, Any]]:
        return [{"node": n, "kind": k, "sent": c[0], "dropped": c[1], "received": c[2]}
                for (n, k), c in sorted(self.counts.items())]
