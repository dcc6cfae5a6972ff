"""Node processes: start, record, find and stop them (for `up`, `down`, bench, tests, scenarios).

Each node is `python -m consortium node --home H --id X --broker URL` in its own
session (Ctrl-C in a terminal reaches the CLI, which then stops nodes and
broker in order), logging to HOME/run/<id>.log. A node started without
`detach` gets `--parent-pid`, so it exits by itself when its starter dies: no
orphans even after a kill -9 of `consortium up` or of a test run.

Records in HOME/run/: nodes.json {"broker": url, "nodes": {id: {"pid", "started_ms"}}}
and <id>.pid. A recorded pid counts only while /proc says it still runs
`consortium node ... --id <id>` (pids are reused).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consortium import limits, proc
from consortium.bus.broker import netns_exec
from consortium.bus.endpoint import Endpoint, check_broker, endpoint
from consortium.errors import UserError
from consortium.node import twins
from consortium.node.record import RECORD_ENV
from consortium.node.runtime import BLOCK_INTERVAL_ENV
from consortium.node.status import Status, StatusWatcher

NODES_FILE = "nodes.json"


@dataclass
class NodeProcess:
    id: str
    pid: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return is_node_process(self.pid, self.id)

    def exit_code(self) -> int | None:
        return self.process.poll() if self.process is not None else None


def run_dir(home: Path) -> Path:
    return home / "run"


def node_command(home: Path, node_id: str, broker_url: str, *, parent_pid: int | None = None,
                 log_level: str = "info", profile: Path | None = None) -> list[str]:
    """The command of node instance `node_id` (a member id, or a twin's `V~twin`: `--id V --twin`)."""
    cmd = [sys.executable, "-m", "consortium", "node", "--home", str(home), "--id", twins.member_of(node_id),
           "--broker", broker_url, "--log-level", log_level, *(["--twin"] if twins.is_twin(node_id) else [])]
    if parent_pid is not None:
        cmd += ["--parent-pid", str(parent_pid)]
    if profile is not None:
        cmd += ["--profile", str(profile)]
    return cmd


def start_node(home: Path, node_id: str, broker_url: str, *, detach: bool,
               block_interval_ms: int | None = None, log_level: str = "info",
               profile: bool = False, netns: str | None = None, record: bool = False) -> NodeProcess:
    """Start one node process and record it in HOME/run (`node_id` may be a twin instance,
    `V~twin`: node/twins.py; with `profile`, the node
    writes cProfile stats to HOME/run/<id>.prof when it stops; with `netns`, it
    runs inside that network namespace: the bridged topology's multi-host placement)."""
    rd = run_dir(home)
    rd.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if block_interval_ms is not None:
        env[BLOCK_INTERVAL_ENV] = str(block_interval_ms)
    if record:  # the node logs its replica's inputs to HOME/nodes/<id>/inputs.log (node/record.py)
        env[RECORD_ENV] = "1"
    log = rd / f"{node_id}.log"
    cmd = node_command(home, node_id, broker_url, parent_pid=None if detach else os.getpid(),
                       log_level=log_level, profile=rd / f"{node_id}.prof" if profile else None)
    if netns is not None:
        cmd = [*netns_exec(netns), *cmd]  # `ip netns exec` execs the node: the pid stays the node's
    with open(log, "ab") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env,
                                start_new_session=True, close_fds=True)
    node = NodeProcess(node_id, proc.pid, log, proc)
    _record(rd, broker_url, node)
    return node


def start_nodes(home: Path, ids: list[str], broker_url: str, *, detach: bool,
                block_interval_ms: int | None = None, profile: bool = False,
                record: bool = False) -> dict[str, NodeProcess]:
    """Start several nodes, `limits.node_start_gap_ms` apart: amqtt 0.12 can break a client
    session that connects while another client subscribes (a race in its
    retained-message replay); the broken node only recovers after aiomqtt's 10 s
    timeout, so simultaneous connects are worth avoiding."""
    started: dict[str, NodeProcess] = {}
    for i, ident in enumerate(ids):
        if i:
            time.sleep(limits.node_start_gap_ms / 1000)
        started[ident] = start_node(home, ident, broker_url, detach=detach, block_interval_ms=block_interval_ms,
                                    profile=profile, record=record)
    return started


