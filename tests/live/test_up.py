"""`consortium up` with a node that cannot start, and the broker's own commands.

Real processes and a real broker (both kinds), driven through the CLI as a user would.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from consortium.bus import broker as brokers
from consortium.bus.endpoint import endpoint
from consortium.client.status import read_status
from consortium.errors import UserError
from tests.conftest import NODES
from tests.live.conftest import FAST_BLOCKS_MS, Live, cli, wait_for

BAD = "sdb"
VICTIM = "nticbc"


def _heights(live: Live, nodes: list[str]) -> dict[str, int]:
    """Heights of the running `nodes`, read in-process (the CLI would wait for the bad one's record)."""
    try:
        records = asyncio.run(read_status(endpoint(live.home, None), set(nodes)))
    except UserError:  # the broker is not back yet
        return {}
    return {n: s.height for n, s in records.items() if n in nodes and s.state == "running"}


def _all_at(live: Live, nodes: list[str], height: int) -> dict[str, int] | None:
    h = _heights(live, nodes)
    return h if len(h) == len(nodes) and min(h.values()) >= height else None


@pytest.mark.broker
def test_one_bad_store_does_not_stop_the_others_and_the_broker_restarts_from_the_cli(live: Live) -> None:
    """One member's store is not a store: `up --detach` starts the six others (they
    decide), names the bad one under "failed" with its reason, exits non-zero, and
    leaves the healthy nodes and the broker running. Then the broker dies (kill -9):
    `consortium broker status` says so, `consortium broker restart` brings it back on
    the same port and the nodes reconnect and decide again. A node killed -9 is shown
    "stale" by `status --json` (its last record still says "running"), and the status
    record carries bus.repeated."""
    bad = live.home / "nodes" / BAD / "store.db"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"this is not an SQLite database, " * 64)
    out = cli("up", "--home", str(live.home), "--broker", live.kind, "--detach", "--json",
              "--block-interval-ms", str(FAST_BLOCKS_MS), check=False)
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    report = json.loads(out.stdout)
    healthy = [m for m in live.members if m != BAD]
    assert sorted(report["nodes"]) == sorted(healthy)
    assert list(report["failed"]) == [BAD] and "not a usable node store" in report["failed"][BAD], report
    before = max(wait_for("the healthy nodes at height 3", lambda: _all_at(live, healthy, 3), 40).values())

    record = live.broker_record()
    os.kill(record.pid, signal.SIGKILL)
    wait_for("the broker to die", lambda: not brokers.port_accepting(record.host, record.port), 10)
    status = json.loads(cli("broker", "status", "--home", str(live.home), "--json", check=False).stdout)
    assert status["running"] is False and status["port"] == record.port
    restarted = json.loads(cli("broker", "restart", "--home", str(live.home), "--json").stdout)
    assert (restarted["kind"], restarted["port"]) == (live.kind, record.port) and restarted["pid"] != record.pid
    wait_for("the nodes to decide again after the broker restart", lambda: _all_at(live, healthy, before + 3), 60)

    live.kill(VICTIM)
    time.sleep(3.5)  # > limits.status_stale_after_ms: the victim's last record is now old
    nodes = live.status()["nodes"]
    assert nodes[VICTIM]["state"] == "stale", nodes[VICTIM]
    assert all("repeated" in s["bus"] for s in nodes.values()), nodes


def test_up_only_without_a_running_broker_says_so_in_one_line(tmp_path: Path) -> None:
    """Restarting a member with `up --only` needs the consortium's broker: with none
    reachable (none recorded, or a URL nobody listens on) it says so at once, in one
    line, exit 2, and starts nothing."""
    home = tmp_path / "home"
    cli("init", "--home", str(home), "--members", str(NODES))
    nobody = f"mqtt://127.0.0.1:{brokers.free_port()}"
    for extra in (["--detach"], ["--detach", "--broker", nobody], ["--broker", nobody]):
        t0 = time.monotonic()
        try:
            out = cli("up", "--home", str(home), "--only", "hkma", *extra, check=False, timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail(f"up --only hkma {' '.join(extra)}: still running after 15 s without a broker")
        assert out.returncode == 2, (extra, out.returncode, out.stdout, out.stderr)
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "broker" in lines[0], out.stderr
        assert time.monotonic() - t0 < 15, "it must not wait for a node that cannot connect"
    assert not (home / "run" / "nodes.json").exists()
