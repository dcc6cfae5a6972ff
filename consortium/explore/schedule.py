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

Generators (Options.generator): `random` draws everything above, with targeted
equivocation (an equivocating member aims its block at a chosen set of nodes,
e.g. the Shanghai side) and rolled-back restarts; `twins` (Bano et al., "Twins:
BFT Systems Made Robust", OPODIS 2021) runs up to f of the power as two
instances sharing one key and cuts the network per (height, round, step) with
partitions drawn from the enumeration of set partitions of the instances
(sampled when it is large); `split` cuts a few links (partial partitions) at chosen
steps of three consecutive rounds, placed by role around their proposers, so that a
polka and then a decision are seen by some nodes only (the schedules the lock rules
L22/L28 exist for; see _generate_split); `mixed` (the default) draws split one time in
six, twins one in six, random otherwise.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field

from consortium import limits, types
from consortium.consensus.validators import Validator, ValidatorSet
from consortium.errors import UserError
from consortium.sim.byzantine import BEHAVIOURS
from consortium.sim.core import SimConfig, synthetic_nodes
from consortium.sim.faults import STEPS, Fault, RoundPartition, parse_fault, twin_of

#: what an episode does (its end is implied: see Episode.faults)
OPS = ("crash", "pause", "skew", "partition-jurisdiction", "partition", "partition-oneway", "isolate",
       "drop", "duplicate", "delay", "rollback")
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
        if self.op == "rollback":  # crash, then restart from the store as it was `value` blocks earlier
            return [f"{a}:crash:{self.node}", f"{b}:rollback:{self.node}:{self.value:g}"]
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
    generator: str = "mixed"  # random | twins | mixed (see the module docstring)

    def __post_init__(self) -> None:
        if self.generator not in GENERATORS:
            raise UserError(f"--generator must be one of {', '.join(GENERATORS)}, got {self.generator!r}")
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
    targets: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (equivocating member, its chosen nodes in order)
    twins: tuple[str, ...] = ()  # validators run as two instances sharing one key
    round_partitions: tuple[RoundPartition, ...] = ()  # Twins: per (height, round, step) who hears whom
    tags: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def n(self) -> int:
        return len(self.powers)

    @property
    def ids(self) -> list[str]:
        return [s.id for s in synthetic_nodes(self.n, list(self.powers))]

    def byzantine_power(self) -> int:
        """The power of the Byzantine members and of the twinned validators (one pair, one vote)."""
        power = dict(zip(self.ids, self.powers, strict=True))
        return sum(power[node] for node, _ in self.byzantine) + sum(power[v] for v in self.twins)

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
        """Fault episodes plus Twins round partitions (each is one cut of the network)."""
        return len(self.episodes) + len(self.round_partitions)

    def config(self) -> SimConfig:
        """The simulator run this schedule describes (the KV application, default links)."""
        specs = synthetic_nodes(self.n, list(self.powers))
        ids = {s.id for s in specs} | {twin_of(v) for v in self.twins}
        faults: list[Fault] = [parse_fault(f, ids) for f in self.faults()]
        return SimConfig(nodes=specs, seed=self.seed, heights=self.heights, byzantine=dict(self.byzantine),
                         faults=faults, tx_per_s=self.tx_per_s, targets=dict(self.targets), twins=self.twins,
                         round_partitions=self.round_partitions)

    def describe(self) -> str:
        bad = ", ".join(f"{n}:{b}" + (f"->{'+'.join(dict(self.targets)[n])}" if n in dict(self.targets) else "")
                        for n, b in self.byzantine) or "none"
        twins = (f" twins={list(self.twins)}" if self.twins else "") + (
            f" partitions={[p.describe() for p in self.round_partitions]}" if self.round_partitions else "")
        return (f"seed {self.seed}: n={self.n} powers={list(self.powers)} heights={self.heights} "
                f"tx/s={self.tx_per_s} byzantine={bad} faults={self.faults()}{twins}")


def generate(seed: int, options: Options | None = None) -> Schedule:
    """The schedule of `seed`: a pure function of (seed, options)."""
    opt = options or Options()
    rng = random.Random(seed)
    kind = opt.generator
    if kind == "mixed":  # one draw: split below _SPLIT_SHARE, twins below _TWINS_SHARE, else random
        draw = rng.random()
        kind = "split" if draw < _SPLIT_SHARE else "twins" if draw < _TWINS_SHARE else "random"
    if kind == "split" and not opt.beyond_f and _split_sizes(opt):
        return _generate_split(seed, rng, opt)
    if kind in ("twins", "split") and not opt.beyond_f and opt.nodes_max >= 4:  # f >= 1 needs n >= 4
        return _generate_twins(seed, rng, opt)
    n = rng.randint(opt.nodes_min, opt.nodes_max)
    if rng.random() < 0.5:
        powers = [_EQUAL_POWER] * n
    else:
        powers = [rng.randint(1, limits.explore_power_max) for _ in range(n)]
    ids = [s.id for s in synthetic_nodes(n, powers)]
    byz = _coalition(rng, ids, powers, opt.beyond_f)
    targets = _targets(rng, ids, byz)
    episodes = tuple(sorted((_episode(rng, ids) for _ in range(rng.randint(0, limits.explore_faults_max))),
                            key=lambda e: (e.at_ms, e.op, e.node)))
    tx = rng.choice((0, 5, 20, 50))
    return Schedule(seed=seed, powers=tuple(powers), heights=opt.heights, tx_per_s=tx, byzantine=byz,
                    episodes=episodes, beyond_f=opt.beyond_f, targets=targets)


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
    if op == "rollback":  # often quick: back within the height, its store a few blocks older
        quick = rng.random() < 0.5
        return Episode(at, rng.randint(limits.explore_fault_duration_ms_min, limits.explore_quick_restart_ms_max)
                       if quick else dur, op, node=node, value=rng.randint(1, limits.explore_rollback_blocks_max))
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



GENERATORS = ("random", "twins", "split", "mixed")
_TWINS_SHARE = 1 / 3  # of `mixed` schedules drawn by the twins or the split generator ...
_SPLIT_SHARE = 1 / 6  # ... of which the split generator draws half (random schedules keep their seeds)
_SPLIT_KEEP = 0.9  # each cut of a split schedule is placed with this probability (the rest: near misses)


def _targets(rng: random.Random, ids: list[str], byz: tuple[tuple[str, str], ...]
             ) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Half the time, each equivocating member aims at a chosen set of honest nodes: one
    jurisdiction's side, or a random ordered subset (see sim.byzantine, equivocate)."""
    bad = dict(byz)
    honest = [i for i in ids if i not in bad]
    out = []
    for node, b in byz:
        if b != "equivocate" or len(honest) < 2 or rng.random() < 0.5:
            continue
        pick = rng.random()
        if pick < 0.25:
            chosen = [i for i in honest if i.startswith("sh-")]
        elif pick < 0.5:
            chosen = [i for i in honest if i.startswith("hk-")]
        else:
            chosen = rng.sample(honest, rng.randint(1, len(honest) - 1))
        if chosen and len(chosen) < len(honest):
            out.append((node, tuple(chosen)))
    return tuple(out)


def _generate_twins(seed: int, rng: random.Random, opt: Options) -> Schedule:
    """A Twins schedule: equal powers, up to f validators twinned (the twin of a leader of the
    partitioned window most of the time), and for one or two consecutive heights the first
    limits.explore_twins_rounds_max rounds cut step by step by partitions drawn from the
    enumeration. No other faults: the twins and the cuts are the adversary."""
    n = rng.randint(max(opt.nodes_min, 4), opt.nodes_max)
    powers = [_EQUAL_POWER] * n
    ids = [s.id for s in synthetic_nodes(n, powers)]
    k = rng.randint(1, types.max_faulty_power(sum(powers)) // _EQUAL_POWER)
    heights_window = rng.randint(1, 2)
    h0 = rng.randint(1, max(1, opt.heights - heights_window))
    vs = ValidatorSet.of(Validator(i, _EQUAL_POWER, bytes(limits.public_key_bytes)) for i in ids)
    leaders = list(dict.fromkeys(vs.proposer(h, r) for h in range(h0, h0 + heights_window)
                                 for r in range(limits.explore_twins_rounds_max)))
    twins: list[str] = []
    while len(twins) < k:
        pool = [v for v in (leaders if rng.random() < 2 / 3 else ids) if v not in twins] or \
            [v for v in ids if v not in twins]
        twins.append(rng.choice(pool))
    instances = tuple(sorted(ids + [twin_of(v) for v in twins]))
    parts = []
    for h in range(h0, min(h0 + heights_window, opt.heights + 1)):
        for r in range(limits.explore_twins_rounds_max):
            for step in STEPS:
                if rng.random() < 0.5:
                    parts.append(RoundPartition(h, r, step, _draw_partition(rng, instances)))
    tx = rng.choice((0, 5, 20, 50))
    return Schedule(seed=seed, powers=tuple(powers), heights=opt.heights, tx_per_s=tx,
                    twins=tuple(sorted(twins)), round_partitions=tuple(parts))


def _draw_partition(rng: random.Random, instances: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """One partition of `instances` into 2..limits.explore_twins_groups_max groups, uniform
    over the enumeration when it is small enough to list, else random labels."""
    every = _labelings(len(instances))
    if every:
        labels = rng.choice(every)
        return tuple(tuple(x for x, lab in zip(instances, labels, strict=True) if lab == g)
                     for g in range(max(labels) + 1))
    while True:
        drawn = [rng.randrange(limits.explore_twins_groups_max) for _ in instances]
        groups = tuple(tuple(x for x, lab in zip(instances, drawn, strict=True) if lab == g)
                       for g in range(limits.explore_twins_groups_max))
        groups = tuple(g for g in groups if g)
        if len(groups) >= 2:
            return groups


@functools.cache
def _labelings(m: int) -> tuple[tuple[int, ...], ...]:
    """Every partition of m instances into 2..explore_twins_groups_max non-empty groups, as
    restricted growth strings (instance i in group label[i], label[i] <= max(label[:i]) + 1),
    or () if there are more than limits.explore_twins_partitions_listed_max of them."""
    k = limits.explore_twins_groups_max
    out: list[tuple[int, ...]] = []

    def grow(prefix: list[int], top: int) -> bool:
        if len(out) > limits.explore_twins_partitions_listed_max:
            return False
        if len(prefix) == m:
            if top >= 1:
                out.append(tuple(prefix))
            return True
        return all(grow([*prefix, lab], max(top, lab)) for lab in range(min(top + 2, k)))

    if m < 2 or not grow([0], 0):
        return ()
    return tuple(out)


def _split_sizes(opt: Options) -> list[int]:
    """Consortium sizes the split generator can use: n = 3f+1 (equal powers) in the range."""
    return [n for n in range(max(4, opt.nodes_min), opt.nodes_max + 1) if n % 3 == 1]


def _generate_split(seed: int, rng: random.Random, opt: Options) -> Schedule:
    """A lock split: per-step cuts of a few links (partial round partitions: nodes in no
    group hear everyone) placed by role around the proposers of three consecutive rounds
    a, a+1, a+2 of one height, n = 3f+1 honest validators (quorum q = 2f+1):

    - round a, a hidden polka: its proposal is cut from f nodes (they prevote nil), and
      the prevotes of the other 2f + 1 voters are cut between two halves of f, all but
      the holder (the proposer of round a+2). The holder sees q prevotes for the block;
      every other voter sees q prevotes in all, f+1 for the block: it times out, unlocked;
    - round a+1, a hidden decision: a fresh block (the holder, locked, prevotes nil), its
      prevotes cut between the holder and f voters (the holder sees no polka, so keeps
      round a's block as its valid value), its precommits cut between f nodes and all
      but one decider: the decider alone sees q precommits and decides;
    - round a+2: the holder re-proposes round a's block with its proof of lock (valid
      round a). Everyone else is locked on round a+1's block: the L28 lock condition
      (locked round <= valid round) is all that keeps them from prevoting it.

    Each cut is placed with probability _SPLIT_KEEP; a quarter of the schedules first fail
    round 0 (its proposal cut from everyone) and split rounds 1-3; half add one cut of a
    single link at a random step of those rounds. No Byzantine member, no twins: pure
    asynchrony at three steps, which the locks must survive (Tendermint is safe under any
    asynchrony). A sanity net rather than a proof: every cut heals by itself (see
    RoundPartition), so liveness is judged too."""
    n = rng.choice(_split_sizes(opt))
    f = (n - 1) // 3
    powers = [_EQUAL_POWER] * n
    ids = [s.id for s in synthetic_nodes(n, powers)]
    vs = ValidatorSet.of(Validator(i, _EQUAL_POWER, bytes(limits.public_key_bytes)) for i in ids)
    h = rng.randint(1, opt.heights)
    a = 0 if rng.random() < 0.75 else 1
    parts: list[RoundPartition] = []
    if a == 1:
        first = vs.proposer(h, 0)
        parts.append(RoundPartition(h, 0, "propose", ((first,), tuple(sorted(set(ids) - {first})))))
    leader, holder = vs.proposer(h, a), vs.proposer(h, a + 2)
    rest = [i for i in ids if i not in (leader, holder)]
    rng.shuffle(rest)
    nil = rest[:f]
    voters = [i for i in ids if i not in nil and i != holder]
    rng.shuffle(voters)
    others = [i for i in ids if i != holder]
    unseen = rng.sample(others, f)
    decider = rng.choice(others)
    quiet = rng.sample([i for i in others if i != decider], f)
    cuts = [(a, "propose", ((leader,), tuple(nil))), (a, "prevote", (tuple(voters[:f]), tuple(voters[f:]))),
            (a + 1, "prevote", ((holder,), tuple(unseen))),
            (a + 1, "precommit", (tuple(i for i in ids if i != decider and i not in quiet), tuple(quiet)))]
    for r, step, groups in cuts:
        if rng.random() < _SPLIT_KEEP:
            parts.append(RoundPartition(h, r, step, tuple(tuple(sorted(g)) for g in groups)))
    if rng.random() < 0.5:
        x, y = rng.sample(ids, 2)
        parts.append(RoundPartition(h, a + rng.randrange(3), rng.choice(STEPS), ((x,), (y,))))
    tx = rng.choice((0, 5, 20, 50))
    return Schedule(seed=seed, powers=tuple(powers), heights=opt.heights, tx_per_s=tx,
                    round_partitions=_merged(parts))


def _merged(parts: list[RoundPartition]) -> tuple[RoundPartition, ...]:
    """One cut per (height, round, step), the first placed wins (the simulator keeps one)."""
    seen: dict[tuple[int, int, str], RoundPartition] = {}
    for p in parts:
        seen.setdefault((p.height, p.round, p.step), p)
    return tuple(sorted(seen.values(), key=lambda p: (p.height, p.round, STEPS.index(p.step))))
