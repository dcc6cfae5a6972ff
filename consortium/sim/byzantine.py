"""Byzantine behaviours: rewrite what a faulty validator sends.

A Byzantine node runs an honest Replica (so it follows the protocol state) and
a Coalition rewrites its outgoing frames. Behaviours:

  equivocate   as proposer, send block A to one half of the honest nodes and
               block B to the other; every coalition member then votes A to
               the first half and B to the second (a coordinated double vote)
               Targeted (SimConfig.targets names the member's chosen nodes, in
               order, e.g. the Shanghai side; the Simulation carries it out, not
               the Coalition): the member runs as two instances under its key,
               one speaking only to the chosen nodes, the other only to the rest;
               the first sends its precommits to the first chosen node alone. So
               that node can decide A while the rest of its side is left locked
               on A, and the other instance, which never saw A win, goes on
               voting with the rest: the attack the locks (L22, L28) stop.
  double-vote  every vote goes out twice to everyone: the honest one and a
               conflicting one (nil <-> block), so honest nodes hold evidence
  withhold     send no proposals or votes at all
  forge        votes carry a corrupted signature
  wrong-chain  messages are signed for another chain id
  replay       re-send old frames (earlier heights) alongside the real ones
  malformed    send random bytes alongside the real frames
  invalid-tx   as proposer, slip a never-valid transaction into the block
  bad-sync     answer sync requests with lies: each block swapped for a forged twin
               (another block time, so another id) under a certificate naming the
               twin, carrying the real block's signatures or, every other block,
               none; everything else honest. A node that accepts synced
               blocks without checking their certificate forks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from consortium import codec, crypto, limits
from consortium.codec import Kind
from consortium.consensus.messages import Block, Decided, Proposal, Vote, sign_proposal, sign_vote

BEHAVIOURS = ("none", "equivocate", "double-vote", "withhold", "forge", "wrong-chain", "replay",
              "malformed", "invalid-tx", "bad-sync")

Send = tuple[list[str] | None, bytes]  # (recipients or None for everyone, frame)


@dataclass
class Coalition:
    chain_id: str
    members: dict[str, str]  # node id -> behaviour (may change during a run)
    everyone: list[str]
    rng: random.Random
    signers: dict[str, crypto.Signer] = field(default_factory=dict)
    alt: dict[tuple[int, int], tuple[bytes, bytes]] = field(default_factory=dict)  # (h, r) -> (A, B)
    memory: list[bytes] = field(default_factory=list)
    forged = 0

    def __post_init__(self) -> None:
        for b in self.members.values():
            assert b in BEHAVIOURS, b

    def behaviour(self, node: str) -> str:
        return self.members.get(node, "none")

    @property
    def groups(self) -> tuple[list[str], list[str]]:
        hs = sorted(n for n in self.everyone if n not in self.members)
        half = (len(hs) + 1) // 2
        return hs[:half], hs[half:]

    def outgoing(self, node: str, env: codec.Envelope, to: str | None) -> list[Send]:
        """What a coalition member really sends instead of `env`."""
        b = self.behaviour(node)
        frame = env.encode()
        honest_send: list[Send] = [([to] if to else None, frame)]
        if b == "bad-sync":
            return self._bad_sync(node, env, to) if env.kind == Kind.SYNC_RESPONSE else honest_send
        if b == "none" or env.kind in (Kind.SYNC_REQUEST, Kind.SYNC_RESPONSE, Kind.TX, Kind.STATUS):
            return honest_send
        handler = getattr(self, "_" + b.replace("-", "_"))
        out: list[Send] = handler(node, env, to, frame)
        return out

    # ------------------------------------------------------------ behaviours

    def _equivocate(self, node: str, env: codec.Envelope, to: str | None, frame: bytes) -> list[Send]:
        ga, gb = self.groups
        team = sorted(self.members)
        h, r = env.body["height"], env.body["round"]
        if env.kind == Kind.PROPOSAL:
            p = Proposal.from_envelope(env)
            alt_block = replace(p.block, time_ms=p.block.time_ms + 1, id=b"")
            alt = sign_proposal(self.chain_id, self.signers[node], node, h, r, p.valid_round, alt_block)
            self.alt[(h, r)] = (p.block.id, alt_block.id)
            return [(ga + team, frame), (gb, alt.envelope(self.chain_id).encode())]
        pair = self.alt.get((h, r))
        if pair is None:
            return [([to] if to else None, frame)]
        va = sign_vote(self.chain_id, self.signers[node], node, env.kind, h, r, pair[0])
        vb = sign_vote(self.chain_id, self.signers[node], node, env.kind, h, r, pair[1])
        return [(ga + team, va.envelope(self.chain_id).encode()), (gb, vb.envelope(self.chain_id).encode())]

    def _double_vote(self, node: str, env: codec.Envelope, to: str | None, frame: bytes) -> list[Send]:
        if env.kind == Kind.PROPOSAL:
            return [(None, frame)]
        v = Vote.from_envelope(env)
        other = crypto.digest(b"conflict" + frame) if v.block_id is None else None
        w = sign_vote(self.chain_id, self.signers[node], node, v.kind, v.height, v.round, other)
        return [(None, frame), (None, w.envelope(self.chain_id).encode())]

    def _withhold(self, node: str, env: codec.Envelope, to: str | None, frame: bytes) -> list[Send]:
        return []

    def _forge(self, node: str, env: codec.Envelope, to: str | None, frame: bytes) -> list[Send]:
        self.forged += 1
        bad = bytearray(frame)
        bad[-1] ^= 0x01  # last byte of the signature
        return [(None, bytes(bad))]

    def _wrong_chain(self, node: str, env: codec.Envelope, to: str | None, frame: bytes) -> list[Send]:
        other = codec.seal_envelope(self.chain_id + "-fork", node, env.kind, env.body, self.signers[node])
        return [(None, other.encode())]

    def _replay(self, node: str, env: codec.Envelope, to: str | None, frame: bytes) -> list[Send]:
        out: list[Send] = [(None, frame)]
        if self.memory:
            out.append((None, self.memory[self.rng.randrange(len(self.memory))]))
        if len(self.memory) < limits.replay_memory_frames_max:
            self.memory.append(frame)
        else:
            self.memory[self.rng.randrange(limits.replay_memory_frames_max)] = frame
        return out

    def _malformed(self, node: str, env: codec.Envelope, to: str | None, frame: bytes) -> list[Send]:
        junk = bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 200)))
        cut = frame[: self.rng.randrange(len(frame))]
        return [(None, frame), (None, junk), (None, cut)]

    def _bad_sync(self, node: str, env: codec.Envelope, to: str | None) -> list[Send]:
        forged = []
        for i, wire in enumerate(env.body["blocks"]):
            d = Decided.from_wire(wire)
            twin = replace(d.block, time_ms=d.block.time_ms + 1, id=b"")
            cert = replace(d.certificate, block_id=twin.id)  # the real signatures, now over nothing
            if i % 2:
                cert = replace(cert, signatures=())
            forged.append(Decided(twin, cert).to_wire())
        lie = codec.seal_envelope(self.chain_id, node, Kind.SYNC_RESPONSE, {"blocks": forged}, self.signers[node])
        return [([to] if to else None, lie.encode())]

    def _invalid_tx(self, node: str, env: codec.Envelope, to: str | None, frame: bytes) -> list[Send]:
        if env.kind != Kind.PROPOSAL:
            return [(None, frame)]
        p = Proposal.from_envelope(env)
        bad: Block = replace(p.block, txs=p.block.txs + (b"\xffnot-a-valid-transaction",), id=b"")
        q = sign_proposal(self.chain_id, self.signers[node], node, p.height, p.round, p.valid_round, bad)
        return [(None, q.envelope(self.chain_id).encode())]
