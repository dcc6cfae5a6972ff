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
from rich import box
from rich.console import Console
from rich.live import Live
from rich.table import Table

from consortium import limits
from consortium.cli.app import DEFAULT_HOME, app, console, emit_json, err_console
from consortium.errors import UserError

# ---------------------------------------------------------------- up


@app.command()
def up(
    home: Annotated[Path, typer.Option(help="Consortium home directory (from `consortium init`).")] = DEFAULT_HOME,
    broker: Annotated[Optional[str], typer.Option(
        help="embedded (amqtt, default), mosquitto, or mqtt://host:port (bridged: mosquitto only).")] = None,
    topology: Annotated[str, typer.Option(
        help="single (one broker) or bridged (a Shanghai and a Hong Kong mosquitto, bridged through the "
             "link relay; each member on its jurisdiction's broker).")] = "single",
    relay_port: Annotated[Optional[int], typer.Option(
        help="Bridged: port of the link relay (default: a free one).")] = None,
    link_rtt_ms: Annotated[Optional[int], typer.Option(
        help="Bridged: round trip the link adds, ms (default 30; jitter 3 each way).")] = None,
    detach: Annotated[bool, typer.Option(help="Return once every node reports a status; stop with `consortium down`.")] = False,
    only: Annotated[Optional[list[str]], typer.Option(
        help="Start just this member (repeatable) against the running broker, e.g. to restart a crashed node.")] = None,
    twin: Annotated[Optional[list[str]], typer.Option(
        help="Also start a twin of this validator (repeatable; Twins): a second process under its key with its "
             "own store HOME/nodes/ID~twin; at most f of the voting power unless --beyond-f.")] = None,
    beyond_f: Annotated[bool, typer.Option(
        "--beyond-f", help="Allow twins holding more than f of the voting power (safety is then not promised).")
                        ] = False,
    port: Annotated[Optional[int], typer.Option(help="Port of a broker started here (default: a free one).")] = None,
    block_interval_ms: Annotated[Optional[int], typer.Option(
        help="Local pause between heights in ms (default: the genesis value).")] = None,
    record: Annotated[bool, typer.Option(
        "--record", help="Each node logs its replica's inputs to HOME/nodes/ID/inputs.log (appended across "
                         "restarts) for `consortium replay-node`.")] = False,
    wait_s: Annotated[float, typer.Option(
        help="With --detach: how long to wait for the nodes' status.")] = limits.nodes_ready_wait_ms / 1000,
    json_out: Annotated[bool, typer.Option("--json", help="With --detach: print what was started as JSON.")] = False,
) -> None:
    """Start the broker and one node process per member, with a live dashboard (Ctrl-C stops all)."""
    from consortium.bus import bridge
    from consortium.bus import broker as brokers
    from consortium.home import load_genesis
    from consortium.node import launch, twins

    bridge.check_topology(topology)
    if topology == "bridged" and broker not in (None, "mosquitto"):
        raise UserError(f"--topology bridged runs two mosquitto brokers; --broker {broker} does not fit")
    if topology == "single" and (relay_port is not None or link_rtt_ms is not None):
        raise UserError("--relay-port and --link-rtt-ms need --topology bridged")
    genesis = load_genesis(home)
    members = [m.id for m in genesis.members]
    ids = _chosen(members, only)
    doubled = twins.check_twins(twin or [], genesis, beyond_f=beyond_f, where="--twin")
    ids = [i for m in ids for i in (m, *([twins.twin_instance(m)] if m in doubled else []))]  # twin after member
    ids += [twins.twin_instance(t) for t in doubled if t not in ids]  # --only others: the twin alone
    rd = launch.run_dir(home)
    running = launch.recorded_nodes(rd)
    already = sorted(set(ids) & set(running))
    if already:
        raise UserError(f"already running: {', '.join(already)} (stop them with `consortium down --home {home}`)")
    if topology == "bridged" and not only:
        if brokers.attach_recorded(rd) is not None:
            raise UserError(f"a broker is already running for {home}; `consortium down --home {home}` first")
        handle: Any = bridge.start_bridged(home, rd, detach=detach, port=port, relay_port=relay_port,
                                           plan=bridge.NetnsPlan.from_env(), latency_ms=None
                                           if link_rtt_ms is None else link_rtt_ms // 2)
    else:
        handle = _broker_for(brokers, home, rd, broker or "embedded", port, detach, reuse=bool(only))
    if only or handle.kind == "external":  # not started here: is it there at all? (one line, exit 2)
        _probe(home, handle.url, bool(only))
    urls, spaces = bridge.recorded_urls(rd), bridge.recorded_netns(rd)  # bridged: per jurisdiction
    started: dict[str, Any] = {}
    try:
        for ident in ids:  # one by one, so that a failure still stops the ones already started
            side = str(genesis.member(twins.member_of(ident)).jurisdiction)  # type: ignore[union-attr]
            started.update({ident: launch.start_node(home, ident, urls.get(side, handle.url), detach=detach,
                                                     block_interval_ms=block_interval_ms,
                                                     netns=spaces.get(side), record=record)})
            time.sleep(limits.node_start_gap_ms / 1000)
        if detach:
            # a node that cannot start (a damaged store) must not take the healthy ones down with it
            records, failed = launch.wait_started(home, handle.url, started, wait_s)
            launch.forget(rd, list(failed))
            if not records:
                _stop_started(home, started, handle if not only else None)
            _print_started(handle, {i: n for i, n in started.items() if i not in failed}, records, json_out,
                           failed)
            if failed:
                raise typer.Exit(1)
            return
    except BaseException as exc:
        if not isinstance(exc, typer.Exit):
            _stop_started(home, started, handle if not only else None)
        raise
    _serve_dashboard(home, handle, started)


def _probe(home: Path, url: str, restarting: bool) -> None:
    from consortium.bus.endpoint import endpoint, probe_broker

    try:
        probe_broker(endpoint(home, url))
    except UserError as exc:
        hint = (f"; restart the consortium's broker with `consortium broker restart --home {home}`"
                if restarting else "")
        raise UserError(f"--only needs a running broker: {exc}{hint}" if restarting else str(exc)) from None


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


def _print_started(handle: Any, started: Mapping[str, Any], records: Mapping[str, Any], json_out: bool,
                   failed: Mapping[str, str]) -> None:
    """What runs now; a node that failed to start gets one warning line (and "failed" in JSON)."""
    from consortium.client.status import agreement
    from consortium.node import twins

    out = {"broker": {"kind": handle.kind, "url": handle.url, "pid": handle.pid},
           "nodes": {i: n.pid for i, n in started.items()}, "failed": dict(failed),
           "summary": agreement({i: r for i, r in records.items() if not twins.is_twin(i)})}  # members only
    if hasattr(handle, "describe"):  # bridged: both brokers and the link relay
        out["topology"] = handle.describe()
    for ident, why in failed.items():
        err_console.print(f"[red]warning:[/red] node {ident} did not start: {why}", highlight=False, soft_wrap=True)
    if json_out:
        emit_json(out)
        return
    if hasattr(handle, "describe"):
        d = handle.describe()
        for side, b in d["brokers"].items():
            console.print(f"broker mosquitto ({side}) at {b['url']} (pid {b['pid']})")
        console.print(f"link relay {d['relay']['listen'][0]}:{d['relay']['listen'][1]} -> "
                      f"{d['relay']['target'][0]}:{d['relay']['target'][1]} (pid {d['relay']['pid']}); "
                      "`consortium link cut|heal|cut-oneway|status`")
    else:
        console.print(f"broker {handle.kind} at {handle.url} (pid {handle.pid})")
    for ident, node in started.items():
        console.print(f"  node {ident}: pid {node.pid}, log {node.log}")
    if not records:
        console.print("no node started")
        return
    console.print("running; `consortium status` to look, `consortium down` to stop")


def _serve_dashboard(home: Path, handle: Any, started: Mapping[str, Any]) -> None:
    """Dashboard until Ctrl-C / SIGTERM, then stop nodes and broker (also on errors)."""
    try:
        asyncio.run(_dashboard(home, handle.url, started))
        exited = {i: n for i, n in started.items() if not n.alive()}
    finally:
        err_console.print("stopping nodes and broker...")
        _stop_started(home, started, handle)
    if exited:  # the healthy ones ran on; the end still says that not all did
        for line in _exit_lines(exited):
            err_console.print(line, highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def _exit_lines(exited: Mapping[str, Any]) -> list[str]:
    from consortium.node import launch

    return [f"[red]warning:[/red] node {i} exited (code {n.exit_code()}): {launch.exit_reason(n.log)}"
            for i, n in sorted(exited.items())]


# ---------------------------------------------------------------- down


@app.command()
def down(
    home: Annotated[Path, typer.Option(help="Consortium home directory.")] = DEFAULT_HOME,
    json_out: Annotated[bool, typer.Option("--json", help="Print what was stopped as JSON.")] = False,
) -> None:
    """Stop the nodes and the broker started by `consortium up --detach` (safe if already stopped)."""
    from consortium.bus import broker as brokers
    from consortium.home import GENESIS_FILE
    from consortium.node import launch

    rd = launch.run_dir(home)
    if not home.is_dir():  # a typo must not look like "nothing was running"
        raise UserError(f"--home {home}: no such consortium home (no such directory)")
    if not (home / GENESIS_FILE).exists() and not rd.is_dir():
        raise UserError(f"--home {home}: not a consortium home (no {GENESIS_FILE}, no run/)")
    from consortium.bus import bridge

    stopped = launch.stop_recorded_nodes(home)
    broker_stopped = brokers.stop_recorded(rd)
    broker_stopped = bridge.stop_recorded(rd) or broker_stopped  # bridged: the relay and the far broker
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
    twin_records = _twin_status(home)
    if json_out:
        emit_json({"nodes": {n: s.to_dict() for n, s in sorted(records.items())}, "summary": summary,
                   "twins": twin_records})
        return
    out = console if console.is_terminal else Console(width=160)  # a pipe: no 80-column squeeze
    out.print(dashboard_table(records, [m.id for m in ep.genesis.members], width=out.width))
    out.print(_summary_line(summary))
    for ident, t in twin_records.items():
        out.print(f"twin {ident}: {t['state']}, pid {t.get('pid')}, height {t['height']}, round {t['round']}, "
                  f"root {str(t.get('state_root', ''))[:16]}, evidence seen {t.get('evidence', 0)}", highlight=False)


def _twin_status(home: Path) -> dict[str, Any]:
    """The status files of the twin processes recorded in HOME/run (a twin publishes no
    status record: node/twins.py), with the computed state (`stale` for a dead one)."""
    from consortium.node import launch, twins
    from consortium.node.status import Status

    rd = launch.run_dir(home)
    out: dict[str, Any] = {}
    for ident in sorted(launch.load_records(rd).get("nodes", {})):
        rec = twins.read_status(rd, ident) if twins.is_twin(ident) else None
        if rec is not None:
            info = {k: v for k, v in rec.items() if k not in ("height", "round")}
            out[ident] = Status(ident, int(rec.get("height", 0)), int(rec.get("round", 0)), info).to_dict()
    return out


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
            await _plain(watcher, started, stop)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _live(out: Console, watcher: Any, order: list[str], started: Mapping[str, Any],
                stop: asyncio.Event) -> None:
    reported: set[str] = set()
    with Live(dashboard_table(watcher.records, order, started, out.width), console=out, auto_refresh=False) as live:
        while not stop.is_set():  # out.width follows a resized terminal
            _report_exits(live.console, started, reported)
            live.update(dashboard_table(watcher.records, order, started, out.width), refresh=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), limits.dashboard_redraw_ms / 1000)


async def _plain(watcher: Any, started: Mapping[str, Any], stop: asyncio.Event) -> None:
    """No terminal (a pipe, a log file): one summary line every few seconds."""
    from consortium.client.status import agreement

    reported: set[str] = set()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), limits.dashboard_plain_line_ms / 1000)
        _report_exits(err_console, started, reported)
        print(_summary_line(agreement(watcher.records)), flush=True)


