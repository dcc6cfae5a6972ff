"""The Tendermint replica, sans-I/O: `step(event) -> list[Action]`.

Theory of operation (Buchman, Kwon, Milosevic, "The latest gossip on BFT
consensus", arXiv:1807.04938, Algorithm 1). A height runs rounds; each round
has a proposer (weighted rotation) and three steps: PROPOSE, PREVOTE,
PRECOMMIT. Every event first only *records* what arrived (a proposal, a vote,
a timeout, a tx); then `_process` evaluates the upon-rules of Algorithm 1 until
none fires. Each rule is one `_rule_*` method below, named after its line in
the paper:

  L22 proposal(v, vr=-1) while propose        -> prevote v if valid and lock allows
  L28 proposal(v, vr) + 2/3 prevotes(vr, v)   -> prevote v if valid and lock allows
  L34 2/3 prevotes(any) first time            -> arm prevote timeout
  L36 proposal(v) + 2/3 prevotes(v), valid    -> lock v, precommit v; valid := v
  L44 2/3 prevotes(nil) while prevote         -> precommit nil
  L47 2/3 precommits(any) first time          -> arm precommit timeout
  L49 proposal(v, r) + 2/3 precommits(r, v)   -> decide v (any round)
  L55 f+1 power in a higher round             -> jump to that round
  L57/L61/L65 timeouts                        -> prevote nil / precommit nil / next round

Additions around the paper: a decided block carries its commit certificate;
the next block carries it as `last_commit`; a replica that sees a peer ahead
of it asks that peer for decided blocks and accepts them only with a valid
certificate (sync); before signing anything it emits `Persist` (the double-sign
guard) and never signs twice for one (height, round, step); conflicting votes
become evidence that the next proposal commits on chain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from consortium import codec, crypto, limits
from consortium.codec import Kind, pack_canonical
from consortium.consensus import events as ev
from consortium.consensus.app import Application, BlockContext
from consortium.consensus.mempool import Mempool
from consortium.consensus.messages import (
    ZERO_ID,
    Block,
    Certificate,
    Decided,
    DuplicateVote,
    Proposal,
    Vote,
    sign_proposal,
    sign_vote,
)
from consortium.consensus.validators import ValidatorSet
from consortium.errors import DecodeError, LocalError

Step = ev.Step
TK = ev.TimeoutKind
_VOTE_KINDS = (Kind.PREVOTE, Kind.PRECOMMIT)
_CONSENSUS_KINDS = (Kind.PREVOTE, Kind.PRECOMMIT, Kind.PROPOSAL)  # most frequent first
# enum members as plain module constants on the hot paths (an enum class attribute costs ~0.1 us)
_PROPOSAL, _PROPOSE, _PREVOTE_STEP = Kind.PROPOSAL, Step.PROPOSE, Step.PREVOTE
_PRECOMMIT, _SYNC, _ROUNDS_AHEAD = Kind.PRECOMMIT, TK.SYNC, limits.rounds_ahead_max
_NO_LOCK = codec.encode({"locked_round": -1, "locked": None, "valid_round": -1, "valid": None})  # see _lock_bytes


@dataclass(frozen=True, slots=True)
class Guard:
    """The last (height, round, step) this validator signed, and what it signed."""

    height: int
    round: int
    step: Step
    payload: bytes
    lock: bytes = b""  # canonical {locked_round, locked, valid_round, valid} at signing time

    @property
    def slot(self) -> tuple[int, int, int]:
        return (self.height, self.round, int(self.step))


@dataclass(frozen=True, slots=True)
class Restored:
    """What a restarted replica gets back from its store. The application must
    already hold the state after `decided` (or genesis state if None).

    `follow_to`: sign nothing (propose, prevote, precommit) until this height is
    decided. The driver sets it to how far the peers say the chain went: a store
    restored from an older copy (or whose WAL was lost) has an older guard, and
    every height up to there may hold a signature of ours the store forgot. The
    replica follows (syncs, decides from others' certificates) without voting."""

    decided: Decided | None
    guard: Guard | None
    follow_to: int = 0


@dataclass
class _Height:
    """Everything that is forgotten when a height is decided."""

    proposals: dict[int, Proposal] = field(default_factory=dict)
    votes: dict[tuple[Kind, int], dict[str, Vote]] = field(default_factory=dict)
    tally: dict[tuple[Kind, int], dict[bytes | None, int]] = field(default_factory=dict)
    total: dict[tuple[Kind, int], int] = field(default_factory=dict)
    # a validator's *conflicting* votes, (kind, round) -> (validator, block_id) -> vote: they count
    # towards their own value's tally (as if the equivocator had sent us only that one), never twice
    # towards `total`, and they may appear in certificates
    conflicts: dict[tuple[Kind, int], dict[tuple[str, bytes | None], Vote]] = field(default_factory=dict)
    senders: dict[int, dict[str, int]] = field(default_factory=dict)  # round -> sender -> power
    sender_power: dict[int, int] = field(default_factory=dict)  # round -> sum of senders' power (kept with senders)
    skip_rounds: list[int] = field(default_factory=list)  # rounds whose senders hold >= skip power (L55)
    decidable: int = 0  # (precommit round, block) pairs at quorum: L49 has nothing to look at while 0
    # thresholds crossed so far: a tally or a total reaching the quorum, a round's senders reaching
    # skip. Every vote-dependent condition of the upon-rules is one of these (see step)
    crossings: int = 0
    fired: set[tuple[str, int]] = field(default_factory=set)  # "first time" rules, per round
    helped: set[tuple[str, int]] = field(default_factory=set)  # (peer, round) we re-sent our votes to
    valid: dict[bytes, bool] = field(default_factory=dict)  # block id -> valid(v)


class Replica:
    def __init__(
        self,
        *,
        chain_id: str,
        validators: ValidatorSet,
        me: str,
        signer: crypto.Signer,
        app: Application,
        params: Mapping[str, int],
        genesis_time_ms: int,
        restored: Restored | None = None,
    ) -> None:
        mine = validators.get(me)
        assert mine is None or signer.public_key == mine.public_key, "signer holds our validator key"
        self.chain = chain_id
        self.validators = validators
        self.me = me
        self.signer = signer
        self.voting = mine is not None  # non-validator members follow but never vote
        self.app = app
        self.params = dict(params)
        self.genesis_time_ms = genesis_time_ms
        self.mempool = Mempool()
        self.counters: dict[str, int] = {}
        self.last: Decided | None = restored.decided if restored else None
        self.guard: Guard | None = restored.guard if restored else None
        self.height = self.last.block.height + 1 if self.last else 1
        self.follow_to = restored.follow_to if restored else 0
        # our own signature seen beyond our guard (a certificate, a proof of lock): the
        # slot, and where we saw it; the guard was raised to it (see _learn_own)
        self.lost: tuple[int, int, int] | None = None
        self.lost_where = ""
        self.round = 0
        self.round_step = Step.PROPOSE
        self.waiting = True  # between a decision (or start) and round 0 of the next height
        self.locked: Block | None = None
        self.locked_round = -1
        self.valid_value: Block | None = None
        self.valid_round = -1
        self.h = _Height()
        if self.guard is not None and self.guard.height == self.height and self.guard.lock:
            self._restore_lock(self.guard.lock)
        self.future: list[codec.Envelope] = []
        self.pending_evidence: dict[tuple[str, str, int, int], DuplicateVote] = {}
        self.committed_evidence: set[tuple[str, str, int, int]] = set()
        self.sync_pending = False
        self.sync_refused = 0  # sync answers refused so far: who to ask next (_request_sync_from_voters)
        self.sync_refused_by: set[str] = set()  # peers whose sync answer we refused (asked again only after all)
        self._out: list[ev.Action] = []
        self._now = 0
        self._lock_memo: tuple[tuple[Any, ...], bytes] | None = None  # (lock state, its bytes): see _lock_bytes

    # ------------------------------------------------------------ the one door

    def step(self, event: ev.Event) -> list[ev.Action]:
        if isinstance(event, ev.Received):
            return self.receive(event.envelope, event.now_ms)
        if isinstance(event, ev.TxSubmitted):
            return self.admit(event.tx, event.now_ms)
        if isinstance(event, ev.TimeoutFired):
            return self.timeout(event.kind, event.height, event.round, event.now_ms)
        if isinstance(event, ev.Start):
            self._out = []
            self._now = event.now_ms
            self._on_start()
            self._process()
            out, self._out = self._out, []
            return out
        raise LocalError(f"unknown event {event!r}")  # pragma: no cover - the Event union is closed

    # The three frequent events, each also a method of its own: `step(Received(env, now))`
    # is `receive(env, now)` and so on. A driver that makes millions of steps (the
    # simulator) calls these and builds no event object per step.

    def receive(self, env: codec.Envelope, now_ms: int) -> list[ev.Action]:
        """step(Received(env, now_ms))."""
        self._out = []
        self._now = now_ms
        h = self.h
        vote = env.parsed
        if vote is None and env.kind in _VOTE_KINDS:
            vote = Vote.from_envelope(env)  # read once for every node (a pure function of the envelope)
        if type(vote) is Vote and not h.decidable and vote.height == self.height \
                and self.round <= vote.round <= self.round + _ROUNDS_AHEAD and vote.validator in self.validators.powers:
            # The common vote, _on_envelope and _record without their frames: a validator's
            # vote of our height, neither a lagging round (help) nor one too far ahead. Same
            # recording, same fixpoint argument as below.
            before = h.crossings
            self._record_vote(vote)
            if h.crossings != before or h.decidable:
                self._process()
            out, self._out = self._out, []
            return out
        if env.kind in _VOTE_KINDS and not h.decidable:
            # A vote changes no input of the upon-rules but vote tallies, and each rule reads
            # them only through thresholds (quorum of a block, nil or any; skip power of a
            # round; L49's quorum of precommits is `decidable`). The last step ended at a
            # fixpoint (no rule could fire); if this vote crossed no threshold, none can now.
            before = h.crossings
            self._on_envelope(env)
            if self.h is h and h.crossings == before and not h.decidable:
                out, self._out = self._out, []
                return out
        else:
            self._on_envelope(env)
        self._process()
        out, self._out = self._out, []
        return out

    def admit(self, tx: bytes, now_ms: int) -> list[ev.Action]:
        """step(TxSubmitted(tx, now_ms)). A tx only enters the mempool, which no upon-rule
        reads, and every step ends at a fixpoint of the rules (a new replica is at one):
        nothing can fire, so the rules are not asked, and no action results."""
        self._now = now_ms
        reason = self.mempool.add(tx, self.app.check_tx)
        if reason is not None:
            self._count(f"tx_refused_{reason}")
        return []  # no action (only counters change): self._out stays [] as every step leaves it

    def timeout(self, kind: ev.TimeoutKind, height: int, rnd: int, now_ms: int) -> list[ev.Action]:
        """step(TimeoutFired(kind, height, rnd, now_ms))."""
        self._now = now_ms
        if height != self.height and kind != _SYNC:
            return []  # stale: what _on_timeout finds first, and it changes nothing (most timers of a height)
        self._out = []
        if self._on_timeout(kind, height, rnd):  # else stale: no state changed (the clock enables no rule)
            self._process()
        out, self._out = self._out, []
        return out

    # ------------------------------------------------------------ recording

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def _on_start(self) -> None:
        """Start (or restart) the current height; also the start of every later height:
        in the guard's round if the guard is at this height (see _start_round)."""
        g = self.guard
        self._start_round(g.round if g is not None and g.height == self.height else 0)

    def _on_envelope(self, env: codec.Envelope) -> None:
        if env.kind not in _CONSENSUS_KINDS:
            if env.kind == Kind.TX:  # a batch (codec.BODY_FIELDS): each tx is admitted on its own
                for tx in env.body["txs"]:
                    self.admit(tx, self._now)
            elif env.kind == Kind.SYNC_RESPONSE:
                self._on_sync_response(env)
            return  # sync requests and status are the driver's business
        if env.sender not in self.validators.powers:
            self._count("not_a_validator")
            return
        height = env.body["height"]
        if height < self.height:
            self._count("stale_height")
            return
        if height > self.height:
            self._on_future(env, height)
            return
        self._record(env)

    def _on_future(self, env: codec.Envelope, height: int) -> None:
        # A peer is ahead: it has decided at least height-1, so it can serve it.
        self._request_sync(env.sender, height - 1)
        if height == self.height + 1 and len(self.future) < limits.future_messages_max:
            self.future.append(env)
        else:
            self._count("future_dropped")

    def _record(self, env: codec.Envelope) -> None:
        rnd = env.body["round"]
        if rnd > self.round + limits.rounds_ahead_max:
            self._count("round_too_far")
            return
        try:
            parsed = env.parsed  # a vote or proposal read from this envelope before (see Vote.from_envelope)
            if type(parsed) is Vote:
                self._record_vote(parsed)
            elif env.kind == _PROPOSAL:
                self._record_proposal(Proposal.from_envelope(env))
            else:
                self._record_vote(Vote.from_envelope(env))
        except DecodeError:
            self._count("malformed_consensus_message")
            return
        if rnd < self.round:
            self._help_lagging_peer(env.sender, rnd)

    def _help_lagging_peer(self, peer: str, rnd: int) -> None:
        """A peer still works on an earlier round of our height (it restarted, or
        missed messages). Send it, once, what we signed in that round: with our
        votes it can reach the round's timeouts and follow us (the paper's
        gossip does the same). Once per retransmit period (see _retransmit)."""
        if (peer, rnd) in self.h.helped or peer == self.me:
            return
        self.h.helped.add((peer, rnd))
        for env in self._signed_in_round(rnd):
            self._out.append(ev.SendTo(peer, env))

    def _record_proposal(self, p: Proposal) -> None:
        if p.proposer != self.validators.proposer(p.height, p.round):
            self._count("proposal_from_wrong_proposer")
            return
        known = self.h.proposals.get(p.round)
        if known is not None:
            if known.block.id != p.block.id:
                self._count("equivocating_proposal")
            return
        self.h.proposals[p.round] = p
        self._note_sender(p.round, p.proposer)
        self._record_pol(p)

    def _record_pol(self, p: Proposal) -> None:
        """Count the proof-of-lock prevotes a re-proposal carries (each checked)."""
        if p.valid_round < 0:
            return
        have = self._votes_for(Kind.PREVOTE, p.valid_round, p.block.id)
        for vote in p.pol_votes():
            v = self.validators.get(vote.validator)
            if v is None or (vote.validator, vote.signature) in have:
                continue
            if vote.verify(self.chain, v.public_key):
                self._record_vote(vote)
            else:
                self._count("bad_pol_signature")

    def _record_vote(self, vote: Vote) -> None:
        validator, rnd, block_id = vote.validator, vote.round, vote.block_id  # (read once: n^2 votes per height)
        key = (vote.kind, rnd)
        h = self.h
        slot = h.votes.get(key)
        if slot is None:
            slot = h.votes[key] = {}
            tally = h.tally[key] = {}
        else:
            tally = h.tally[key]
        known = slot.get(validator)
        power = self.validators.powers.get(validator, 0)
        if known is not None:
            if known.block_id == block_id:
                return
            self._note_evidence(DuplicateVote(known, vote))
            extra = h.conflicts.setdefault(key, {})
            if (validator, block_id) in extra:
                return
            extra[(validator, block_id)] = vote
        else:
            if validator == self.me:  # checked: a peer cannot send our frames; a POL vote is verified
                self._learn_own(vote.height, rnd, Step.PREVOTE if vote.kind == Kind.PREVOTE else Step.PRECOMMIT,
                                f"our {vote.kind} in a peer's message")
            slot[validator] = vote
        # the vote's power to its value's tally (a conflicting vote too, see _Height.conflicts)
        q = self.validators.quorum
        before = tally.get(block_id, 0)
        tally[block_id] = before + power
        if before < q <= before + power:
            h.crossings += 1
            if block_id is not None and vote.kind == _PRECOMMIT:
                h.decidable += 1
        if known is not None:
            return  # counted once in the total and among the round's senders
        total = h.total.get(key, 0)
        h.total[key] = total + power
        if total < q <= total + power:
            h.crossings += 1
        senders = h.senders.get(rnd)
        if senders is None or validator not in senders:
            self._note_sender(rnd, validator)

    def _note_sender(self, rnd: int, sender: str) -> None:
        h = self.h
        senders = h.senders.get(rnd)
        if senders is None:
            senders = h.senders[rnd] = {}
        elif sender in senders:
            return  # a sender's power never changes: nothing new
        power = senders[sender] = self.validators.powers.get(sender, 0)
        before = h.sender_power.get(rnd, 0)
        h.sender_power[rnd] = before + power
        if before < self.validators.skip <= before + power:
            h.skip_rounds.append(rnd)
            h.crossings += 1

    def _note_evidence(self, e: DuplicateVote) -> None:
        if e.key in self.committed_evidence or e.key in self.pending_evidence:
            return
        self.pending_evidence[e.key] = e
        self._out.append(ev.ReportEvidence(e))

    def _on_timeout(self, kind: ev.TimeoutKind, height: int, rnd: int) -> bool:
        """False: a stale timer, which changed nothing (see step)."""
        if kind == TK.SYNC:
            self.sync_pending = False
            return True
        if height != self.height:
            return False
        if kind == TK.COMMIT and self.waiting and self.round == 0:
            self._on_start()
        elif kind == TK.RETRANSMIT and rnd == self.round and not self.waiting:
            self._retransmit()
        elif rnd != self.round or self.waiting:
            return False
        elif kind == TK.PROPOSE and self.round_step == Step.PROPOSE:  # L57
            self._cast(Kind.PREVOTE, None)
        elif kind == TK.PREVOTE and self.round_step == Step.PREVOTE:  # L61
            self._cast(Kind.PRECOMMIT, None)
        elif kind == TK.PRECOMMIT:  # L65
            self._start_round(self.round + 1)
        else:
            return False
        return True

    # ------------------------------------------------------------ the upon-rules

    def _process(self) -> None:
        """Run the upon-rules until none fires (a fixpoint)."""
        for _ in range(limits.upon_rule_firings_max):
            if not self._fire_one():
                return
        raise LocalError("upon-rules did not reach a fixpoint")

    def _fire_one(self) -> bool:
        if self._rule_decide() or self._rule_skip_round():
            return True
        if self.waiting:
            return False
        # In this order: prevote_fresh, prevote_valid_round, prevote_timeout, lock, precommit_nil,
        # precommit_timeout. Each rule but the last holds only in some steps (and does nothing
        # in the others), so only the rules of the current step are asked, in the same order.
        step = self.round_step
        if step == _PROPOSE:
            return self._rule_prevote_fresh() or self._rule_prevote_valid_round() or self._rule_precommit_timeout()
        if step == _PREVOTE_STEP:
            return (self._rule_prevote_timeout() or self._rule_lock() or self._rule_precommit_nil()
                    or self._rule_precommit_timeout())
        return self._rule_lock() or self._rule_precommit_timeout()

    def _quorum(self, kind: Kind, rnd: int, block_id: bytes | None) -> bool:
        return self.h.tally.get((kind, rnd), {}).get(block_id, 0) >= self.validators.quorum

    def _rule_prevote_fresh(self) -> bool:  # L22
        p = self.h.proposals.get(self.round)
        if self.round_step != Step.PROPOSE or p is None or p.valid_round != -1:
            return False
        ok = self._timely_valid(p.block) and (self.locked_round == -1 or self._is_locked(p.block))
        self._cast(Kind.PREVOTE, p.block.id if ok else None)
        return True

    def _rule_prevote_valid_round(self) -> bool:  # L28
        p = self.h.proposals.get(self.round)
        if self.round_step != Step.PROPOSE or p is None or not 0 <= p.valid_round < self.round:
            return False
        if not self._quorum(Kind.PREVOTE, p.valid_round, p.block.id):
            return False
        ok = self._valid(p.block) and (self.locked_round <= p.valid_round or self._is_locked(p.block))
        self._cast(Kind.PREVOTE, p.block.id if ok else None)
        return True

    def _rule_prevote_timeout(self) -> bool:  # L34
        key = ("prevote_timeout", self.round)
        if self.round_step != Step.PREVOTE or key in self.h.fired:
            return False
        if self.h.total.get((Kind.PREVOTE, self.round), 0) < self.validators.quorum:
            return False
        self.h.fired.add(key)
        self._schedule(TK.PREVOTE, self._timeout_ms("prevote"))
        return True

    def _rule_lock(self) -> bool:  # L36
        key = ("lock", self.round)
        p = self.h.proposals.get(self.round)
        if self.round_step < Step.PREVOTE or key in self.h.fired or p is None:
            return False
        if not self._quorum(Kind.PREVOTE, self.round, p.block.id) or not self._valid(p.block):
            return False
        self.h.fired.add(key)
        # valid first: the Persist that _cast emits carries lock and valid value together,
        # so a restarted proposer re-proposes v (validRound >= lockedRound, as in the paper)
        self.valid_value, self.valid_round = p.block, self.round
        if self.round_step == Step.PREVOTE:
            self.locked, self.locked_round = p.block, self.round
            self._cast(Kind.PRECOMMIT, p.block.id)
        return True

    def _rule_precommit_nil(self) -> bool:  # L44
        if self.round_step != Step.PREVOTE or not self._quorum(Kind.PREVOTE, self.round, None):
            return False
        self._cast(Kind.PRECOMMIT, None)
        return True

    def _rule_precommit_timeout(self) -> bool:  # L47
        key = ("precommit_timeout", self.round)
        if key in self.h.fired:
            return False
        if self.h.total.get((Kind.PRECOMMIT, self.round), 0) < self.validators.quorum:
            return False
        self.h.fired.add(key)
        self._schedule(TK.PRECOMMIT, self._timeout_ms("precommit"))
        return True

    def _rule_decide(self) -> bool:  # L49
        if not self.h.decidable:
            return False  # no precommit tally has reached a quorum for a block
        for (kind, rnd), tally in self.h.tally.items():
            if kind != Kind.PRECOMMIT:
                continue
            for block_id, power in tally.items():
                if block_id is None or power < self.validators.quorum:
                    continue
                p = self.h.proposals.get(rnd)
                if p is None or p.block.id != block_id:
                    self._request_sync_from_voters(rnd, block_id)  # we lack the block
                    continue
                if self._valid(p.block):
                    self._decide(p.block, self._certificate(rnd, block_id))
                    return True
        return False

    def _rule_skip_round(self) -> bool:  # L55
        best = -1
        for rnd in self.h.skip_rounds:  # the rounds whose senders' power sum reached skip
            if rnd > self.round and rnd > best:
                best = rnd
        if best < 0:
            return False
        self._start_round(best)
        return True

    # ------------------------------------------------------------ transitions

    def _start_round(self, rnd: int) -> None:
        """Enter round `rnd` of this height. When the guard is at this height we signed in
        it before (a restart, or a rolled-back store that decided its way back up through
        sync), whichever way we get here (Start, or L55 skipping straight to a later round
        on the peers' votes): our lock comes back first, and in the guard's own round the
        signed frames are re-sent (we may not sign them again: without them a peer that
        needs our vote would wait for ever; explore seeds 525 and 3291)."""
        self.round, self.round_step, self.waiting = rnd, Step.PROPOSE, False
        g = self.guard
        back = g is not None and g.height == self.height
        if back and g is not None and g.lock and self.locked_round < 0 and self.valid_round < 0:
            self._restore_lock(g.lock)
        self._schedule(TK.RETRANSMIT, self._retransmit_ms())
        self._propose_or_wait(rnd)
        if back and g is not None and g.round == rnd and g.payload:
            self._resend_guarded(g)

    def _propose_or_wait(self, rnd: int) -> None:
        if self.validators.proposer(self.height, rnd) != self.me or not self.voting or self.following:
            self._schedule(TK.PROPOSE, self._timeout_ms("propose"))
            return
        if not self._may_sign(Step.PROPOSE):
            return
        block = self.valid_value if self.valid_value is not None else self._build_block()
        vr = self.valid_round if self.valid_value is not None else -1
        pol = tuple(sorted(self._votes_for(Kind.PREVOTE, vr, block.id))) if vr >= 0 else ()
        p = sign_proposal(self.chain, self.signer, self.me, self.height, rnd, vr, block, pol)
        env = p.envelope(self.chain)
        self._persist(Step.PROPOSE, env)
        self._out.append(ev.Broadcast(env))
        self._record_proposal(p)

    def _cast(self, kind: Kind, block_id: bytes | None) -> None:
        step = Step.PREVOTE if kind == Kind.PREVOTE else Step.PRECOMMIT
        self.round_step = step
        if not self.voting or not self._may_sign(step):
            return
        vote = sign_vote(self.chain, self.signer, self.me, kind, self.height, self.round, block_id)
        env = vote.envelope(self.chain)
        self._persist(step, env)
        self._out.append(ev.Broadcast(env))
        self._record_vote(vote)

    def _may_sign(self, step: Step) -> bool:
        """The double-sign guard: never sign at or before the last signed slot, nor
        while following the peers to the height they reported (Restored.follow_to)."""
        if self.following:
            return False
        g = self.guard
        return g is None or (self.height, self.round, int(step)) > g.slot

    @property
    def following(self) -> bool:
        return self.height <= self.follow_to

    def _learn_own(self, height: int, rnd: int, step: Step, where: str) -> None:
        """A valid signature of ours for a slot beyond our guard: we signed it before
        a restart and our store forgot (an older copy, a lost WAL). Raise the guard to
        it, durably, so that we never sign at or below it again. Never fires for an
        intact guard: it is persisted before anything it covers is signed."""
        slot = (height, rnd, int(step))
        if self.guard is not None and slot <= self.guard.slot:
            return
        self.guard = Guard(height, rnd, step, codec.encode([]), b"")
        self.lost, self.lost_where = slot, where
        self._count("guard_raised")
        self._out.append(ev.Persist(height, rnd, step, self.guard.payload, self.guard.lock))

    def _persist(self, step: Step, env: codec.Envelope) -> None:
        """Lock and valid value travel with the guard: a validator that forgot its
        lock after a crash could prevote against a value it precommitted."""
        signed = [e.encode() for e in self._signed_in_round(self.round)] + [env.encode()]
        # a list of frames (exact bytes) is its own canonical form: codec.encode(signed) without the walk
        self.guard = Guard(self.height, self.round, step, pack_canonical(signed), self._lock_bytes())
        self._out.append(ev.Persist(self.height, self.round, step, self.guard.payload, self.guard.lock))

    def _lock_bytes(self) -> bytes:
        """Encoded once per lock state (the same blocks, by identity, and rounds): a
        height signs two or three times, each with the same lock most often."""
        if self.locked is None and self.valid_value is None and self.locked_round == self.valid_round == -1:
            return _NO_LOCK  # the first signature of most heights
        state = (self.locked_round, self.locked, self.valid_round, self.valid_value)
        memo = self._lock_memo
        if memo is not None and memo[0][0] == state[0] and memo[0][2] == state[2] \
                and memo[0][1] is state[1] and memo[0][3] is state[3]:
            return memo[1]
        # the blocks as they encode (codec.raw: the bytes of their to_wire()); rounds are ints and the
        # keys are inserted in sorted order, so the value is canonical as it is: codec.encode without the walk
        data = pack_canonical({
            "locked": codec.raw(self.locked.encoded) if self.locked else None,
            "locked_round": self.locked_round,
            "valid": codec.raw(self.valid_value.encoded) if self.valid_value else None,
            "valid_round": self.valid_round,
        })
        self._lock_memo = (state, data)
        return data

    def _restore_lock(self, data: bytes) -> None:
        m = codec.decode(data)  # our own bytes, from our own store
        self.locked_round, self.valid_round = m["locked_round"], m["valid_round"]
        self.locked = Block.from_wire(m["locked"]) if m["locked"] is not None else None
        self.valid_value = Block.from_wire(m["valid"]) if m["valid"] is not None else None

    def _resend_guarded(self, g: Guard) -> None:
        """After a restart, re-send exactly what we signed in the guard's round
        (never re-sign): peers that missed our prevote still need it."""
        for frame in codec.decode(g.payload):  # our own bytes, from our own store
            env = codec.decode_unverified(frame)
            self._out.append(ev.Broadcast(env))
            self._record(env)
        self.round_step = max(self.round_step, g.step)

    def _decide(self, block: Block, cert: Certificate) -> None:
        ctx = BlockContext(block.height, block.time_ms, block.proposer)
        results = self.app.apply_block(ctx, block.txs)
        assert len(results) == len(block.txs)
        for e in block.evidence:
            self.committed_evidence.add(e.key)
            self.pending_evidence.pop(e.key, None)
        self._out.append(ev.Commit(block, cert, tuple(results), self.app.state_root()))
        self.mempool.remove_committed(block.txs, self.app.check_tx)
        self.last = Decided(block, cert)
        self.height += 1
        self.round, self.round_step, self.waiting = 0, Step.PROPOSE, True
        self.locked, self.locked_round, self.valid_value, self.valid_round = None, -1, None, -1
        self.h = _Height()
        self._schedule(TK.COMMIT, self.params["block_interval_ms"])
        future, self.future = self.future, []
        for env in future:
            self._on_envelope(env)

    # ------------------------------------------------------------ blocks

    def _build_block(self) -> Block:
        txs = self.mempool.batch(self.params["block_txs_max"], self.params["block_bytes_max"])
        evidence = tuple(self.pending_evidence[k] for k in sorted(self.pending_evidence))
        return Block(
            height=self.height,
            time_ms=max(self._now, self._prev_time() + 1),
            proposer=self.me,
            prev_id=self.last.block.id if self.last else ZERO_ID,
            app_hash=self.app.state_root(),
            last_commit=self.last.certificate if self.last else None,
            evidence=evidence[: limits.evidence_per_block_max],
            txs=tuple(txs),
        )

    def _prev_time(self) -> int:
        return self.last.block.time_ms if self.last else self.genesis_time_ms

    def _timely_valid(self, block: Block) -> bool:
        """valid(v) plus: the block time does not run ahead of our clock (prevote only;
        deciding never depends on our clock, so a skewed node still follows)."""
        return self._valid(block) and block.time_ms <= self._now + limits.block_time_skew_ms_max

    def _valid(self, block: Block) -> bool:
        cached = self.h.valid.get(block.id)
        if cached is None:
            problem = self._block_problem(block)
            if problem is not None:
                self._count("invalid_block")
            cached = self.h.valid[block.id] = problem is None
        return cached

    def _block_problem(self, block: Block) -> str | None:
        if block.height != self.height or self.validators.get(block.proposer) is None:
            return "height or proposer"
        if block.prev_id != (self.last.block.id if self.last else ZERO_ID):
            return "prev_id"
        if block.app_hash != self.app.state_root():
            return "app_hash"
        if block.time_ms <= self._prev_time():
            return "time"
        if len(block.txs) > self.params["block_txs_max"] or block.size_bytes > self.params["block_bytes_max"]:
            return "size"
        if len(set(block.txs)) != len(block.txs):
            return "duplicate tx"
        problem = self._last_commit_problem(block)
        if problem is not None:
            return problem
        keys = [e.key for e in block.evidence]
        if len(set(keys)) != len(keys) or any(k in self.committed_evidence for k in keys):
            return "evidence repeated"
        if any(e.problem(self.chain, self.validators) for e in block.evidence):
            return "evidence invalid"
        return self.app.check_block(BlockContext(block.height, block.time_ms, block.proposer), block.txs)

    def _last_commit_problem(self, block: Block) -> str | None:
        if self.last is None:
            return None if block.last_commit is None else "last_commit at height 1"
        lc = block.last_commit
        if lc is None or lc.height != self.last.block.height or lc.block_id != self.last.block.id:
            return "last_commit does not certify the previous block"
        mine = self.last.certificate
        known = frozenset(mine.signatures) if mine.round == lc.round else frozenset()
        return lc.problem(self.chain, self.validators, known)

    def _is_locked(self, block: Block) -> bool:
        return self.locked is not None and self.locked.id == block.id

    def _votes_for(self, kind: Kind, rnd: int, block_id: bytes) -> set[tuple[str, bytes]]:
        """(validator, signature) of every vote we hold for block_id, conflicting ones included."""
        first = self.h.votes.get((kind, rnd), {}).values()
        extra = self.h.conflicts.get((kind, rnd), {}).values()
        return {(v.validator, v.signature) for v in (*first, *extra) if v.block_id == block_id}

    def _certificate(self, rnd: int, block_id: bytes) -> Certificate:
        sigs = sorted(self._votes_for(Kind.PRECOMMIT, rnd, block_id))
        return Certificate(self.height, rnd, block_id, tuple(sigs))

    # ------------------------------------------------------------ sync

    def _request_sync_from_voters(self, rnd: int, block_id: bytes) -> None:
        voters = sorted(v.validator for v in self.h.votes.get((Kind.PRECOMMIT, rnd), {}).values()
                        if v.block_id == block_id and v.validator != self.me)
        voters = [v for v in voters if v not in self.sync_refused_by] or voters
        if voters:  # each refused answer moves on to the next voter (one of them is honest)
            self._request_sync(voters[(self.height + rnd + self.sync_refused) % len(voters)], self.height)

    def _request_sync(self, peer: str, to_height: int) -> None:
        """Ask `peer` for the blocks from our height on; not a peer whose sync answer we
        refused while another may still answer: a lying peer that happens to be
        heard first after every retry would be asked for ever (`consortium explore`,
        seed 3458: the node holding 60 % of the power stalled behind a bad-sync peer)."""
        if self.sync_pending or peer == self.me:
            return
        if peer in self.sync_refused_by:
            if len(self.sync_refused_by) < len(self.validators.powers) - 1:
                return
            self.sync_refused_by.clear()  # every peer refused once: ask round again
        self.sync_pending = True
        body = {"from_height": self.height, "to_height": to_height}
        self._send(peer, Kind.SYNC_REQUEST, body)
        self._out.append(ev.ScheduleTimeout(TK.SYNC, self.height, self.round, limits.sync_retry_ms))

    def _on_sync_response(self, env: codec.Envelope) -> None:
        """An answer we must refuse (malformed, or a block we cannot accept) leaves the
        request pending until its retry timer (TK.SYNC, limits.sync_retry_ms): asking
        again at once ping-pongs with a lying peer at network speed, forever (found by
        `consortium explore`, seed 64: a bad-sync peer and two laggards)."""
        self.sync_pending = False
        for item in env.body["blocks"]:
            try:
                d = Decided.from_wire(item)
            except DecodeError:
                self._count("sync_malformed")
                self._refuse_sync(env.sender)
                return
            if d.block.height < self.height:
                continue
            if d.block.height > self.height:
                return
            if not self._accept_synced(d):
                self._refuse_sync(env.sender)
                return
        self._process()

    def _refuse_sync(self, peer: str) -> None:
        self.sync_pending = True  # until the retry timer
        self.sync_refused += 1
        self.sync_refused_by.add(peer)

    def _accept_synced(self, d: Decided) -> bool:
        cert = d.certificate
        if cert.height != self.height or cert.block_id != d.block.id:
            self._count("sync_mismatch")
            return False
        if cert.problem(self.chain, self.validators) is not None:
            self._count("sync_bad_certificate")
            return False
        problem = self._block_problem(d.block)
        if problem is not None:
            self._count(f"sync_invalid_block_{problem.split()[0]}")
            return False
        self._count("synced_blocks")
        for c in (d.block.last_commit, cert):  # both verified above
            if c is not None and any(v == self.me for v, _ in c.signatures):
                self._learn_own(c.height, c.round, Step.PRECOMMIT, f"our precommit in the certificate of height {c.height}")
        self._decide(d.block, cert)
        return True

    # ------------------------------------------------------------ output helpers

    def _send(self, to: str, kind: Kind, body: dict[str, Any]) -> None:
        env = codec.seal_envelope(self.chain, self.me, kind, body, self.signer)
        self._out.append(ev.SendTo(to, env))

    def _schedule(self, kind: ev.TimeoutKind, delay_ms: int) -> None:
        self._out.append(ev.ScheduleTimeout(kind, self.height, self.round, delay_ms))

    def _retransmit(self) -> None:
        """Re-send what we signed in this round. The paper assumes messages are
        eventually delivered (gossip); on a lossy link this resend is what makes
        that true. Identical signed bytes: never a second signature.

        Help to lagging peers is also renewed once per period: a peer whose one
        helping send was lost (a partition) would otherwise never get our votes of
        its round again, and with too little power ahead of it to skip (L55) it
        stalls (found by `consortium explore`, seed 236)."""
        self.h.helped.clear()
        for env in self._signed_in_round(self.round):
            self._out.append(ev.Broadcast(env))
        self._schedule(TK.RETRANSMIT, self._retransmit_ms())

    def _signed_in_round(self, rnd: int) -> list[codec.Envelope]:
        out = []
        p = self.h.proposals.get(rnd)
        if p is not None and p.proposer == self.me:
            out.append(p.envelope(self.chain))
        for kind in (Kind.PREVOTE, Kind.PRECOMMIT):
            mine = self.h.votes.get((kind, rnd), {}).get(self.me)
            if mine is not None:
                out.append(mine.envelope(self.chain))
        return out

    def _retransmit_ms(self) -> int:
        return self._timeout_ms("propose") + self._timeout_ms("prevote") + self._timeout_ms("precommit")

    def _timeout_ms(self, step: str) -> int:
        base = self.params[f"{step}_timeout_ms"] + self.round * self.params[f"{step}_timeout_ms_delta"]
        return min(base, limits.round_timeout_ms_max)

    # ------------------------------------------------------------ introspection

    def status(self) -> dict[str, Any]:
        return {
            "height": self.height, "round": self.round, "step": self.round_step.name.lower(),
            "proposer": self.validators.proposer(self.height, self.round),
            "last_block": self.last.block.id.hex() if self.last else None,
            "app_hash": self.app.state_root().hex(), "mempool": len(self.mempool),
            "counters": dict(sorted(self.counters.items())),
        }