def _record(rd: Path, broker_url: str, node: NodeProcess) -> None:
    data = load_records(rd)
    data["broker"] = broker_url
    data.setdefault("nodes", {})[node.id] = {"pid": node.pid, "started_ms": time.time_ns() // 1_000_000}
    proc.write_atomic(rd / NODES_FILE, json.dumps(data, indent=2) + "\n")
    proc.write_atomic(rd / f"{node.id}.pid", f"{node.pid}\n")


def load_records(rd: Path) -> dict[str, Any]:
    try:
        data = json.loads((rd / NODES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and isinstance(data.get("nodes", {}), dict) else {}


def recorded_nodes(rd: Path) -> dict[str, int]:
    """id -> pid of every recorded node that is still running."""
    out = {}
    for ident, rec in load_records(rd).get("nodes", {}).items():
        pid = rec.get("pid") if isinstance(rec, dict) else None
        if isinstance(pid, int) and is_node_process(pid, ident):
            out[ident] = pid
    return out


def is_node_process(pid: int, node_id: str) -> bool:
    """True if `pid` is alive and runs `consortium node ... --id node_id` (a twin instance
    `V~twin`: `--id V --twin`; a member's own process has no `--twin`)."""
    args = proc.cmdline(pid)
    if not args or proc.proc_state(pid) in (None, "Z"):
        return False
    return (b"consortium" in b" ".join(args) and b"node" in args and twins.member_of(node_id).encode() in args
            and (b"--twin" in args) == twins.is_twin(node_id))


def kill_node(home: Path, node_id: str, sig: signal.Signals = signal.SIGKILL) -> bool:
    """Send `sig` to a recorded running node (SIGKILL: a crash; SIGSTOP/SIGCONT: a pause)."""
    pid = recorded_nodes(run_dir(home)).get(node_id)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    return True


def stop_pids(pids: dict[str, int], timeout_ms: int = limits.node_stop_timeout_ms,
              processes: dict[str, subprocess.Popen[bytes]] | None = None) -> list[str]:
    """SIGTERM every node, wait for all (up to timeout), SIGKILL the rest; ids stopped."""
    return proc.stop_all(pids, proc.reaper(processes or {}, lambda ident, pid: is_node_process(pid, ident)), timeout_ms=timeout_ms,
                         what="node")


def stop_recorded_nodes(home: Path, ids: list[str] | None = None) -> list[str]:
    """Stop recorded nodes (all, or `ids`) and forget them; ids that were running."""
    rd = run_dir(home)
    running = recorded_nodes(rd)
    chosen = {i: p for i, p in running.items() if ids is None or i in ids}
    stopped = stop_pids(chosen) if chosen else []
    forget(rd, ids)
    return stopped


def forget(rd: Path, ids: list[str] | None = None) -> None:
    data = load_records(rd)
    nodes = data.get("nodes", {})
    for ident in list(nodes):
        if ids is None or ident in ids:
            del nodes[ident]
            (rd / f"{ident}.pid").unlink(missing_ok=True)
    if nodes:
        proc.write_atomic(rd / NODES_FILE, json.dumps(data, indent=2) + "\n")
    else:
        (rd / NODES_FILE).unlink(missing_ok=True)


def wait_ready(home: Path, url: str, started: Mapping[str, NodeProcess], wait_s: float) -> dict[str, Status]:
    """Fresh status records (from these very processes) of every started node;
    UserError naming the node if one exits first or the time runs out."""
    fresh, _ = asyncio.run(_wait_ready(endpoint(home, url), started, wait_s, run_dir(home)))
    return fresh


def wait_started(home: Path, url: str, started: Mapping[str, NodeProcess],
                 wait_s: float) -> tuple[dict[str, Status], dict[str, str]]:
    """Like wait_ready, but a node that exits (a damaged store, a bad key) does not
    stop the wait for the others: (fresh records of the running ones, {id: why
    each exited}). UserError only if the time runs out."""
    return asyncio.run(_wait_ready(endpoint(home, url), started, wait_s, run_dir(home), tolerate_exits=True))


def _twins_ready(rd: Path, started: Mapping[str, NodeProcess]) -> dict[str, Status]:
    """Twin instances that wrote a running status file from their very process (a twin
    publishes no status record: node/twins.py)."""
    out = {}
    for ident, node in started.items():
        rec = twins.read_status(rd, ident) if twins.is_twin(ident) else None
        if rec is not None and rec.get("pid") == node.pid and rec.get("state") == "running":
            info = {k: v for k, v in rec.items() if k not in ("height", "round")}
            out[ident] = Status(ident, int(rec.get("height", 0)), int(rec.get("round", 0)), info)
    return out


def exit_reason(log: Path) -> str:
    """Why a node exited: the last `error:` line of its log (the CLI's one-line
    refusal), else the log's last lines."""
    tail = proc.log_tail(log)
    errors = [part for part in tail.split(" | ") if part.startswith("error:")]
    return errors[-1].removeprefix("error:").strip() if errors else tail


async def _wait_ready(ep: Endpoint, started: Mapping[str, NodeProcess], wait_s: float,
                      rd: Path, tolerate_exits: bool = False) -> tuple[dict[str, Status], dict[str, str]]:
    await check_broker(ep, "ready")  # an unreachable broker: say so at once, not after wait_s
    watcher = StatusWatcher(ep)
    task = asyncio.create_task(watcher.run())
    deadline = time.monotonic() + wait_s
    failed: dict[str, str] = {}
    try:
        while True:
            # a retained record may be from an earlier run: only this pid's count
            fresh = {i: s for i, s in watcher.records.items()
                     if i in started and s.info.get("pid") == started[i].pid and s.state == "running"}
            fresh.update(_twins_ready(rd, started))
            for ident, node in started.items():
                if ident not in fresh and ident not in failed and not node.alive():
                    failed[ident] = f"exited (code {node.exit_code()}): {exit_reason(node.log)}"
                    if not tolerate_exits:
                        raise UserError(f"node {ident} {failed[ident]}")
            if len(fresh) + len(failed) == len(started):
                return fresh, failed
            if time.monotonic() > deadline:
                missing = sorted(set(started) - set(fresh) - set(failed))
                raise UserError(f"no status from {', '.join(missing)} within {wait_s:.0f} s (logs in {rd})")
            await asyncio.sleep(limits.node_ready_poll_ms / 1000)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
