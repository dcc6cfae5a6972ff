"""`consortium run SCENARIO` and `consortium replay TRACE`."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from consortium import scenario
from consortium.cli.app import app, console, emit_json, err_console
from consortium.config import shipped_dir
from consortium.errors import UserError
from consortium.scenario.runner import ScenarioResult


@app.command("run")
def run_cmd(
    path: Annotated[Path, typer.Argument(help="Scenario file (TOML), e.g. scenarios/lc-happy-path.toml, "
                                                 "or a shipped scenario's name, e.g. lc-happy-path.")],
    live: Annotated[bool, typer.Option(help="Run on live node processes over MQTT instead of the simulator.")] = False,
    broker: Annotated[str, typer.Option(help="With --live: embedded, mosquitto or mqtt://host:port.")] = "embedded",
    home: Annotated[Optional[Path], typer.Option(help="With --live: consortium home (default: a fresh temp dir).")] = None,
    topology: Annotated[Optional[str], typer.Option(
        help="With --live: single (one broker) or bridged (a Shanghai and a Hong Kong broker joined by the link "
             "relay); overrides the scenario's [live] topology.")] = None,
    seed: Annotated[Optional[int], typer.Option(min=0, help="Seed >= 0 (default: the scenario's own).")] = None,
    trace: Annotated[Optional[Path], typer.Option(help="Write a JSON-lines trace here.")] = None,
    report: Annotated[Optional[Path], typer.Option(help="Write an HTML report of the run here (docs/REPORTS.md).")
                      ] = None,
    record: Annotated[bool, typer.Option(
        help="With --live: every node logs its inputs to HOME/nodes/<id>/inputs.log for `consortium replay-node` "
             "(a temporary home is kept; also [live] record = true).")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Replay a scenario; exit 0 only if every expectation is met."""
    if topology is not None:
        from consortium.bus.bridge import check_topology

        check_topology(topology)
        if not live:
            raise UserError("--topology applies to live runs only (add --live)")
    sc = scenario.load(path)
    backend = "live" if live else "sim"
    live_opts: dict[str, Any] = {"broker": broker, "home": home} if live else {}
    if topology is not None:
        live_opts["topology"] = topology
    if record:  # node/record.py
        if not live:
            raise UserError("--record applies to live runs only (add --live)")
        live_opts["record"] = True
    with tempfile.TemporaryDirectory(prefix="consortium-run-") as tmp:
        trace_path = trace if trace is not None or report is None else Path(tmp) / "trace.jsonl"
        result = _with_progress(lambda cb: scenario.runner.run(sc, backend=backend, seed=seed, trace=trace_path,
                                                                progress=cb, live=live_opts),
                                quiet=json_out)
        if json_out:
            emit_json(result.to_dict())
        else:
            print_result(result, sc.description)
        if live and (record or sc.live.get("record")) and result.checks.get("home"):
            logs = f"{result.checks['home']}/nodes/*/inputs.log"
            err_console.print(f"input logs: {logs} (check them: consortium replay-node {logs})", highlight=False)
        if report is not None and trace_path is not None:
            from consortium import report as rep

            info = rep.build(report, trace=trace_path)
            err_console.print(f"report {info['report']} ({info['bytes'] / 1e6:.1f} MB)", highlight=False)
    raise typer.Exit(0 if result.ok else 1)


def _with_progress(job: Any, *, quiet: bool) -> ScenarioResult:
    if quiet or not sys.stderr.isatty():
        return job(None)  # type: ignore[no-any-return]
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  console=err_console, transient=True) as bar:
        task = bar.add_task("starting", total=1)

        def cb(i: int, n: int, label: str) -> None:
            bar.update(task, total=n, completed=i, description=f"step {label}")

        return job(cb)  # type: ignore[no-any-return]


