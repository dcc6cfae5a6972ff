"""One SQLite file per node: decided blocks, their certificates and results, the
latest application snapshot, a tx index and the double-sign guard.

Theory of operation
- WAL journal with synchronous=FULL: a transaction that returned is on disk,
  also across kill -9 and power loss. Decided blocks arrive about once a second
  and votes a few times per height, so the fsync per write is affordable.
- A decided height is committed in ONE transaction (block + certificate +
  results + tx index + snapshot): after a crash the store holds height h
  complete or not at all, and the snapshot always belongs to `last_height()`.
- Heights are committed strictly in order (h = last + 1); anything else is a bug
  in the driver (LocalError), never silently repaired.
- The guard records the last (height, round, step) this validator signed. It is
  written before a vote leaves the node and may only move forward, so that a
  restarted validator cannot sign a second, different vote for one step.
- The file remembers the chain id and genesis digest it was created for; opening
  it for another chain is a UserError (a config mix-up, not a crash to repair).

The connection may be used from one thread at a time (a lock serialises calls),
so a driver may hand the fsync-bound calls to an executor.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from consortium import crypto, limits
from consortium.errors import ConsortiumError, LocalError, UserError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY,
    block_id BLOB NOT NULL,
    block BLOB NOT NULL,
    certificate BLOB NOT NULL,
    results BLOB NOT NULL,
    state_root BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshot (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    height INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS tx_index (
    tx_hash BLOB PRIMARY KEY,
    height INTEGER NOT NULL,
    idx INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS guard (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    height INTEGER NOT NULL,
    round INTEGER NOT NULL,
    step INTEGER NOT NULL,
    payload BLOB NOT NULL
);
"""


class StoreDamaged(ConsortiumError):
    """A store whose content fails its checks (bit rot, a careless hand, a bad copy):
    not a bug to crash on and not bad input, but a store a node must not run on."""

    def __init__(self, message: str, height: int) -> None:
        self.height = height
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Latest:
    """The newest committed height and the application state after it."""

    height: int
    block_id: bytes
    state_root: bytes
    snapshot: bytes


@dataclass(frozen=True, slots=True)
class Guard:
    """The last step this validator signed (payload: what the driver needs to
    re-send or compare, typically the signed vote)."""

    height: int
    round: int
    step: int
    payload: bytes

    def position(self) -> tuple[int, int, int]:
        return (self.height, self.round, self.step)


@dataclass(frozen=True, slots=True)
class StoredBlock:
    height: int
    block: bytes
    certificate: bytes


