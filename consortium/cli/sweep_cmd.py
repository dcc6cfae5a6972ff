"""`consortium sweep SCENARIO`: one scenario on the simulator over a grid of seeds and
settings; a table per grid point, one row per run as CSV and Parquet."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from consortium import scenario
from consortium.cli.app import app, console, emit_json, err_console
from consortium.executor import make_executor
from consortium.scenario.sweep import SETTABLE, SweepResult, grid

_SET_HELP = ("KEY=V1,V2,... (repeatable; the grid is their product). Keys: " + ", ".join(SETTABLE)
             + " (consortium.nodes = sim.nodes); whole-number keys take ranges like 4..7.")


@app.command("sweep")
def sweep_cmd(
    path: Annotated[Path, typer.Argument(help="Scenario file (TOML) or a shipped scenario's name.")],
    seeds: Annotated[str, typer.Option(help="Seeds of every grid point: 1..50, 7 or 1,4,9.")] = "1..10",
    set_: Annotated[Optional[list[str]], typer.Option("--set", help=_SET_HELP)] = None,
    workers: Annotated[Optional[int], typer.Option(help="Local worker processes (default: all cores).")] = None,
    cluster: Annotated[Optional[str], typer.Option(help="Run on this Dask scheduler, tcp://HOST:PORT "
                                                        "(pip install 'consortium\\[cluster]').")] = None,
    out: Annotated[Path, typer.Option(help="Where NAME-runs.csv and NAME-runs.parquet go.")] = Path("sweep-out"),
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary (per grid point) as JSON.")] = False,
) -> None:
    """Run SCENARIO on the simulator for every seed at every grid point; print pass rate,
    heights per virtual second, commit latency percentiles, rounds and messages per height;
    write one row per run (CSV, Parquet). Exit 0 when done (failing runs are data), 130 on Ctrl-C."""
    sc = scenario.load(path)
    g = grid(sc, seeds, set_ or [])  # everything checked before a worker starts
    for note in g.notes:
        err_console.print(f"[yellow]note:[/yellow] {escape(note)}", highlight=False, soft_wrap=True)
    executor = make_executor(workers, cluster)
    show = not json_out and sys.stderr.isatty()
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TextColumn("{task.fields[rate]:.1f}/s  failed {task.fields[bad]}"),
                      console=err_console, transient=True, disable=not show) as bar:
            task = bar.add_task(f"sweeping {sc.name}", total=g.runs, rate=0.0, bad=0)
            seen = {"n": 0, "bad": 0}

            def on_record(r: dict[str, Any]) -> None:
                seen["n"] += 1
                seen["bad"] += not r["ok"]
                elapsed = bar.tasks[0].elapsed or 0.0
                bar.update(task, advance=1, rate=seen["n"] / elapsed if elapsed else 0.0, bad=seen["bad"])

            result = scenario.sweep(sc, seeds=seeds, settings=set_ or [], executor=executor, on_record=on_record)
    finally:
        executor.close()
    csv_path, pq_path = result.write(out)
    if json_out:
        emit_json({**result.summary(), "csv": str(csv_path), "parquet": str(pq_path)})
    else:
        print_result(result, csv_path, pq_path)
    raise typer.Exit(130 if result.interrupted else 0)


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


def print_result(r: SweepResult, csv_path: Path, pq_path: Path) -> None:
    s = r.summary()
    if r.interrupted:
        console.print("[yellow]interrupted[/yellow]: reporting what was done", highlight=False)
    t = Table(title=f"{s['scenario']}: {s['runs']} runs (seeds {s['seeds']}) in {s['seconds']} s "
                    f"on {s['workers']} workers ({s['where']})", title_justify="left",
              caption="latency: tx submission to commit, virtual ms; rounds and messages per decided height",
              caption_justify="left")
    for k in r.grid.keys:
        t.add_column(k, justify="right", no_wrap=True, min_width=len(k))
    for name in ("runs", "pass", "heights/s", "p50 ms", "p90 ms", "p99 ms", "rounds/h", "msgs/h"):
        t.add_column(name, justify="right", no_wrap=True)
    for p in r.points:
        t.add_row(*[_fmt(p[k]) for k in r.grid.keys], str(p["runs"]), f"{p['pass_rate']:.0%}",
                  _fmt(p["heights_per_s"]), _fmt(p["latency_p50_ms"]), _fmt(p["latency_p90_ms"]),
                  _fmt(p["latency_p99_ms"]), _fmt(p["rounds_per_height"]), _fmt(p["messages_per_height"]))
    wide = console if console.is_terminal else Console(file=console.file, width=max(console.width, 160))
    wide.print(t)  # into a file or a pipe: the whole table, never cropped to 80 columns
    console.print(f"{s['passed']}/{s['runs']} runs passed; one row per run: {csv_path}, {pq_path}",
                  highlight=False, soft_wrap=True)
