"""The application as the replica sees it: a small Protocol, nothing more.

Consensus never imports the ledger. Two kinds of transaction failure:
- `check_tx` / `check_block`: the tx can never be valid (malformed, bad
  signature, unknown signer, oversize). A proposal holding such a tx is
  invalid and honest validators prevote nil on it.
- stateful failures (a second pledge of one eBL, a late refusal...) are not
  block-invalidating: `apply_block` records them as rejected results with a
  reason code, deterministically, on every node.

Every call is deterministic in (state, arguments): no clock, no randomness.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BlockContext:
    """What the application learns about the block it checks or applies."""

    height: int
    time_ms: int  # block time: proposer's clock, strictly increasing per height
    proposer: str


@dataclass(frozen=True, slots=True)
class TxResult:
    """The outcome of one transaction in a decided block."""

    tx_hash: bytes
    code: str  # "OK" or a reason code (DCSA's where one exists: DUPE, BSIG, DISE, ...)
    detail: str = ""

    @property
    def accepted(self) -> bool:
        return self.code == "OK"


class Application(Protocol):
    def check_tx(self, tx: bytes) -> str | None:
        """None if `tx` may enter the mempool, else a reason code. May consult
        the current state (e.g. a nonce already used) but must not change it."""
        ...

    def check_block(self, ctx: BlockContext, txs: Sequence[bytes]) -> str | None:
        """None if a proposed block is acceptable (every tx well formed and
        signed), else a reason code. Must not change the state."""
        ...

    def apply_block(self, ctx: BlockContext, txs: Sequence[bytes]) -> list[TxResult]:
        """Apply a decided block; one result per tx, in order. Never raises for
        anything a tx contains."""
        ...

    def state_root(self) -> bytes:
        """32-byte digest of the whole state; equal on every honest node at equal height."""
        ...

    def snapshot(self) -> bytes:
        """The whole state as canonical bytes (stored with each decided block)."""
        ...

    def restore(self, snapshot: bytes) -> None:
        """Replace the state with a snapshot taken by `snapshot` (crash recovery)."""
        ...
