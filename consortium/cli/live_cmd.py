"""`consortium up / down / status / watch`: the live consortium on this machine.

`up` starts the broker and one `consortium node` process per member of the
genesis, then shows a live dashboard built from the nodes' retained status
records; Ctrl-C stops nodes (SIGTERM, then SIGKILL after 10 s) and the broker.
`up --detach` records the processes in HOME/run/ and returns once every
started node has published a fresh status record; `down` stops them later.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from consortium import limits
from consortium.cli.app import DEFAULT_HOME, app, console, emit_json, err_console
from consortium.errors import UserError

#: How long `up --detach` waits for every node's first status record.
ready_wait_s = 90.0
#: How often the dashboard redraws.
redraw_ms = 500
#: Without a terminal, the dashboard prints one summary line this often.
plain_line_ms = 5_000


# ---------------------------------------------------------------- up


@app.command()
def up(
    home: Annotated[Path, typer.Option(help="Consortium home directory (from `consortium init`).")] = DEFAULT_HOME,
    broker: Annotated[str, typer.Option(help="embedded (amqtt, default), mosquitto, or mqtt://host:port.")] = "embedded",
    detach: Annotated[bool, typer.Option(help="Return once every node reports a status; stop with `consortium down`.")] = False,
    only: Annotated[Optional[list[str]], typer.Option(
        help="Start just this member (repeatable) against the running broker, e.g. to restart a crashed node.")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port of a broker started here (default: a free one).")] = None,
    block_interval_ms: Annotated[Optional[int], typer.Option(
        help="Local pause between heights in ms (default: the genesis value).")] = None,
    wait_s: Annotated[float, typer.Option(help="With --detach: how long to wait for the nodes' status.")] = ready_wait_s,
    json_out: Annotated[bool, typer.Option("--json", help="With --detach: print what was started as JSON.")] = False,
) -> None:
    """Start the broker and one node process per member, with a live dashboard (Ctrl-C stops all)."""
    from consortium.bus import broker as brokers
    from consortium.home import load_genesis
    from consortium.node import launch

    genesis = load_genesis(home)
    members = [m.id for m in genesis.members]
    ids = _chosen(members, only)
    rd = launch.run_dir(home)
    running = launch.recorded_nodes(rd)
    already = sorted(set(ids) & set(running))
    if already:
        raise UserError(f"already running: {', '.join(already)} (stop them with `consortium down --home {home}`)")
    handle = _broker_for(brokers, home, rd, broker, port, detach, reuse=bool(only))
    started: dict[str, Any] = {}
    try:
        for ident in ids:  # one by one, so that a failure still stops the ones already started
            started.update(launch.start_nodes(home, [ident], handle.url, detach=detach,
                                              block_interval_ms=block_interval_ms))
            time.sleep(limits.node_start_gap_ms / 1000)
        if detach:
            records = launch.wait_ready(home, handle.url, started, wait_s)
            _print_started(handle, started, records, json_out)
            return
    except BaseException:
        _stop_started(home, started, handle if not only else None)
        raise
    _serve_dashboard(home, handle, started)


def _chosen(members: list[str], only: list[str] | None) -> list[str]:
    if not only:
        return members
    unknown = sorted(set(only) - set(members))
    if unknown:
        raise UserError(f"--only {unknown[0]!r}: not a member (members: {', '.join(members)})")
    return [m for m in members if m in only]


def _broker_for(brokers: Any, home: Path, rd: Path, spec: str, port: int | None, detach: bool,
                reuse: bool) -> Any:
    """The broker to start nodes against: the recorded one (--only), or a new/external one."""
    recorded = brokers.attach_recorded(rd)
    if reuse:
        if recorded is not None:
            return recorded
        if spec.startswith("mqtt://"):
            return brokers.external(spec)
        raise UserError(f"--only needs a running broker: none recorded in {rd} (start with `consortium up`)")
    if recorded is not None and not spec.startswith("mqtt://"):
        raise UserError(f"a {recorded.kind} broker is already running for {home} (pid {recorded.pid}); "
                        f"`consortium down --home {home}` first")
    return brokers.start_broker(spec, home=home, run_dir=rd, port=port, detach=detach)


def _stop_started(home: Path, started: Mapping[str, Any], handle: Any) -> None:
    """Stop what this command started (nodes first, then the broker) and forget it."""
    from consortium.node import launch

    launch.stop_pids({i: n.pid for i, n in started.items()},
                     processes={i: n.process for i, n in started.items() if n.process is not None})
    launch.forget(launch.run_dir(home), list(started))
    if handle is not None:
        handle.stop()


def _print_started(handle: Any, started: Mapping[str, Any], records: Mapping[str, Any], json_out: bool) -> None:
    from consortium.client.status import agreement

    out = {"broker": {"kind": handle.kind, "url": handle.url, "pid": handle.pid},
           "nodes": {i: n.pid for i, n in started.items()}, "summary": agreement(records)}
    if json_out:
        emit_json(out)
        return
    console.print(f"broker {handle.kind} at {handle.url} (pid {handle.pid})")
    for ident, node in started.items():
        console.print(f"  node {ident}: pid {node.pid}, log {node.log}")
    console.print("running; `consortium status` to look, `consortium down` to stop")


def _serve_dashboard(home: Path, handle: Any, started: Mapping[str, Any]) -> None:
    """Dashboard until Ctrl-C / SIGTERM, then stop nodes and broker (also on errors)."""
    try:
        asyncio.run(_dashboard(home, handle.url, started))
    finally:
        err_console.print("stopping nodes and broker...")
        _stop_started(home, started, handle)


# ---------------------------------------------------------------- down


@app.command()
def down(
    home: Annotated[Path, typer.Option(help="Consortium home directory.")] = DEFAULT_HOME,
    json_out: Annotated[bool, typer.Option("--json", help="Print what was stopped as JSON.")] = False,
) -> None:
    """Stop the nodes and the broker started by `consortium up --detach` (safe if already stopped)."""
    from consortium.bus import broker as brokers
    from consortium.node import launch

    rd = launch.run_dir(home)
    stopped = launch.stop_recorded_nodes(home)
    broker_stopped = brokers.stop_recorded(rd)
    if json_out:
        emit_json({"nodes_stopped": stopped, "broker_stopped": broker_stopped})
        return
    if not stopped and not broker_stopped:
        console.print("nothing was running")
        return
    console.print(f"stopped nodes: {', '.join(stopped) or 'none'}; broker: {'stopped' if broker_stopped else 'none'}")


# ---------------------------------------------------------------- status / watch


@app.command()
def status(
    home: Annotated[Path, typer.Option(help="Consortium home directory.")] = DEFAULT_HOME,
    broker: Annotated[Optional[str], typer.Option(help="mqtt://host:port (default: the recorded broker).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the status records as JSON.")] = False,
) -> None:
    """Every node's latest status record (height, round, proposer, peers, mempool, tx/s, drops, root)."""
    from consortium.bus.endpoint import endpoint
    from consortium.client.status import agreement, read_status

    ep = endpoint(home, broker)
    assert ep.genesis is not None
    records = asyncio.run(read_status(ep, {m.id for m in ep.genesis.members}))
    if not records:
        raise UserError("no status records on the broker (is the consortium up?)")
    summary = agreement(records)
    if json_out:
        emit_json({"nodes": {n: s.to_dict() for n, s in sorted(records.items())}, "summary": summary})
        return
    out = console if console.is_terminal else Console(width=160)  # a pipe: no 80-column squeeze
    out.print(dashboard_table(records, [m.id for m in ep.genesis.members]))
    out.print(_summary_line(summary))