def _report_exits(out: Console, started: Mapping[str, Any], reported: set[str]) -> None:
    """One warning line per started node that exited (the others run on)."""
    exited = {i: n for i, n in started.items() if i not in reported and not n.alive()}
    for line in _exit_lines(exited):
        out.print(line, highlight=False, soft_wrap=True)
    reported.update(exited)


#: Dashboard columns in display order: (header, right-aligned, priority). The
#: columns of priority 0 always show (they fit 80 columns); the others are added,
#: lowest number first, while the table still fits the terminal's width.
_COLUMNS: tuple[tuple[str, bool, int], ...] = (
    ("node", False, 0), ("state", False, 0), ("height", True, 0), ("round", True, 0), ("step", False, 0),
    ("proposer", False, 2), ("peers", True, 0), ("mempool", True, 1), ("backlog", True, 4),
    ("tx/s", True, 0), ("dropped", False, 3), ("root", False, 0), ("age", True, 0),
)
#: Widest value of columns whose values change width as nodes move on ("precommit",
#: "running", "12.3s"): the layout does not jump between redraws.
_STEADY_WIDTH = {"step": len("precommit"), "state": len("running"), "age": len("12.3s")}
#: Hex digits of the state root shown: enough to see agreement at a glance; more when wide.
_ROOT_CHARS = (8, 16)


