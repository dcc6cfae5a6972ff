"""Twins across processes: a validator run by two OS processes under one key.

Real `consortium` processes on a real broker: the twin of validator V is a second
`consortium node --id V --twin` process with V's key and broker credentials, its own
store (HOME/nodes/V~twin) and MQTT client id. TMPDIR points at a directory of the
test, so "nothing left behind" is checked exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from consortium.config import seeded_genesis
from consortium.home import load_genesis
from consortium.node.livestore import LiveStore
from tests.conftest import NODES, ROOT
from tests.live.conftest import FAST_BLOCKS_MS, Live, cli, consortium_home, kill_leftovers, wait_for
from tests.live.test_client_errors import _assert_clean, _one_line_error, _processes_naming

pytestmark = pytest.mark.broker

SCENARIO = ROOT / "scenarios" / "twins-live.toml"
TWINS = ("nticbc", "carrier-hk")


def _run(*args: str, tmpdir: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(tmpdir), "CONSORTIUM_BLOCK_INTERVAL_MS": str(FAST_BLOCKS_MS)}
    return subprocess.run([sys.executable, "-m", "consortium", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_two_twins_in_seven_live_scenario_safe_with_evidence_on_chain(tmp_path: Path) -> None:
    """n = 7 with 2 twinned validators (f = 2), each a second OS process under the same key:
    the scenario's transfer commits, the checker finds no fork across all nine stores (the
    twins' included), DuplicateVote evidence against a twinned validator (and only against
    twins) is committed on chain, and every process and the temporary home are gone after."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    out = _run("run", str(SCENARIO), "--live", "--json", tmpdir=tmpdir)
    try:
        assert "Traceback" not in out.stderr, out.stderr
        result = json.loads(out.stdout)
        assert out.returncode == 0, (out.stderr[-2000:], [r for r in result["expectations"] if not r["met"]],
                                     result["checks"])
        checks = result["checks"]
        assert checks["ok"] and checks["violations"] == []
        assert checks["checks"]["agreement"] == "ok" and checks["checks"]["double_sign"] == "ok"
        validators = [m.id for m in seeded_genesis(NODES, 0, 0)[0].validators]
        assert sorted(checks["stores"]) == sorted(validators + [f"{t}~twin" for t in TWINS])
        evidence = checks["evidence"]
        assert evidence["committed"] >= 1 and result["final"]["evidence"] == evidence["committed"]
        assert set(evidence["against"]) <= set(TWINS) and evidence["against"], evidence
    finally:
        kill_leftovers(tmpdir)
    _assert_clean(tmpdir, _processes_naming(tmpdir))


def test_up_twin_runs_second_process_without_disturbing_status(tmp_path: Path) -> None:
    """`consortium up --twin nticbc`: a second process of nticbc runs beside the seven (its
    own pid, store and status file), `consortium status` still shows exactly the seven
    members, each record from its own (first) process, the twin's store follows the same
    chain, and `down` stops all eight."""
    with consortium_home(tmp_path, "embedded") as live:
        started = live.up("--twin", "nticbc")
        assert set(started["nodes"]) == set(live.members) | {"nticbc~twin"}
        twin_pid = started["nodes"]["nticbc~twin"]
        assert twin_pid != started["nodes"]["nticbc"]
        wait_for("the twin's store to decide height 4", lambda: _height(live, "nticbc~twin") >= 4, 40)
        st = live.status()
        assert set(st["nodes"]) == set(live.members) and st["summary"]["agree"]
        assert st["nodes"]["nticbc"]["pid"] == started["nodes"]["nticbc"]
        twin = st["twins"]["nticbc~twin"]
        assert twin["pid"] == twin_pid and twin["state"] == "running" and twin["height"] >= 1
        _same_chain(live, [*live.members, "nticbc~twin"])
        down = json.loads(cli("down", "--home", str(live.home), "--json").stdout)
        assert sorted(down["nodes_stopped"]) == sorted([*live.members, "nticbc~twin"])


def _height(live: Live, instance: str) -> int:
    s = LiveStore.open_for(live.home, instance, load_genesis(live.home))
    try:
        return s.last_height()
    finally:
        s.close()


def _same_chain(live: Live, instances: list[str]) -> None:
    genesis = load_genesis(live.home)
    stores = {i: LiveStore.open_for(live.home, i, genesis) for i in instances}
    try:
        top = min(s.last_height() for s in stores.values())
        assert top >= 1
        for h in range(1, top + 1):
            infos = {i: s.block_info(h) for i, s in stores.items()}
            assert len(set(infos.values())) == 1, f"stores differ at height {h}: {infos}"
    finally:
        for s in stores.values():
            s.close()


@pytest.mark.parametrize(("args", "needle"), [
    (("--twin", "sh-exporter"), "not a member"),
    (("--twin", "nticbc", "--twin", "sdb", "--twin", "hkma"), "more than f = 2"),
])
def test_up_bad_twins_one_line_exit_2_nothing_started(tmp_path: Path, args: tuple[str, ...], needle: str) -> None:
    """A twin of a non-member, or more twins than f = 2 (without --beyond-f): one line, exit 2,
    before any broker or node starts."""
    home = tmp_path / "home"
    cli("init", "--home", str(home), "--members", str(NODES))
    try:
        out = cli("up", "--home", str(home), "--detach", *args, check=False)
        assert out.returncode == 2, (out.stdout, out.stderr)
        assert needle in _one_line_error(out)
        assert _processes_naming(home) == [] and not (home / "run" / "nodes.json").exists()
    finally:
        kill_leftovers(home)


def test_run_live_too_many_twins_one_line_exit_2_nothing_left(tmp_path: Path) -> None:
    """A scenario twinning three of seven validators (more than f) is refused on the live
    back-end before anything starts: one line naming the file, exit 2, no process and no
    temporary home left."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    bad = tmp_path / "three-twins.toml"
    bad.write_text(SCENARIO.read_text().replace('twins = ["nticbc", "carrier-hk"]',
                                                'twins = ["nticbc", "carrier-hk", "sdb"]'))
    out = _run("run", str(bad), "--live", tmpdir=tmpdir, timeout=60)
    assert out.returncode == 2, (out.stdout, out.stderr)
    line = _one_line_error(out)
    assert "three-twins.toml" in line and "more than f = 2" in line, line
    _assert_clean(tmpdir, _processes_naming(tmpdir))
