"""Generated fault schedules: a whole simulated run derived from one seed.

A Schedule is plain, picklable data: the consortium (voting powers; node ids
are the simulator's synthetic sh-1, hk-1, sh-2, ...), the workload rate, the
target height, a Byzantine coalition and fault *episodes*. An episode is a
disturbance and its end: crash..restart, pause..resume, skew..skew 0,
partition/isolate/drop/duplicate/delay..heal. One final `heal` follows the last
episode, so every schedule ends healed and liveness after it is judged.

`generate(seed, options)` is a pure function of its arguments (one
random.Random(seed)); the coalition holds at most f of the voting power unless
options.beyond_f asks for more (to show the checkers fire).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from consortium import limits, types
from consortium.errors import UserError
from consortium.sim.byzantine import BEHAVIOURS
from consortium.sim.core import SimConfig, synthetic_nodes
from consortium.sim.faults import Fault, parse_fault

#: what an episode does (its end is implied: see Episode.faults)
OPS = ("crash", "pause", "skew", "partition-jurisdiction", "partition", "partition-oneway", "isolate",
       "drop", "duplicate", "delay")
#: values a drop / duplicate episode draws from (probabilities)
_PROBABILITIES = (0.05, 0.2, 0.5, 1.0)
_EQUAL_POWER = 10  # the simulator's default power, used when a consortium has equal powers


@dataclass(frozen=True, slots=True)
class Episode:
    """One disturbance from at_ms for dur_ms. `node` for crash/pause/skew/isolate;
    `groups` for partitions; `value` a probability (drop/duplicate), ms (delay, skew)."""

    at_ms: int
    dur_ms: int
    op: str
    node: str = ""
    groups: tuple[tuple[str, ...], ...] = ()
    value: float = 0.0

    @property
    def end_ms(self) -> int:
        return self.at_ms + self.dur_ms

    def faults(self) -> list[str]:
        """The episode in the simulator's fault text format (consortium.sim.faults)."""
        a, b = self.at_ms, self.end_ms
        if self.op == "crash":
            return [f"{a}:crash:{self.node}", f"{b}:restart:{self.node}"]
        if self.op == "pause":
            return [f"{a}:pause:{self.node}", f"{b}:resume:{self.node}"]
        if self.op == "skew":
            return [f"{a}:skew:{self.node}:{self.value:g}", f"{b}:skew:{self.node}:0"]
        if self.op == "isolate":
            return [f"{a}:isolate:{self.node}", f"{b}:heal"]
        if self.op.startswith("partition"):
            kind = "partition-oneway" if self.op == "partition-oneway" else "partition"
            groups = "|".join(",".join(g) for g in self.groups)
            return [f"{a}:{kind}:{groups}", f"{b}:heal"]
        return [f"{a}:{self.op}:{self.value:g}", f"{b}:heal"]  # drop, duplicate, delay

    def nodes(self) -> set[str]:
        return {self.node} - {""} | {n for g in self.groups for n in g}


@dataclass(frozen=True)
class Options:
    """What the generator may draw. nodes: an inclusive range of consortium sizes."""

    nodes_min: int = limits.explore_default_nodes_min
    nodes_max: int = limits.explore_default_nodes_max
    heights: int = limits.explore_heights
    beyond_f: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.nodes_min <= self.nodes_max <= limits.explore_nodes_max:
            raise UserError(f"--nodes must be a range within 1..{limits.explore_nodes_max}, "
                            f"got {self.nodes_min}..{self.nodes_max}")
        if self.heights < 1:
            raise UserError("heights must be >= 1")


@dataclass(frozen=True)
class Schedule:
    seed: int  # the simulator's seed (network jitter, keys) and the generator's
    powers: tuple[int, ...]
    heights: int
    tx_per_s: int
    byzantine: tuple[tuple[str, str], ...] = ()  # (node, behaviour), Byzantine from the start
    episodes: tuple[Episode, ...] = ()
    beyond_f: bool = False  # generated (or shrunk) without the f bound
    tags: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def n(self) -> int:
        return len(self.powers)

    @property
    def ids(self) -> list[str]:
        return [s.id for s in synthetic_nodes(self.n, list(self.powers))]

    def byzantine_power(self) -> int:
        power = dict(zip(self.ids, self.powers, strict=True))
        return sum(power[node] for node, _ in self.byzantine)

    def within_f(self) -> bool:
        return self.byzantine_power() <= types.max_faulty_power(sum(self.powers))

    def heal_ms(self) -> int:
        """When the final heal comes: after the last episode ended."""
        return max((e.end_ms for e in self.episodes), default=0)

    def faults(self) -> list[str]:
        """Every fault in time order (stable), a final heal last (once); [] without episodes."""
        if not self.episodes:
            return []
        out = [f for e in self.episodes for f in e.faults()]
        out.sort(key=lambda f: int(f.split(":", 1)[0]))
        final = f"{self.heal_ms()}:heal"
        return out if out[-1] == final else [*out, final]

    def fault_count(self) -> int:
        return len(self.episodes)

    def config(self) -> SimConfig:
        """The simulator run this schedule describes (the KV application, default links)."""
        specs = synthetic_nodes(self.n, list(self.powers))
        ids = {s.id for s in specs}
        faults: list[Fault] = [parse_fault(f, ids) for f in self.faults()]
        return SimConfig(nodes=specs, seed=self.seed, heights=self.heights, byzantine=dict(self.byzantine),
                         faults=faults, tx_per_s=self.tx_per_s)

    def describe(self) -> str:
        bad = ", ".join(f"{n}:{b}" for n, b in self.byzantine) or "none"
        return (f"seed {self.seed}: n={self.n} powers={list(self.powers)} heights={self.heights} "
                f"tx/s={self.tx_per_s} byzantine={bad} faults={self.faults()}")


