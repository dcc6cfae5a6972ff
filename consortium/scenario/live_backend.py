"""Run a scenario on live processes: a real broker, one `consortium node`
process per validator, transactions published over MQTT and read back from
the nodes' SQLite stores, faults injected for real (SIGKILL, SIGSTOP/SIGCONT,
the nodes' network filter files, a broker kill and restart, the consortium
clock file for `advance`)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from consortium import crypto, limits
from consortium.bus import bridge, nemesis, relay
from consortium.bus.broker import Broker, parse_broker_url, start_broker, start_mosquitto
from consortium.bus.endpoint import endpoint, probe_broker
from consortium.client.status import read_status
from consortium.client.submit import publish_tx
from consortium.config import default_members_dir
from consortium.consensus.app import TxResult
from consortium.errors import UserError
from consortium.genesis import DEFAULT_CHAIN_ID
from consortium.home import init_home, load_genesis, load_key, work_dirs
from consortium.ledger.ledger import Ledger
from consortium.node import clock, twins
from consortium.node.launch import NodeProcess, recorded_nodes, run_dir, start_node, stop_pids, wait_ready
from consortium.node.livestore import LiveStore, open_existing
from consortium.node.netfilter import NetFilter, clear_filter, write_filter
from consortium.scenario.expect import Facts, TxOutcome
from consortium.scenario.schema import BROKER_NAMES, Scenario, ScenarioStep
from consortium.scenario.txbuild import TxBuilder
from consortium.sim.recorder import Recorder

# real-time bounds of a live run: limits.scenario_live_*
SIM_ONLY = ("byzantine", "duplicate")


class LiveBackend:
    def __init__(self, sc: Scenario, seed: int, *, broker: str = "embedded", home: Path | None = None,
                 keep_home: bool = False, topology: str | None = None, record: bool | None = None,
                 trace: bool = False) -> None:
        self.sc = sc
        self.broker_spec = broker
        # bridged (consortium.bus.bridge): a broker per jurisdiction, the link relay between them
        self.topology = bridge.check_topology(topology or sc.live.get("topology", "single"))
        self.topo: bridge.Topology | None = None
        self.link_cut = False
        self._own_home = home is None
        # record ([live] record, run --record): every node logs its inputs (node/record.py) to
        # HOME/nodes/<id>/inputs.log for `consortium replay-node`; a temporary home is then kept
        wanted = bool(sc.live.get("record", False) if record is None else record)
        # a traced run records too: its trace reads each node's timeouts and receipts from the logs
        # (scenario/tracing.py from_input_logs); only a wanted recording keeps a temporary home
        self.record_inputs = wanted or trace
        self.keep_home = keep_home or (wanted and home is None)
        self.home = Path(tempfile.mkdtemp(prefix="consortium-live-")) if home is None else home
        self.rd = run_dir(self.home)
        self.broker: Broker | None = None
        self.procs: dict[str, NodeProcess] = {}
        self.twins: list[str] = []  # twin instances (`V~twin`, node/twins.py): a second process per twinned validator
        self._stores: dict[str, LiveStore] = {}
        # everything close() looks at exists before anything can fail
        self.crashed: set[str] = set()
        self.paused: set[str] = set()
        self.blocked: set[tuple[str, str]] = set()  # (receiver, sender)
        self.drop = 0.0
        self.delay_ms = 0
        self.outcomes: dict[str, TxOutcome] = {}
        # MQTT-level faults (consortium.bus.nemesis): nodes whose connection runs through a relay, captured frames
        self.node_relays: dict[str, nemesis.NodeRelay] = {}
        self.captured: nemesis.Captured | None = None
        self.mqtt: dict[str, Any] = {}  # what the MQTT faults did (checks()["mqtt"])
        self._pending: dict[str, tuple[bytes, str, bytes, float]] = {}  # label -> (hash, actor, tx, resend at)
        self._t0 = time.monotonic()
        self._born = self._t0  # before any node starts: older input-log records (a reused home) are not this run's
        self._last_fault_heights: dict[str, int] | None = None
        self.recorder = Recorder()  # what the trace records: filled by _observe(), submit() and fault()
        self.observer: Any = None  # the trace's bus observer (scenario/tracing.py start_observer): per-node steps
        self._seen: dict[str, int] = {}  # node -> last height recorded
        try:
            self._start(sc)
        except UserError as exc:  # stop what started; a temporary home and its logs are gone after close()
            self.close()
            raise UserError(self._without_temp_paths(str(exc))) from None
        except BaseException:  # Ctrl-C or SIGTERM during start-up too: stop what started
            self.close()
            raise

    def _without_temp_paths(self, message: str) -> str:
        """A start-up error must not send the user to a temporary home close() removed."""
        if not self._own_home or self.keep_home or str(self.home) not in message:
            return message
        message = message.replace(f" (logs in {self.rd})", "").replace(str(self.home), "<temporary home>")
        return f"{message} (the temporary home is removed: `run --live --home DIR` keeps the logs)"

    def _start(self, sc: Scenario) -> None:
        init_home(self.home, sc.members_dir or default_members_dir(), DEFAULT_CHAIN_ID, force=True,
                  genesis_time_ms=sc.start_ms)
        self.genesis = load_genesis(self.home)
        ids = [m.id for m in self.genesis.members] + [p.id for p in self.genesis.parties]
        self.keys: dict[str, crypto.KeyPair] = {i: load_key(self.home, i, self.genesis) for i in ids}
        self.validators = [m.id for m in self.genesis.validators]
        self.twins = [twins.twin_instance(t)  # checked before anything starts (one line, exit 2)
                      for t in twins.check_twins(sc.twins, self.genesis, beyond_f=sc.beyond_f, where=sc.source)]
        self._offset_ms = sc.start_ms - _wall_ms()  # ledger time starts at the scenario's start
        clock.write_offset(self.rd, self._offset_ms)
        if self.topology == "bridged":
            if self.broker_spec.startswith("mqtt://"):
                raise UserError(f"the bridged topology starts its own two brokers; --broker {self.broker_spec} "
                                "does not fit")
            self.topo = bridge.start_bridged(self.home, self.rd, detach=False, plan=bridge.NetnsPlan.from_env(),
                                             seed=self.sc.seed)
            self.broker = self.topo.primary
        else:
            self.broker = start_broker(self.broker_spec, home=self.home, run_dir=self.rd)
        probe_broker(endpoint(self.home, self.broker.url))  # an unreachable broker: say so now, start no node
        from consortium.scenario.tracing import start_observer  # the trace's per-node steps, from the start

        self.observer = start_observer(self.home, self.rd, self.broker.url)
        for ident in self._relayed(sc):  # mqtt-duplicate / slow-consumer: the node's connection via its relay
            side = self._side(ident)
            self.node_relays[ident] = nemesis.start_node_relay(
                self.rd, ident, parse_broker_url(self._broker_url(side)),
                netns=self.topo.netns_for(side) if self.topo else None, seed=sc.seed)
        # one by one (an interrupt stops those started); a twin right after its member, so that it signs from
        # height 1 on (started once the chain runs, it would first follow the peers, signing nothing)
        order = [i for v in self.validators for i in (v, *[t for t in self.twins if twins.member_of(t) == v])]
        for i, ident in enumerate(order):
            if i:
                time.sleep(limits.node_start_gap_ms / 1000)
            self.procs[ident] = self._start_node(ident)
        wait_ready(self.home, self.broker.url, self.procs, limits.nodes_ready_wait_ms / 1000)
        if sc.network["loss"]:
            self.drop = sc.network["loss"]
            self._write_filters()
        if any(s.action == "fault" and s.fields["fault"] == "retained-replay" for s in sc.steps):
            self.captured = asyncio.run(nemesis.capture(endpoint(self.home, self._broker.url), self.validators))
            self.mqtt["captured"] = self.captured.count()
        self._t0 = time.monotonic()

    def _relayed(self, sc: Scenario) -> list[str]:
        nodes = {s.fields.get("node") for s in sc.steps
                 if s.action == "fault" and s.fields["fault"] in ("mqtt-duplicate", "slow-consumer")}
        return [v for v in self.validators if v in nodes]

    def _side(self, ident: str) -> str:
        return str(self.genesis.member(twins.member_of(ident)).jurisdiction)  # type: ignore[union-attr]

    def _broker_url(self, side: str) -> str:
        """The broker of jurisdiction `side` (the only one unless bridged)."""
        return self.topo.url_for(side) if self.topo is not None else self._broker.url

    @property
    def _broker(self) -> Broker:
        assert self.broker is not None, "started"
        return self.broker

    def _start_node(self, ident: str) -> NodeProcess:
        """Start a node on its jurisdiction's broker (bridged; in its namespace when placed), through
        its own relay when an MQTT fault needs one."""
        side = self._side(ident)
        url = self.node_relays[ident].url if ident in self.node_relays else self._broker_url(side)
        if self.topo is None:
            return start_node(self.home, ident, url, detach=False, record=self.record_inputs)
        return start_node(self.home, ident, url, detach=False, netns=self.topo.netns_for(side),
                          record=self.record_inputs)

    def _is_link_partition(self, groups: list[list[str]]) -> bool:
        """Bridged: the groups are exactly the jurisdictions (Shanghai | Hong Kong): a cut of the link."""
        if self.topo is None or len(groups) != 2:
            return False
        side = {m.id: str(m.jurisdiction) for m in self.genesis.validators}
        by_side = [{side.get(i) for i in g} for g in groups]
        everyone = {i for g in groups for i in g} == set(self.validators)
        return everyone and all(len(s) == 1 for s in by_side) and by_side[0] != by_side[1]

    # ------------------------------------------------------------ time and heights

    def now_ms(self) -> int:
        return int((time.monotonic() - self._t0) * 1000)

    def wait_until(self, cond: Callable[[], bool], timeout_ms: int) -> bool:
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            self._resend_pending()
            self._observe()
            if cond():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(limits.scenario_live_poll_ms / 1000)

    def wait_ms(self, ms: int) -> None:
        self.wait_until(lambda: False, ms)

    def wait_for_time(self, at_ms: int) -> None:
        if at_ms > self.now_ms():
            self.wait_ms(at_ms - self.now_ms())

    def _store(self, ident: str) -> LiveStore | None:
        s = self._stores.get(ident)
        if s is None:
            s = open_existing(self.home, ident)
            if s is not None:
                self._stores[ident] = s
        return s

    def heights(self) -> dict[str, int]:
        out = {}
        for ident in self.validators:
            s = self._store(ident)
            out[ident] = s.last_height() if s is not None else 0
        return out

    def _observe(self) -> None:
        """Record each node's newly decided heights (its commit, as first seen in its store:
        within limits.scenario_live_poll_ms of the decision) and each height's decision."""
        now = self.now_ms()
        for ident in self._live():
            s = self._store(ident)
            top = s.last_height() if s is not None else 0
            for h in range(self._seen.get(ident, 0) + 1, top + 1):
                d = s.decided(h) if s is not None else None
                if d is None:
                    break
                results = [] if h in self.recorder.heights else self._results(s, d.block.txs)
                self.recorder.commit(now, ident, h, d.certificate.round, d.block.proposer, d.block.id,
                                     d.block.txs, results)
                self._seen[ident] = h

    @staticmethod
    def _results(s: LiveStore | None, txs: tuple[bytes, ...]) -> list[TxResult]:
        out = []
        for tx in txs:
            found = s.tx_result(crypto.digest(tx)) if s is not None else None
            if found is not None:
                out.append(TxResult(crypto.digest(tx), found["code"], found["detail"]))
        return out

    def record(self) -> dict[str, Any]:
        """Heights, node commits, faults, transactions and the business lane (as the simulator's)."""
        from consortium.scenario.tracing import business, from_input_logs, observed, recording

        self._observe()
        nodes = [{"id": m.id, "jurisdiction": str(m.jurisdiction), "power": m.power} for m in self.genesis.validators]
        counts = observed(self.recorder, self.observer, self._t0)
        if self.record_inputs:  # what only each node saw: its timeouts, receipts, commit times
            counts = from_input_logs(self.recorder, self.home, self.validators, self._t0, counts, since=self._born)
        return recording(self.recorder, nodes, self.blocks(), business(self.genesis, self._decided()), counts)

    def _live(self) -> list[str]:
        return [i for i in self.validators if i not in self.crashed and i not in self.paused]

    def min_height(self) -> int:
        h = self.heights()
        return min((h[i] for i in self._live()), default=0)

    # ------------------------------------------------------------ transactions

    def _best_ledger(self) -> Ledger:
        h = self.heights()
        best = max(self._live() or self.validators, key=lambda i: h[i])
        s = self._store(best)
        if s is None:
            return Ledger(self.genesis)
        return s.restore_ledger(self.genesis)

    def _publish(self, actor: str, tx: bytes) -> None:
        ep = endpoint(self.home, self._broker.url, as_member=actor if self.genesis.member(actor) else None)
        asyncio.run(publish_tx(ep, actor, crypto.Signer(self.keys[actor]), tx))

    def _result(self, h: bytes) -> dict[str, Any] | None:
        for ident in self._live():
            s = self._store(ident)
            found = s.tx_result(h) if s is not None else None
            if found is not None:
                return found
        return None

    def submit(self, step: ScenarioStep, tx: bytes) -> None:
        label, actor = step.label, step.fields["as"]
        h = crypto.digest(tx)
        refused = self._best_ledger().check_tx(tx)
        self.recorder.submitted(self.now_ms(), tx)
        self._publish(actor, tx)
        if refused is not None:
            self.outcomes[label] = TxOutcome(refused, 0, "refused before any block")
            return
        self._pending[label] = (h, actor, tx, time.monotonic() + limits.scenario_live_resend_ms / 1000)
        self.outcomes[label] = TxOutcome("PENDING", 0)
        if step.fields.get("wait", True):
            timeout = int(step.fields.get("timeout_ms", limits.scenario_live_step_timeout_ms))
            self.wait_until(lambda: self.settled(label), timeout)

    def settled(self, label: str) -> bool:
        item = self._pending.get(label)
        if item is None:
            return True
        found = self._result(item[0])
        if found is None:
            return False
        self.outcomes[label] = TxOutcome(found["code"], found["height"], found["detail"])
        del self._pending[label]
        return True

    def _resend_pending(self) -> None:
        now = time.monotonic()
        for label, (h, actor, tx, at) in list(self._pending.items()):
            if now >= at:
                self._publish(actor, tx)
                self._pending[label] = (h, actor, tx, now + limits.scenario_live_resend_ms / 1000)

    # ------------------------------------------------------------ faults

    def fault(self, step: ScenarioStep) -> None:
        f = step.fields
        op, node = f["fault"], f.get("node", "")
        if op in SIM_ONLY:
            raise UserError(f"{step.where(self.sc.source)}: fault {op!r} runs on the simulator only")
        self.recorder.fault(self.now_ms(), op, node=node, groups=f.get("groups", ()), value=float(f.get("value", 0)),
                            behaviour=f.get("behaviour", ""), describe=f"{self.now_ms()}:{op}:{node}".rstrip(":"))
        if op == "crash":
            self._signal(node, signal.SIGKILL)
            self.crashed.add(node)
        elif op == "restart":
            self.procs[node] = self._start_node(node)
            self.crashed.discard(node)
            self.paused.discard(node)
        elif op == "pause":
            self._signal(node, signal.SIGSTOP)
            self.paused.add(node)
        elif op == "resume":
            self._signal(node, signal.SIGCONT)
            self.paused.discard(node)
        elif op == "advance":
            self._offset_ms += int(f["value"])
            clock.write_offset(self.rd, self._offset_ms)
        elif op == "broker-restart" and self.topo is not None and BROKER_NAMES[f.get("broker", "sh").lower()] \
                != bridge.PRIMARY:  # bridged: the Hong Kong broker (the bridge reconnects through the link)
            side = BROKER_NAMES[f["broker"].lower()]
            far = self.topo.brokers[side]
            port, site = far.port, far.site
            far.kill()
            self.topo.brokers[side] = start_mosquitto(self.home, bridge.far_run_dir(self.rd, side), port=port,
                                                      site=site)
        elif op == "broker-restart":
            port, site = self._broker.port, self._broker.site
            self._broker.kill()
            if self.topo is not None:  # the Shanghai broker, bridge and all
                self.broker = self.topo.brokers[bridge.PRIMARY] = start_mosquitto(self.home, self.rd, port=port,
                                                                                  site=site)
            else:
                self.broker = start_broker(self.broker_spec, home=self.home, run_dir=self.rd, port=port)
        elif op in ("mqtt-duplicate", "slow-consumer", "retained-replay", "session-takeover"):
            self._mqtt_fault(op, node, f)
        else:
            self._network(op, f)
        self._last_fault_heights = self.heights()

    def _mqtt_fault(self, op: str, node: str, f: dict[str, Any]) -> None:
        """The MQTT-level faults (consortium.bus.nemesis); what each did goes to checks()["mqtt"]."""
        if op == "mqtt-duplicate":
            self.node_relays[node].duplicate(float(f["value"]))
        elif op == "slow-consumer":
            self.node_relays[node].throttle(int(f["value"]))
        elif op == "retained-replay":
            assert self.captured is not None, "captured at start"
            eps = {v: endpoint(self.home, self._broker.url, as_member=v) for v in self.validators}
            self.mqtt["replayed"] = self.mqtt.get("replayed", 0) + asyncio.run(nemesis.replay(eps, self.captured))
        else:
            self.mqtt.setdefault("takeovers", []).append(self._take_over(node, int(
                f.get("value", limits.nemesis_takeover_hold_ms_default))))

    def _take_over(self, node: str, hold_ms: int) -> dict[str, Any]:
        """A second connection under `node`'s client id and credentials; then wait until the node
        reconnected (its status shows one more connection)."""
        status_ep = endpoint(self.home, self._broker.url)

        def bus_info() -> dict[str, Any]:
            st = asyncio.run(read_status(status_ep, {node}, limits.nemesis_status_wait_ms)).get(node)
            return dict(st.info.get("bus", {})) if st is not None else {}

        before = bus_info()
        ep = endpoint(self.home, self._broker_url(self._side(node)), as_member=node)
        asyncio.run(nemesis.take_over(ep, str(before.get("client_id", "")), hold_ms))
        after: dict[str, Any] = {}

        def reconnected() -> bool:
            after.update(bus_info())
            return int(after.get("connections", 0)) > int(before.get("connections", 0))

        noticed = self.wait_until(reconnected, limits.nemesis_reconnect_wait_ms)
        return {"node": node, "client_id": before.get("client_id"), "hold_ms": hold_ms, "reconnected": noticed,
                "connections_before": before.get("connections"), "connections_after": after.get("connections"),
                "client_id_after": after.get("client_id"), "deaf": after.get("deaf", 0)}

    def _network(self, op: str, f: dict[str, Any]) -> None:
        if op == "partition" and f.get("symmetric", True) and self._is_link_partition([list(g) for g in f["groups"]]):
            relay.write_command(self.rd, "cut")  # bridged: Shanghai | Hong Kong is the link, cut at the relay
            self.link_cut = True
            return
        if op == "heal" and self.link_cut:
            relay.write_command(self.rd, "up")
            self.link_cut = False
        if op == "partition":
            groups = [list(g) for g in f["groups"]]
            for i, a in enumerate(groups):
                for j, b in enumerate(groups):
                    if i != j and (f.get("symmetric", True) or j > i):
                        self.blocked.update((rcv, snd) for snd in a for rcv in b)
        elif op == "isolate":
            node = f["node"]
            for other in self.validators:
                if other != node:
                    self.blocked.update({(node, other), (other, node)})
        elif op == "drop":
            self.drop = float(f["value"])
        elif op == "delay":
            self.delay_ms = int(f["value"])
        elif op == "heal":
            self.blocked.clear()
            self.drop, self.delay_ms = 0.0, 0
        self._write_filters()

    def _write_filters(self) -> None:
        for ident in self.validators:
            block = frozenset(snd for rcv, snd in self.blocked if rcv == ident)
            nf = NetFilter(drop=self.drop, delay_ms=self.delay_ms, block=block)
            if nf.active:
                write_filter(self.rd, ident, nf)
            else:
                clear_filter(self.rd, ident)
        time.sleep(2 * limits.netfilter_poll_ms / 1000)  # every node has picked the change up

    def _signal(self, node: str, sig: signal.Signals) -> None:
        proc = self.procs.get(node)
        if proc is None or not proc.alive():
            return
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            return
        if sig == signal.SIGKILL and proc.process is not None:
            proc.process.wait(timeout=limits.node_reap_timeout_ms / 1000)

    # ------------------------------------------------------------ the end

    def finish(self, builder: TxBuilder) -> Facts:
        for label in list(self._pending):
            self.wait_until(lambda label=label: self.settled(label), limits.scenario_live_step_timeout_ms)  # type: ignore[misc]
        top = max(self.heights().values())
        self.wait_until(lambda: self.min_height() >= top, limits.scenario_live_settle_ms)
        live = True
        if self._last_fault_heights is not None:
            before = self._last_fault_heights
            live = self.wait_until(lambda: all(self.heights()[i] > before.get(i, 0) for i in self._live()),
                                   limits.scenario_live_liveness_wait_ms)
        agreement, self._violations = self._agreement()
        self._evidence_at_end = self._evidence_summary()  # the chain runs on: checks() reports this moment's
        return Facts(ledger=self._best_ledger(), txs=dict(self.outcomes), min_height=self.min_height(),
                     agreement=agreement, liveness=live, evidence=self._evidence_at_end["committed"],
                     max_round=self._max_round(),
                     keys=dict(builder.keys))

    def _agreement(self) -> tuple[bool, list[str]]:
        """Every pair of stores, the twins' included, holds the same block and state root at
        every height both hold; and no validator that is not twinned is in committed evidence
        (an honest validator never signs two votes for one height, round and step)."""
        violations: list[str] = []
        stores = {i: s for i in self.validators + self.twins if (s := self._store(i)) is not None}
        top = max((s.last_height() for s in stores.values()), default=0)
        for height in range(1, top + 1):
            seen = {i: info for i, s in stores.items() if (info := s.block_info(height)) is not None}
            if len(set(seen.values())) > 1:
                violations.append(f"agreement: nodes differ at height {height}")
        twinned = {twins.member_of(t) for t in self.twins}
        for d in self._decided():
            for e in d.block.evidence:
                if e.a.validator not in twinned:
                    violations.append(f"double_sign: {e.a.validator} signed two {e.a.kind}s at h={e.a.height} "
                                      f"r={e.a.round} (evidence in block {d.block.height})")
        return not violations, violations

    def _safety_checks(self, violations: list[str]) -> dict[str, Any]:
        """The checks' verdicts split by kind, every store compared, and the evidence committed
        on the chain: how many items, against which validators, where."""
        forks = [v for v in violations if not v.startswith("double_sign")]
        fork = "ok" if not forks else f"FAILED x{len(forks)}"
        double = len(violations) - len(forks)
        return {"checks": {"agreement": fork, "state_root": fork, "double_sign": "ok" if not double
                           else f"FAILED x{double}"}, "stores": self.validators + self.twins,
                "evidence": getattr(self, "_evidence_at_end", None) or self._evidence_summary()}

    def _evidence_summary(self) -> dict[str, Any]:
        items = [(d.block.height, e) for d in self._decided() for e in d.block.evidence]
        return {"committed": len(items), "against": sorted({e.a.validator for _, e in items}),
                "items": [{"block": h, "validator": e.a.validator, "kind": str(e.a.kind), "height": e.a.height,
                           "round": e.a.round} for h, e in items[:limits.live_evidence_listed_max]]}

    def _decided(self) -> list[Any]:
        s = self._store(max(self.validators, key=lambda i: self.heights()[i]))
        if s is None:
            return []
        return [d for d in (s.decided(h) for h in range(1, s.last_height() + 1)) if d is not None]

    def _evidence(self) -> int:
        return sum(len(d.block.evidence) for d in self._decided())

    def _max_round(self) -> int:
        return max((d.certificate.round for d in self._decided()), default=0)

    def blocks(self) -> list[dict[str, Any]]:
        out = []
        for d in self._decided():
            s = self._store(self.validators[0])
            info = s.block_info(d.block.height) if s is not None else None
            root = info[1].hex() if info else ""
            out.append({"height": d.block.height, "block": d.block.id.hex(), "state_root": root})
        return out

    def checks(self) -> dict[str, Any]:
        violations = getattr(self, "_violations", [])
        verdict = "ok" if not violations else f"FAILED x{len(violations)}"
        out = {"ok": not violations, "checks": {"agreement": verdict, "state_root": verdict},
               "violations": violations, "home": str(self.home) if self.keep_home else None,
               "topology": self.topology}
        out.update(self._safety_checks(violations))  # twins: double_sign, every store, the evidence on chain
        if self.mqtt or self.node_relays:  # what the MQTT-level faults did, and each node relay's counters
            out["mqtt"] = {**self.mqtt, "relays": nemesis.describe(self.node_relays)}
        return out

    def trace_digest(self) -> str:
        digest = hashlib.sha256()
        for b in self.blocks():
            digest.update(f"{b['height']}|{b['block']}|{b['state_root']}\n".encode())
        return digest.hexdigest()

    def close(self) -> None:
        """Stop nodes and broker, remove a temporary home. Works from any point of
        start-up (also after a failure or an interrupt there), and is idempotent;
        the home goes even if stopping is interrupted (nodes then follow their
        parent's exit by themselves: --parent-pid)."""
        try:
            if self.observer is not None:
                self.observer.stop()
            for s in self._stores.values():
                s.close()
            self._stores.clear()
            for ident in list(self.paused):
                self._signal(ident, signal.SIGCONT)
            alive = {i: p.pid for i, p in self.procs.items() if p.alive()}
            if self.rd.is_dir():  # a node interrupted between its start and self.procs
                alive.update({i: pid for i, pid in recorded_nodes(self.rd).items() if i not in self.procs})
            if alive:
                stop_pids(alive)
            for p in self.procs.values():
                if p.process is not None:
                    try:
                        p.process.wait(timeout=limits.node_reap_timeout_ms / 1000)
                    except Exception:  # noqa: BLE001 - best effort on the way out
                        p.process.kill()
            for r in self.node_relays.values():
                r.stop()
            if self.topo is not None:
                self.topo.stop()
            elif self.broker is not None:
                self.broker.stop()
        finally:
            if self._own_home and not self.keep_home:
                for d in (self.home, *work_dirs(self.home)):  # init_home's own, if an interrupt left one
                    shutil.rmtree(d, ignore_errors=True)


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000
