"""What goes into `Replica.step` and what comes out.

Time arrives only inside events (`now_ms`): the replica has no clock.

Driver contract (live node and simulator alike): carry out the actions of one
`step` IN LIST ORDER, each completed before the next starts:
- `Persist` (double-sign guard) must be durable before any later action runs:
  the vote it guards is in a later `Broadcast`, so a crash in between loses a
  vote, never signs two.
- `Commit` must be durable (block + certificate + resulting state, atomically)
  before later actions, so a node never votes at height h+1 on a state it
  could lose.
- `Broadcast` / `SendTo` publish the envelope (fire and forget).
- `ScheduleTimeout` arms a timer that later comes back as `TimeoutFired`;
  stale timers are harmless (the replica ignores them).
- `ReportEvidence` is informational (log, metrics); the evidence itself also
  goes on chain through the next proposal.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from consortium import codec
from consortium.consensus.app import TxResult
from consortium.consensus.messages import Block, Certificate, DuplicateVote


class Step(enum.IntEnum):
    PROPOSE = 0
    PREVOTE = 1
    PRECOMMIT = 2


class TimeoutKind(enum.StrEnum):
    PROPOSE = "propose"
    PREVOTE = "prevote"
    PRECOMMIT = "precommit"
    COMMIT = "commit"  # the pause between a decision and the next height
    SYNC = "sync"  # retry an unanswered sync request
    RETRANSMIT = "retransmit"  # re-send this round's own signed messages


# ------------------------------------------------------------------ events


@dataclass(frozen=True, slots=True)
class Start:
    now_ms: int


@dataclass(frozen=True, slots=True)
class Received:
    """A frame whose envelope the driver has already decoded and verified."""

    envelope: codec.Envelope
    now_ms: int


@dataclass(frozen=True, slots=True)
class TimeoutFired:
    kind: TimeoutKind
    height: int
    round: int
    now_ms: int


@dataclass(frozen=True, slots=True)
class TxSubmitted:
    tx: bytes
    now_ms: int


Event = Start | Received | TimeoutFired | TxSubmitted


# ------------------------------------------------------------------ actions


@dataclass(frozen=True, slots=True)
class Persist:
    """Double-sign guard: we are about to sign at (height, round, step)."""

    height: int
    round: int
    step: Step
    payload: bytes  # canonical list of the frames signed in this (height, round), re-sent after a restart
    lock: bytes  # lock/valid value at signing time: restored after a restart


@dataclass(frozen=True, slots=True)
class Commit:
    block: Block
    certificate: Certificate
    results: tuple[TxResult, ...]
    state_root: bytes  # application state root after this block


@dataclass(frozen=True, slots=True)
class Broadcast:
    envelope: codec.Envelope


@dataclass(frozen=True, slots=True)
class SendTo:
    to: str
    envelope: codec.Envelope


@dataclass(frozen=True, slots=True)
class ScheduleTimeout:
    kind: TimeoutKind
    height: int
    round: int
    delay_ms: int


@dataclass(frozen=True, slots=True)
class ReportEvidence:
    evidence: DuplicateVote


Action = Persist | Commit | Broadcast | SendTo | ScheduleTimeout | ReportEvidence
