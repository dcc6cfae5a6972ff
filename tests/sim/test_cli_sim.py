"""`consortium sim` as users meet it: the documented liveness bound is the one the
simulator computes and prints, more Byzantine validators than f is run but
warned about, negative seeds are refused, and liveness "after the last heal" is
reported only when something healed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from consortium import limits
from tests.sim.helpers import config

ROOT = Path(__file__).resolve().parents[2]


def sim(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "consortium", "sim", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120)


# ------------------------------------------------------------------ the liveness bound in docs/CONSENSUS.md


def _bound_paragraph() -> str:
    text = (ROOT / "docs" / "CONSENSUS.md").read_text(encoding="utf-8")
    start = text.index("Liveness bound (`Simulation.liveness_bound_ms`)")
    return " ".join(text[start: text.index("\n\n", start)].split())


def test_documented_liveness_bound_is_what_the_simulator_computes_and_prints() -> None:
    """docs/CONSENSUS.md states a formula and example values for f = 1 and f = 2; both
    must equal Simulation.liveness_bound_ms and the bound `consortium sim --json` prints."""
    para = _bound_paragraph()
    formula = re.search(r"within `([^`]+)`", para)
    assert formula, para
    examples = [(int(s), int(f)) for s, f in re.findall(r"(\d+) s for f = (\d)", para)]
    assert sorted(f for _, f in examples) == [1, 2], para
    from consortium.sim.core import Simulation

    for seconds, f in examples:
        nodes = 3 * f + 1
        code_ms = Simulation(config(nodes)).liveness_bound_ms()
        names = {"T": limits.round_timeout_ms_max, "f": f, "block_interval": limits.block_interval_ms,
                 "sync_retry": limits.sync_retry_ms}
        assert eval(formula.group(1), {"__builtins__": {}}, names) == code_ms, (formula.group(1), code_ms)
        assert seconds * 1000 == code_ms, f"docs say {seconds} s for f = {f}, the simulator computes {code_ms} ms"
        out = sim("--nodes", str(nodes), "--heights", "2", "--json")
        assert json.loads(out.stdout)["liveness"]["bound_ms"] == code_ms


# ------------------------------------------------------------------ more Byzantine power than f


def test_more_byzantine_validators_than_f_runs_with_a_one_line_warning() -> None:
    """n = 4 tolerates f = 1: `--byzantine 2` still runs, but stderr carries one warning
    line that safety is not guaranteed, and --json includes it under "warnings"."""
    out = sim("--nodes", "4", "--byzantine", "2", "--heights", "3", "--seed", "1")
    assert "Traceback" not in out.stderr and "simulation: 4 nodes" in out.stdout
    warnings = [x for x in out.stderr.splitlines() if "warning" in x]
    assert len(warnings) == 1, out.stderr
    assert "2 Byzantine" in warnings[0] and "f = 1" in warnings[0] and "safety" in warnings[0], warnings[0]
    as_json = sim("--nodes", "4", "--byzantine", "2", "--heights", "3", "--seed", "1", "--json")
    report = json.loads(as_json.stdout)
    assert len(report["warnings"]) == 1 and "f = 1" in report["warnings"][0], report["warnings"]
    assert sum("warning" in x for x in as_json.stderr.splitlines()) == 1


def test_at_most_f_byzantine_validators_give_no_warning() -> None:
    out = sim("--nodes", "4", "--byzantine", "1", "--heights", "3", "--json")
    assert out.returncode == 0 and "warning" not in out.stderr
    assert json.loads(out.stdout)["warnings"] == []


# ------------------------------------------------------------------ seeds are >= 0


def test_sim_refuses_a_negative_seed() -> None:
    """`--seed` is documented >= 0: -1 is a usage error (exit 2), nothing runs."""
    out = sim("--seed", "-1", "--heights", "2")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "seed" in out.stderr and out.stdout == "" and "Traceback" not in out.stderr


# ------------------------------------------------------------------ liveness after heal only after a heal


def test_liveness_after_heal_is_reported_only_when_something_healed() -> None:
    """No fault: no liveness-after-heal line (and "healed": false in JSON). A partition that
    heals: the line names the heal and its time, and "healed": true."""
    quiet = sim("--heights", "3")
    assert quiet.returncode == 0 and "heal" not in quiet.stdout, quiet.stdout
    assert json.loads(sim("--heights", "3", "--json").stdout)["liveness"]["healed"] is False
    healed = sim("--heights", "6", "--partition", "jurisdiction", "--heal-at", "2000")
    assert healed.returncode == 0, healed.stdout + healed.stderr
    [line] = [x for x in healed.stdout.splitlines() if x.startswith("liveness")]
    assert "after the last heal at 2000 ms" in line and "met" in line, line
    report = json.loads(sim("--heights", "6", "--partition", "jurisdiction", "--heal-at", "2000", "--json").stdout)
    assert report["liveness"]["healed"] is True and report["liveness"]["since_ms"] == 2000