@app.command()
def watch(
    home: Annotated[Path, typer.Option(help="Consortium home directory.")] = DEFAULT_HOME,
    broker: Annotated[Optional[str], typer.Option(help="mqtt://host:port (default: the recorded broker).")] = None,
) -> None:
    """The live dashboard of a running consortium (Ctrl-C leaves it running)."""
    asyncio.run(_dashboard(home, broker, {}))


async def _dashboard(home: Path, url: str | None, started: Mapping[str, Any]) -> None:
    from consortium.bus.endpoint import endpoint
    from consortium.node.status import StatusWatcher

    ep = endpoint(home, url)
    assert ep.genesis is not None
    order = [m.id for m in ep.genesis.members]
    watcher = StatusWatcher(ep)
    task = asyncio.create_task(watcher.run())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if console.is_terminal:
            await _live(console, watcher, order, started, stop)
        else:
            await _plain(watcher, stop)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _live(out: Console, watcher: Any, order: list[str], started: Mapping[str, Any],
                stop: asyncio.Event) -> None:
    with Live(dashboard_table(watcher.records, order, started), console=out, auto_refresh=False) as live:
        while not stop.is_set():
            live.update(dashboard_table(watcher.records, order, started), refresh=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), redraw_ms / 1000)


async def _plain(watcher: Any, stop: asyncio.Event) -> None:
    """No terminal (a pipe, a log file): one summary line every few seconds."""
    from consortium.client.status import agreement

    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), plain_line_ms / 1000)
        print(_summary_line(agreement(watcher.records)), flush=True)


def dashboard_table(records: Mapping[str, Any], order: list[str], started: Mapping[str, Any] | None = None) -> Table:
    table = Table(title="consortium (retained status records)", caption="Ctrl-C stops (up) / leaves (watch)")
    for col in ("node", "state", "height", "round", "step", "proposer", "peers", "mempool", "tx/s",
                "dropped", "root", "age"):
        table.add_column(col, justify="right" if col in ("height", "round", "mempool", "tx/s", "age") else "left")
    for ident in order:
        s = records.get(ident)
        node = (started or {}).get(ident)
        if s is None:
            gone = node is not None and not node.alive()
            table.add_row(ident, "[red]exited[/red]" if gone else "[dim]waiting[/dim]", *[""] * 10)
            continue
        i = s.info
        state = s.state if node is None or node.alive() else "exited"
        colour = {"running": "green", "stale": "yellow"}.get(state, "red")
        table.add_row(ident, f"[{colour}]{state}[/{colour}]", str(s.height), str(s.round), str(i.get("step", "")),
                      str(i.get("proposer", "")), str(len(i.get("peers", []))), str(i.get("mempool", "")),
                      str(i.get("tx_per_s", "")), _drops(i.get("dropped", {})), str(i.get("state_root", ""))[:12],
                      f"{s.age_ms / 1000:.1f}s")
    return table


def _drops(dropped: Mapping[str, int]) -> str:
    if not dropped:
        return "0"
    return " ".join(f"{k}={v}" for k, v in sorted(dropped.items()))


def _summary_line(summary: Mapping[str, Any]) -> str:
    verdict = "agree" if summary["agree"] else "DISAGREE"
    return (f"{len(summary['running'])} running, heights {summary['min_height']}..{summary['max_height']}, "
            f"state roots at the top height: {summary['roots_at_max_height']} ({verdict})")

