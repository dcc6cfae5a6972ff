"""`consortium explore`: generated fault schedules on the simulator; failures shrunk
and written as scenario files that `consortium run` replays."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from consortium import limits
from consortium.cli.app import app, console, emit_json, err_console
from consortium.errors import UserError
from consortium.explore.executor import make_executor
from consortium.explore.run import Outcome
from consortium.explore.schedule import Options
from consortium.explore.search import Report, explore


def parse_nodes(spec: str) -> tuple[int, int]:
    """'4..7' (inclusive) or '5'."""
    lo, sep, hi = spec.partition("..")
    try:
        a, b = int(lo), int(hi) if sep else int(lo)
    except ValueError:
        raise UserError(f"--nodes {spec!r}: expected a size like 5 or a range like 4..7") from None
    if not 1 <= a <= b <= limits.explore_nodes_max:
        raise UserError(f"--nodes {spec!r}: sizes must be 1..{limits.explore_nodes_max}, low <= high")
    return a, b


@app.command("explore")
def explore_cmd(
    minutes: Annotated[Optional[float], typer.Option(help="Search for this long (wall clock).")] = None,
    schedules: Annotated[Optional[int], typer.Option(help="Run this many schedules (default 100 "
                                                          "if --minutes is not given).")] = None,
    seed: Annotated[int, typer.Option(help="First seed: schedules use seed, seed+1, ...")] = 0,
    generator: Annotated[str, typer.Option(help="Schedule generator: random (every fault, targeted "
                                                "equivocation, rolled-back restarts), twins (two instances "
                                                "under one key, partitions per round and step), split (a few "
                                                "links cut at chosen steps of three rounds: a polka and a "
                                                "decision only some nodes see) or mixed (a sixth split, a "
                                                "sixth twins, the rest random).")] = "mixed",
    nodes: Annotated[str, typer.Option(help="Consortium sizes: a range like 4..7 or one size.")
                     ] = f"{limits.explore_default_nodes_min}..{limits.explore_default_nodes_max}",
    heights: Annotated[int, typer.Option(help="Heights each schedule runs to.")] = limits.explore_heights,
    workers: Annotated[Optional[int], typer.Option(help="Local worker processes (default: all cores).")] = None,
    cluster: Annotated[Optional[str], typer.Option(help="Run on this Dask scheduler, tcp://HOST:PORT (pip install 'consortium\\[cluster]').")
                       ] = None,
    beyond_f: Annotated[bool, typer.Option("--beyond-f", help="Let the Byzantine coalition hold more than f "
                                                              "(shows the checkers fire).")] = False,
    first: Annotated[bool, typer.Option("--first", help="Stop at the first violation (then shrink it).")] = False,
    out: Annotated[Path, typer.Option(help="Where shrunk failing schedules are written as scenarios.")
                   ] = Path("explore-out"),
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Run generated fault schedules on the simulator; exit 1 if any violates a property."""
    lo, hi = parse_nodes(nodes)
    options = Options(lo, hi, heights, beyond_f, generator)
    if minutes is None and schedules is None:
        schedules = 100
    if minutes is not None and schedules is not None:
        raise UserError("give one of --schedules N and --minutes M, not both")
    executor = make_executor(workers, cluster)
    show = not json_out and sys.stderr.isatty()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[rate]:.1f}/s  violations {task.fields[bad]}"),
                  console=err_console, transient=True, disable=not show) as bar:
        task = bar.add_task("exploring", total=schedules, rate=0.0, bad=0)
        seen = {"n": 0, "bad": 0}

        def on_outcome(o: Outcome) -> None:
            seen["n"] += 1
            seen["bad"] += not o.ok
            elapsed = bar.tasks[0].elapsed or 0.0
            bar.update(task, advance=1, rate=seen["n"] / elapsed if elapsed else 0.0, bad=seen["bad"])

        def on_shrink(seed_: int, faults: int) -> None:
            bar.update(task, description=f"shrinking seed {seed_} ({faults} faults)")

        report = explore(executor, seed=seed, options=options, schedules=schedules, minutes=minutes,
                         out=out, first=first, on_outcome=on_outcome, on_shrink=on_shrink)
    if json_out:
        emit_json(report.to_dict())
    else:
        print_report(report)
    raise typer.Exit(1 if report.failing else (130 if report.interrupted else 0))


def print_report(r: Report) -> None:
    d = r.to_dict()
    if r.interrupted:
        console.print("[yellow]interrupted[/yellow]: reporting what was done", highlight=False)
    console.print(f"{d['schedules']} schedules (seeds {r.seed}..{r.seed + max(0, d['schedules'] - 1)}, "
                  f"n {d['nodes']}, {d['heights']} heights{', beyond f' if r.options.beyond_f else ''}) "
                  f"in {d['seconds']} s on {d['workers']} workers: {d['per_minute']} a minute; "
                  f"{d['violations']} violating", highlight=False)
    for f in r.found:
        where = f"-> {f.scenario}{'' if f.replayed else ' (replay did NOT reproduce it)'}" if f.scenario else ""
        where += f", report {f.report}" if f.report else ""
        console.print(f"[red]violation[/red] seed {f.seed}: {f.prop} ({f.message}); shrunk {f.faults_before} -> "
                      f"{f.faults_after} faults {where}", highlight=False, soft_wrap=True)
    rest = len(r.failing) - len(r.found)
    if rest > 0:
        console.print(f"{rest} more violating seeds not shrunk: {d['failing_seeds'][len(r.found):]}",
                      highlight=False, soft_wrap=True)