def dashboard_table(records: Mapping[str, Any], order: list[str], started: Mapping[str, Any] | None = None,
                    width: int = 80) -> Table:
    """The nodes' status records as a table that fits `width` columns: the core
    columns always (80 columns hold them), then more columns, and a longer state
    root, as long as they fit. Headers and values are never cut."""
    rows = [_dashboard_row(ident, records.get(ident), (started or {}).get(ident)) for ident in order]
    shown = [c for c in _COLUMNS if c[2] == 0]
    table = _table(shown, rows, _ROOT_CHARS[0])
    for extra in sorted((c for c in _COLUMNS if c[2] > 0), key=lambda c: c[2]):
        wider = [c for c in _COLUMNS if c in shown or c == extra]
        candidate = _table(wider, rows, _ROOT_CHARS[0])
        if _table_width(candidate) <= width:
            shown, table = wider, candidate
    candidate = _table(shown, rows, _ROOT_CHARS[1])
    if _table_width(candidate) <= width:
        table = candidate
    return table


def _table(columns: list[tuple[str, bool, int]], rows: list[dict[str, str]], root_chars: int) -> Table:
    table = Table(title="consortium (retained status records)", caption="Ctrl-C stops (up) / leaves (watch)",
                  box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False, show_edge=False)
    for header, right, _ in columns:
        table.add_column(header, justify="right" if right else "left", no_wrap=header != "dropped",
                         min_width=max(len(header), _STEADY_WIDTH.get(header, 0)), overflow="fold")
    for row in rows:
        cells = {**row, "root": row["root"][:root_chars]}
        table.add_row(*(cells.get(header, "") for header, _, _ in columns))
    return table


