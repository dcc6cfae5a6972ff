"""Record live, replay offline: `up --record` under load, a kill -9, then `consortium replay-node`.

Real node processes (n = 4) on the embedded broker, a real load process; the logs are
replayed by the CLI as a user would."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from consortium import codec
from consortium.bench.live import make_home
from consortium.codec import Kind
from consortium.node import launch
from consortium.node.record import LogReader
from consortium.node.replay import replay_log
from tests.live.conftest import FAST_BLOCKS_MS, Live, cli, start_load, wait_for

VICTIM = "val-2"


@pytest.fixture
def four(tmp_path: Path) -> Iterator[Live]:
    home = tmp_path / "c" / "home"
    make_home(home, 4, 1)
    live = Live(home, "embedded")
    try:
        yield live
    finally:
        live.cleanup()


def _replay(*logs: Path, home: Path | None = None) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    extra = ["--home", str(home)] if home is not None else []
    out = cli("replay-node", *map(str, logs), *extra, "--json", check=False)
    return out.returncode, (json.loads(out.stdout) if out.stdout.strip() else {}), out.stderr


def _frames(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of every record, the header first."""
    spans, at = [], 0
    while at < len(data):
        n = int.from_bytes(data[at:at + 4], "big")
        spans.append((at, at + 4 + n))
        at += 4 + n
    return spans


@pytest.mark.broker
def test_every_log_replays_identically_and_a_tampered_log_says_where(four: Live, tmp_path: Path) -> None:
    """Four recording nodes decide under load; one is killed -9 and restarted (its log
    gets a second boot record). `replay-node` re-runs each node's replica and ledger
    offline and finds the same block ids and state roots at every height the node
    committed, and the same actions after every input. A copy of a log with one byte of
    one received proposal changed, or with one input dropped, makes replay-node name the
    first differing input and exit 1; a log cut inside its header or of another format
    version is one line, exit 2; a last record cut short is reported, not fatal."""
    live = four
    live.up("--record", block_interval_ms=FAST_BLOCKS_MS)
    load = start_load(live, tmp_path, rate=40, duration_s=30,
                      actors=("l1-carrier", "l1-bank", "l1-shipper", "l1-consignee"), prefix="R")
    try:
        live.wait_height(5, timeout_s=30)
        assert launch.kill_node(live.home, VICTIM, signal.SIGKILL)
        wait_for(f"{VICTIM} gone", lambda: VICTIM not in launch.recorded_nodes(live.home / "run"), 10, 0.1)
        live.up("--only", VICTIM, "--record", block_interval_ms=FAST_BLOCKS_MS)
        top = max(live.heights().values())
        live.wait_height(top + 2, [VICTIM], timeout_s=40)
    finally:
        load.kill()
        load.wait(timeout=10)
    live.down()
    logs = {m: live.home / "nodes" / m / "inputs.log" for m in live.members}

    rc, out, err = _replay(*logs.values())
    assert rc == 0, (out, err)
    assert out["identical"] is True
    by_node = {r["node"]: r for r in out["logs"]}
    for node, r in by_node.items():
        assert r["first_difference"] is None and r["heights_compared"] >= 5, r
    assert by_node[VICTIM]["boots"] == 2
    assert all(r["boots"] == 1 for n, r in by_node.items() if n != VICTIM)

    # one byte of a received proposal that carries transactions
    log = logs["val-1"]
    data = log.read_bytes()
    reader = LogReader(log)
    target = next((index, rec) for index, rec in reader.records() if rec[0] == "R"
                  and (env := codec.decode_unverified(rec[3])).kind == Kind.PROPOSAL and env.body["block"]["txs"])
    index, rec = target
    frame = rec[3]
    tx = codec.decode_unverified(frame).body["block"]["txs"][0]
    where = data.index(frame) + frame.index(tx) + len(tx) // 2
    bad = tmp_path / "byte.log"
    bad.write_bytes(data[:where] + bytes([data[where] ^ 0x01]) + data[where + 1:])
    # and a copy with that input dropped
    start, end = _frames(data)[index]
    dropped = tmp_path / "dropped.log"
    dropped.write_bytes(data[:start] + data[end:])
    rc, out, err = _replay(bad, dropped, home=live.home)
    assert rc == 1 and out["identical"] is False, (out, err)
    byte_diff, drop_diff = (r["first_difference"] for r in out["logs"])
    assert byte_diff["input"] >= rec[1] and byte_diff["record"] >= index, (byte_diff, rec[1], index)
    assert byte_diff["height"] >= codec.decode_unverified(frame).body["height"], byte_diff
    assert drop_diff["input"] == rec[1] and "missing" in drop_diff["what"], drop_diff

    # a torn last record: reported, everything before it replayed
    torn = tmp_path / "torn.log"
    torn.write_bytes(data[:-3])
    result = replay_log(torn, live.home)
    assert result.identical and result.truncated and result.heights_compared >= 5, result

    # cut inside the header; another format version: one line, exit 2
    for name, content, says in (
            ("cut.log", data[:10], "record 0: no header"),
            ("v1.log", data.replace(b"\xa7version\x02", b"\xa7version\x01", 1), "format version 1")):
        (tmp_path / name).write_bytes(content)
        out_ = cli("replay-node", str(tmp_path / name), "--home", str(live.home), check=False)
        assert out_.returncode == 2, (out_.stdout, out_.stderr)
        lines = out_.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0] and name in lines[0], out_.stderr
