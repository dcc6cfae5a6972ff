"""Property tests: the simulator under generated consortia, faults and workloads.

Invariants, in words:
- Safety, always: whatever the network does (loss, duplication, reordering,
  delay, partitions of any shape), whoever crashes and restarts or pauses, and
  whatever a faulty set holding at most f of the voting power does (any
  Byzantine behaviour), no two honest nodes decide different blocks at a height,
  every decided block is valid and carries a valid certificate, no honest
  validator signs two different votes for one (height, round, step), and equal
  heights have equal state roots.
- Liveness, when the schedule heals: after the last fault (partitions healed,
  loss back to zero, crashed nodes restarted, paused nodes resumed), every live
  honest node decides a new height within Simulation.liveness_bound_ms.

A failing example prints the `consortium sim` command that replays it.
"""

from __future__ import annotations

import os

from hypothesis import given, note, settings
from hypothesis import strategies as st

from consortium import types
from consortium.sim.byzantine import BEHAVIOURS
from consortium.sim.core import synthetic_nodes
from tests.sim.helpers import config, replay_command, run


@st.composite
def consortia(draw: st.DrawFn) -> tuple[int, list[int], dict[str, str]]:
    """n in 4..10 with arbitrary powers; a faulty set holding at most f of the power."""
    n = draw(st.integers(4, 10), label="n")
    powers = draw(st.lists(st.integers(1, 20), min_size=n, max_size=n), label="powers")
    ids = [s.id for s in synthetic_nodes(n, powers)]
    budget = types.max_faulty_power(sum(powers))
    bad: dict[str, str] = {}
    for i in draw(st.permutations(range(n))):
        if powers[i] <= budget and draw(st.booleans()):
            bad[ids[i]] = draw(st.sampled_from(BEHAVIOURS[1:]))
            budget -= powers[i]
    return n, powers, bad


@st.composite
def fault_schedules(draw: st.DrawFn, ids: list[str]) -> list[str]:
    """Timed faults, then a final heal that restarts and resumes everyone."""
    out: list[str] = []
    t = 0
    crashed: set[str] = set()
    paused: set[str] = set()
    for _ in range(draw(st.integers(0, 6), label="faults")):
        t += draw(st.integers(100, 6000))
        op = draw(st.sampled_from(["crash", "restart", "pause", "partition", "partition-oneway", "isolate",
                                   "drop", "duplicate", "delay", "heal", "skew"]))
        node = draw(st.sampled_from(ids))
        if op == "crash":
            crashed.add(node)
        elif op == "restart":
            crashed.discard(node)
        elif op == "pause":
            paused.add(node)
        if op in ("crash", "restart", "pause", "isolate"):
            out.append(f"{t}:{op}:{node}")
        elif op.startswith("partition"):
            shuffled = draw(st.permutations(ids))
            cut = draw(st.integers(1, len(ids) - 1))
            out.append(f"{t}:{op}:{','.join(shuffled[:cut])}|{','.join(shuffled[cut:])}")
        elif op in ("drop", "duplicate"):
            out.append(f"{t}:{op}:{draw(st.sampled_from([0.05, 0.2, 0.5, 1.0]))}")
        elif op == "delay":
            out.append(f"{t}:delay:{draw(st.integers(0, 3000))}")
        elif op == "skew":
            out.append(f"{t}:skew:{node}:{draw(st.integers(-3000, 3000))}")
        else:
            out.append(f"{t}:heal")
    if out:
        t += draw(st.integers(100, 3000))
        out.append(f"{t}:heal")
        out += [f"{t}:restart:{n}" for n in sorted(crashed)]
        out += [f"{t}:resume:{n}" for n in sorted(paused)]
    return out


@st.composite
def runs(draw: st.DrawFn) -> dict:
    n, powers, bad = draw(consortia())
    ids = [s.id for s in synthetic_nodes(n, powers)]
    return {"nodes": n, "powers": powers, "bad": bad, "faults": draw(fault_schedules(ids)),
            "seed": draw(st.integers(0, 2**32 - 1), label="seed"),
            "heights": draw(st.integers(2, 6), label="heights"),
            "tx_rate": draw(st.sampled_from([0, 5, 50]), label="tx_rate")}


#: examples per profile: ci fits the 15-minute suite, deep is `make test-deep`
EXAMPLES = {"ci": 400, "deep": 5000, "dev": 30}[os.environ.get("HYPOTHESIS_PROFILE", "ci")]


@settings(max_examples=EXAMPLES)
@given(runs())
def test_safety_always_liveness_after_heal(r: dict) -> None:
    note("replay: " + replay_command(r["nodes"], r["powers"], r["heights"], r["seed"], r["bad"],
                                     r["faults"], r["tx_rate"]))
    result = run(config(r["nodes"], powers=r["powers"], heights=r["heights"], seed=r["seed"],
                        bad=r["bad"], faults=r["faults"], tx_rate=r["tx_rate"]))
    note(f"result: {result.checks['violations']} heights={result.heights} liveness={result.liveness}")
    for check in ("agreement", "validity", "certificate", "double_sign", "state_root"):
        assert result.checks["checks"][check] == "ok", result.checks["violations"]
    assert result.liveness["expected"], "the final heal leaves at most f faulty power"
    assert result.checks["checks"]["liveness"] == "ok", result.checks["violations"]
    assert result.liveness["met"]
