"""Golden trace digests: pinned simulator runs.

Invariant: for a fixed configuration and seed the simulator's trace digest
(SHA-256 over every delivery, timer, submission, fault and commit; see
tests/sim/test_simulator.py) does not change unless the behaviour changes. A
change to the replica, the network model, the codec or the application that
alters any message, timer or decision shows up here, and must be reviewed.

If the change is intended, regenerate the pinned values explicitly:

    CONSORTIUM_REWRITE_GOLDEN=1 .venv/bin/pytest tests/sim/test_golden.py

and commit tests/sim/golden_digests.json with the change that explains it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.sim.helpers import config, run

GOLDEN = Path(__file__).with_name("golden_digests.json")
REWRITE = os.environ.get("CONSORTIUM_REWRITE_GOLDEN") == "1"

PARTITION_4 = ["500:crash:sh-2", "2500:partition:sh-1,hk-1|sh-2,hk-2", "4000:heal", "4000:restart:sh-2"]

#: name -> arguments of tests.sim.helpers.config (the same as `consortium sim` options)
CASES: dict[str, dict[str, Any]] = {
    "n4-seed1": {"nodes": 4, "heights": 6, "seed": 1},
    "n4-seed2": {"nodes": 4, "heights": 6, "seed": 2},
    "n4-seed3-loss-crash-partition": {"nodes": 4, "heights": 8, "seed": 3, "drop": 0.1, "faults": PARTITION_4},
    "n4-seed4-double-vote": {"nodes": 4, "heights": 6, "seed": 4, "bad": {"hk-2": "double-vote"}},
    "n7-seed1": {"nodes": 7, "heights": 6, "seed": 1},
    "n7-seed5-weighted-loss": {"nodes": 7, "heights": 6, "seed": 5, "powers": [5, 1, 2, 3, 4, 1, 2], "drop": 0.15},
    "n7-seed6-equivocators-crash": {"nodes": 7, "heights": 6, "seed": 6,
                                    "bad": {"sh-1": "equivocate", "hk-1": "equivocate"},
                                    "faults": ["1500:crash:sh-3", "6000:restart:sh-3"]},
}


def observed(case: dict[str, Any]) -> dict[str, Any]:
    kw = dict(case)
    r = run(config(kw.pop("nodes"), **kw))
    return {"trace_digest": r.trace_digest, "ok": r.ok, "heights": r.heights, "max_round": r.max_round,
            "txs_committed": r.txs_committed, "evidence_committed": r.evidence_committed,
            "virtual_ms": r.virtual_ms}


def _load() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}


@pytest.mark.parametrize("name", sorted(CASES))
def test_pinned_trace_digest(name: str) -> None:
    """The run's trace digest (and summary) equals the checked-in golden value."""
    got = {"case": CASES[name], **observed(CASES[name])}
    if REWRITE:
        pinned = _load()
        pinned[name] = got
        GOLDEN.write_text(json.dumps(dict(sorted(pinned.items())), indent=2, sort_keys=True) + "\n")
        return
    want = _load().get(name)
    assert want is not None, f"no golden value for {name!r}: run with CONSORTIUM_REWRITE_GOLDEN=1"
    assert want["case"] == got["case"], f"{name}: case changed; regenerate with CONSORTIUM_REWRITE_GOLDEN=1"
    assert got == want, (f"{name}: the simulator's behaviour changed. If intended, regenerate with "
                         f"CONSORTIUM_REWRITE_GOLDEN=1 and commit {GOLDEN.name}")


def test_every_golden_value_has_a_case() -> None:
    """No stale entries: the golden file pins exactly the cases above."""
    if not REWRITE:
        assert sorted(_load()) == sorted(CASES)
