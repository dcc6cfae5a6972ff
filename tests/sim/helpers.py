"""Shared helpers for simulator tests."""

from __future__ import annotations

from consortium.cli.sim_cmd import build_config
from consortium.sim.core import SimConfig, SimResult, Simulation


def config(nodes: int = 4, *, powers: list[int] | None = None, heights: int = 5, seed: int = 0,
           bad: dict[str, str] | None = None, faults: list[str] | None = None, tx_rate: int = 20,
           drop: float = 0.0) -> SimConfig:
    return build_config(nodes, ",".join(map(str, powers)) if powers else None, 0, "none", heights, seed,
                        drop, 0.0, None, 0, faults or [], tx_rate, None, 0,
                        [f"{k}:{v}" for k, v in (bad or {}).items()])


def replay_command(nodes: int, powers: list[int] | None, heights: int, seed: int, bad: dict[str, str],
                   faults: list[str], tx_rate: int) -> str:
    parts = [f"consortium sim --nodes {nodes}", f"--heights {heights}", f"--seed {seed}",
             f"--tx-rate {tx_rate}"]
    if powers:
        parts.append(f"--powers {','.join(map(str, powers))}")
    parts += [f"--bad {k}:{v}" for k, v in sorted(bad.items())]
    parts += [f"--fault '{f}'" for f in faults]
    return " ".join(parts)


def run(cfg: SimConfig) -> SimResult:
    return Simulation(cfg).run()