class NodeStore:
    """A node's durable state. Open with `NodeStore.open(path, chain_id, genesis_digest)`."""

    def __init__(self, path: Path | str, chain_id: str, genesis_digest: bytes) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = _connect(self.path)
        try:
            _prepare(self._conn, self.path, chain_id, genesis_digest)
        except BaseException:
            self._conn.close()
            raise
        self._closed = False

    @classmethod
    def open(cls, path: Path | str, chain_id: str, genesis_digest: bytes) -> NodeStore:
        """Open (creating if absent) the store of `chain_id` at `path`."""
        return cls(path, chain_id, genesis_digest)

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> NodeStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def journal_mode(self) -> str:
        with self._lock:
            row = self._db().execute("PRAGMA journal_mode").fetchone()
        return str(row[0]).lower()

    def _db(self) -> sqlite3.Connection:
        if self._closed:
            raise LocalError(f"{self.path}: store used after close()")
        return self._conn

    # ------------------------------------------------------------ blocks

    def commit_block(self, height: int, block_id: bytes, block: bytes, certificate: bytes,
                     results: bytes, state_root: bytes, snapshot: bytes | None,
                     tx_hashes: list[bytes] | None = None) -> None:
        """Durably record decided `height` and the state after it, all or nothing.

        `snapshot` None keeps the older snapshot row (its height says how far it
        reaches; the blocks after it replay deterministically). `tx_hashes[i]` is
        the hash of the i-th tx of the block; a hash already indexed (a replayed
        tx, rejected by the ledger) keeps its first position."""
        _check_digest(block_id, "block_id")
        _check_digest(state_root, "state_root")
        with self._lock:
            db = self._db()
            with _transaction(db):
                last = _last_height(db)
                if height != last + 1:
                    raise LocalError(f"commit of height {height} after {last}: heights commit in order")
                db.execute("INSERT INTO blocks VALUES (?, ?, ?, ?, ?, ?)",
                           (height, block_id, block, certificate, results, state_root))
                if snapshot is not None:
                    db.execute("INSERT OR REPLACE INTO snapshot VALUES (0, ?, ?)", (height, snapshot))
                db.executemany("INSERT OR IGNORE INTO tx_index VALUES (?, ?, ?)",
                               [(h, height, i) for i, h in enumerate(tx_hashes or [])])

    def last_height(self) -> int:
        """The newest committed height, 0 for an empty store."""
        with self._lock:
            return _last_height(self._db())

    def latest(self) -> Latest | None:
        with self._lock:
            row = self._db().execute(
                "SELECT b.height, b.block_id, b.state_root, s.data FROM snapshot s "
                "JOIN blocks b ON b.height = s.height WHERE s.id = 0").fetchone()
        if row is None:
            return None
        return Latest(height=row[0], block_id=row[1], state_root=row[2], snapshot=row[3])

    def block(self, height: int) -> tuple[bytes, bytes] | None:
        """(block, certificate) of `height`, or None if not committed here."""
        with self._lock:
            row = self._db().execute(
                "SELECT block, certificate FROM blocks WHERE height = ?", (height,)).fetchone()
        return None if row is None else (row[0], row[1])

    def block_info(self, height: int) -> tuple[bytes, bytes] | None:
        """(block_id, state_root) of `height`, or None."""
        with self._lock:
            row = self._db().execute(
                "SELECT block_id, state_root FROM blocks WHERE height = ?", (height,)).fetchone()
        return None if row is None else (row[0], row[1])

    def blocks(self, from_h: int, to_h: int, limit: int, bytes_max: int | None = None) -> list[StoredBlock]:
        """Committed blocks with from_h <= height <= to_h, oldest first.

        At most `limit` (capped at limits.blocks_per_read_max) and, when `bytes_max` is
        given, as many as fit in it (at least one, so sync always progresses)."""
        assert limit >= 1 and from_h >= 0
        limit = min(limit, limits.blocks_per_read_max)
        with self._lock:
            rows = self._db().execute(
                "SELECT height, block, certificate FROM blocks WHERE height BETWEEN ? AND ? "
                "ORDER BY height LIMIT ?", (from_h, to_h, limit)).fetchall()
        out: list[StoredBlock] = []
        used = 0
        for height, block, cert in rows:
            used += len(block) + len(cert)
            if out and bytes_max is not None and used > bytes_max:
                break
            out.append(StoredBlock(height, block, cert))
        return out

    def check_chain(self, visit: Callable[[int, bytes, bytes], None] | None = None) -> int:
        """Walk every committed height, oldest first; the last height.

        Checks what needs no decoding: heights run 1, 2, ... without a gap, each
        block's stored id is the digest of its stored bytes (a block's id IS the
        digest of its canonical encoding), ids and roots are digests, and the
        snapshot belongs to a stored height. `visit(height, block, certificate)`
        runs for each height in order (the caller's deeper checks). The first
        problem raises StoreDamaged naming the height."""
        expected = 1
        while True:
            with self._lock:
                rows = self._db().execute(
                    "SELECT height, block_id, block, certificate, state_root FROM blocks WHERE height >= ? "
                    "ORDER BY height LIMIT ?", (expected, limits.blocks_per_read_max)).fetchall()
            for height, block_id, block, cert, root in rows:
                if height != expected:
                    raise self._damaged(expected, "block missing (heights must follow each other)")
                if not isinstance(block, bytes) or not isinstance(cert, bytes):
                    raise self._damaged(height, "block or certificate is not a byte string")
                if not _is_digest(block_id) or not _is_digest(root):
                    raise self._damaged(height, "block id or state root is not a digest")
                if crypto.digest(block) != block_id:
                    raise self._damaged(height, "block hash differs from its stored id (the block was altered)")
                if visit is not None:
                    visit(height, block, cert)
                expected += 1
            if len(rows) < limits.blocks_per_read_max:
                break
        last = expected - 1
        snap = self.snapshot_row_height()
        if snap is not None and not 1 <= snap <= last:
            raise self._damaged(snap, f"snapshot of a height not in the store (last height {last})")
        return last

    def snapshot_row_height(self) -> int | None:
        """Height of the snapshot row, whether or not that height is stored (None: no snapshot)."""
        with self._lock:
            row = self._db().execute("SELECT height FROM snapshot WHERE id = 0").fetchone()
        return None if row is None else int(row[0])

    def _damaged(self, height: int, what: str) -> StoreDamaged:
        return StoreDamaged(f"store {self.path} is damaged at height {height}: {what}", height)

    def results(self, height: int) -> bytes | None:
        """The encoded tx results of `height`, or None."""
        with self._lock:
            row = self._db().execute("SELECT results FROM blocks WHERE height = ?", (height,)).fetchone()
        return None if row is None else bytes(row[0])

    def find_tx(self, tx_hash: bytes) -> tuple[int, int] | None:
        """(height, index in block) of a decided tx, or None."""
        with self._lock:
            row = self._db().execute(
                "SELECT height, idx FROM tx_index WHERE tx_hash = ?", (tx_hash,)).fetchone()
        return None if row is None else (row[0], row[1])

    # ------------------------------------------------------------ double-sign guard

    def save_guard(self, height: int, round: int, step: int, payload: bytes) -> None:
        """Durably record that we signed at (height, round, step), before the vote leaves.

        Moving backward, or re-saving the same step with a different payload (a
        second, different vote), is refused: it is exactly the double-sign
        this guard exists to prevent, so it is a bug in the caller."""
        assert min(height, round, step) >= 0
        with self._lock:
            db = self._db()
            with _transaction(db):
                current = _load_guard(db)
                if current is not None:
                    _check_forward(current, Guard(height, round, step, payload))
                db.execute("INSERT OR REPLACE INTO guard VALUES (0, ?, ?, ?, ?)",
                           (height, round, step, payload))

    def load_guard(self) -> Guard | None:
        with self._lock:
            return _load_guard(self._db())


