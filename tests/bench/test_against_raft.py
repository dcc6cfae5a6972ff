"""`consortium bench --against-raft`: our rate and a Raft log's, measured in one run."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.bus.conftest import mosquitto_missing

pytestmark = pytest.mark.broker


def test_bench_against_raft_prints_both_rates_and_their_ratio(tmp_path: object) -> None:
    """A short `bench --against-raft` run (one validator, a few seconds of load) commits
    a positive tx/s, then runs a PySyncObj log of the same size on the same machine and
    prints its positive ops/s and the ratio of the two, which is our rate divided by
    Raft's (rounded), on one line naming the library. Beside it the ledger ceiling: one
    validator's ledger path per CPU-second, times the cores, over the validators, and the
    share of it the run reached."""
    pytest.importorskip("pysyncobj")
    broker = "embedded" if mosquitto_missing() else "mosquitto"
    out = subprocess.run(
        [sys.executable, "-m", "consortium", "bench", "--nodes", "1", "--broker", broker, "--rate", "200",
         "--duration", "4", "--warmup", "1", "--drain", "10", "--loaders", "1", "--against-raft"],
        capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    committed = re.search(r"committed ([\d.]+) tx/s", out.stdout)
    raft = re.search(r"Raft baseline \(pysyncobj [^)]*\): ([\d.]+) ops/s; .* = ([\d.]+)x", out.stdout)
    assert committed and raft, out.stdout
    ours, theirs, ratio = float(committed.group(1)), float(raft.group(1)), float(raft.group(2))
    assert ours > 0 and theirs > 0, out.stdout
    assert ratio == pytest.approx(ours / theirs, abs=0.002), out.stdout
    ledger = re.search(r"ledger path .*: (\d+) tx per CPU-second on one core \(before / after the run: (\d+) / (\d+)\); "
                       r"ceiling with (\d+) cores and 1 "
                       r"nodes: (\d+) tx/s \(reached (\d+)%\)", out.stdout)
    assert ledger, out.stdout
    per_cpu_s, before, after, cores, ceiling, reached = (int(g) for g in ledger.groups())
    assert per_cpu_s == max(before, after) > 0 and ceiling == pytest.approx(cores * per_cpu_s, abs=1), out.stdout
    assert abs(reached - 100 * ours / ceiling) <= 1, out.stdout
