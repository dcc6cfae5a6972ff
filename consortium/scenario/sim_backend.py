"""Run a scenario on the simulator: the real Ledger on every simulated node,
steps injected at their virtual times or heights, seeded and replayable."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from consortium import crypto, limits
from consortium.consensus.app import Application
from consortium.errors import UserError
from consortium.genesis import Genesis
from consortium.ledger.invariants import check_invariants
from consortium.ledger.ledger import Ledger
from consortium.node.twins import check_twins
from consortium.scenario.expect import Facts, TxOutcome
from consortium.scenario.measure import MeasuredSimulation
from consortium.scenario.schema import Scenario, ScenarioStep
from consortium.scenario.txbuild import TxBuilder
from consortium.sim.core import NodeSpec, SimConfig, Simulation, synthetic_nodes
from consortium.sim.faults import Fault, RoundPartition
from consortium.sim.network import DEFAULT_LINKS, LinkModel
from consortium.sim.recorder import Recorder

if TYPE_CHECKING:
    from consortium.scenario.runner import ScenarioResult


def links_for(network: dict[str, Any]) -> dict[tuple[str, str], LinkModel]:
    links = dict(DEFAULT_LINKS)
    for pair, ms in network["latency_ms"].items():
        a, b = sorted(pair.split("/"))
        jitter = network["jitter_ms"] if network["jitter_ms"] is not None else links.get((a, b), LinkModel(0, 0)).jitter_ms
        links[(a, b)] = LinkModel(ms, jitter)
    if network["jitter_ms"] is not None:
        links = {k: LinkModel(v.latency_ms, network["jitter_ms"]) for k, v in links.items()}
    return links


class SimBackend:
    def __init__(self, sc: Scenario, genesis: Genesis, keys: dict[str, crypto.KeyPair], seed: int) -> None:
        self.sc = sc
        self.genesis = genesis
        specs = [NodeSpec(m.id, m.jurisdiction, m.power) for m in genesis.validators]
        twins = check_twins(sc.twins, genesis, beyond_f=sc.beyond_f, where=sc.source)  # a second instance each

        def app() -> Application:
            return Ledger(genesis)

        def invariants(a: Application) -> list[str]:
            assert isinstance(a, Ledger)
            return check_invariants(a)

        cfg = SimConfig(nodes=specs, seed=seed, heights=1, tx_per_s=0, chain_id=genesis.chain_id,
                        app_factory=app, invariants=invariants, keys=keys, links=links_for(sc.network),
                        params=dict(genesis.params), time_limit_ms=0, genesis_time_ms=genesis.genesis_time_ms,
                        twins=tuple(twins))
        self.sim = MeasuredSimulation(cfg)
        self.sim.recorder = Recorder()  # the rich trace (a scenario is small: recording costs little)
        self.sim.start()
        if sc.network["loss"]:
            self.sim.inject(Fault(0, "drop", value=sc.network["loss"]))
        self.outcomes: dict[str, TxOutcome] = {}
        self._pending: dict[str, bytes] = {}  # steps with wait = false
        self.log: list[dict[str, Any]] = []

    @property
    def reference(self) -> Ledger:
        ref = self.sim.checkers.reference
        assert isinstance(ref, Ledger)
        return ref

    def now_ms(self) -> int:
        return self.sim.now

    def min_height(self) -> int:
        return self.sim.min_height()

    def wait_until(self, cond: Callable[[], bool], timeout_ms: int) -> bool:
        if cond():
            return True
        return self.sim.run_until(cond, limit_ms=self.sim.now + timeout_ms)

    def wait_ms(self, ms: int) -> None:
        self.sim.run_until(at_ms=self.sim.now + ms, limit_ms=self.sim.now + ms)

    def wait_for_time(self, at_ms: int) -> None:
        if at_ms > self.sim.now:
            self.sim.run_until(at_ms=at_ms, limit_ms=at_ms)

    def submit(self, step: ScenarioStep, tx: bytes) -> None:
        label = step.label
        refused = self.reference.check_tx(tx)  # what every node's mempool will say
        self.sim.submit(tx)
        h = crypto.digest(tx)
        if refused is not None:
            self.outcomes[label] = TxOutcome(refused, 0, "refused before any block")
            return
        if not step.fields.get("wait", True):
            self.outcomes[label] = TxOutcome("PENDING", 0)
            self._pending[label] = h
            return
        timeout = int(step.fields.get("timeout_ms", limits.scenario_sim_step_timeout_ms))
        self.wait_until(self._decided(h), timeout)
        self._record(label, h)

    def settled(self, label: str) -> bool:
        """True once the tx of step `label` (sent with wait = false) is decided."""
        h = self._pending.get(label)
        if h is None:
            return True
        if h not in self.sim.checkers.tx_results:
            return False
        self._record(label, h)
        del self._pending[label]
        return True

    def _decided(self, tx_hash: bytes) -> Callable[[], bool]:
        return lambda: tx_hash in self.sim.checkers.tx_results

    def _record(self, label: str, h: bytes) -> None:
        got = self.sim.checkers.tx_results.get(h)
        self.outcomes[label] = TxOutcome(got[1], got[0], got[2]) if got else TxOutcome("PENDING", 0, "not decided")

    def fault(self, step: ScenarioStep) -> None:
        f = step.fields
        op = f["fault"]
        if op == "broker-restart":
            raise UserError(f"{step.where(self.sc.source)}: broker-restart is a live-only fault "
                            "(set backends = [\"live\"])")
        groups = tuple(tuple(g) for g in f.get("groups", ()))
        self.sim.inject(Fault(self.sim.now, op, node=f.get("node", ""), groups=groups,
                              symmetric=f.get("symmetric", True), value=float(f.get("value", 0.0)),
                              behaviour=f.get("behaviour", "")))

    def finish(self, builder: TxBuilder) -> Facts:
        for label in list(self._pending):
            self.wait_until(lambda label=label: self.settled(label), limits.scenario_sim_step_timeout_ms)  # type: ignore[misc]
            if label in self._pending:
                self._record(label, self._pending.pop(label))
        top = max(n.height for n in self.sim.nodes.values())
        self.wait_until(lambda: self.min_height() >= top, limits.scenario_sim_settle_ms)
        if self.sim.liveness_expected() and (self.sc.steps and any(s.action == "fault" for s in self.sc.steps)):
            self.wait_until(self.sim.liveness_met, self.sim.liveness_bound_ms())
        r = self.sim.finish()
        return Facts(ledger=self.reference, txs=dict(self.outcomes), min_height=self.min_height(),
                     agreement=r.checks["checks"]["agreement"] == "ok" and r.checks["checks"]["state_root"] == "ok",
                     liveness=self.sim.liveness_met(), evidence=r.evidence_committed, max_round=r.max_round,
                     keys=dict(builder.keys))

    def blocks(self) -> list[dict[str, Any]]:
        c = self.sim.checkers
        return [{"height": h, "block": c.decided[h].hex(), "state_root": c.roots[h].hex()}
                for h in sorted(c.roots)]

    def checks(self) -> dict[str, Any]:
        return self.sim.checkers.summary()

    def trace_digest(self) -> str:
        return self.sim.trace_digest()

    def stats(self) -> dict[str, Any]:
        return self.sim.stats()

    def record(self) -> dict[str, Any]:
        """Heights, node steps, timeouts, faults, messages, transactions and the business lane."""
        from consortium.scenario.tracing import business, recording

        assert self.sim.recorder is not None
        top = max(self.sim.nodes.values(), key=lambda n: n.height)
        return recording(self.sim.recorder, sim_nodes(self.sim), self.blocks(),
                         business(self.genesis, top.store.decided))


# ------------------------------------------------------------------ [sim]: a synthetic consortium


def sim_nodes(sim: Simulation) -> list[dict[str, Any]]:
    """The validators as a trace header lists them: id, jurisdiction, voting power."""
    return [{"id": s.id, "jurisdiction": str(s.jurisdiction), "power": s.power} for s in sim.cfg.nodes]


def synthetic_config(sc: Scenario, seed: int) -> SimConfig:
    """The simulator run a [sim] scenario describes: its fault steps scheduled up front at
    their virtual times (as `consortium explore` ran them, so the replay is exact)."""
    assert sc.sim is not None
    s = sc.sim
    faults = [Fault(0, "drop", value=sc.network["loss"])] if sc.network["loss"] else []
    for step in sc.steps:
        f = step.fields
        assert step.at_ms is not None
        faults.append(Fault(step.at_ms, f["fault"], node=f.get("node", ""),
                            groups=tuple(tuple(g) for g in f.get("groups", ())),
                            symmetric=f.get("symmetric", True), value=float(f.get("value", 0.0)),
                            behaviour=f.get("behaviour", "")))
    return SimConfig(nodes=synthetic_nodes(s["nodes"], list(s["powers"])), seed=seed, heights=s["heights"],
                     byzantine={k: v for k, v in s["byzantine"].items() if v != "none"}, faults=faults,
                     tx_per_s=s["tx_per_s"], links=links_for(sc.network),
                     targets={k: tuple(v) for k, v in s.get("targets", {}).items()},
                     twins=tuple(s.get("twins", ())),
                     round_partitions=tuple(RoundPartition(p["height"], p["round"], p["step"],
                                                           tuple(tuple(g) for g in p["groups"]))
                                            for p in s.get("round_partitions", ())))


def run_synthetic(sc: Scenario, seed: int, progress: Callable[[int, int, str], None] | None = None,
                  record: bool = False) -> ScenarioResult:
    """Run a [sim] scenario to its end; the checkers' verdict decides, with any consensus expectations."""
    from consortium.scenario.expect import evaluate
    from consortium.scenario.runner import ScenarioResult

    sim = MeasuredSimulation(synthetic_config(sc, seed))
    if record:
        sim.recorder = Recorder()
    r = sim.run(None if progress is None else (lambda h, n: progress(h, n, f"height {h}")))
    events = [{"step": st.label, "action": "fault", "at_ms": st.at_ms, "done_ms": st.at_ms,
               "fault": st.fields["fault"], "node": st.fields.get("node", "")} for st in sc.steps]
    c = sim.checkers
    blocks = [{"height": h, "block": c.decided[h].hex(), "state_root": c.roots[h].hex()} for h in sorted(c.roots)]
    checks = r.checks["checks"]
    facts = Facts(ledger=None, txs={}, min_height=sim.min_height(),  # type: ignore[arg-type]
                  agreement=checks["agreement"] == "ok" and checks["state_root"] == "ok",
                  liveness=sim.liveness_met(), evidence=r.evidence_committed, max_round=r.max_round)
    rows = evaluate(sc.expects, facts, lambda v: v)
    final = {"height": sim.min_height(), "agreement": facts.agreement, "heights": r.heights,
             "liveness": r.liveness, "evidence": r.evidence_committed}
    out = ScenarioResult(sc.name, "sim", seed, rows, events, blocks, sim.checkers.summary(), r.trace_digest,
                         final=final, stats=sim.stats())
    if sim.recorder is not None:
        from consortium.scenario.tracing import recording

        out.record = recording(sim.recorder, sim_nodes(sim), blocks, [])
    return out
