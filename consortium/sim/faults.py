"""Fault specs as text, so a failing run can be replayed from the command line.

    AT_MS:OP[:ARG[:VALUE]]
    2000:crash:sh-1           5000:restart:sh-1         3000:pause:hk-1
    8000:partition:sh-1,sh-2|hk-1,hk-2                  (symmetric)
    8000:partition-oneway:sh-1|hk-1,hk-2                (only first -> later groups cut)
    9000:isolate:hk-2         15000:heal                16000:drop:0.2
    1000:duplicate:0.1        1000:delay:200            0:skew:sh-1:800
    1000:byzantine:sh-1:double-vote                      (switch a behaviour on; 'none' = off)
"""

from __future__ import annotations

from dataclasses import dataclass

from consortium import limits
from consortium.errors import UserError
from consortium.sim.byzantine import BEHAVIOURS

FAULT_OPS = ("crash", "restart", "pause", "resume", "partition", "isolate", "drop", "duplicate",
             "delay", "heal", "skew", "byzantine", "advance")


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
    if f.op == "skew":
        return f"{f.at_ms}:skew:{f.node}:{f.value:g}"
    if f.op == "byzantine":
        return f"{f.at_ms}:byzantine:{f.node}:{f.behaviour}"
    if f.op == "heal":
        return f"{f.at_ms}:heal"
    return f"{f.at_ms}:{f.op}:{f.node}"