def generate(seed: int, options: Options | None = None) -> Schedule:
    """The schedule of `seed`: a pure function of (seed, options)."""
    opt = options or Options()
    rng = random.Random(seed)
    n = rng.randint(opt.nodes_min, opt.nodes_max)
    if rng.random() < 0.5:
        powers = [_EQUAL_POWER] * n
    else:
        powers = [rng.randint(1, limits.explore_power_max) for _ in range(n)]
    ids = [s.id for s in synthetic_nodes(n, powers)]
    byz = _coalition(rng, ids, powers, opt.beyond_f)
    episodes = tuple(sorted((_episode(rng, ids) for _ in range(rng.randint(0, limits.explore_faults_max))),
                            key=lambda e: (e.at_ms, e.op, e.node)))
    tx = rng.choice((0, 5, 20, 50))
    return Schedule(seed=seed, powers=tuple(powers), heights=opt.heights, tx_per_s=tx, byzantine=byz,
                    episodes=episodes, beyond_f=opt.beyond_f)


def _coalition(rng: random.Random, ids: list[str], powers: list[int], beyond_f: bool
               ) -> tuple[tuple[str, str], ...]:
    """At most f of the power: half the time a coordinated equivocating coalition as large
    as the budget allows (the attack that tests locking), else each node joins with
    probability 1/2 while the budget allows, with any behaviour. With beyond_f, more than f."""
    budget = types.max_faulty_power(sum(powers))
    order = list(range(len(ids)))
    rng.shuffle(order)
    chosen: dict[str, str] = {}
    if beyond_f:
        # mostly one coordinated equivocating coalition (what breaks agreement), else a mix
        power = 0
        mixed = rng.random() < 0.25
        for i in order:
            if power > budget:
                break
            chosen[ids[i]] = rng.choice(BEHAVIOURS[1:]) if mixed else "equivocate"
            power += powers[i]
        if power <= budget:  # everyone joined and still <= f: impossible for total > 0
            raise AssertionError("a coalition of everyone exceeds f")
    elif rng.random() < 0.5:  # a coordinated coalition: equivocation with all the power allowed
        for i in order:
            if powers[i] <= budget:
                chosen[ids[i]] = "equivocate"
                budget -= powers[i]
    else:  # each node joins with probability 1/2 while the budget allows, any behaviour
        for i in order:
            if powers[i] <= budget and rng.random() < 0.5:
                chosen[ids[i]] = rng.choice(BEHAVIOURS[1:])
                budget -= powers[i]
    return tuple(sorted(chosen.items()))


def _episode(rng: random.Random, ids: list[str]) -> Episode:
    at = rng.randrange(0, limits.explore_fault_window_ms)
    dur = rng.randint(limits.explore_fault_duration_ms_min, limits.explore_fault_duration_ms_max)
    op = rng.choice(OPS)
    node = rng.choice(ids)
    if op == "crash" and rng.random() < 0.5:  # a quick restart: back within the height it crashed in
        return Episode(at, rng.randint(limits.explore_fault_duration_ms_min, limits.explore_quick_restart_ms_max),
                       op, node=node)
    if op in ("crash", "pause", "isolate"):
        return Episode(at, dur, op, node=node)
    if op == "skew":
        return Episode(at, dur, op, node=node,
                       value=rng.randint(-limits.explore_skew_ms_max, limits.explore_skew_ms_max))
    if op == "partition-jurisdiction":  # Shanghai | Hong Kong
        sh = tuple(i for i in ids if i.startswith("sh-"))
        hk = tuple(i for i in ids if i.startswith("hk-"))
        if not hk:
            return Episode(at, dur, "isolate", node=node)
        return Episode(at, dur, "partition", groups=(sh, hk))
    if op.startswith("partition"):
        shuffled = list(ids)
        rng.shuffle(shuffled)
        cut = rng.randint(1, len(ids) - 1) if len(ids) > 1 else 1
        groups = (tuple(sorted(shuffled[:cut])), tuple(sorted(shuffled[cut:])))
        if not groups[1]:
            return Episode(at, dur, "isolate", node=node)
        return Episode(at, dur, op, groups=groups)
    if op == "delay":
        return Episode(at, dur, op, value=rng.randint(0, limits.explore_delay_ms_max))
    return Episode(at, dur, op, value=rng.choice(_PROBABILITIES))  # drop, duplicate