def print_result(r: ScenarioResult, description: str = "") -> None:
    if description.strip():
        console.print(" ".join(description.split()), style="dim")
    steps = Table(title=f"{r.scenario}: steps ({r.backend}, seed {r.seed})")
    for col in ("step", "at ms", "action", "outcome"):
        steps.add_column(col)
    for e in r.events:
        outcome = e.get("code", "")
        if e.get("height"):
            outcome += f" @h{e['height']}"
        if e.get("detail") and e.get("code") != "OK":
            outcome += f" ({e['detail']})"
        what = e["action"] if e["action"] != "tx" else f"{e['tx']} as {e['actor']}"
        if e["action"] == "fault":
            what = f"fault {e['fault']} {e.get('node', '')}".strip()
        steps.add_row(e["step"], str(e["at_ms"]), what, outcome)
    console.print(steps)
    table = Table(title="expectations")
    for col in ("expectation", "expected", "observed", "met"):
        table.add_column(col)
    for row in r.rows:
        mark = "[green]yes[/green]" if row.met else "[red]NO[/red]"
        table.add_row(row.expectation, row.expected, row.observed, mark)
    console.print(table)
    checks = r.checks.get("checks", {})
    if checks:
        bad = {k: v for k, v in checks.items() if v != "ok"}
        console.print("consensus checkers: " + ("all ok" if not bad else f"[red]{bad}[/red]"))
        for v in r.checks.get("violations", []):
            console.print(f"[red]violation[/red] {v}", highlight=False)
    console.print(f"{'[green]PASSED' if r.ok else '[red]FAILED'}[/] after {len(r.blocks)} blocks, "
                  f"trace digest {r.trace_digest[:16]}...")


@app.command()
def replay(
    trace: Annotated[Path, typer.Argument(help="A trace written by `consortium run --trace` (simulator).")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Re-execute a simulator trace and prove the same blocks and state roots."""
    rep = scenario.replay(trace)
    out = {"scenario": rep.scenario, "blocks": rep.blocks, "identical": rep.identical,
           "first_difference": rep.first_difference, "trace_digest_match": rep.trace_digest_match}
    if json_out:
        emit_json(out)
    elif rep.identical:
        console.print(f"replayed {rep.scenario}: {rep.blocks} blocks, same block ids and state roots at "
                      f"every height; trace digest {'identical' if rep.trace_digest_match else 'DIFFERENT'}")
    else:
        console.print(f"[red]replay of {rep.scenario} diverged[/red]: {rep.first_difference}")
    raise typer.Exit(0 if rep.identical and rep.trace_digest_match else 1)





FLAGSHIP = shipped_dir("scenarios") / "flagship.toml"  # the checkout's, or the copy in the wheel


@app.command()
def demo(
    sim: Annotated[bool, typer.Option("--sim", help="Replay on the simulator instead of live processes.")] = False,
    broker: Annotated[str, typer.Option(help="Broker for the live run: embedded, mosquitto or mqtt://host:port.")
                      ] = "embedded",
    path: Annotated[Path, typer.Option("--scenario", help="Scenario to replay.")] = FLAGSHIP,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Bring up the default consortium (7 validators) on the embedded broker, replay the
    flagship scenario live, print the final ledger facts, shut everything down."""
    sc = scenario.load(path)
    backend = "sim" if sim else "live"
    if not json_out:
        console.print(f"[bold]{sc.name}[/bold] on {'the simulator' if sim else f'live node processes ({broker} broker)'}")
        console.print(" ".join(sc.description.split()), style="dim")
    live_opts: dict[str, Any] = {} if sim else {"broker": broker}
    result = _with_progress(lambda cb: scenario.runner.run(sc, backend=backend, progress=cb, live=live_opts),
                            quiet=json_out)
    if json_out:
        emit_json(result.to_dict())
        raise typer.Exit(0 if result.ok else 1)
    print_result(result)
    facts = Table(title="final ledger facts")
    for col in ("eBL reference", "carrier", "status", "possessor", "title holder", "pledgee"):
        facts.add_column(col)
    for e in result.final.get("ebls", []):
        facts.add_row(e["reference"], e["carrier"], e["status"], str(e["possessor"]), str(e["title_holder"]),
                      str(e["pledgee"] or "-"))
    console.print(facts)
    summary = result.final.get("summary", {})
    records = ", ".join(f"{k} {v}" for k, v in summary.get("records", {}).items() if v)
    console.print(f"ledger at height {summary.get('height')} ({summary.get('date')}): {records}")
    console.print("consortium stopped" if not sim else "")
    raise typer.Exit(0 if result.ok else 1)
