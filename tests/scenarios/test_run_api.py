"""The scenario runner as users meet it: the Python API refuses keywords it does
not know, a trace records the scenario as it was run (so replay of a modified
or overridden run reproduces it exactly), `to_dict()` hands over the decided
block records, the results tables show variables resolved, "liveness after
heal" is judged only where something healed, and seeds are >= 0."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from consortium import scenario
from consortium.errors import UserError
from consortium.scenario.schema import parse

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
HAPPY = SCENARIOS / "lc-happy-path.toml"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "consortium", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120)


# ------------------------------------------------------------------ unknown keywords (defect 12)


def test_an_unknown_keyword_of_scenario_run_is_an_error_naming_it_and_the_valid_ones() -> None:
    """`scenario.run(path, loss=0.3)` used to run the unchanged scenario; it must refuse
    the keyword, name it, and list the keywords that exist."""
    with pytest.raises(TypeError) as err:
        scenario.run(HAPPY, loss=0.3)
    message = str(err.value)
    assert "'loss'" in message and "seed" in message and "network" in message, message


def test_live_only_keywords_are_refused_on_the_simulator() -> None:
    """`broker=` means nothing to the simulator: an error, not a silently ignored option."""
    with pytest.raises(TypeError, match="'broker'"):
        scenario.run(HAPPY, broker="mosquitto")


def test_the_live_keywords_are_the_live_backends_own() -> None:
    """The keywords run() lets through for backend="live" are exactly LiveBackend's options,
    but `trace`, which run() sets itself from its own trace= argument."""
    import inspect

    from consortium.scenario.live_backend import LiveBackend
    from consortium.scenario.runner import LIVE_OPTIONS

    params = inspect.signature(LiveBackend.__init__).parameters
    assert set(LIVE_OPTIONS) | {"trace"} == {n for n, p in params.items() if p.kind == p.KEYWORD_ONLY}
    assert "trace" not in LIVE_OPTIONS


def test_a_misspelt_network_override_is_refused_with_the_nearest_name() -> None:
    """network= is checked like a [network] table: unknown fields name the nearest valid one."""
    with pytest.raises(UserError, match="did you mean 'loss'"):
        scenario.run(HAPPY, network={"los": 0.2})
    with pytest.raises(UserError, match="'loss'"):
        scenario.run(HAPPY, network={"loss": 2})


def test_a_negative_seed_is_refused_by_the_python_api() -> None:
    """Seeds are whole numbers >= 0, whichever way they are given."""
    with pytest.raises(UserError, match="seed"):
        scenario.run(HAPPY, seed=-1)


# ------------------------------------------------------------------ traces of modified runs replay (defect 12)


def _replay_cli(trace: Path) -> dict:
    out = cli("replay", str(trace), "--json")
    assert "Traceback" not in out.stderr, out.stderr
    report = json.loads(out.stdout)
    report["exit"] = out.returncode
    return report


def test_a_network_override_changes_the_run_and_its_trace_replays_identically(tmp_path: Path) -> None:
    """`network=` overrides the scenario's [network]; the trace stores the scenario as run,
    so `consortium replay` re-executes the overridden run, not the file's."""
    plain = scenario.run(HAPPY)
    trace = tmp_path / "lossy.jsonl"
    lossy = scenario.run(HAPPY, network={"loss": 0.2}, trace=trace)
    assert lossy.trace_digest != plain.trace_digest, "the override changed nothing"
    report = _replay_cli(trace)
    assert report["identical"] and report["trace_digest_match"] and report["exit"] == 0, report


def test_a_modified_scenario_object_replays_identically(tmp_path: Path) -> None:
    """A Scenario changed in Python (dataclasses.replace of its network and seed) and run
    with a trace: replay reproduces it; the original file text would diverge."""
    sc = scenario.load(HAPPY)
    changed = dataclasses.replace(sc, network={**sc.network, "latency_ms": {"CN-SH/HK": 90}, "loss": 0.1},
                                  seed=sc.seed + 5)
    trace = tmp_path / "changed.jsonl"
    result = scenario.run(changed, trace=trace)
    assert result.trace_digest != scenario.run(sc).trace_digest
    report = _replay_cli(trace)
    assert report["identical"] and report["trace_digest_match"] and report["exit"] == 0, report
    again = scenario.replay(trace)
    assert again.identical and again.trace_digest_match


