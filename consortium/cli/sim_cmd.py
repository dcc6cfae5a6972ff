"""`consortium sim`: the deterministic simulator from the command line.

Everything on stdout is a function of the arguments (same seed, same bytes);
wall-clock time goes to stderr."""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from consortium import limits, types
from consortium.cli.app import app, console, emit_json, err_console
from consortium.errors import UserError
from consortium.sim.byzantine import BEHAVIOURS
from consortium.sim.core import SimConfig, SimResult, Simulation, synthetic_nodes
from consortium.sim.faults import Fault, parse_fault
from consortium.sim.recorder import Recorder


def pick_byzantine(ids: list[str], k: int, seed: int) -> list[str]:
    """Which k nodes misbehave: a seeded choice, so the same seed picks the same ones."""
    return sorted(random.Random(f"byzantine:{seed}").sample(sorted(ids), k))


def jurisdiction_split(ids: list[str]) -> str:
    sh = ",".join(i for i in ids if i.startswith("sh-"))
    hk = ",".join(i for i in ids if i.startswith("hk-"))
    return f"{sh}|{hk}"


@app.command()
def sim(
    nodes: Annotated[int, typer.Option(help="Number of validators (alternating Shanghai / Hong Kong).")] = 4,
    powers: Annotated[Optional[str], typer.Option(help="Comma-separated voting powers, one per node.")] = None,
    byzantine: Annotated[int, typer.Option(help="How many validators misbehave.")] = 0,
    behaviour: Annotated[str, typer.Option(help=f"Byzantine behaviour: {', '.join(BEHAVIOURS[1:])}.")] = "equivocate",
    bad: Annotated[Optional[list[str]], typer.Option(
        help="A named Byzantine node NODE:BEHAVIOUR, repeatable (in addition to --byzantine).")] = None,
    heights: Annotated[int, typer.Option(help="Stop when every live honest node decided this many heights.")] = 20,
    seed: Annotated[int, typer.Option(min=0, help="PRNG seed (>= 0): same seed, same run.")] = 0,
    drop: Annotated[float, typer.Option(help="Message loss probability from t=0 (0..1).")] = 0.0,
    duplicate: Annotated[float, typer.Option(help="Message duplication probability from t=0 (0..1).")] = 0.0,
    partition: Annotated[Optional[str], typer.Option(
        help="Partition from t=0: groups like 'sh-1,sh-2|hk-1,hk-2', or 'jurisdiction' (Shanghai vs Hong Kong).")] = None,
    heal_at: Annotated[int, typer.Option(help="Virtual ms at which --drop/--duplicate/--partition heal (0: never).")] = 0,
    fault: Annotated[Optional[list[str]], typer.Option(
        help="Extra timed fault AT_MS:OP[:ARG[:VALUE]], repeatable (see consortium.sim.faults).")] = None,
    tx_rate: Annotated[int, typer.Option(help="Transactions offered per virtual second.")] = 20,
    block_interval_ms: Annotated[Optional[int], typer.Option(help="Pause between heights (virtual ms).")] = None,
    time_limit_ms: Annotated[int, typer.Option(help="Virtual time limit (0: derived).")] = 0,
    trace: Annotated[Optional[Path], typer.Option(
        help="Write a JSON-lines trace here (heights, node steps, messages, faults; see docs/REPORTS.md).")] = None,
    report: Annotated[Optional[Path], typer.Option(help="Write an HTML report of the run here.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Run the consensus on the deterministic simulator and check every safety and liveness property."""
    cfg = build_config(nodes, powers, byzantine, behaviour, heights, seed, drop, duplicate, partition,
                       heal_at, fault or [], tx_rate, block_interval_ms, time_limit_ms, bad or [])
    warnings = safety_warnings(cfg)
    for w in warnings:
        err_console.print(f"[yellow]warning:[/yellow] {w}", highlight=False, soft_wrap=True)
    started = time.perf_counter()
    sim = Simulation(cfg)
    if trace is not None or report is not None:
        sim.recorder = Recorder()
    result = run_with_progress(cfg, quiet=json_out, sim=sim)
    wall = time.perf_counter() - started
    if trace is not None or report is not None:
        from consortium.cli.report_cmd import trace_and_report
        from consortium.scenario.tracing import write_sim_trace

        command = {"nodes": nodes, "powers": powers, "byzantine": byzantine, "behaviour": behaviour, "heights": heights,
                   "seed": seed, "faults": [f.describe() for f in cfg.faults], "tx_rate": tx_rate}
        trace_and_report(lambda p: write_sim_trace(p, command, sim, result), trace, report)
    out = {"nodes": nodes, "seed": seed, "byzantine": cfg.byzantine, **result.to_dict(), "warnings": warnings}
    if json_out:
        emit_json(out)
    else:
        print_result(out)
    decided = min(result.heights.values()) if result.heights else 0
    err_console.print(f"wall {wall:.2f} s, {decided / wall if wall else 0:.0f} heights/s, "
                      f"{result.virtual_ms / 1000 / wall if wall else 0:.0f}x real time", highlight=False)
    raise typer.Exit(0 if result.ok else 1)


def build_config(nodes: int, powers: str | None, byzantine: int, behaviour: str, heights: int, seed: int,
                 drop: float, duplicate: float, partition: str | None, heal_at: int, faults: list[str],
                 tx_rate: int, block_interval_ms: int | None, time_limit_ms: int,
                 bad: list[str] | None = None) -> SimConfig:
    """The simulator configuration for these command-line arguments (the property
    tests build theirs through here too, so a failure replays from the CLI)."""
    if not 1 <= nodes <= limits.sim_nodes_max:
        raise UserError(f"--nodes must be 1..{limits.sim_nodes_max}")
    power_list = _powers(powers, nodes)
    specs = synthetic_nodes(nodes, power_list)
    ids = [s.id for s in specs]
    if behaviour not in BEHAVIOURS:
        raise UserError(f"--behaviour must be one of {', '.join(BEHAVIOURS)}")
    if not 0 <= byzantine <= nodes:
        raise UserError("--byzantine must be 0..--nodes")
    if heights < 1 or tx_rate < 0 or not 0 <= drop <= 1 or not 0 <= duplicate <= 1:
        raise UserError("--heights >= 1, --tx-rate >= 0, --drop and --duplicate in 0..1")
    schedule: list[Fault] = []
    if drop:
        schedule.append(Fault(0, "drop", value=drop))
    if duplicate:
        schedule.append(Fault(0, "duplicate", value=duplicate))
    if partition:
        spec = jurisdiction_split(ids) if partition == "jurisdiction" else partition
        schedule.append(parse_fault(f"0:partition:{spec}", set(ids)))
    if heal_at and schedule:
        schedule.append(Fault(heal_at, "heal"))
    schedule += [parse_fault(f, set(ids)) for f in faults]
    chosen = dict.fromkeys(pick_byzantine(ids, byzantine, seed), behaviour)
    for item in bad or []:
        node, _, b = item.partition(":")
        if node not in ids or b not in BEHAVIOURS:
            raise UserError(f"--bad {item!r}: expected NODE:BEHAVIOUR with a node of {ids}")
        chosen[node] = b
    cfg = SimConfig(nodes=specs, seed=seed, heights=heights, faults=schedule, tx_per_s=tx_rate,
                    time_limit_ms=time_limit_ms, byzantine={k: v for k, v in chosen.items() if v != "none"})
    if block_interval_ms is not None:
        if block_interval_ms < 0:
            raise UserError("--block-interval-ms must be >= 0")
        cfg.params["block_interval_ms"] = block_interval_ms
    return cfg


def safety_warnings(cfg: SimConfig) -> list[str]:
    """The run goes ahead, but with more Byzantine power than f the BFT guarantees
    are void: say so (the checkers may then report violations, as they should)."""
    power = {s.id: s.power for s in cfg.nodes if s.validator}
    bad = [n for n in cfg.byzantine if n in power]
    total, bad_power = sum(power.values()), sum(power[n] for n in bad)
    budget = types.max_faulty_power(total)
    if bad_power <= budget:
        return []
    f = types.fault_tolerance(list(power.values()))
    weighted = len(set(power.values())) > 1
    extent = f" (power {bad_power} of {total}; at most {budget} may be faulty)" if weighted else ""
    many = len(bad) != 1
    return [f"{len(bad)} Byzantine validator{'s' if many else ''} of {len(power)}{extent} "
            f"exceed{'' if many else 's'} f = {f}: safety is not guaranteed (agreement may break)"]


def _powers(spec: str | None, n: int) -> list[int] | None:
    if spec is None:
        return None
    try:
        values = [int(x) for x in spec.split(",")]
    except ValueError:
        raise UserError(f"--powers {spec!r}: comma-separated whole numbers expected") from None
    if len(values) != n or any(v < 1 for v in values):
        raise UserError(f"--powers needs exactly {n} positive numbers")
    return values


def run_with_progress(cfg: SimConfig, *, quiet: bool, sim: Simulation | None = None) -> SimResult:
    sim = Simulation(cfg) if sim is None else sim
    if quiet or not sys.stderr.isatty():
        return sim.run()
    with Progress(TextColumn("simulating"), BarColumn(), TextColumn("{task.completed}/{task.total} heights"),
                  console=err_console, transient=True) as bar:
        task = bar.add_task("sim", total=cfg.heights)
        return sim.run(progress=lambda done, total: bar.update(task, completed=done))


def print_result(out: dict[str, Any]) -> None:
    table = Table(title=f"simulation: {out['nodes']} nodes, seed {out['seed']}, "
                        f"byzantine {out['byzantine'] or 'none'}")
    table.add_column("check")
    table.add_column("result")
    for check, verdict in out["checks"].items():
        style = "green" if verdict == "ok" else "red"
        table.add_row(check, f"[{style}]{verdict}[/{style}]")
    console.print(table)
    console.print(f"heights decided: {out['heights']}")
    console.print(f"virtual time {out['virtual_ms']} ms, max round {out['max_round']}, "
                  f"txs committed {out['txs_committed']}, evidence committed {out['evidence_committed']}")
    console.print(f"messages: {out['messages']}")
    if out["dropped_frames"]:
        console.print(f"dropped frames: {out['dropped_frames']}")
    if out["faults"]:
        console.print(f"faults: {out['faults']}")
    live = out["liveness"]
    if live.get("faults_applied"):  # nothing to recover from without a fault
        after = "heal" if live.get("healed") else "fault"
        verdict = "met" if live["met"] else "NOT met" if live["expected"] else \
            "not met, nor expected (a partition, or more than f faulty)"
        console.print(f"liveness after the last {after} at {live['since_ms']} ms: {verdict} "
                      f"(bound {live['bound_ms']} ms)", highlight=False)
    for v in out["violations"]:
        console.print(f"[red]violation[/red] {v}", highlight=False)
    console.print(f"trace digest {out['trace_digest']}")