#: Measuring a table's natural width needs a console wider than any table.
_UNBOUNDED_WIDTH = 10_000


def _table_width(table: Table) -> int:
    return Console(width=_UNBOUNDED_WIDTH).measure(table).maximum


def _dashboard_row(ident: str, s: Any, node: Any) -> dict[str, str]:
    if s is None:
        gone = node is not None and not node.alive()
        return {"node": ident, "state": "[red]exited[/red]" if gone else "[dim]waiting[/dim]", "root": ""}
    i = s.info
    state = s.state if node is None or node.alive() else "exited"
    colour = {"running": "green", "stale": "yellow"}.get(state, "red")
    return {
        "node": ident, "state": f"[{colour}]{state}[/{colour}]", "height": str(s.height), "round": str(s.round),
        "step": str(i.get("step", "")), "proposer": str(i.get("proposer", "")),
        "peers": str(len(i.get("peers", []))), "mempool": str(i.get("mempool", "")),
        "backlog": str(i.get("tx_backlog", "")), "tx/s": str(i.get("tx_per_s", "")),
        "dropped": _drops(i.get("dropped", {})), "root": str(i.get("state_root", "")), "age": _age(s.age_ms),
    }


def _age(ms: int) -> str:
    """Short: 0.4s, 42s, 17m, 5h (a stale record can be days old)."""
    if ms < 10_000:
        return f"{ms / 1000:.1f}s"
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000)):
        if ms >= 2 * size:
            return f"{ms // size}{unit}"
    return f"{ms // 1000}s"


def _drops(dropped: Mapping[str, int]) -> str:
    if not dropped:
        return "0"
    return "\n".join(f"{k}={v}" for k, v in sorted(dropped.items()))