# ---------------------------------------------------------------- helpers


def _check_digest(value: bytes, name: str) -> None:
    if not isinstance(value, bytes) or len(value) != limits.digest_bytes:
        raise LocalError(f"{name} must be {limits.digest_bytes} bytes")


def _is_digest(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == limits.digest_bytes


def _check_forward(current: Guard, new: Guard) -> None:
    if new.position() < current.position():
        raise LocalError(f"double-sign guard would move back from {current.position()} to {new.position()}")
    if new.position() == current.position() and new.payload != current.payload:
        raise LocalError(f"double-sign guard: a different vote for {new.position()} was already signed")


def _last_height(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT MAX(height) FROM blocks").fetchone()
    return 0 if row is None or row[0] is None else int(row[0])


def _load_guard(db: sqlite3.Connection) -> Guard | None:
    row = db.execute("SELECT height, round, step, payload FROM guard WHERE id = 0").fetchone()
    return None if row is None else Guard(row[0], row[1], row[2], bytes(row[3]))


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction: BEGIN IMMEDIATE takes the write lock up front (no
    upgrade deadlock with a concurrent reader), COMMIT on success, ROLLBACK on
    any error so a failed commit leaves no partial height behind."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _connect(path: Path) -> sqlite3.Connection:
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not a node store file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions, we open them explicitly
        # (_transaction); check_same_thread=False: NodeStore's lock serialises use.
        return sqlite3.connect(str(path), timeout=limits.store_busy_timeout_ms / 1000, isolation_level=None,
                               check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise UserError(f"{path}: cannot open node store ({exc})") from None


def _prepare(conn: sqlite3.Connection, path: Path, chain_id: str, genesis_digest: bytes) -> None:
    """Set durability pragmas, create the schema, and check the file is ours."""
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()
        if mode is None or str(mode[0]).lower() != "wal":
            raise UserError(f"{path}: cannot switch the node store to WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous=FULL")  # a returned commit survives power loss
        with _transaction(conn):
            tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
            if tables == 0:
                _create(conn, chain_id, genesis_digest)
            elif not _has_meta(conn):
                raise UserError(f"{path}: is an SQLite database but not a consortium node store")
        _check_meta(conn, path, chain_id, genesis_digest)
    except sqlite3.DatabaseError as exc:
        raise UserError(f"{path}: not a usable node store ({exc})") from None


def _create(conn: sqlite3.Connection, chain_id: str, genesis_digest: bytes) -> None:
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.executemany("INSERT INTO meta VALUES (?, ?)", [
        ("schema_version", str(SCHEMA_VERSION).encode()),
        ("chain_id", chain_id.encode()),
        ("genesis_digest", genesis_digest),
    ])


def _has_meta(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
    return row is not None


def _check_meta(conn: sqlite3.Connection, path: Path, chain_id: str, genesis_digest: bytes) -> None:
    meta = {k: bytes(v) for k, v in conn.execute("SELECT key, value FROM meta")}
    if meta.get("schema_version") != str(SCHEMA_VERSION).encode():
        raise UserError(f"{path}: node store schema {meta.get('schema_version')!r} is not "
                        f"{SCHEMA_VERSION} (remove the node directory to resync)")
    if meta.get("chain_id") != chain_id.encode():
        raise UserError(f"{path}: node store belongs to chain {meta.get('chain_id', b'?').decode(errors='replace')!r}, "
                        f"not {chain_id!r}")
    if meta.get("genesis_digest") != genesis_digest:
        raise UserError(f"{path}: node store was created for another genesis of chain {chain_id!r} "
                        "(re-run init? remove the node directory to start over)")
