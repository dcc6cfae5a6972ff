"""The trade state machine: eBL, cargo events, finance, consent (pure, deterministic).

Public surface:
- `Ledger(genesis)`: consortium.consensus.app.Application (check_tx, check_block,
  apply_block, state_root, snapshot, restore).
- `make_tx`, `decode_tx`, `Tx`: signed transactions (consortium.ledger.tx).
- `Code`: reason codes (consortium.ledger.codes).
- `queries`, `invariants.check_invariants`, `builders` (client-side bodies),
  `workload` (deterministic flows for simulators and benchmarks).
"""

from consortium.ledger.codes import Code
from consortium.ledger.ledger import Ledger
from consortium.ledger.tx import Tx, decode_tx, make_tx

__all__ = ["Code", "Ledger", "Tx", "decode_tx", "make_tx"]
