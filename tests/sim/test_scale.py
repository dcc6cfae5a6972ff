"""The simulator at consortium scale (issue 12): `consortium sim --nodes 100` runs and
decides, with certificates and proofs of lock of more than 64 signatures. Speed is
measured in docs/PERFORMANCE.md, never asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_100_validator_consortium_decides_every_height() -> None:
    """`consortium sim --nodes 100` is accepted and every one of the 100 validators decides
    the target heights with every check passing: the commit certificates of a 100-validator
    set (67+ precommit signatures) are valid blocks' last_commit, not refused as too long."""
    env = dict(os.environ, COLUMNS="200")
    out = subprocess.run([sys.executable, "-m", "consortium", "sim", "--nodes", "100", "--heights", "3",
                          "--seed", "1", "--json"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["ok"], result["violations"]
    assert len(result["heights"]) == 100 and min(result["heights"].values()) >= 3
    assert set(result["checks"].values()) == {"ok"}
    assert result["max_round"] == 0  # no timeouts at n = 100: every height decided in its first round
