"""Failure paths of the live tools, driven as a user would: real `consortium` processes.

`consortium run --live` makes a temporary home (every member's private key in
it), starts a broker and one node per validator. Whatever goes wrong while it
starts (a bad --broker, a broker nobody listens on, a node that exits, Ctrl-C or
SIGTERM), the user gets one line with the real reason and exit 2 (130 for an
interrupt), and nothing is left behind: no temporary home, no node, no broker.
TMPDIR points at a directory of the test, so "nothing left" is checked exactly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.live.conftest import kill_leftovers, wait_for

pytestmark = pytest.mark.broker

SCENARIO = ROOT / "scenarios" / "lc-happy-path.toml"
#: A failing start must end well before the live back-end's 90 s readiness wait.
FAIL_FAST_S = 45


def _env(tmpdir: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(tmpdir), **extra}


def _processes_naming(needle: Path) -> list[str]:
    """Command lines of running processes that mention `needle` (nodes carry their home)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if str(needle).encode() in cmd and state != "Z":
            found.append(cmd.replace(b"\0", b" ").decode(errors="replace"))
    return found


def _assert_clean(tmpdir: Path, left: list[str]) -> None:
    assert left == [], f"processes left running: {left}"
    assert sorted(p.name for p in tmpdir.iterdir()) == [], "the temporary home (with private keys) was left behind"


def _one_line_error(out: subprocess.CompletedProcess[str]) -> str:
    text = (out.stdout + out.stderr).strip()
    assert "Traceback" not in text, text
    assert len(text.splitlines()) == 1, f"expected one line, got:\n{text}"
    return text


@pytest.mark.parametrize(("broker", "expect"), [
    ("foo", "'foo'"),
    ("mqtt://127.0.0.1:1", "cannot connect to broker 127.0.0.1:1: connection refused"),
])
def test_run_live_with_a_bad_or_unreachable_broker_fails_at_once_and_cleans_up(
        tmp_path: Path, broker: str, expect: str) -> None:
    """`run --live` with a --broker that is not a broker spec, or names an address where
    nothing listens, exits 2 within seconds with one line that names the real problem
    (the spec, or the address and "connection refused"), no traceback, and removes the
    temporary home it created."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    t0 = time.monotonic()
    try:
        out = subprocess.run([sys.executable, "-m", "consortium", "run", str(SCENARIO), "--live", "--broker", broker],
                             capture_output=True, text=True, env=_env(tmpdir), timeout=FAIL_FAST_S, cwd=ROOT)
        left = _processes_naming(tmpdir)
    finally:
        kill_leftovers(tmpdir)
    took = time.monotonic() - t0
    line = _one_line_error(out)
    assert out.returncode == 2, line
    assert expect in line
    assert took < 30, f"took {took:.1f} s to report {line!r}"
    _assert_clean(tmpdir, left)


def test_run_live_with_a_node_that_cannot_start_reports_its_reason_and_cleans_up(tmp_path: Path) -> None:
    """A node process that exits during start-up (here: a malformed block-interval
    override in its environment) makes `run --live` stop the other nodes and the
    broker, remove the temporary home and exit 2 with one line quoting the node's
    own error."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    try:
        out = subprocess.run([sys.executable, "-m", "consortium", "run", str(SCENARIO), "--live"],
                             capture_output=True, text=True, timeout=FAIL_FAST_S, cwd=ROOT,
                             env=_env(tmpdir, CONSORTIUM_BLOCK_INTERVAL_MS="soon"))
        left = _processes_naming(tmpdir)
    finally:
        kill_leftovers(tmpdir)
    line = _one_line_error(out)
    assert out.returncode == 2, line
    assert "exited" in line and "CONSORTIUM_BLOCK_INTERVAL_MS" in line, line
    _assert_clean(tmpdir, left)


@pytest.mark.parametrize("when", ["home created", "nodes starting"])
def test_run_live_interrupted_during_start_cleans_up(tmp_path: Path, when: str) -> None:
    """SIGTERM (as Ctrl-C) while `run --live` is still starting (right after it made its
    temporary home, or while its nodes start) stops whatever already runs, removes the
    temporary home and exits 130, no traceback."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    p = subprocess.Popen([sys.executable, "-m", "consortium", "run", str(SCENARIO), "--live"], cwd=ROOT,
                         env=_env(tmpdir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if when == "home created":
            wait_for("the temporary home", lambda: list(tmpdir.glob("consortium-live-*")), 20, every_s=0.005)
        else:
            wait_for("the first node record", lambda: list(tmpdir.glob("*/run/nodes.json")), 30, every_s=0.02)
        p.send_signal(signal.SIGTERM)
        stdout, stderr = p.communicate(timeout=FAIL_FAST_S)
        left = _processes_naming(tmpdir)
    finally:
        if p.poll() is None:
            p.kill()
        kill_leftovers(tmpdir)
    text = (stdout + stderr).strip()
    assert "Traceback" not in text, text
    assert p.returncode == 130, text
    assert len(text.splitlines()) <= 1, text  # typer turns the interrupt into a quiet exit 130
    _assert_clean(tmpdir, left)


def test_down_of_a_home_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    """`down --home` naming a directory that does not exist exits 2 saying so (a typo
    must not look like "stopped"); on a real home with nothing running it stays a
    harmless exit 0."""
    missing = tmp_path / "nonexistent"
    out = subprocess.run([sys.executable, "-m", "consortium", "down", "--home", str(missing)],
                         capture_output=True, text=True, timeout=60)
    line = _one_line_error(out)
    assert out.returncode == 2, line
    assert str(missing) in line and "no such" in line, line
    home = tmp_path / "home"
    subprocess.run([sys.executable, "-m", "consortium", "init", "--home", str(home)], check=True,
                   capture_output=True, timeout=60)
    again = subprocess.run([sys.executable, "-m", "consortium", "down", "--home", str(home)],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
