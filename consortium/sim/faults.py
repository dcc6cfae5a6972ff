"""Fault specs as text, so a failing run can be replayed from the command line.

    AT_MS:OP[:ARG[:VALUE]]
    2000:crash:sh-1           5000:restart:sh-1         3000:pause:hk-1
    8000:partition:sh-1,sh-2|hk-1,hk-2                  (symmetric)
    8000:partition-oneway:sh-1|hk-1,hk-2                (only first -> later groups cut)
    9000:isolate:hk-2         15000:heal                16000:drop:0.2
    1000:duplicate:0.1        1000:delay:200            0:skew:sh-1:800
    1000:byzantine:sh-1:double-vote                      (switch a behaviour on; 'none' = off)
    7000:rollback:sh-1:3      (sh-1 crashes if it runs and restarts from its block store as it was
                               3 blocks earlier; its double-sign guard, a file of its own, is current)
"""

from __future__ import annotations

from dataclasses import dataclass

from consortium import limits
from consortium.errors import UserError
from consortium.sim.byzantine import BEHAVIOURS

FAULT_OPS = ("crash", "restart", "pause", "resume", "partition", "isolate", "drop", "duplicate",
             "delay", "heal", "skew", "byzantine", "advance", "rollback")


@dataclass(frozen=True, slots=True)
class Fault:
    at_ms: int
    op: str
    node: str = ""
    groups: tuple[tuple[str, ...], ...] = ()
    symmetric: bool = True
    value: float = 0.0  # probability for drop/duplicate, ms for delay/skew
    behaviour: str = ""

    def __post_init__(self) -> None:
        assert self.op in FAULT_OPS, self.op
        assert self.at_ms >= 0

    def describe(self) -> str:
        return format_fault(self)


STEPS = ("propose", "prevote", "precommit")  # the message kinds a RoundPartition may cut


def twin_of(node: str) -> str:
    """The simulator id of a validator's second instance (Twins): `sh-1` -> `sh-1'`."""
    return node + "'"


@dataclass(frozen=True, slots=True)
class RoundPartition:
    """Twins (Bano et al., OPODIS 2021): who hears whom in one step of one round. The
    step's consensus messages of (height, round) pass only between instances of the same
    group; an instance named in no group hears and is heard by everyone. Steps, not
    whole rounds: Tendermint votes go to all, so a lock split needs a different cut for
    prevotes and precommits (a DiemBFT round has one vote, sent to one leader). A cut
    holds limits.sim_round_cut_ms from the first message it applies to: then the round's
    retransmissions pass (asynchrony ends), else a step waiting for 2/3 of the votes to
    arm its timeout would wait for ever."""

    height: int
    round: int
    step: str  # one of STEPS
    groups: tuple[tuple[str, ...], ...]  # simulator ids (a twin's second instance: twin_of(id))

    def __post_init__(self) -> None:
        assert self.step in STEPS and self.height >= 1 and self.round >= 0, self

    def describe(self) -> str:
        return f"h{self.height}r{self.round}:{self.step}:" + "|".join(",".join(g) for g in self.groups)


def parse_fault(spec: str, nodes: set[str] | None = None) -> Fault:
    parts = spec.strip().split(":")
    try:
        at = int(parts[0])
    except ValueError:
        raise UserError(f"fault {spec!r}: time {parts[0]!r} is not whole milliseconds") from None
    if at < 0 or len(parts) < 2:
        raise UserError(f"fault {spec!r}: expected AT_MS:OP[:ARG[:VALUE]]")
    op, args = parts[1], parts[2:]

    def node(i: int = 0) -> str:
        if len(args) <= i or not args[i]:
            raise UserError(f"fault {spec!r}: {op} needs a node id")
        if nodes is not None and args[i] not in nodes:
            raise UserError(f"fault {spec!r}: unknown node {args[i]!r} (nodes: {', '.join(sorted(nodes))})")
        return args[i]

    def number(i: int, lo: float, hi: float) -> float:
        try:
            v = float(args[i])
        except (IndexError, ValueError):
            raise UserError(f"fault {spec!r}: {op} needs a number") from None
        if not lo <= v <= hi:
            raise UserError(f"fault {spec!r}: {op} value {v:g} outside {lo:g}..{hi:g}")
        return v

    if op in ("crash", "restart", "pause", "resume", "isolate"):
        return Fault(at, op, node=node())
    if op in ("partition", "partition-oneway"):
        if not args:
            raise UserError(f"fault {spec!r}: partition needs groups like a,b|c,d")
        groups = tuple(tuple(x for x in g.split(",") if x) for g in args[0].split("|"))
        for g in groups:
            for n in g:
                if nodes is not None and n not in nodes:
                    raise UserError(f"fault {spec!r}: unknown node {n!r}")
        if len(groups) < 2:
            raise UserError(f"fault {spec!r}: a partition needs at least two groups")
        return Fault(at, "partition", groups=groups, symmetric=op == "partition")
    if op == "heal":
        return Fault(at, "heal")
    if op == "rollback":  # restart from the block store as it was VALUE blocks earlier
        return Fault(at, op, node=node(), value=int(number(1, 1, limits.sim_rollback_blocks_max)))
    if op == "advance":  # every clock jumps forward (ledger deadlines in days)
        return Fault(at, op, value=number(0, 0, limits.sim_advance_ms_max))
    if op in ("drop", "duplicate"):
        return Fault(at, op, value=number(0, 0.0, 1.0))
    if op == "delay":
        return Fault(at, op, value=number(0, 0, limits.sim_fault_delay_ms_max))
    if op == "skew":
        return Fault(at, op, node=node(), value=number(1, -limits.sim_skew_ms_max, limits.sim_skew_ms_max))
    if op == "byzantine":
        b = args[1] if len(args) > 1 else ""
        if b not in BEHAVIOURS:
            raise UserError(f"fault {spec!r}: behaviour must be one of {', '.join(BEHAVIOURS)}")
        return Fault(at, op, node=node(), behaviour=b)
    raise UserError(f"fault {spec!r}: unknown op {op!r}")


def format_fault(f: Fault) -> str:
    if f.op == "partition":
        groups = "|".join(",".join(g) for g in f.groups)
        return f"{f.at_ms}:{'partition' if f.symmetric else 'partition-oneway'}:{groups}"
    if f.op in ("drop", "duplicate", "delay", "advance"):
        return f"{f.at_ms}:{f.op}:{f.value:g}"
    if f.op in ("skew", "rollback"):
        return f"{f.at_ms}:{f.op}:{f.node}:{f.value:g}"
    if f.op == "byzantine":
        return f"{f.at_ms}:byzantine:{f.node}:{f.behaviour}"
    if f.op == "heal":
        return f"{f.at_ms}:heal"
    return f"{f.at_ms}:{f.op}:{f.node}"
