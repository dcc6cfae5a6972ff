"""One runner, two back-ends. Steps run in file order: each waits for its
trigger (`at_ms` since the start, or `after_height`), then acts (a signed tx,
a fault, a wait). Then the expectations are judged on the facts the back-end
hands over, and a trace (JSON lines) records what happened."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from consortium import crypto, limits
from consortium.config import seeded_genesis
from consortium.errors import UserError
from consortium.genesis import Genesis
from consortium.scenario.expect import Facts, Row, TxOutcome, evaluate
from consortium.scenario.schema import Scenario, ScenarioStep, as_data, check_liveness, from_data, parse
from consortium.scenario.txbuild import VAR, TxBuilder

TRACE_VERSION = 2  # 2: per height, node, message, transaction and the business lane (1: steps and blocks only)
REPLAYABLE_VERSIONS = (1, 2)
#: the keywords the live back-end takes (LiveBackend's own; tests check they agree)
LIVE_OPTIONS = ("broker", "home", "keep_home", "topology", "record")


class Backend(Protocol):
    outcomes: dict[str, TxOutcome]

    def now_ms(self) -> int: ...
    def min_height(self) -> int: ...
    def wait_until(self, cond: Callable[[], bool], timeout_ms: int) -> bool: ...
    def wait_ms(self, ms: int) -> None: ...
    def wait_for_time(self, at_ms: int) -> None: ...
    def submit(self, step: ScenarioStep, tx: bytes) -> None: ...
    def fault(self, step: ScenarioStep) -> None: ...
    def settled(self, label: str) -> bool: ...
    def finish(self, builder: TxBuilder) -> Facts: ...
    def blocks(self) -> list[dict[str, Any]]: ...
    def checks(self) -> dict[str, Any]: ...
    def trace_digest(self) -> str: ...


@dataclass
class ScenarioResult:
    scenario: str
    backend: str
    seed: int
    rows: list[Row]
    events: list[dict[str, Any]]
    blocks: list[dict[str, Any]]
    checks: dict[str, Any]
    trace_digest: str
    final: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)  # the rich trace part (scenario/tracing.py)
    #: simulator runs: virtual_ms, heights, frames, rounds (per height), latencies_ms (per tx), txs (sweeps)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(r.met for r in self.rows) and self.checks.get("ok", True)

    def to_dict(self) -> dict[str, Any]:
        """Plain records: expectation rows, checks, steps, every decided block (height,
        block id, state root), their count, the final ledger facts and the trace digest."""
        return {"scenario": self.scenario, "backend": self.backend, "seed": self.seed, "ok": self.ok,
                "expectations": [r.to_dict() for r in self.rows], "checks": self.checks,
                "steps": self.events, "blocks": [dict(b) for b in self.blocks], "block_count": len(self.blocks),
                "final": self.final, "trace_digest": self.trace_digest}


def run(sc: Scenario, *, backend: str = "sim", seed: int | None = None, trace: Path | None = None,
        progress: Callable[[int, int, str], None] | None = None, live: dict[str, Any] | None = None
        ) -> ScenarioResult:
    check_options(backend, live or {})
    if backend not in sc.backends:
        raise UserError(f"{sc.source}: this scenario does not run on the {backend} back-end "
                        f"(backends = {list(sc.backends)})")
    seed = sc.seed if seed is None else seed
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise UserError(f"seed must be a whole number >= 0, got {seed!r}")
    sc = dataclasses.replace(sc, seed=seed)  # the scenario as run (traces store it)
    check_references(sc)
    check_liveness(sc)
    if sc.sim is not None:  # a synthetic consortium ([sim]): one simulator run, judged by its checkers
        from consortium.scenario.sim_backend import run_synthetic

        synthetic = run_synthetic(sc, seed, progress, record=trace is not None)
        if trace is not None:
            write_trace(trace, sc, synthetic)
        return synthetic
    be, genesis, keys = _backend(sc, backend, seed, {**(live or {}), "trace": True} if backend == "live" and trace
                                 else live or {})  # a traced live run: its nodes log their inputs for the trace
    events = []
    try:  # from here on, whatever fails: close() stops live processes and removes a temporary home
        check_nodes(sc, genesis)
        builder = TxBuilder(genesis, dict(keys), seed, Path(sc.source).parent, deterministic=backend == "sim")
        for step in sc.steps:
            if progress is not None:
                progress(step.index, len(sc.steps), step.label)
            events.append(_do_step(sc, be, builder, step))
        facts = be.finish(builder)
        for event in events:  # steps that did not wait: their final outcome
            out = be.outcomes.get(event["step"])
            if out is not None and event.get("code") == "PENDING":
                event.update(code=out.code, height=out.height, detail=out.detail)
        rows = evaluate(sc.expects, facts, lambda v: builder.subst(v, f"{sc.source}: expectations"))
        result = ScenarioResult(sc.name, backend, seed, rows, events, be.blocks(), be.checks(),
                                be.trace_digest(), final=_final(facts), stats=getattr(be, "stats", dict)())
        record = getattr(be, "record", None)
        if record is not None:
            result.record = record()
            _decisions(events, result.record)
    finally:
        close = getattr(be, "close", None)
        if close is not None:
            close()
    if trace is not None:
        write_trace(trace, sc, result)
    return result


def check_options(backend: str, live: dict[str, Any]) -> None:
    """Refuse keywords no back-end takes, and live options on the simulator (TypeError,
    as Python does for a wrong keyword, naming it and the valid ones)."""
    if backend not in ("sim", "live"):
        raise UserError(f"backend must be 'sim' or 'live', got {backend!r}")
    for key in sorted(live):
        if key not in LIVE_OPTIONS:
            raise TypeError(f"scenario.run() got an unknown keyword {key!r} (valid: backend, seed, trace, network, "
                            f"and with backend='live' {', '.join(LIVE_OPTIONS)}"
                            f"{'; a network parameter goes in network={...}' if key in _NETWORK_KEYS else ''})")
        if backend != "live":
            raise TypeError(f"scenario.run(): {key!r} applies only with backend='live' (this run is {backend!r})")


_NETWORK_KEYS = ("latency_ms", "jitter_ms", "loss")


def check_references(sc: Scenario) -> None:
    """Every ${name} must be saved by an earlier step (checked before anything runs)."""
    saved: set[str] = set()

    def walk(value: Any, where: str) -> None:
        if isinstance(value, str):
            for name in VAR.findall(value):
                if not name.startswith(("fp:", "example:")) and name not in saved:
                    raise UserError(f"{where}': variable ${{{name}}} is not defined "
                                    "(no earlier step saves it)")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{where}[{i}]")
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{where}.{k}")

    for step in sc.steps:
        for key, value in step.fields.items():
            walk(value, f"{step.where(sc.source)}: field '{key}")
        if "save" in step.fields:
            saved.add(step.fields["save"])
    for e in sc.expects:
        for key, value in e.fields.items():
            walk(value, f"{sc.source}: expect {e.index + 1}: field '{key}")


def check_nodes(sc: Scenario, genesis: Genesis) -> None:
    """Faults name validator nodes of this consortium."""
    nodes = {m.id for m in genesis.validators}
    for step in sc.steps:
        if step.action != "fault":
            continue
        named = [("node", step.fields["node"])] if "node" in step.fields else []
        named += [("groups", n) for g in step.fields.get("groups", []) for n in g]
        for field_name, node in named:
            if node not in nodes:
                raise UserError(f"{step.where(sc.source)}: field '{field_name}' names no validator "
                                f"({node!r}; validators: {', '.join(sorted(nodes))})")


def _backend(sc: Scenario, backend: str, seed: int, live: dict[str, Any]
             ) -> tuple[Backend, Genesis, dict[str, crypto.KeyPair]]:
    if backend == "sim":
        from consortium.scenario.sim_backend import SimBackend

        genesis, keys = seeded_genesis(sc.members_dir, seed, sc.start_ms)
        return SimBackend(sc, genesis, keys, seed), genesis, keys
    from consortium.scenario.live_backend import LiveBackend

    lb = LiveBackend(sc, seed, **live)
    return lb, lb.genesis, lb.keys


def _do_step(sc: Scenario, be: Backend, builder: TxBuilder, step: ScenarioStep) -> dict[str, Any]:
    if step.at_ms is not None:
        be.wait_for_time(step.at_ms)
    if step.after_height is not None:
        if not be.wait_until(lambda: be.min_height() >= step.after_height,  # type: ignore[operator]
                             limits.scenario_height_wait_ms):
            raise UserError(f"{step.where(sc.source)}: height {step.after_height} was never reached")
    started = be.now_ms()
    f = step.fields
    event: dict[str, Any] = {"step": step.label, "action": step.action, "at_ms": started}
    if step.action == "tx":
        tx = builder.build(step, sc.source)
        event.update(tx=f["tx"], actor=f["as"], tx_hash=crypto.digest(tx).hex())
        be.submit(step, tx)
        out = be.outcomes.get(step.label)
        if out is not None:
            event.update(code=out.code, height=out.height, detail=out.detail)
    elif step.action == "fault":
        be.fault(step)
        event.update(fault=f["fault"], node=f.get("node", ""))
    elif step.action == "wait_ms":
        be.wait_ms(int(f["wait_ms"]))
    elif step.action == "wait_for":
        label = f["wait_for"]
        be.wait_until(lambda: be.settled(label), int(f.get("timeout_ms", limits.scenario_wait_for_timeout_ms)))
    else:
        if not be.wait_until(lambda: be.min_height() >= f["wait_height"], limits.scenario_height_wait_ms):
            raise UserError(f"{step.where(sc.source)}: height {f['wait_height']} was never reached")
    event["done_ms"] = be.now_ms()
    return event


def _decisions(events: list[dict[str, Any]], record: dict[str, Any]) -> None:
    """Every tx step gets its decision time and latency (also a step that did not wait),
    every recorded transaction its step label, kind and actor."""
    txs = {t["hash"]: t for t in record.get("txs", [])}
    for e in events:
        t = txs.get(e.get("tx_hash", ""))
        if t is None:
            continue
        t.update(step=e["step"], kind=e["tx"], actor=e["actor"])
        if t.get("submit_ms") is None:
            t["submit_ms"] = e["at_ms"]
        if t.get("decided_ms") is not None:
            e["decided_ms"] = t["decided_ms"]
            e["latency_ms"] = t["decided_ms"] - e["at_ms"]
            t["latency_ms"] = t["decided_ms"] - t["submit_ms"]


def _final(facts: Facts) -> dict[str, Any]:
    from consortium.ledger import queries

    return {"height": facts.min_height, "agreement": facts.agreement, "evidence": facts.evidence,
            "ebls": queries.ebls(facts.ledger), "summary": queries.summary(facts.ledger)}


# ------------------------------------------------------------------ traces


def write_trace(path: Path, sc: Scenario, r: ScenarioResult) -> None:
    """JSON lines: a header with the scenario text as read, the scenario as run
    (`as_run`: with every override applied, what replay executes), the seed and the
    validators, every step, every decided block (height, id, state root, decision
    time, round, proposer, tx count and bytes), then the rich record (node steps,
    timeouts, faults, messages, transactions with the business lane), and the result.
    Written to a temp file and renamed, so a crash never leaves half a trace."""
    header = {"type": "header", "version": TRACE_VERSION, "kind": "scenario", "scenario": sc.name,
              "source": sc.source, "backend": r.backend, "seed": r.seed, "text": sc.text,
              "as_run": as_data(dataclasses.replace(sc, seed=r.seed)), "nodes": r.record.get("nodes", []),
              "clock": "virtual" if r.backend == "sim" else "wall"}
    heights = {h["height"]: h for h in r.record.get("heights", [])}
    blocks = [{**heights.get(b["height"], {}), **b} for b in r.blocks]
    result = {"ok": r.ok, "expectations": [x.to_dict() for x in r.rows], "checks": r.checks,
              "trace_digest": r.trace_digest}
    write_lines(path, header, r.events, blocks, r.record, result)


def write_lines(path: Path, header: dict[str, Any], steps: list[dict[str, Any]], blocks: list[dict[str, Any]],
                record: dict[str, Any], result: dict[str, Any]) -> None:
    """The trace format (version TRACE_VERSION), shared by `run`, `sim` and live runs:
    header, step*, block*, node_step*, timeout*, fault*, msg*, msg_count*, tx*, result."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    business = {b["hash"]: b for b in record.get("business", [])}
    with tmp.open("w", encoding="utf-8") as out:
        def line(kind: str, obj: dict[str, Any]) -> None:
            out.write(json.dumps({**obj, "type": kind}, sort_keys=True, separators=(",", ":")) + "\n")

        line("header", header)
        for e in steps:
            line("step", e)
        for b in blocks:
            line("block", b)
        for x in record.get("node_steps", []):
            line("node_step", x)
        for x in record.get("timeouts", []):
            line("timeout", x)
        for x in record.get("faults", []):
            line("fault", x)
        for x in record.get("messages", []):
            line("msg", x)
        for x in record.get("message_counts", []):
            line("msg_count", x)
        seen = set()
        for x in record.get("txs", []):
            seen.add(x["hash"])
            line("tx", {**business.get(x["hash"], {}), **x})
        for h, b in business.items():  # decided but never seen submitted (e.g. by a node we did not watch)
            if h not in seen:
                line("tx", {"submit_ms": None, "decided_ms": None, "latency_ms": None, **b})
        line("result", {**result, "messages_omitted": record.get("messages_omitted", 0)})
    tmp.replace(path)


