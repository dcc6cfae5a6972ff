"""The ceilings `consortium bench` prints beside each result.

Invariants, in words:
1. The ledger ceiling is what n validators sharing the machine's cores could commit if
   each did nothing but run every tx through its ledger: cores x (one ledger's txs per
   CPU-second, the higher of the measurements before and after the run) / n, and the share
   reached is the committed rate over it.
2. One ledger's rate is measured on the live load's mix (bench/load.py's workload: no
   faulty txs) through the whole validator path: every tx is admitted, checked in its
   block and applied with result OK, and the rate is a positive number of txs per second.
"""

from __future__ import annotations

import os

import pytest

from consortium.bench import ledger
from consortium.bench.live import _ledger_ceiling


@pytest.mark.parametrize(("n", "committed"), [(1, 500.0), (4, 1_750.0), (7, 0.0)])
def test_the_ledger_ceiling_shares_the_cores_among_the_validators(n: int, committed: float) -> None:
    cores = os.cpu_count() or 1
    c = _ledger_ceiling([6_500, 7_000], n, {"committed_tx_per_s": committed})
    assert c["tx_per_cpu_s_one_core"] == 7_000 and c["samples"] == [6_500, 7_000] and c["cores"] == cores
    assert c["tx_per_s"] == round(cores * 7_000 / n)
    assert c["fraction_reached"] == round(committed / (cores * 7_000 / n), 3)


def test_the_ledger_path_is_measured_on_valid_txs_through_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}
    real = ledger.measure

    def spy(genesis: object, blocks: list, invariants: bool = True) -> dict:  # type: ignore[type-arg]
        result = real(genesis, blocks, invariants)  # type: ignore[arg-type]
        seen.update(result, invariants=invariants)
        return result
    monkeypatch.setattr(ledger, "measure", spy)
    rate = ledger.node_path_per_cpu_s(300)
    assert rate > 0 and rate == seen["txs_per_cpu_s"]
    assert seen["txs"] == 300 and seen["codes"] == {"OK": 300} and seen["invariants"] is False
