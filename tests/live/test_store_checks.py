"""A damaged store: the node refuses to start on it, and never crashes serving it.

Stores here are real, fully signed chains (tests/live/signed_chain.py) damaged
with one SQL UPDATE, as a disk or a careless hand would damage them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from consortium import codec, crypto
from consortium.bus.broker import free_port
from consortium.codec import Kind
from consortium.errors import ConsortiumError
from consortium.home import init_home, load_genesis, load_key
from consortium.node.livestore import LiveStore
from consortium.node.runtime import NodeOptions, NodeRuntime, validator_set
from tests.bus.conftest import run
from tests.conftest import NODES
from tests.live.signed_chain import certificate_with_bad_signature, corrupt, write_store

NODE = "hkma"
HEIGHTS = 6
SNAPSHOT_AT = 4


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    init_home(path, NODES, "store-checks-1", force=False)
    write_store(path, NODE, HEIGHTS, SNAPSHOT_AT)
    return path


def _store(home: Path) -> Path:
    return home / "nodes" / NODE / "store.db"


def _other_snapshot(home: Path) -> bytes:
    with LiveStore.open_for(home, NODE, load_genesis(home)) as store:
        return store.restore_ledger(load_genesis(home)).snapshot()  # the state after height 6, not 4


DAMAGE: dict[str, tuple[int, str]] = {
    # name: (height named in the refusal, what the refusal says)
    "block bytes": (2, "does not decode"),
    "block hash": (3, "hash"),
    "certificate signature": (2, "certificate"),
    "snapshot": (SNAPSHOT_AT, "state root"),
}


def _damage(home: Path, name: str) -> None:
    path = _store(home)
    if name == "block bytes":
        junk = b"\xc1 not msgpack"  # with a matching id: only decoding can tell
        corrupt(path, "UPDATE blocks SET block = ?, block_id = ? WHERE height = 2", junk, crypto.digest(junk))
    elif name == "block hash":  # a block that decodes but is not the one its id names
        corrupt(path, "UPDATE blocks SET block = (SELECT block FROM blocks WHERE height = 1) WHERE height = 3")
    elif name == "certificate signature":
        corrupt(path, "UPDATE blocks SET certificate = ? WHERE height = 2", certificate_with_bad_signature(path, 2))
    elif name == "snapshot":
        corrupt(path, "UPDATE snapshot SET data = ? WHERE id = 0", _other_snapshot(home))


def test_an_intact_signed_store_passes_the_check(home: Path) -> None:
    """The check accepts a store a real consortium would write (no false alarm)."""
    genesis = load_genesis(home)
    with LiveStore.open_for(home, NODE, genesis) as store:
        ledger = store.check(genesis, validator_set(genesis))
        assert ledger.state_root() == store.block_info(HEIGHTS)[1]  # type: ignore[index]


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_the_check_names_the_height_and_what_is_wrong(home: Path, damage: str) -> None:
    """Every kind of damage (undecodable block, block not matching its id, forged
    certificate, snapshot not matching its root) is found, at the damaged height."""
    _damage(home, damage)
    genesis = load_genesis(home)
    height, what = DAMAGE[damage]
    with LiveStore.open_for(home, NODE, genesis) as store, pytest.raises(ConsortiumError) as err:
        store.check(genesis, validator_set(genesis))
    assert f"height {height}" in str(err.value) and what in str(err.value)


@pytest.mark.parametrize("damage", ["block bytes", "certificate signature"])
def test_a_node_refuses_to_start_on_a_damaged_store(home: Path, damage: str) -> None:
    """A node process started on a store damaged BEFORE its snapshot (so that
    replaying the blocks after the snapshot does not touch it) exits at once,
    non-zero, with one line naming the node, the height and what is wrong,
    instead of running and crashing later when a peer asks for that block."""
    _damage(home, damage)
    height, what = DAMAGE[damage]
    cmd = [sys.executable, "-m", "consortium", "node", "--home", str(home), "--id", NODE,
           "--broker", f"mqtt://127.0.0.1:{free_port()}"]  # nobody listens: a healthy node would wait on
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail("the node started on a damaged store (still running after 15 s)")
    assert out.returncode != 0
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out.stderr
    assert NODE in errors[0] and f"height {height}" in errors[0] and what in errors[0], errors[0]
    assert "Traceback" not in out.stderr


def test_serving_sync_skips_a_corrupt_block_and_keeps_running(home: Path) -> None:
    """A block damaged AFTER the node booted (bit rot on a running node) is never
    served and never crashes the node: the sync reply holds the good blocks below
    it, and the bad read is counted (errors.sync_bad_block) and logged."""
    genesis = load_genesis(home)
    rt = NodeRuntime(NodeOptions(home=home, node_id=NODE, broker=f"mqtt://127.0.0.1:{free_port()}"))
    sent: list[tuple[Any, str | None]] = []

    def send(env: Any, to: str | None = None, retain: bool = False) -> bool:
        sent.append((env, to))
        return True

    rt.bus.send_envelope = send  # type: ignore[method-assign]
    try:
        corrupt(_store(home), "UPDATE blocks SET block = ? WHERE height = 3", b"\xc1 rotten")
        peer = crypto.Signer(load_key(home, "sdb", genesis))
        request = codec.seal_envelope(genesis.chain_id, "sdb", Kind.SYNC_REQUEST,
                                      {"from_height": 1, "to_height": HEIGHTS}, peer)
        run(rt._serve_sync(request))
        assert rt.errors.get("sync_bad_block") == 1
        assert len(sent) == 1 and sent[0][1] == "sdb"
        heights = [b["block"]["height"] for b in sent[0][0].body["blocks"]]
        assert heights == [1, 2]
        rt._sync_served.clear()  # a later request above the bad block is still answered
        request = codec.seal_envelope(genesis.chain_id, "sdb", Kind.SYNC_REQUEST,
                                      {"from_height": 4, "to_height": HEIGHTS}, peer)
        run(rt._serve_sync(request))
        assert [b["block"]["height"] for b in sent[-1][0].body["blocks"]] == [4, 5, 6]
    finally:
        rt.store.close()