def test_a_seed_override_replays_identically(tmp_path: Path) -> None:
    """`--seed` on the command line: the trace replays with that seed."""
    trace = tmp_path / "seeded.jsonl"
    out = cli("run", str(HAPPY), "--seed", "11", "--trace", str(trace))
    assert out.returncode == 0, out.stdout + out.stderr
    report = _replay_cli(trace)
    assert report["identical"] and report["trace_digest_match"], report


# ------------------------------------------------------------------ to_dict()["blocks"] (defect 11)


def test_to_dict_hands_over_the_decided_block_records() -> None:
    """`r.to_dict()["blocks"]` is documented as records: one per decided height with its
    block id and state root (and `block_count` says how many)."""
    r = scenario.run(HAPPY)
    d = r.to_dict()
    assert isinstance(d["blocks"], list) and d["blocks"] == r.blocks and d["block_count"] == len(r.blocks)
    assert [b["height"] for b in d["blocks"]] == list(range(1, len(r.blocks) + 1))
    for b in d["blocks"]:
        assert re.fullmatch("[0-9a-f]{64}", b["block"]) and re.fullmatch("[0-9a-f]{64}", b["state_root"])
    json.dumps(d)  # plain records
    out = cli("run", str(HAPPY), "--json")
    assert out.returncode == 0
    assert json.loads(out.stdout)["blocks"] == d["blocks"]


# ------------------------------------------------------------------ tables show variables resolved (13a)


def test_results_table_shows_variables_resolved() -> None:
    """An expectation identified by `${bl}` is shown with the eBL id the variable held,
    in the Python rows, the JSON and the printed table; `${` never reaches the user."""
    r = scenario.run(HAPPY)
    ebl_id = r.final["ebls"][0]["id"]
    labels = [row.expectation for row in r.rows]
    assert f"ebl {ebl_id} possessor" in labels and not any("${" in x for x in labels), labels
    out = cli("run", str(HAPPY))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "${" not in out.stdout and ebl_id in out.stdout, out.stdout


# ------------------------------------------------------------------ liveness after heal only after a heal (13b)

_NO_HEAL = ('name = "no-heal"\nseed = 1\n\n[[step]]\nlabel = "pass-time"\nwait_ms = 3000\n\n'
            '[[expect]]\nwhat = "consensus"\nagreement = true\nliveness = true\n')


def test_liveness_after_heal_without_anything_healing_is_a_file_error(tmp_path: Path) -> None:
    """A scenario in which nothing heals (no heal, restart, resume, ... step) cannot expect
    "liveness after heal": the file is refused instead of a row claiming a recovery."""
    path = tmp_path / "no-heal.toml"
    path.write_text(_NO_HEAL, encoding="utf-8")
    with pytest.raises(UserError) as err:
        scenario.load(path)
    assert str(path) in str(err.value) and "expect 1" in str(err.value) and "'liveness'" in str(err.value)
    crash_only = _NO_HEAL.replace('wait_ms = 3000\n', 'wait_ms = 3000\n\n[[step]]\nlabel = "down"\n'
                                  'fault = "crash"\nnode = "sdb"\n')
    with pytest.raises(UserError, match="'liveness'"):
        parse(crash_only, source="crash-only", base=SCENARIOS)


def test_liveness_row_is_reported_only_when_a_heal_happened() -> None:
    """The partition scenario heals: its row is there. The same scenario cut before the heal
    (a modified Scenario object) is refused before it runs, not judged."""
    sc = scenario.load(SCENARIOS / "sh-hk-partition-transfer.toml")
    rows = [r.expectation for r in scenario.run(sc).rows]
    assert "consensus liveness after heal" in rows
    labels = [s.label for s in sc.steps]
    cut = dataclasses.replace(sc, steps=sc.steps[: labels.index("heal")])
    with pytest.raises(UserError, match="'liveness'"):
        scenario.run(cut)


# ------------------------------------------------------------------ seeds are >= 0 (13d)


def test_run_refuses_a_negative_seed() -> None:
    """`consortium run --seed -1` is a usage error (exit 2), nothing runs."""
    out = cli("run", str(HAPPY), "--seed", "-1")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "seed" in out.stderr and "Traceback" not in out.stderr and out.stdout == ""