def _summary_line(summary: Mapping[str, Any]) -> str:
    verdict = "agree" if summary["agree"] else "DISAGREE"
    return (f"{len(summary['running'])} running, heights {summary['min_height']}..{summary['max_height']}, "
            f"state roots at the top height: {summary['roots_at_max_height']} ({verdict})")



# ---------------------------------------------------------------- broker


broker_app = typer.Typer(name="broker", no_args_is_help=True,
                         help="The broker `consortium up` started: status, restart (after a crash), stop.")
app.add_typer(broker_app, name="broker")


@broker_app.command("status")
def broker_status(
    home: Annotated[Path, typer.Option(help="Consortium home directory.")] = DEFAULT_HOME,
    json_out: Annotated[bool, typer.Option("--json", help="Print the broker record as JSON.")] = False,
) -> None:
    """Is the recorded broker running and accepting connections? (exit 1 if not)"""
    from consortium.bus import broker as brokers
    from consortium.node import launch

    st = brokers.recorded_status(launch.run_dir(home))
    if st is None:
        raise UserError(f"no broker recorded in {launch.run_dir(home)} (start the consortium with `consortium up`)")
    if json_out:
        emit_json(st)
    elif st["accepting"]:
        console.print(f"broker {st['kind']} at {st['url']} (pid {st['pid']}): running")
    else:
        what = "running but not accepting connections" if st["running"] else "not running"
        console.print(f"broker {st['kind']} at {st['url']} (pid {st['pid']}): {what}; "
                      f"`consortium broker restart --home {home}` starts it again")
    if not st["accepting"]:
        raise typer.Exit(1)


@broker_app.command("restart")
def broker_restart(
    home: Annotated[Path, typer.Option(help="Consortium home directory.")] = DEFAULT_HOME,
    jurisdiction: Annotated[str, typer.Option(
        help="Bridged topology: whose broker, CN-SH (the recorded one) or HK (sh, hk for short).")] = "CN-SH",
    json_out: Annotated[bool, typer.Option("--json", help="Print the new broker record as JSON.")] = False,
) -> None:
    """Start the recorded broker again on the same host, port and kind (e.g. after it
    crashed while the nodes run: they reconnect by themselves); a running one is stopped first.
    Bridged: `--jurisdiction HK` restarts the Hong Kong broker (the bridge reconnects through the link)."""
    from consortium.bus import bridge
    from consortium.bus import broker as brokers
    from consortium.node import launch
    from consortium.scenario.schema import BROKER_NAMES

    side = BROKER_NAMES.get(jurisdiction.lower())
    if side is None:
        raise UserError(f"--jurisdiction: {jurisdiction!r} is not CN-SH or HK")
    rd = launch.run_dir(home)
    if side != bridge.PRIMARY:
        if bridge.load_topology(rd) is None:
            raise UserError(f"--jurisdiction {side}: {home} runs no bridged consortium (one broker serves both "
                            "jurisdictions: leave --jurisdiction out)")
        rd = bridge.far_run_dir(rd, side)
    handle = brokers.restart_recorded(home, rd)
    out = {"kind": handle.kind, "url": handle.url, "host": handle.host, "port": handle.port, "pid": handle.pid}
    if json_out:
        emit_json(out)
        return
    console.print(f"broker {handle.kind} restarted at {handle.url} (pid {handle.pid}); nodes reconnect by themselves")


@broker_app.command("stop")
def broker_stop(
    home: Annotated[Path, typer.Option(help="Consortium home directory.")] = DEFAULT_HOME,
    json_out: Annotated[bool, typer.Option("--json", help="Print whether a broker was stopped as JSON.")] = False,
) -> None:
    """Stop the recorded broker only (nodes keep running and retry until it is back)."""
    from consortium.bus import broker as brokers
    from consortium.node import launch

    stopped = brokers.stop_recorded(launch.run_dir(home))
    if json_out:
        emit_json({"broker_stopped": stopped})
        return
    console.print("broker stopped" if stopped else "no broker was running")


# ---------------------------------------------------------------- link (bridged topology)


link_app = typer.Typer(name="link", no_args_is_help=True,
                       help="The Shanghai - Hong Kong link of a bridged consortium (`up --topology bridged`): "
                            "cut, heal, cut one way, latency, status.")
app.add_typer(link_app, name="link")

