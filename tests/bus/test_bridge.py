"""The bridged topology on loopback: a Shanghai and a Hong Kong mosquitto joined by
mosquitto's bridge through the link relay (consortium.bus.bridge, consortium.bus.relay).

Invariants: a frame published on one jurisdiction's broker reaches a member on the
other's, no sooner than the link's one-way latency; `cut` stops the link both ways
until `heal`, after which the bridge carries frames again within seconds; a one-way
cut loses what one side sends while the other side's frames still arrive; the
bridge user, like every user, needs its password (the far broker refuses
anonymous clients); and a relay port that is taken, or an unknown topology, is one
line, exit 2, with nothing left running."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from consortium import limits, proc
from consortium.bus import bridge, relay, topics
from consortium.bus import broker as brokers
from consortium.codec import Kind
from consortium.errors import UserError
from tests.bus.conftest import CHAIN, Home, mosquitto_missing, run

pytestmark = pytest.mark.broker
ROOT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def topo(home: Home, tmp_path: Path) -> Iterator[bridge.Topology]:
    if missing := mosquitto_missing():
        pytest.skip(f"the bridged topology needs mosquitto: {missing}")
    t = bridge.start_bridged(home.path, tmp_path / "run", detach=False, seed=1)
    try:
        yield t
    finally:
        t.stop()


def _member(b: brokers.Broker, home: Home, who: str) -> aiomqtt.Client:
    return aiomqtt.Client(b.host, b.port, username=who, password=home.creds[who]["password"],
                          identifier=f"bridge-test-{who}")


async def _first(c: aiomqtt.Client, seconds: float) -> tuple[str, float] | None:
    try:
        async with asyncio.timeout(seconds):
            async for m in c.messages:
                return str(m.payload), time.monotonic()
    except TimeoutError:
        return None
    return None


async def _exchange(sh: aiomqtt.Client, hk: aiomqtt.Client, label: str, seconds: float) -> dict[str, bool]:
    """sdb (Shanghai) and hkma (Hong Kong) each publish one prevote: who heard the other?"""
    got_hk = asyncio.create_task(_first(hk, seconds))
    got_sh = asyncio.create_task(_first(sh, seconds))
    await sh.publish(topics.broadcast(CHAIN, "sdb", Kind.PREVOTE), f"sdb {label}".encode())
    await hk.publish(topics.broadcast(CHAIN, "hkma", Kind.PREVOTE), f"hkma {label}".encode())
    a, b = await got_hk, await got_sh
    return {"sh->hk": a is not None and f"sdb {label}" in a[0], "hk->sh": b is not None and f"hkma {label}" in b[0]}


def test_link_carries_frames_with_latency_cuts_heals_and_cuts_one_way(topo: bridge.Topology, home: Home) -> None:
    rd = topo.primary.run_dir
    assert rd is not None
    sh_b, hk_b = topo.brokers["CN-SH"], topo.brokers["HK"]

    async def body() -> None:
        async with _member(sh_b, home, "sdb") as sh, _member(hk_b, home, "hkma") as hk:
            await sh.subscribe(topics.broadcast(CHAIN, "hkma", Kind.PREVOTE))
            await hk.subscribe(topics.broadcast(CHAIN, "sdb", Kind.PREVOTE))
            await asyncio.sleep(0.3)  # the bridge's subscriptions are in place since start; ours now too
            sent = time.monotonic()
            arrival = asyncio.create_task(_first(hk, 5))
            await sh.publish(topics.broadcast(CHAIN, "sdb", Kind.PREVOTE), b"sdb timed")
            got = await arrival
            assert got is not None, "the bridge carries a Shanghai frame to Hong Kong"
            one_way_ms = (got[1] - sent) * 1000
            assert one_way_ms >= limits.relay_rtt_ms_default / 2 - limits.relay_jitter_ms_default, one_way_ms
            assert await _exchange(sh, hk, "up", 3) == {"sh->hk": True, "hk->sh": True}

            await asyncio.to_thread(relay.write_command, rd, "cut")
            assert await _exchange(sh, hk, "cut", 1.5) == {"sh->hk": False, "hk->sh": False}

            healed = time.monotonic()
            await asyncio.to_thread(relay.write_command, rd, "up")
            for attempt in range(20):  # the bridge reconnects (restart_timeout) and subscribes again
                if await _exchange(sh, hk, f"heal{attempt}", 0.5) == {"sh->hk": True, "hk->sh": True}:
                    break
            else:
                raise AssertionError("the link did not carry frames again after heal")
            print(f"link back {time.monotonic() - healed:.2f} s after heal")

            state = await asyncio.to_thread(relay.write_command, rd, "cut-oneway", lost="a-b")
            assert state["mode"] == "cut-oneway" and state["lost"] == "a-b"
            assert await _exchange(sh, hk, "oneway", 1.5) == {"sh->hk": False, "hk->sh": True}
            await asyncio.to_thread(relay.write_command, rd, "up")
            for attempt in range(30):
                if await _exchange(sh, hk, f"heal-oneway{attempt}", 0.5) == {"sh->hk": True, "hk->sh": True}:
                    break
            else:
                raise AssertionError("the link did not carry frames both ways after healing a one-way cut")
        final = relay.read_state(rd)
        assert final is not None and final["resets"] >= 2 and final["lost_bytes"]["a-b"] > 0

    run(body(), timeout_s=60)

    async def anonymous() -> None:
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client(hk_b.host, hk_b.port, identifier="anon", timeout=5):
                pass

    run(anonymous())


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "consortium", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def _ours(home: Path) -> list[int]:
    """Processes whose command line names this home (brokers, relay, nodes) that still run."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            args = proc.cmdline(int(entry.name))
            if args and str(home).encode() in b" ".join(args) and proc.proc_state(int(entry.name)) != "Z":
                out.append(int(entry.name))
    return out


