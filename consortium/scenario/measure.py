"""What a simulator run measured, for sweeps (`consortium sweep`, scenario.sweep):
virtual time, heights decided, frames sent, the round each height was decided in,
and each transaction's commit latency (virtual ms from its submission to the first
honest commit of its block).

MeasuredSimulation is the simulator itself, observing: it changes no event, no
random draw and no trace digest; it only notes times."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from consortium import crypto
from consortium.sim.core import SimConfig, Simulation


class MeasuredSimulation(Simulation):
    def __init__(self, cfg: SimConfig) -> None:
        super().__init__(cfg)
        self.submitted_ms: dict[bytes, int] = {}  # tx hash -> first submission (virtual ms)
        self.decided_ms: dict[int, int] = {}  # height -> its first honest commit (virtual ms)

    def submit(self, tx: bytes) -> None:
        self.submitted_ms.setdefault(crypto.digest(tx), self.now)
        super().submit(tx)

    def run_until(self, done: Callable[[], bool] | None = None, *, at_ms: int | None = None,
                  limit_ms: int) -> bool:
        """As Simulation.run_until, noting the time of each newly decided height after every commit."""
        def observed() -> bool:
            decided = self.checkers.decided
            if len(decided) != len(self.decided_ms):
                for h in decided:
                    self.decided_ms.setdefault(h, self.now)
            return done is not None and done()

        return super().run_until(observed, at_ms=at_ms, limit_ms=limit_ms)

    def stats(self) -> dict[str, Any]:
        """virtual_ms, heights (decided on the agreed chain), frames (sent), rounds (the round
        each height was decided in, 0 = first), latencies_ms (per decided tx), txs (submitted)."""
        honest = [n for i, n in self.nodes.items() if self.honest(i)]
        best = max(honest, key=lambda n: n.height, default=None)
        rounds = [d.certificate.round for d in best.store.decided] if best is not None else []
        latencies = sorted(self.decided_ms[h] - self.submitted_ms[tx]
                           for tx, (h, _code, _detail) in self.checkers.tx_results.items()
                           if tx in self.submitted_ms and h in self.decided_ms)
        return {"virtual_ms": self.now, "heights": len(self.checkers.decided),
                "frames": self.counts["frames_sent"], "rounds": rounds, "latencies_ms": latencies,
                "txs": self.counts["txs_submitted"]}