_SIDE_DIRECTIONS = {"CN-SH": "a-b", "HK": "b-a"}  # the relay's "a" side is the bridge's origin, Shanghai


def _link_out(state: dict[str, Any], json_out: bool, what: str) -> None:
    if json_out:
        emit_json(state)
        return
    lost = {"a-b": "CN-SH -> HK", "b-a": "HK -> CN-SH"}.get(str(state.get("lost")), "")
    mode = f"{state['mode']} ({lost} lost)" if lost else state["mode"]
    console.print(f"link {what}: {mode}, latency {state['latency_ms']} ms +- {state['jitter_ms']} ms each way, "
                  f"{state['open']} connection(s) open, resets {state['resets']}, bytes {state['bytes']}")


def _link(home: Path, mode: str, json_out: bool, what: str, **kw: Any) -> None:
    from consortium.bus import relay
    from consortium.node import launch

    _link_out(relay.write_command(launch.run_dir(home), mode, **kw), json_out, what)  # type: ignore[arg-type]


@link_app.command("status")
def link_status(
    home: Annotated[Path, typer.Option(help="Consortium home directory.")] = DEFAULT_HOME,
    json_out: Annotated[bool, typer.Option("--json", help="Print the relay's state as JSON.")] = False,
) -> None:
    """The link relay's state: mode, latency, open connections, bytes each way (exit 1 if not running)."""
    from consortium.bus import relay
    from consortium.node import launch

    rd = launch.run_dir(home)
    state = relay.read_state(rd)
    if state is None:
        raise UserError(f"no link relay recorded in {rd} (start a bridged consortium: `consortium up --topology bridged`)")
    running = relay.is_fresh(state)
    _link_out({**state, "running": running}, json_out, "status" if running else "status (relay NOT running)")
    if not running:
        raise typer.Exit(1)


@link_app.command("cut")
def link_cut(
    home: Annotated[Path, typer.Option(help="Consortium home directory.")] = DEFAULT_HOME,
    json_out: Annotated[bool, typer.Option("--json", help="Print the relay's new state as JSON.")] = False,
) -> None:
    """Cut the link both ways: the bridge's connection is reset and refused until `heal`."""
    _link(home, "cut", json_out, "cut")


@link_app.command("cut-oneway")
def link_cut_oneway(
    from_side: Annotated[str, typer.Option("--from", help="CN-SH or HK: what this side sends is lost.")],
    home: Annotated[Path, typer.Option(help="Consortium home directory.")] = DEFAULT_HOME,
    json_out: Annotated[bool, typer.Option("--json", help="Print the relay's new state as JSON.")] = False,
) -> None:
    """Lose what one side sends over the link; the other direction still flows."""
    if from_side not in _SIDE_DIRECTIONS:
        raise UserError(f"--from: {from_side!r} is not CN-SH or HK")
    _link(home, "cut-oneway", json_out, f"cut one way from {from_side}", lost=_SIDE_DIRECTIONS[from_side])


@link_app.command("heal")
def link_heal(
    home: Annotated[Path, typer.Option(help="Consortium home directory.")] = DEFAULT_HOME,
    json_out: Annotated[bool, typer.Option("--json", help="Print the relay's new state as JSON.")] = False,
) -> None:
    """Restore the link (connections that lost bytes are reset; the bridge reconnects within about 2 s)."""
    _link(home, "up", json_out, "healed")


@link_app.command("set")
def link_set(
    rtt_ms: Annotated[Optional[int], typer.Option(min=0, help="Round trip the link adds, ms.")] = None,
    jitter_ms: Annotated[Optional[int], typer.Option(min=0, help="+- jitter on each one-way delay, ms.")] = None,
    home: Annotated[Path, typer.Option(help="Consortium home directory.")] = DEFAULT_HOME,
    json_out: Annotated[bool, typer.Option("--json", help="Print the relay's new state as JSON.")] = False,
) -> None:
    """Change the link's latency and jitter (the mode stays)."""
    from consortium.bus import relay
    from consortium.node import launch

    state = relay.read_state(launch.run_dir(home)) or {}
    _link(home, str(state.get("mode", "up")), json_out, "set", lost=state.get("lost"),
          latency_ms=None if rtt_ms is None else rtt_ms // 2, jitter_ms=jitter_ms)
