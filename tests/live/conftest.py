"""The live consortium under test: real `consortium` processes, a real broker on 127.0.0.1.

Every test gets a fresh home (`consortium init`) and drives it through the CLI
(`up --detach`, `tx`, `status`, `down`) exactly as a user would. Waits are
bounded; teardown runs `consortium down` and then kills anything still running
from this home (its path is on every node's command line), so a failing test
leaves no process behind. Timing never decides a verdict: a wait that runs out
fails with what it was waiting for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from consortium import codec, crypto
from consortium.bus import broker as brokers
from consortium.bus import topics
from consortium.bus.adapter import FrameChecker
from consortium.bus.endpoint import endpoint, mqtt_client
from consortium.codec import Kind
from consortium.home import load_genesis
from consortium.node import launch
from consortium.node.livestore import LiveStore
from tests.bus.conftest import mosquitto_missing
from tests.conftest import NODES

#: Block interval for tests: fast heights, so catch-up and agreement show quickly.
FAST_BLOCKS_MS = 100
CLI_TIMEOUT_S = 90


def cli(*args: str, timeout: float = CLI_TIMEOUT_S, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([sys.executable, "-m", "consortium", *args], capture_output=True, text=True,
                         timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"consortium {' '.join(args)} -> {out.returncode}\n{out.stdout}\n{out.stderr}")
    return out


def wait_for(what: str, cond: Callable[[], Any], timeout_s: float, every_s: float = 0.3) -> Any:
    """Poll `cond` until it returns something truthy; fail naming `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last: {last!r})")


@dataclass
class Live:
    home: Path
    kind: str

    # ------------------------------------------------------------ CLI

    def up(self, *extra: str, block_interval_ms: int = FAST_BLOCKS_MS) -> dict[str, Any]:
        out = cli("up", "--home", str(self.home), "--broker", self.kind, "--detach", "--json",
                  "--block-interval-ms", str(block_interval_ms), *extra)
        return json.loads(out.stdout)  # type: ignore[no-any-return]

    def restart(self, *nodes: str, block_interval_ms: int = FAST_BLOCKS_MS) -> dict[str, Any]:
        only = [a for n in nodes for a in ("--only", n)]
        return self.up(*only, block_interval_ms=block_interval_ms)

    def status(self) -> dict[str, Any]:
        return json.loads(cli("status", "--home", str(self.home), "--json").stdout)  # type: ignore[no-any-return]

    def tx(self, *args: str) -> tuple[int, dict[str, Any]]:
        out = cli("tx", *args, "--home", str(self.home), "--json", check=False)
        assert out.returncode in (0, 1, 3), out.stderr
        return out.returncode, json.loads(out.stdout)

    def down(self) -> None:
        cli("down", "--home", str(self.home))

    # ------------------------------------------------------------ looking

    @property
    def members(self) -> list[str]:
        return [m.id for m in load_genesis(self.home).members]

    def heights(self) -> dict[str, int]:
        return {n: s["height"] for n, s in self.status()["nodes"].items() if s["state"] == "running"}

    def wait_height(self, height: int, nodes: list[str] | None = None, timeout_s: float = 40) -> dict[str, int]:
        nodes = nodes or self.members

        def reached() -> dict[str, int] | None:
            h = self.heights()
            return h if all(h.get(n, -1) >= height for n in nodes) else None

        return wait_for(f"{nodes} at height >= {height}", reached, timeout_s)  # type: ignore[no-any-return]

    def wait_agreement(self, timeout_s: float = 30) -> dict[str, Any]:
        """A status snapshot where every member runs at one height with one state root."""
        def agreed() -> dict[str, Any] | None:
            st = self.status()
            nodes = st["nodes"]
            ok = (set(nodes) == set(self.members) and all(s["state"] == "running" for s in nodes.values())
                  and len({s["height"] for s in nodes.values()}) == 1
                  and len({s["state_root"] for s in nodes.values()}) == 1)
            return st if ok else None

        return wait_for("every node at the same height and state root", agreed, timeout_s)  # type: ignore[no-any-return]

    def stores(self) -> dict[str, LiveStore]:
        genesis = load_genesis(self.home)
        return {m: LiveStore.open_for(self.home, m, genesis) for m in self.members}

    def assert_same_chain(self) -> int:
        """Every store holds the same block and state root at every height up to
        the lowest last height; returns that height."""
        stores = self.stores()
        try:
            top = min(s.last_height() for s in stores.values())
            for h in range(1, top + 1):
                infos = {n: s.block_info(h) for n, s in stores.items()}
                assert len(set(infos.values())) == 1, f"stores differ at height {h}: {infos}"
            return top
        finally:
            for s in stores.values():
                s.close()

    # ------------------------------------------------------------ faults and cleanup

    def kill(self, node: str) -> None:
        assert launch.kill_node(self.home, node, signal.SIGKILL), f"{node} is not running"

    def broker_record(self) -> brokers.BrokerRecord:
        record = brokers.load_record(self.home / "run")
        assert record is not None
        return record

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            cli("down", "--home", str(self.home), timeout=60, check=False)
        kill_leftovers(self.home)


def kill_leftovers(home: Path) -> None:
    """SIGKILL any process whose command line names this home (nodes, loaders) and
    the broker recorded there: only what this test started."""
    needle = str(home).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (proc / "cmdline").read_bytes():
                os.kill(int(proc.name), signal.SIGKILL)
    handle = brokers.attach_recorded(home / "run")
    if handle is not None:
        handle.kill()


@contextlib.contextmanager
def consortium_home(tmp_path: Path, kind: str) -> Iterator[Live]:
    home = tmp_path / "home"
    cli("init", "--home", str(home), "--members", str(NODES))
    consortium = Live(home, kind)
    try:
        yield consortium
    finally:
        consortium.cleanup()


@pytest.fixture(params=["embedded", "mosquitto"])
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Live]:
    """A fresh default consortium home, once per broker kind."""
    kind = request.param
    if kind == "mosquitto" and (missing := mosquitto_missing()):
        pytest.skip(f"mosquitto broker tests need mosquitto: {missing}")
    with consortium_home(tmp_path, kind) as consortium:
        yield consortium


@pytest.fixture
def live_embedded(tmp_path: Path) -> Iterator[Live]:
    """The same on the embedded broker only, for behaviour that does not depend on the broker."""
    with consortium_home(tmp_path, "embedded") as consortium:
        yield consortium


# ---------------------------------------------------------------- an observer of signed votes


@dataclass
class VoteObserver:
    """Records every checked proposal and vote on the bus, from a thread of its own:
    (sender, kind, height, round) -> digests of the distinct bodies signed there."""

    home: Path
    signed: dict[tuple[str, str, int, int], set[bytes]] = field(default_factory=dict)
    frames: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> VoteObserver:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        wait_for("the vote observer to see frames", lambda: self.frames > 0, 20)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    async def _run(self) -> None:
        ep = endpoint(self.home, None)
        checker = FrameChecker(ep.chain_id, None, ep.keys)
        root = topics.root(ep.chain_id)
        while not self._stop.is_set():
            with contextlib.suppress(Exception):  # broker restarts: reconnect
                async with mqtt_client(ep, "vote-observer") as c:
                    for kind in (Kind.PROPOSAL, Kind.PREVOTE, Kind.PRECOMMIT):
                        await c.subscribe(f"{root}/+/{kind}")
                    async for m in c.messages:
                        self._on(checker, str(m.topic), m.payload)
                        if self._stop.is_set():
                            return
            await asyncio.sleep(0.2)

    def _on(self, checker: FrameChecker, topic: str, payload: Any) -> None:
        try:
            env = checker.check(topic, bytes(payload))
        except Exception:  # duplicates (retransmissions) and anything else unchecked
            return
        if env is None:
            return
        self.frames += 1
        slot = (env.sender, str(env.kind), env.body["height"], env.body["round"])
        self.signed.setdefault(slot, set()).add(crypto.digest(codec.encode(env.body)))

    def double_signs(self) -> dict[tuple[str, str, int, int], int]:
        return {slot: len(bodies) for slot, bodies in self.signed.items() if len(bodies) > 1}


def start_load(live: Live, tmp: Path, rate: int, duration_s: float, *,
               actors: tuple[str, str, str, str] = ("carrier-hk", "bank-hk", "sh-supplier", "hk-distributor"),
               prefix: str = "T") -> subprocess.Popen[bytes]:
    """A load process (bench.load) on `actors` (carrier, bank, shipper, consignee; the
    shipper sends), which the test's own tx calls do not use."""
    from consortium.bench.load import LoadSpec

    spec = LoadSpec(home=live.home, broker=f"mqtt://127.0.0.1:{live.broker_record().port}",
                    actors=actors, sender=actors[2], prefix=prefix, count=int(rate * duration_s) + 10, rate=rate,
                    seed=1, duration_s=duration_s, out=tmp / "load.bin")
    proc = subprocess.Popen([sys.executable, "-m", "consortium.bench.load"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, start_new_session=True)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(spec.to_json().encode() + b"\n")
    proc.stdin.flush()
    assert proc.stdout.readline().startswith(b"ready")
    proc.stdin.write(b"go\n")
    proc.stdin.flush()
    return proc
