"""Checkers: run cheaply during a simulation and summarised after it.

- agreement: no two honest nodes decide different blocks at one height
- validity: every decided block passes the application's check (a reference
  application replays the agreed chain and checks each block before applying)
- certificate: every decided block carries a certificate of >= 2/3 power of
  valid precommit signatures for exactly that block and height
- double_sign: no honest validator signs two different votes for one
  (height, round, step), also across crash and restart
- state_root: equal state root at equal height on every honest node
- invariants: the application's own invariants (the trade ledger's) after every block
- liveness: once faults heal, every live honest node decides a new height within
  the stated bound (see Simulation.liveness_bound_ms); no height is decided only
  beyond limits.rounds_max rounds
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from consortium import codec, limits
from consortium.codec import Kind
from consortium.consensus import events as ev
from consortium.consensus.app import Application, BlockContext
from consortium.consensus.validators import ValidatorSet

CHECKS = ("agreement", "validity", "certificate", "double_sign", "state_root", "invariants", "liveness")
_SAFETY = tuple(c for c in CHECKS if c != "liveness")


@dataclass
class Checkers:
    chain_id: str
    validators: ValidatorSet
    reference: Application
    invariants: Callable[[Application], list[str]] | None = None
    decided: dict[int, bytes] = field(default_factory=dict)
    roots: dict[int, bytes] = field(default_factory=dict)
    signed: dict[tuple[str, str, int, int], bytes | None] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHECKS, 0))
    violations: list[str] = field(default_factory=list)
    evidence: int = 0  # evidence items committed on the agreed chain
    txs_accepted: int = 0  # accepted txs on the agreed chain
    max_round: int = 0  # highest round in which a height was decided
    tx_results: dict[bytes, tuple[int, str, str]] = field(default_factory=dict)  # hash -> (height, code, detail)
    # precommit signatures already verified, per (height, round, block): each is checked once, not per node
    _good_sigs: dict[tuple[int, int, bytes], set[tuple[str, bytes]]] = field(default_factory=dict)
    # certificates (height, round, block, signatures) already found good: Certificate.problem is a pure
    # function of them (the chain and validator set are fixed), asked again by each node that commits
    _good_certs: set[tuple[int, int, bytes, tuple[tuple[str, bytes], ...]]] = field(default_factory=set)

    def fail(self, check: str, message: str) -> None:
        assert check in CHECKS
        self.failures[check] += 1
        if len(self.violations) < limits.violations_kept_max:
            self.violations.append(f"{check}: {message}")

    @property
    def unsafe(self) -> bool:
        return any(map(self.failures.__getitem__, _SAFETY))  # asked after every commit

    @property
    def ok(self) -> bool:
        return not any(self.failures.values())

    def on_commit(self, node: str, c: ev.Commit) -> None:
        """An honest node committed a block."""
        b, cert = c.block, c.certificate
        if cert.block_id != b.id or cert.height != b.height:
            self.fail("certificate", f"{node} h={b.height}: certificate is for another block")
        elif (whole := (cert.height, cert.round, cert.block_id, cert.signatures)) not in self._good_certs:
            # (a certificate equal to one found good is good: most nodes of a height build the same)
            slot = whole[:3]
            verified = self._good_sigs.setdefault(slot, set())
            problem = cert.problem(self.chain_id, self.validators, verified)  # read only, not copied
            if problem is None:
                verified.update(cert.signatures)
                self._good_certs.add(whole)
            else:
                self.fail("certificate", f"{node} h={b.height}: {problem}")
        known = self.decided.get(b.height)
        if known is None:
            self._extend_reference(node, c)
        elif known != b.id:
            self.fail("agreement", f"{node} decided {b.id.hex()[:12]} at h={b.height}, "
                                   f"another honest node {known.hex()[:12]}")
        root = self.roots.get(b.height)
        if root is not None and root != c.state_root:
            self.fail("state_root", f"{node} h={b.height}: state root differs")

    def _extend_reference(self, node: str, c: ev.Commit) -> None:
        b = c.block
        self.decided[b.height] = b.id
        self.evidence += len(b.evidence)
        self.txs_accepted += sum(r.accepted for r in c.results)
        for r in c.results:
            self.tx_results.setdefault(r.tx_hash, (b.height, r.code, r.detail))
        self.max_round = max(self.max_round, c.certificate.round)
        if c.certificate.round > limits.rounds_max:
            self.fail("liveness", f"h={b.height} decided only in round {c.certificate.round} "
                                   f"(limits.rounds_max {limits.rounds_max})")
        if b.height != len(self.roots) + 1:
            return  # only possible after an agreement failure; already reported
        ctx = BlockContext(b.height, b.time_ms, b.proposer)
        problem = self.reference.check_block(ctx, b.txs)
        if problem is not None:
            self.fail("validity", f"{node} decided an invalid block at h={b.height}: {problem}")
        self.reference.apply_block(ctx, b.txs)
        self.roots[b.height] = self.reference.state_root()
        if self.roots[b.height] != c.state_root:
            self.fail("state_root", f"{node} h={b.height}: root differs from the reference replay")
        if self.invariants is not None:
            for v in self.invariants(self.reference):
                self.fail("invariants", f"h={b.height}: {v}")

    def on_signed(self, node: str, env: codec.Envelope) -> None:
        """An honest node sent a vote: remember it; a different one is a double-sign."""
        if env.kind not in (Kind.PREVOTE, Kind.PRECOMMIT):
            return
        key = (node, str(env.kind), env.body["height"], env.body["round"])
        block_id = env.body["block_id"]
        if key in self.signed and self.signed[key] != block_id:
            self.fail("double_sign", f"{node} signed two {env.kind}s at h={key[2]} r={key[3]}")
        self.signed.setdefault(key, block_id)

    def summary(self) -> dict[str, object]:
        return {"ok": self.ok, "checks": {c: ("ok" if n == 0 else f"FAILED x{n}") for c, n in
                                          self.failures.items()},
                "violations": list(self.violations)}