@dataclass
class ReplayReport:
    scenario: str
    blocks: int
    identical: bool
    first_difference: str
    trace_digest_match: bool


def replay(path: Path) -> ReplayReport:
    """Re-execute a simulator trace from its embedded scenario (as run) and seed;
    prove the same blocks and state roots at every height."""
    try:
        lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not a readable trace ({exc})") from None
    header = next((x for x in lines if x.get("type") == "header"), None)
    if header is None or header.get("version") not in REPLAYABLE_VERSIONS:
        raise UserError(f"{path}: no trace header of version {TRACE_VERSION}")
    if header.get("kind", "scenario") != "scenario":
        raise UserError(f"{path}: a trace of `consortium sim` holds no scenario to replay "
                        "(run the same command with the same seed: same trace digest)")
    if header["backend"] != "sim":
        raise UserError(f"{path}: only simulator traces replay exactly (this one is {header['backend']})")
    source = header["source"]
    if "as_run" in header:
        try:
            sc = from_data(header["as_run"], source=source, text=header.get("text", ""))
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{path}: the trace header's scenario is damaged ({exc.__class__.__name__}: {exc})"
                            ) from None
    else:  # a trace written before `as_run`: the file text is all there is
        sc = parse(header["text"], source=source, base=Path(source).parent)
    again = run(sc, backend="sim", seed=header["seed"])
    before = [x for x in lines if x.get("type") == "block"]
    first = ""
    for a, b in zip(before, again.blocks, strict=False):
        if (a["height"], a["block"], a["state_root"]) != (b["height"], b["block"], b["state_root"]):
            first = f"height {a['height']}: block/state root differ"
            break
    if not first and len(before) != len(again.blocks):
        first = f"trace has {len(before)} blocks, replay decided {len(again.blocks)}"
    digest = next((x["trace_digest"] for x in lines if x.get("type") == "result"), "")
    return ReplayReport(sc.name, len(before), not first, first, digest == again.trace_digest)
