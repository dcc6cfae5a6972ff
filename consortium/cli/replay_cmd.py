"""`consortium replay-node LOG...`: a live node's input log re-run offline (consortium.node.replay).

Exit codes: 0 every log replays identically, 1 a replay differs (the first differing
input is printed), 2 a log that cannot be read (not an input log, another format
version, a damaged record: one line naming the file and the record) or a home that
does not fit it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

from consortium.cli.app import app, console, emit_json, err_console


@app.command("replay-node")
def replay_node(
    logs: Annotated[list[Path], typer.Argument(
        help="Input logs written by `up --record` / `run --live --record` (HOME/nodes/<id>/inputs.log).")],
    home: Annotated[Optional[Path], typer.Option(
        help="Consortium home with the genesis and the node's key (default: the home the log sits in).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Re-run a live node's consensus and ledger from its input log and compare every
    step's actions, block id and state root with what the live node got."""
    from consortium.node.replay import replay_log

    results = []
    for log in logs:
        results.append(_with_progress(log, lambda cb, log=log: replay_log(log, home, cb), quiet=json_out))
    identical = all(r.identical for r in results)
    if json_out:
        emit_json({"identical": identical, "logs": [r.to_dict() for r in results]})
    else:
        for r in results:
            head = f"{r.log} ({r.node}): {r.inputs} inputs, {r.boots} boot(s)"
            for note in r.notes:
                console.print(f"  note: {note}", style="dim", highlight=False)
            if r.truncated:
                console.print(f"  note: torn last record cut off ({r.truncated}): the node died writing it",
                              style="dim", highlight=False)
            if r.first_difference is None:
                console.print(f"{head}: identical: block ids and state roots at {r.heights_compared} heights "
                              f"(up to {r.last_height}, root {r.state_root[:16]}), every step's actions",
                              highlight=False)
            else:
                console.print(f"{head}: [red]DIFFERS[/red] at {r.first_difference.line()}", highlight=False)
    raise typer.Exit(0 if identical else 1)


def _with_progress(log: Path, job: Any, *, quiet: bool) -> Any:
    if quiet or not sys.stderr.isatty():
        return job(None)
    with Progress(TextColumn(f"replaying {log.parent.name}"), BarColumn(), DownloadColumn(),
                  console=err_console, transient=True) as bar:
        task = bar.add_task("replay", total=None)

        def cb(done: int, total: int) -> None:
            bar.update(task, total=total, completed=done)

        return job(cb)