def test_bad_topology_and_relay_port_in_use_are_one_line_exit_2_nothing_left(home: Home, tmp_path: Path) -> None:
    if missing := mosquitto_missing():
        pytest.skip(f"the bridged topology needs mosquitto: {missing}")
    out = _cli("up", "--home", str(home.path), "--topology", "mesh", "--detach", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "--topology: 'mesh'" in out.stderr, out.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = _cli("up", "--home", str(home.path), "--topology", "bridged", "--relay-port", str(port), "--detach",
                   cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and f"relay port 127.0.0.1:{port} is already in use" in out.stderr, out.stderr
    assert _ours(home.path / "run") == []  # the Hong Kong broker started first is stopped again
    assert brokers.load_record(home.path / "run") is None
    assert bridge.load_topology(home.path / "run") is None


def test_namespace_plan_errors_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """CONSORTIUM_NETNS that is not a plan, names a namespace that does not exist, or is set
    where the `ip` command is missing: a UserError (one line, exit 2) before anything starts."""
    monkeypatch.setenv(bridge.NETNS_ENV, "{not json")
    with pytest.raises(UserError, match="CONSORTIUM_NETNS: not a namespace plan"):
        bridge.NetnsPlan.from_env()
    plan = {side: {"netns": "consortium-test-no-such-ns", "addr": "10.77.9.1"} for side in ("CN-SH", "HK", "link")}
    monkeypatch.setenv(bridge.NETNS_ENV, json.dumps(plan))
    if brokers.find_ip() is not None:
        with pytest.raises(UserError, match="no network namespace 'consortium-test-no-such-ns'"):
            bridge.NetnsPlan.from_env()
    monkeypatch.setattr(brokers.shutil, "which", lambda name: None)
    monkeypatch.setattr(brokers, "_IP_PATHS", ("/nonexistent/ip",))
    with pytest.raises(UserError, match="the `ip` command is missing"):
        bridge.NetnsPlan.from_env()
    with pytest.raises(UserError, match="needs the `ip` command"):
        brokers.netns_exec("x")
