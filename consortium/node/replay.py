"""`consortium replay-node`: re-run a live node's pure core from its input log, offline.

Theory of operation. The log (node/record.py) holds, in order, every event the live
node gave its Replica and, at each boot, the state it built the Replica from. The
replay builds a fresh Ledger from the genesis and a Replica with the node's key
(Ed25519 signatures are deterministic, so its signed frames come out byte-identical),
feeds it the logged events with their logged times, and compares:
- after each input, the digest of the actions the step returned with the logged one
  ("O" records; an input without one returned nothing);
- at each commit the live node stored ("C" records), the block id and state root;
- at each boot record: the ledger's height and state root, and the decided block the
  store handed the Replica. The Replica is then rebuilt exactly as the live node did
  (the logged Restored: decided block, double-sign guard, follow_to; the logged
  timing params) over the replay's own ledger. If the replay's ledger is ahead of the
  store at boot (the node died after logging the input that decided a height but
  before storing it), the ledger is rebuilt from genesis with the replay's own blocks
  up to the store's height (noted). A first boot above height 0 (recording turned on
  for a node that already had a chain) starts from the blocks of the node's store
  in HOME, checked against the logged root.
The first mismatch stops the replay and names the input (its number, the record's
index in the file, what it was, the height it concerns). Inputs are numbered without
gaps; a missing number is a dropped input.

The node's key is needed to sign as the node did: it is read from HOME (the log's
own home when the log sits at HOME/nodes/<id>/inputs.log, else `--home`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consortium import crypto, limits
from consortium.consensus import events as ev
from consortium.consensus.app import BlockContext
from consortium.consensus.messages import Block
from consortium.consensus.replica import Replica, Restored
from consortium.errors import ConsortiumError, UserError
from consortium.genesis import Genesis
from consortium.home import load_genesis, load_key
from consortium.ledger import Ledger
from consortium.node.livestore import open_existing
from consortium.node.record import INPUT_TAGS, BootInfo, LogError, LogReader, check_record, describe, event_of
from consortium.node.record import outputs_digest as digest_of
from consortium.node.runtime import node_replica


@dataclass
class Difference:
    input: int  # the input's number in the log
    record: int  # its record's index in the file
    kind: str  # what the input was ("received prevote from hkma", "timeout propose (round 0)", ...)
    height: int
    what: str

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.input, "record": self.record, "kind": self.kind, "height": self.height,
                "what": self.what}

    def line(self) -> str:
        return f"input {self.input} (record {self.record}, {self.kind}, height {self.height}): {self.what}"


@dataclass
class ReplayResult:
    log: str
    node: str
    chain: str
    inputs: int = 0
    boots: int = 0
    heights_compared: int = 0  # commits of the live node whose block id and state root were compared
    last_height: int = 0
    state_root: str = ""
    truncated: str | None = None  # a torn last record (the node died writing it): reported, not fatal
    first_difference: Difference | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return self.first_difference is None

    def to_dict(self) -> dict[str, Any]:
        return {"log": self.log, "node": self.node, "chain": self.chain, "identical": self.identical,
                "inputs": self.inputs, "boots": self.boots, "heights_compared": self.heights_compared,
                "last_height": self.last_height, "state_root": self.state_root, "truncated": self.truncated,
                "first_difference": self.first_difference.to_dict() if self.first_difference else None,
                "notes": self.notes}


class _Differs(Exception):
    def __init__(self, diff: Difference) -> None:
        super().__init__(diff.line())
        self.diff = diff


def default_home(log: Path) -> Path | None:
    """HOME when the log is HOME/nodes/<id>/inputs.log and HOME holds a genesis."""
    home = log.resolve().parent.parent.parent
    return home if (home / "genesis.json").is_file() and log.resolve().parent.parent.name == "nodes" else None


def replay_log(path: Path, home: Path | None = None,
               progress: Callable[[int, int], None] | None = None) -> ReplayResult:
    """Replay one input log; UserError (exit 2) for a log that cannot be read or does
    not fit the home; the result says whether (and where) the replay differs."""
    if not path.is_file():
        raise UserError(f"{path}: no such input log")
    reader = LogReader(path)
    hdr = reader.header
    home = home if home is not None else default_home(path)
    if home is None:
        raise UserError(f"{path}: replay-node needs the node's key to sign as it did: give --home HOME "
                        "(the consortium home with genesis.json and the node's key)")
    genesis = load_genesis(home)
    if genesis.chain_id != hdr.chain or genesis.digest() != hdr.genesis:
        raise UserError(f"{path}: recorded on chain {hdr.chain} with genesis {hdr.genesis.hex()[:16]}, "
                        f"but {home} holds chain {genesis.chain_id} with genesis {genesis.digest().hex()[:16]}")
    if genesis.member(hdr.node) is None:
        raise UserError(f"{path}: node {hdr.node!r} is not a member of chain {genesis.chain_id}")
    signer = crypto.Signer(load_key(home, hdr.node, genesis))
    run = _Replay(path, home, genesis, signer, hdr.node)
    try:
        run.feed(reader, progress)
    except _Differs as exc:
        run.result.first_difference = exc.diff
    run.result.truncated = reader.torn
    run.result.last_height = run.ledger.height
    run.result.state_root = run.ledger.state_root().hex()
    return run.result


class _Replay:
    def __init__(self, path: Path, home: Path, genesis: Genesis, signer: crypto.Signer, node: str) -> None:
        self.path, self.home, self.genesis, self.signer, self.node = path, home, genesis, signer, node
        self.result = ReplayResult(str(path), node, genesis.chain_id)
        self.ledger = Ledger(genesis)
        self.replica: Replica | None = None
        self.blocks: dict[int, Block] = {}  # the replay's own decisions (to roll back to a store's height)
        self.commits: dict[int, tuple[bytes, bytes]] = {}  # height -> (block id, state root)
        self.next_seq = 0
        self.last: tuple[int, int, str, int] | None = None  # (seq, record, kind, height) of the last input
        self.last_digest: bytes | None = None  # digest of the last input's actions, until compared

    def feed(self, reader: LogReader, progress: Callable[[int, int], None] | None) -> None:
        for index, rec in reader.records():
            check_record(self.path, index, rec)
            tag = rec[0]
            if tag in INPUT_TAGS:
                self._settle(expected=None)
                self._input(index, rec)
            elif tag == "O":
                self._outputs(index, rec)
            elif tag == "C":
                self._commit(index, rec)
            else:
                self._boot(index, rec)
            if progress is not None and index % limits.replay_progress_records_max == 0:
                progress(reader.good_bytes, reader.size)
        if progress is not None:
            progress(reader.size, reader.size)

    # ------------------------------------------------------------ records

    def _input(self, index: int, rec: list[Any]) -> None:
        seq = rec[1]
        if self.replica is None:
            raise LogError(self.path, index, "an input before the first boot record")
        if seq != self.next_seq:
            raise _Differs(Difference(self.next_seq, index, INPUT_TAGS[rec[0]], self.replica.height,
                                      f"input {self.next_seq} is missing from the log (the next one is {seq})"))
        self.next_seq += 1
        self.result.inputs += 1
        try:
            event = event_of(rec)
        except ConsortiumError as exc:  # a frame the live node accepted must decode
            raise _Differs(Difference(seq, index, "received frame", self.replica.height,
                                      f"the logged frame does not decode ({exc})")) from None
        except (ValueError, TypeError, IndexError) as exc:
            raise LogError(self.path, index, f"{INPUT_TAGS[rec[0]]} record has fields of the wrong type ({exc})"
                           ) from None
        kind, height = describe(event, self.replica.height)
        self.last = (seq, index, kind, height)
        try:
            actions: list[ev.Action] | None = self.replica.step(event)
        except Exception:  # the live node logs and counts a replica exception; the log then says "raised"
            actions = None
        self.last_digest = digest_of(actions)
        for a in actions or ():
            if isinstance(a, ev.Commit):
                self.blocks[a.block.height] = a.block
                self.commits[a.block.height] = (a.block.id, a.state_root)

    def _outputs(self, index: int, rec: list[Any]) -> None:
        self._of_last_input(index, rec)
        self._settle(expected=rec[2])

    def _of_last_input(self, index: int, rec: list[Any]) -> None:
        """An "O" or "C" record belongs to the last input; one of a later input means
        that input is missing (dropped from the log)."""
        if self.last is not None and rec[1] == self.last[0]:
            return
        if rec[1] >= self.next_seq:
            height = self.replica.height if self.replica is not None else 0
            raise _Differs(Difference(self.next_seq, index, "missing input", height,
                                      f"input {self.next_seq} is missing from the log (record {index} holds "
                                      f"the {'actions' if rec[0] == 'O' else 'commit'} of input {rec[1]})"))
        raise LogError(self.path, index, f"{'outputs' if rec[0] == 'O' else 'commit'} of input {rec[1]}, which is "
                                         "not the last input")

    def _settle(self, expected: bytes | None) -> None:
        """Compare the last input's actions with the log's: `expected` None means the log
        holds no "O" record for it, so the live step returned no actions."""
        if self.last is None or self.last_digest is None:
            return
        got, self.last_digest = self.last_digest, None
        if got != (expected if expected is not None else _NOTHING):
            seq, index, kind, height = self.last
            what = ("the replica returned different actions" if expected is not None and got != _NOTHING
                    else "the live replica returned actions here, the replay none" if expected is not None
                    else "the replay returned actions here, the live replica none")
            raise _Differs(Difference(seq, index, kind, height, what))

    def _commit(self, index: int, rec: list[Any]) -> None:
        _, seq, height, block_id, root = rec
        self._of_last_input(index, rec)
        self._settle_if_other(seq)
        mine = self.commits.get(height)
        if mine is None:
            raise self._at(seq, index, height, f"the live node committed height {height}, the replay did not")
        if mine != (block_id, root):
            what = "block id" if mine[0] != block_id else "state root"
            raise self._at(seq, index, height, f"{what} at height {height} differs: live "
                           f"{(block_id if what == 'block id' else root).hex()[:16]}, replay "
                           f"{(mine[0] if what == 'block id' else mine[1]).hex()[:16]}")
        self.result.heights_compared += 1

    def _settle_if_other(self, seq: int) -> None:
        if self.last is not None and seq == self.last[0] and self.last_digest is not None:
            self._settle(expected=None)

    def _at(self, seq: int, index: int, height: int, what: str) -> _Differs:
        kind = self.last[2] if self.last is not None and self.last[0] == seq else "commit"
        rec = self.last[1] if self.last is not None and self.last[0] == seq else index
        return _Differs(Difference(seq, rec, kind, height, what))

    # ------------------------------------------------------------ boots

    def _boot(self, index: int, rec: list[Any]) -> None:
        # the input before a boot may have lost its "O" record (the node died): not compared
        self.last_digest = None
        try:
            boot = BootInfo.from_wire(rec[1], rec[2])
        except (ConsortiumError, KeyError, ValueError, TypeError, IndexError) as exc:
            raise LogError(self.path, index, f"boot record does not decode ({exc})") from None
        if boot.seq != self.next_seq:
            raise _Differs(Difference(self.next_seq, index, "boot", boot.height,
                                      f"input {self.next_seq} is missing from the log (the boot record says "
                                      f"{boot.seq} comes next)"))
        self.result.boots += 1
        first = self.replica is None
        if first and boot.height > 0:
            self._from_store(index, boot)
        ours = self.ledger.height
        if ours > boot.height:
            self.result.notes.append(
                f"boot at record {index}: the store ended at height {boot.height}, the replay at {ours} (the node "
                f"stopped after the input that decided {boot.height + 1} and before storing it): rolled back")
            self._roll_back(boot.height)
        elif ours < boot.height:
            raise _Differs(Difference(boot.seq, index, "boot", boot.height,
                                      f"the store held height {boot.height} at boot, the logged inputs decided "
                                      f"only up to {ours}"))
        if self.ledger.state_root() != boot.state_root:
            raise _Differs(Difference(boot.seq, index, "boot", boot.height,
                                      f"state root at boot differs: store {boot.state_root.hex()[:16]}, replay "
                                      f"{self.ledger.state_root().hex()[:16]}"))
        stored = boot.decided.block.id if boot.decided is not None else None
        if boot.height and stored != self.commits.get(boot.height, (stored,))[0]:
            raise _Differs(Difference(boot.seq, index, "boot", boot.height,
                                      f"the store's block at height {boot.height} is not the replay's"))
        if boot.snapshot_height:
            self.result.notes.append(f"boot at record {index}: the node's ledger came from the snapshot of height "
                                     f"{boot.snapshot_height} and the blocks after it")
        self.replica = node_replica(self.genesis, self.node, self.signer, self.ledger, boot.params,
                                    Restored(boot.decided, boot.guard, boot.follow_to))

    def _roll_back(self, height: int) -> None:
        ledger = Ledger(self.genesis)
        for h in range(1, height + 1):
            b = self.blocks[h]
            ledger.apply_block(BlockContext(b.height, b.time_ms, b.proposer), b.txs)
        self.ledger = ledger
        for h in [h for h in self.commits if h > height]:
            del self.commits[h]
            del self.blocks[h]

    def _from_store(self, index: int, boot: BootInfo) -> None:
        """A log that starts above height 0: the ledger from the node's store up to there."""
        store = open_existing(self.home, self.node)
        if store is None or store.last_height() < boot.height:
            raise LogError(self.path, index, f"the log starts at height {boot.height} (recording began on a node "
                                             f"that already had a chain) and {self.home} has no store of "
                                             f"{self.node} holding those heights")
        try:
            for h in range(1, boot.height + 1):
                d = store.decided(h)
                assert d is not None
                b = d.block
                self.ledger.apply_block(BlockContext(b.height, b.time_ms, b.proposer), b.txs)
                self.blocks[h] = b
                self.commits[h] = (b.id, self.ledger.state_root())
        finally:
            store.close()
        self.result.notes.append(f"the log starts at height {boot.height}: heights 1..{boot.height} taken from "
                                 f"{self.node}'s store in {self.home}")


_NOTHING = digest_of([])
