"""Scenario files (TOML): the consortium, the network, timed or height-triggered
steps, and expectations. Every problem is a UserError naming the file, the step
(or expectation) and the field.

    name = "lc-happy-path"
    description = "..."
    seed = 7
    backends = ["sim", "live"]            # where it can run (default both)
    [consortium]  members = "nodes"       # default: the repository's nodes/
    [network]     latency_ms = {"CN-SH/HK" = 30}   jitter_ms = 5   loss = 0.0

    [[step]]  label = "issue"  at_ms = 1000  as = "carrier-sh"  tx = "ISSUE"
              document = "example:transport-document-to-order.json"  reference = "R1"
              issue_to = "sh-exporter"  save = "bl"
    [[step]]  after_height = 5  fault = "crash"  node = "carrier-sh"
    [[step]]  wait_ms = 3000
    [[expect]] what = "ebl"  id = "${bl}"  status = "SURRENDERED"  possessor = "carrier-sh"

See docs/SCENARIOS.md for every step and expectation kind.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consortium import limits
from consortium.errors import UserError
from consortium.genesis import DEFAULT_GENESIS_TIME_MS
from consortium.scenario.shapes import KINDS, path_problem
from consortium.sim.byzantine import BEHAVIOURS
from consortium.sim.faults import STEPS, twin_of

FAULTS = ("crash", "restart", "pause", "resume", "isolate", "partition", "heal", "drop", "duplicate",
          "delay", "byzantine", "advance", "broker-restart", "skew", "rollback",
          "mqtt-duplicate", "retained-replay", "slow-consumer", "session-takeover")
EXPECT_KINDS = ("ebl", "ebl_ref", "lc", "financing", "consent", "data", "party", "collateral", "tx",
                "consensus", "share", "account", "dvp")
_TOP = {"name", "description", "seed", "start", "backends", "consortium", "network", "step", "expect", "sim", "live",
        "twins", "beyond_f"}
#: [live]: how live runs are deployed (`topology`: "single" broker, or "bridged": a Shanghai and a Hong Kong
#: broker joined by the link relay, where a Shanghai | Hong Kong partition cuts the link; consortium.bus.bridge)
_LIVE = {"topology", "record"}  # record = true: every node logs its inputs (node/record.py, replay-node)
LIVE_TOPOLOGIES = ("single", "bridged")
#: [sim]: a synthetic simulator consortium (what `consortium explore` writes; see _sim)
_SIM = {"nodes", "powers", "heights", "tx_per_s", "byzantine", "targets", "twins", "round_partitions"}
_ROUND_PARTITION = {"height", "round", "step", "groups"}
SIM_ONLY_FAULTS = ("skew", "rollback")
#: faults at the MQTT level (consortium.bus.nemesis): the simulator has no broker
LIVE_ONLY_FAULTS = ("mqtt-duplicate", "retained-replay", "slow-consumer", "session-takeover")
#: `broker` of a broker-restart (bridged topology: which jurisdiction's broker; default Shanghai's)
BROKER_NAMES = {"cn-sh": "CN-SH", "sh": "CN-SH", "hk": "HK"}
_STEP_ACTIONS = ("tx", "fault", "wait_ms", "wait_height", "wait_for")
_STEP_COMMON = {"label", "at_ms", "after_height", "note"}
_TX_FIELDS = {"tx", "as", "body", "document", "reference", "issue_to", "consignee", "endorsee", "supersedes",
              "save", "payload", "wait", "timeout_ms", "unchecked", "forge", "new_party_key"}
_FAULT_FIELDS = {"fault", "node", "groups", "symmetric", "value", "behaviour", "broker"}
#: the fields each fault takes besides `fault` (and the common step fields)
_FAULT_ARGS: dict[str, set[str]] = {
    "crash": {"node"}, "restart": {"node"}, "pause": {"node"}, "resume": {"node"}, "isolate": {"node"},
    "partition": {"groups", "symmetric"}, "heal": set(), "drop": {"value"}, "duplicate": {"value"},
    "delay": {"value"}, "byzantine": {"node", "behaviour"}, "advance": {"value"}, "broker-restart": {"broker"},
    "skew": {"node", "value"}, "rollback": {"node", "value"},
    "mqtt-duplicate": {"node", "value"}, "retained-replay": set(), "slow-consumer": {"node", "value"},
    "session-takeover": {"node", "value"}}
assert set(_FAULT_ARGS) == set(FAULTS) and set().union(*_FAULT_ARGS.values()) == _FAULT_FIELDS - {"fault"}
#: tx step fields that only some kinds use (txbuild's helpers); elsewhere they would be ignored
_TX_KIND_FIELDS = {**dict.fromkeys(("document", "reference", "issue_to", "consignee", "endorsee", "supersedes",
                                    "save"), ("ISSUE",)),
                   "payload": ("DATA_ATTEST", "DATA_SHARE"), "new_party_key": ("REGISTER_PARTY",)}
_NETWORK = {"latency_ms", "jitter_ms", "loss"}
_CONSORTIUM = {"members"}
_CONSENSUS_FACTS = {"min_height", "agreement", "liveness", "evidence_min", "max_round_max"}
_TX_EXPECT = {"step", "code", "height_min"}
_SHARE_EXPECT = {"id", "readable_by", "not_readable_by"}
_CONSENT_META = {"data_id", "grantee", "purpose"}  # name the consent record; every other field is compared


@dataclass(frozen=True, slots=True)
class ScenarioStep:
    index: int
    label: str
    action: str  # tx | fault | wait_ms | wait_height
    at_ms: int | None
    after_height: int | None
    fields: dict[str, Any]

    def where(self, source: str) -> str:
        return f"{source}: step {self.index + 1} ({self.label})"


@dataclass(frozen=True, slots=True)
class Expect:
    index: int
    what: str
    fields: dict[str, Any]

    @property
    def label(self) -> str:
        ident = self.fields.get("id") or self.fields.get("step") or ""
        return f"{self.what} {ident}".strip()


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    source: str
    seed: int
    backends: tuple[str, ...]
    start_ms: int  # ledger time at genesis (block time starts here)
    members_dir: Path | None
    network: dict[str, Any]
    steps: tuple[ScenarioStep, ...]
    expects: tuple[Expect, ...]
    text: str = field(repr=False, default="")  # the file as read, kept in traces for replay
    sim: dict[str, Any] | None = None  # [sim]: a synthetic consortium on the simulator's KV app (see _sim)
    live: dict[str, Any] = field(default_factory=dict)  # [live]: deployment of live runs (_LIVE)
    #: twins = ["nticbc"]: validators run twice under one key (simulator: a second instance; live: a
    #: second OS process, node/twins.py); beyond_f = true lets them hold more than f of the power
    twins: tuple[str, ...] = ()
    beyond_f: bool = False


def load(path: Path) -> Scenario:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot read scenario ({exc.__class__.__name__})") from None
    return parse(text, source=str(path), base=path.parent)


def parse(text: str, *, source: str, base: Path) -> Scenario:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{source}: not valid TOML ({exc})") from None
    _no_unknown(data, _TOP, f"{source}:", "top-level field")
    name = _req(data, "name", str, source)
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise UserError(f"{source}: field 'seed' must be a whole number >= 0")
    backends = tuple(data.get("backends", ["sim", "live"]))
    if not backends or any(b not in ("sim", "live") for b in backends):
        raise UserError(f"{source}: field 'backends' must list 'sim' and/or 'live'")
    members = _consortium(data, source)
    members_dir = None if members in (None, "nodes") else (base / str(members)).resolve()
    steps = tuple(_step(i, s, source) for i, s in enumerate(_tables(data, "step", source)))
    labels = [s.label for s in steps]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise UserError(f"{source}: step label {dup[0]!r} is used twice")
    for st in steps:
        if st.action == "wait_for" and st.fields["wait_for"] not in labels[: st.index]:
            raise UserError(f"{st.where(source)}: field 'wait_for' names no earlier step "
                            f"({st.fields['wait_for']!r})")
    expects = tuple(_expect(i, e, source, set(labels)) for i, e in enumerate(_tables(data, "expect", source)))
    for st in steps:
        if st.action == "fault" and st.fields["fault"] in SIM_ONLY_FAULTS and "live" in backends:
            raise UserError(f"{st.where(source)}: a {st.fields['fault']} fault runs on the simulator only "
                            "(set backends = [\"sim\"])")
        if st.action == "fault" and st.fields["fault"] in LIVE_ONLY_FAULTS and "sim" in backends:
            raise UserError(f"{st.where(source)}: a {st.fields['fault']} fault is an MQTT fault and runs on live "
                            "processes only (set backends = [\"live\"])")
    sim = _sim(data, source, backends, steps, expects) if "sim" in data else None
    sc = Scenario(name=name, description=str(data.get("description", "")), source=source, seed=seed,
                  backends=backends, start_ms=_start(data, source), members_dir=members_dir,
                  network=_network(data, source), steps=steps, expects=expects, text=text, sim=sim,
                  live=_live(data, source), **_twins(data, source))
    check_liveness(sc)
    return sc


def _twins(data: dict[str, Any], source: str) -> dict[str, Any]:
    """Top-level `twins = ["nticbc"]` (and `beyond_f = true`) for a consortium scenario, on
    both back-ends; a [sim] consortium names its twins in [sim]. Whether they are validators
    and within f is checked against the genesis (node.twins.check_twins) before a run starts."""
    twins, beyond = data.get("twins", []), data.get("beyond_f", False)
    if not (isinstance(twins, list) and all(isinstance(t, str) and t for t in twins)):
        raise UserError(f"{source}: field 'twins' must be a list of validator ids")
    dup = sorted({t for t in twins if twins.count(t) > 1})
    if dup:
        raise UserError(f"{source}: field 'twins' names {dup[0]!r} twice")
    if not isinstance(beyond, bool):
        raise UserError(f"{source}: field 'beyond_f' must be true or false")
    if "beyond_f" in data and not twins:
        raise UserError(f"{source}: field 'beyond_f' applies to 'twins' only, and there are none")
    if twins and "sim" in data:
        raise UserError(f"{source}: a [sim] consortium names its twins in [sim] (field 'twins' there)")
    return {"twins": tuple(twins), "beyond_f": beyond}


def _live(data: dict[str, Any], source: str) -> dict[str, Any]:
    table = data.get("live") or {}
    if not isinstance(table, dict):
        raise UserError(f"{source}: 'live' must be a table ([live])")
    _no_unknown(table, _LIVE, f"{source}: [live]:")
    topology = table.get("topology", "single")
    if topology not in LIVE_TOPOLOGIES:
        raise UserError(f"{source}: [live]: topology {topology!r} is not one of {', '.join(LIVE_TOPOLOGIES)}")
    record = table.get("record", False)
    if not isinstance(record, bool):
        raise UserError(f"{source}: [live]: record must be true or false")
    return {"topology": topology, **({"record": True} if record else {})}


def _sim(data: dict[str, Any], source: str, backends: tuple[str, ...], steps: tuple[ScenarioStep, ...],
         expects: tuple[Expect, ...]) -> dict[str, Any]:
    """[sim]: the simulator's synthetic consortium (validators sh-1, hk-1, sh-2, ... alternating
    Shanghai / Hong Kong) running its key-value application, with Byzantine members from the
    start; steps are faults at fixed virtual times (scheduled before the run, exactly as
    `consortium explore` ran them); expectations are consensus facts. The run goes on until
    every honest node reaches `heights` and liveness after the last fault is observed."""
    table = data["sim"]
    where = f"{source}: [sim]"
    if not isinstance(table, dict):
        raise UserError(f"{source}: 'sim' must be a table ([sim])")
    _no_unknown(table, _SIM, f"{where}:")
    if backends != ("sim",):
        raise UserError(f"{where}: a synthetic consortium runs on the simulator only (set backends = [\"sim\"])")
    if "consortium" in data:
        raise UserError(f"{where}: give either [sim] (a synthetic consortium) or [consortium], not both")
    n = _req(table, "nodes", int, where)
    if not 1 <= n <= limits.sim_nodes_max:
        raise UserError(f"{where}: field 'nodes' must be 1..{limits.sim_nodes_max}")
    powers = table.get("powers", [10] * n)
    if not (isinstance(powers, list) and len(powers) == n
            and all(isinstance(p, int) and not isinstance(p, bool) and p >= 1 for p in powers)):
        raise UserError(f"{where}: field 'powers' must list {n} whole numbers >= 1")
    heights = table.get("heights", 10)
    tx = table.get("tx_per_s", 20)
    for name, v, lo in (("heights", heights, 1), ("tx_per_s", tx, 0)):
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise UserError(f"{where}: field '{name}' must be a whole number >= {lo}")
    ids = [f"{'sh' if i % 2 == 0 else 'hk'}-{i // 2 + 1}" for i in range(n)]  # = sim.core.synthetic_nodes
    byz = table.get("byzantine", {})
    if not isinstance(byz, dict):
        raise UserError(f"{where}: field 'byzantine' must be a table of node = behaviour")
    for node, b in byz.items():
        if node not in ids:
            raise UserError(f"{where}: byzantine node {node!r} is not one of {', '.join(ids)}")
        if b not in BEHAVIOURS:
            raise UserError(f"{where}: byzantine {node} = {b!r}: behaviour must be one of {', '.join(BEHAVIOURS)}")
    twins, targets, parts = _sim_twins(table, where, ids, byz)
    instances = ids + [twin_of(v) for v in twins]
    for st in steps:
        if st.action != "fault" or st.at_ms is None:
            raise UserError(f"{st.where(source)}: with [sim], every step is a fault with 'at_ms'")
        named = [st.fields.get("node", "")] + [x for g in st.fields.get("groups", []) for x in g]
        for node in named:
            if node and node not in instances:
                raise UserError(f"{st.where(source)}: node {node!r} is not one of {', '.join(instances)}")
    for e in expects:
        if e.what != "consensus":
            raise UserError(f"{source}: expect {e.index + 1}: with [sim], expectations are consensus facts")
    return {"nodes": n, "powers": list(powers), "heights": heights, "tx_per_s": tx, "byzantine": dict(byz),
            "targets": targets, "twins": twins, "round_partitions": parts}


def _sim_twins(table: dict[str, Any], where: str, ids: list[str], byz: dict[str, str]
               ) -> tuple[list[str], dict[str, list[str]], list[dict[str, Any]]]:
    """[sim] twins = ["hk-1"] (validators run as two instances under one key; the second is
    "hk-1'"), targets = {"hk-1" = ["sh-1", "sh-2"]} (an equivocating member's chosen nodes, in
    order) and [[sim.round_partitions]] height/round/step/groups (Twins: who hears whom in one
    step of one round), checked."""
    twins = table.get("twins", [])
    if not (isinstance(twins, list) and all(isinstance(t, str) for t in twins)):
        raise UserError(f"{where}: field 'twins' must be a list of node ids")
    for t in twins:
        if t not in ids or t in byz or twins.count(t) > 1:
            raise UserError(f"{where}: twins: {t!r} must be one of {', '.join(ids)}, once, and not Byzantine")
    targets = table.get("targets", {})
    if not isinstance(targets, dict):
        raise UserError(f"{where}: field 'targets' must be a table of node = [chosen node ids]")
    for node, chosen in targets.items():
        if byz.get(node) != "equivocate":
            raise UserError(f"{where}: targets: {node!r} is not an equivocating Byzantine node")
        if not (isinstance(chosen, list) and chosen and all(c in ids for c in chosen)):
            raise UserError(f"{where}: targets {node} must list node ids of {', '.join(ids)}")
    instances = ids + [twin_of(t) for t in twins]
    parts = table.get("round_partitions", [])
    if not isinstance(parts, list):
        raise UserError(f"{where}: field 'round_partitions' must be a list of tables ([[sim.round_partitions]])")
    for i, p in enumerate(parts):
        at = f"{where}: round_partitions {i + 1}:"
        if not isinstance(p, dict):
            raise UserError(f"{at} must be a table")
        _no_unknown(p, _ROUND_PARTITION, at)
        for name, lo in (("height", 1), ("round", 0)):
            v = p.get(name)
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise UserError(f"{at} field '{name}' must be a whole number >= {lo}")
        if p.get("step") not in STEPS:
            raise UserError(f"{at} field 'step' must be one of {', '.join(STEPS)}")
        g = p.get("groups")
        if not (isinstance(g, list) and len(g) >= 2 and all(
                isinstance(x, list) and x and all(n in instances for n in x) for x in g)):
            raise UserError(f"{at} field 'groups' must be at least two lists of ids of {', '.join(instances)}")
    return list(twins), {k: list(v) for k, v in targets.items()}, [dict(p) for p in parts]


def _no_unknown(table: dict[str, Any], allowed: set[str], where: str, noun: str = "field") -> None:
    """Refuse the first key of `table` that is not in `allowed`, naming the nearest valid one."""
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise UserError(f"{where} unknown {noun} '{unknown[0]}'{_nearest(unknown[0], allowed)}")


def _nearest(name: str, valid: Any) -> str:
    """' (did you mean 'x'?)' for the closest valid name, else the list of valid names."""
    names = sorted(str(v) for v in valid)
    return _did_you_mean(name, names) or f" (valid: {', '.join(names) or 'none'})"


def _did_you_mean(name: Any, valid: Any) -> str:
    """' (did you mean 'x'?)' for the closest valid name, or '' if none is close."""
    near = difflib.get_close_matches(name, [str(v) for v in valid], n=1) if isinstance(name, str) else []
    return f" (did you mean '{near[0]}'?)" if near else ""


def heals(step: ScenarioStep) -> bool:
    """A fault step that ends a disturbance: after it, "liveness after heal" means something."""
    f = step.fields
    if step.action != "fault":
        return False
    op = f["fault"]
    return (op in ("heal", "restart", "resume", "broker-restart", "rollback", "session-takeover")
            or (op == "byzantine" and f.get("behaviour") == "none")
            or (op in ("drop", "duplicate", "delay", "mqtt-duplicate", "slow-consumer") and f.get("value") == 0))


def check_liveness(sc: Scenario) -> None:
    """A `liveness` expectation judges progress after a heal: refuse it where nothing heals."""
    if any(heals(s) for s in sc.steps):
        return
    for e in sc.expects:
        if e.what == "consensus" and "liveness" in e.fields:
            raise UserError(f"{sc.source}: expect {e.index + 1}: field 'liveness' judges progress after a "
                            "heal, but no step heals (fault heal, restart, resume, broker-restart, session-takeover, "
                            "byzantine with behaviour none, or drop/duplicate/delay/mqtt-duplicate/slow-consumer "
                            "back to 0); use 'min_height' for "
                            "progress without a heal")


def _consortium(data: dict[str, Any], source: str) -> Any:
    table = data.get("consortium", {})
    if not isinstance(table, dict):
        raise UserError(f"{source}: 'consortium' must be a table ([consortium])")
    _no_unknown(table, _CONSORTIUM, f"{source}: [consortium]:")
    members = table.get("members")
    if members is not None and (not isinstance(members, str) or not members):
        raise UserError(f"{source}: [consortium]: field 'members' must be a directory name")
    return members


def with_network(sc: Scenario, overrides: dict[str, Any]) -> Scenario:
    """`sc` with some [network] fields replaced, checked as in a file (`latency_ms` pairs
    are added to the scenario's own; `loss` and `jitter_ms` replace them)."""
    if not isinstance(overrides, dict):
        raise UserError(f"network= must be a dict of [network] fields ({', '.join(sorted(_NETWORK))})")
    merged = {k: v for k, v in sc.network.items() if v is not None}
    merged.update(overrides)
    if isinstance(overrides.get("latency_ms"), dict):
        merged["latency_ms"] = {**sc.network["latency_ms"], **overrides["latency_ms"]}
    return dataclasses.replace(sc, network=_network({"network": merged}, f"{sc.source} (network=)"))


def with_sim(sc: Scenario, overrides: dict[str, Any]) -> Scenario:
    """`sc` (a [sim] scenario) with some [sim] fields replaced, checked as in a file. A new
    `nodes` count without new `powers` gives every node the scenario's power when all were
    equal (else the powers must be given too)."""
    if sc.sim is None:
        raise UserError(f"{sc.source}: has no [sim] table (a synthetic consortium), so its "
                        f"{', '.join(sorted(overrides))} cannot be set")
    table = {**sc.sim, **overrides}
    if "nodes" in overrides and "powers" not in overrides and isinstance(table["nodes"], int):
        equal = set(sc.sim["powers"])
        if len(equal) == 1:
            table["powers"] = [equal.pop()] * table["nodes"]
    return dataclasses.replace(sc, sim=_sim({"sim": table}, sc.source, sc.backends, sc.steps, sc.expects))


def with_step(sc: Scenario, label: str, overrides: dict[str, Any]) -> Scenario:
    """`sc` with some fields of its step `label` replaced (e.g. a fault's `value`, a step's
    `at_ms`), the step checked as in a file."""
    old = next((s for s in sc.steps if s.label == label), None)
    if old is None:
        raise UserError(f"{sc.source}: no step labelled {label!r}{_nearest(label, [s.label for s in sc.steps])}")
    raw = {"label": old.label, **({"at_ms": old.at_ms} if old.at_ms is not None else {}),
           **({"after_height": old.after_height} if old.after_height is not None else {}), **old.fields,
           **overrides}
    steps = tuple(_step(old.index, raw, sc.source) if s is old else s for s in sc.steps)
    out = dataclasses.replace(sc, steps=steps)
    if sc.sim is not None:
        _sim({"sim": sc.sim}, sc.source, sc.backends, steps, sc.expects)
    check_liveness(out)
    return out


def _start(data: dict[str, Any], source: str) -> int:
    start = data.get("start")
    if start is None:
        return DEFAULT_GENESIS_TIME_MS
    if isinstance(start, dt.datetime) and start.tzinfo is not None:
        return int(start.timestamp() * 1000)
    raise UserError(f"{source}: field 'start' must be a date-time with offset, e.g. 2026-03-02T18:00:00+08:00")


def _tables(data: dict[str, Any], key: str, source: str) -> list[dict[str, Any]]:
    items = data.get(key, [])
    if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
        raise UserError(f"{source}: '{key}' must be an array of tables ([[{key}]])")
    return items


def _req(data: dict[str, Any], name: str, kind: type, where: str) -> Any:
    if name not in data:
        raise UserError(f"{where}: field '{name}' is missing")
    v = data[name]
    if (kind is int and isinstance(v, bool)) or not isinstance(v, kind):
        raise UserError(f"{where}: field '{name}' must be {kind.__name__}, got {v!r}")
    return v


def _network(data: dict[str, Any], source: str) -> dict[str, Any]:
    net = data.get("network") or {}
    where = f"{source}: [network]"
    if not isinstance(net, dict):
        raise UserError(f"{source}: 'network' must be a table ([network])")
    _no_unknown(net, _NETWORK, f"{where}:")
    lat = net.get("latency_ms", {})
    if not isinstance(lat, dict) or not all(
            isinstance(k, str) and k.count("/") == 1 and isinstance(v, int) and v >= 0 for k, v in lat.items()):
        raise UserError(f"{where}: field 'latency_ms' must map 'A/B' jurisdiction pairs to whole ms")
    jitter = net.get("jitter_ms", None)
    if jitter is not None and (not isinstance(jitter, int) or jitter < 0):
        raise UserError(f"{where}: field 'jitter_ms' must be a whole number >= 0")
    loss = net.get("loss", 0.0)
    if not isinstance(loss, (int, float)) or not 0 <= loss <= 1:
        raise UserError(f"{where}: field 'loss' must be a probability 0..1")
    return {"latency_ms": lat, "jitter_ms": jitter, "loss": float(loss)}


def _step(i: int, s: dict[str, Any], source: str) -> ScenarioStep:
    label = s.get("label", f"step-{i + 1}")
    where = f"{source}: step {i + 1} ({label})"
    if not isinstance(label, str) or not label:
        raise UserError(f"{where}: field 'label' must be a non-empty string")
    actions = [a for a in _STEP_ACTIONS if a in s]
    if len(actions) != 1:
        every = _STEP_COMMON | _TX_FIELDS | _FAULT_FIELDS | set(_STEP_ACTIONS)
        unknown = sorted(set(s) - every)
        hint = f"; unknown field '{unknown[0]}'{_nearest(unknown[0], every)}" if unknown else ""
        raise UserError(f"{where}: needs exactly one of {', '.join(_STEP_ACTIONS)}{hint}")
    action = actions[0]
    allowed = _STEP_COMMON | {"tx": _TX_FIELDS, "fault": _FAULT_FIELDS,
                              "wait_for": {"wait_for", "timeout_ms"}}.get(action, {action})
    _no_unknown(s, allowed, f"{where}: for a {action} step:")
    at_ms, after = s.get("at_ms"), s.get("after_height")
    for name, v in (("at_ms", at_ms), ("after_height", after)):
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise UserError(f"{where}: field '{name}' must be a whole number >= 0")
    if at_ms is not None and after is not None:
        raise UserError(f"{where}: give at most one of 'at_ms' and 'after_height'")
    if action == "tx":
        kind = _req(s, "tx", str, where)
        _req(s, "as", str, where)
        for name in sorted(set(s) & set(_TX_KIND_FIELDS)):
            if kind not in _TX_KIND_FIELDS[name]:
                raise UserError(f"{where}: field '{name}' applies only to {' and '.join(_TX_KIND_FIELDS[name])} "
                                f"steps (this is {kind})")
        if "body" in s and not isinstance(s["body"], dict):
            raise UserError(f"{where}: field 'body' must be a table")
    elif action == "fault":
        _check_fault(s, where)
    elif action == "wait_for":
        _req(s, "wait_for", str, where)
    else:
        _req(s, action, int, where)
    return ScenarioStep(i, label, action, at_ms, after, {k: v for k, v in s.items() if k not in _STEP_COMMON})


def _check_fault(s: dict[str, Any], where: str) -> None:
    f = _req(s, "fault", str, where)
    if f not in FAULTS:
        raise UserError(f"{where}: field 'fault' must be one of {', '.join(FAULTS)}, got {f!r}"
                        f"{_did_you_mean(f, FAULTS)}")
    extra = sorted(set(s) - _STEP_COMMON - {"fault"} - _FAULT_ARGS[f])
    if extra:
        takes = ", ".join(sorted(_FAULT_ARGS[f])) or "no other field"
        raise UserError(f"{where}: field '{extra[0]}' does not apply to a {f} fault (it takes {takes})")
    if f in ("crash", "restart", "pause", "resume", "isolate", "byzantine", "rollback", *LIVE_ONLY_FAULTS) \
            and f != "retained-replay":
        _req(s, "node", str, where)
    if f == "rollback":
        v = s.get("value")
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= limits.sim_rollback_blocks_max:
            raise UserError(f"{where}: field 'value' must be the number of decided blocks the restarted "
                            f"store lost, 1..{limits.sim_rollback_blocks_max}")
    if f == "partition":
        g = s.get("groups")
        if not (isinstance(g, list) and len(g) >= 2 and all(
                isinstance(x, list) and x and all(isinstance(n, str) for n in x) for x in g)):
            raise UserError(f"{where}: field 'groups' must be a list of at least two lists of node ids")
    if f in ("drop", "duplicate", "delay", "advance"):
        v = s.get("value")
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0 or (f in ("drop", "duplicate") and v > 1):
            raise UserError(f"{where}: field 'value' must be a number (probability 0..1 for {f}; ms otherwise)")
    _check_mqtt_fault(s, f, where)
    if f == "skew":
        v = s.get("value")
        if not isinstance(v, (int, float)) or isinstance(v, bool) or abs(v) > limits.sim_skew_ms_max:
            raise UserError(f"{where}: field 'value' must be a clock skew in ms within "
                            f"+-{limits.sim_skew_ms_max}")
    if f == "byzantine" and s.get("behaviour") not in BEHAVIOURS:
        got = s.get("behaviour")
        raise UserError(f"{where}: field 'behaviour' must be one of {', '.join(BEHAVIOURS)}, got {got!r}"
                        f"{_did_you_mean(got, BEHAVIOURS)}")


def _check_mqtt_fault(s: dict[str, Any], f: str, where: str) -> None:
    """The fields of the MQTT-level faults and of broker-restart's `broker`."""
    v = s.get("value")
    if f == "mqtt-duplicate" and not (isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1):
        raise UserError(f"{where}: field 'value' must be the probability 0..1 that a message delivered to "
                        f"{s.get('node')} arrives twice (0 ends the fault), got {v!r}")
    if f == "slow-consumer" and not (isinstance(v, int) and not isinstance(v, bool) and (
            v == 0 or limits.relay_rate_bps_min <= v <= limits.relay_rate_bps_max)):
        raise UserError(f"{where}: field 'value' must be the bytes per second the node's broker connection "
                        f"carries, {limits.relay_rate_bps_min}..{limits.relay_rate_bps_max} (0 lifts the limit), "
                        f"got {v!r}")
    if f == "session-takeover" and "value" in s and not (
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= limits.nemesis_takeover_hold_ms_max):
        raise UserError(f"{where}: field 'value' must be how long (ms, 0..{limits.nemesis_takeover_hold_ms_max}) "
                        f"the intruding connection holds the node's session, got {v!r}")
    b = s.get("broker")
    if "broker" in s and not (isinstance(b, str) and b.lower() in BROKER_NAMES):
        raise UserError(f"{where}: field 'broker' must name a jurisdiction's broker ("
                        f"{', '.join(sorted(set(BROKER_NAMES.values())))}; sh and hk for short), got {b!r}")


def _expect(i: int, e: dict[str, Any], source: str, labels: set[str]) -> Expect:
    where = f"{source}: expect {i + 1}"
    what = _req(e, "what", str, where)
    if what not in EXPECT_KINDS:
        raise UserError(f"{where}: field 'what' must be one of {', '.join(EXPECT_KINDS)}, got {what!r}"
                        f"{_did_you_mean(what, EXPECT_KINDS)}")
    fields = {k: v for k, v in e.items() if k != "what"}
    if what == "tx":
        _no_unknown(fields, _TX_EXPECT, f"{where} (tx):")
        step = _req(e, "step", str, where)
        if step not in labels:
            raise UserError(f"{where}: field 'step' names no step label ({step!r}){_did_you_mean(step, labels)}")
        if "code" not in fields:
            raise UserError(f"{where}: a tx expectation has 'step' and 'code' (\"OK\" or a reason code)")
    elif what == "consensus":
        _no_unknown(fields, _CONSENSUS_FACTS, f"{where} (consensus):", "fact")
        if not fields:
            raise UserError(f"{where}: consensus facts are {sorted(_CONSENSUS_FACTS)}")
    elif what == "share":
        _no_unknown(fields, _SHARE_EXPECT, f"{where} (share):")
        _req(e, "id", str, where)
        if not set(fields) - {"id"}:
            raise UserError(f"{where}: a share expectation has 'readable_by' and/or 'not_readable_by' lists")
    else:
        meta = _CONSENT_META if what == "consent" else {"id"}
        for k in sorted(meta):
            _req(e, k, str, where)
        compared = [k for k in fields if k not in meta]
        if not compared:
            raise UserError(f"{where}: name at least one field to compare besides {', '.join(map(repr, sorted(meta)))}")
        for key in compared:
            problem = path_problem(KINDS[what], key)
            if problem is not None:
                raise UserError(f"{where} ({what}): {problem}")
    return Expect(i, what, fields)


# ------------------------------------------------------------------ the scenario as data (traces)


def as_data(sc: Scenario) -> dict[str, Any]:
    """The scenario as it runs (whatever changed it after the file was read: a Python
    override, dataclasses.replace) as JSON-able data; `from_data` rebuilds it exactly.
    Traces store this, so a replay runs what ran, not what the file says."""
    return {"name": sc.name, "description": sc.description, "seed": sc.seed, "backends": list(sc.backends),
            "start_ms": sc.start_ms, "members_dir": None if sc.members_dir is None else str(sc.members_dir),
            "network": _to_json(sc.network),
            "steps": [{"label": s.label, "action": s.action, "at_ms": s.at_ms, "after_height": s.after_height,
                       "fields": _to_json(s.fields)} for s in sc.steps],
            "expects": [{"what": e.what, "fields": _to_json(e.fields)} for e in sc.expects],
            **({"sim": _to_json(sc.sim)} if sc.sim is not None else {}),
            **({"live": dict(sc.live)} if sc.live else {}),
            **({"twins": list(sc.twins), "beyond_f": sc.beyond_f} if sc.twins else {})}


def from_data(data: dict[str, Any], *, source: str, text: str = "") -> Scenario:
    """The Scenario `as_data` described (KeyError/TypeError/ValueError if it is not such data)."""
    members = data["members_dir"]
    return Scenario(
        name=str(data["name"]), description=str(data["description"]), source=source, seed=int(data["seed"]),
        backends=tuple(data["backends"]), start_ms=int(data["start_ms"]),
        members_dir=None if members is None else Path(members), network=_from_json(data["network"]),
        steps=tuple(ScenarioStep(i, s["label"], s["action"], s["at_ms"], s["after_height"], _from_json(s["fields"]))
                    for i, s in enumerate(data["steps"])),
        expects=tuple(Expect(i, e["what"], _from_json(e["fields"])) for i, e in enumerate(data["expects"])),
        text=text, sim=_from_json(data["sim"]) if data.get("sim") is not None else None,
        live=dict(data.get("live") or {}), twins=tuple(data.get("twins") or ()),
        beyond_f=bool(data.get("beyond_f", False)))


_TIME_TYPES: dict[str, Any] = {"datetime": dt.datetime, "date": dt.date, "time": dt.time}


def _to_json(value: Any) -> Any:
    """TOML values as JSON: dates and times (TOML has them, JSON does not) become tagged maps."""
    for tag, kind in _TIME_TYPES.items():  # datetime before date: a datetime is a date
        if isinstance(value, kind):
            return {"$toml": tag, "value": value.isoformat()}
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$toml", "value"} and value["$toml"] in _TIME_TYPES:
            return _TIME_TYPES[value["$toml"]].fromisoformat(value["value"])
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value
