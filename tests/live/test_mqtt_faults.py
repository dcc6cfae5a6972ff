"""Faults at the MQTT level on live consortiums (consortium.bus.nemesis): real node
processes, real brokers (mosquitto and the embedded amqtt), the faults done on real
connections (a relay in front of one node's socket, a second connection under a
node's client id, retained publishes under the members' own broker users).

Invariant: whatever the broker layer does (deliver twice, hand over stale retained
records and votes, throttle one node's connection, give a node's session to someone
else, crash the Hong Kong broker of a bridged consortium), every pair of nodes holds
the same block and state root at every common height, the rest of the consortium
keeps deciding, and the node under the fault catches up once it ends."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from consortium import scenario
from consortium.errors import UserError
from consortium.scenario.runner import ScenarioResult
from consortium.scenario.schema import parse
from tests.bus.conftest import mosquitto_missing

pytestmark = pytest.mark.broker

_HEAD = """
name = "mqtt-faults"
seed = 5
backends = ["live"]
"""
_EXPECT = """
[[expect]]
what = "consensus"
agreement = true
liveness = true
min_height = 3
"""


def _step(label: str, **fields: Any) -> str:
    body = "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in fields.items())
    return f"\n[[step]]\nlabel = \"{label}\"\n{body}\n"


def _write(tmp_path: Path, text: str, name: str = "sc.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _run(path: Path, broker: str, **live: Any) -> ScenarioResult:
    result = scenario.run(path, backend="live", broker=broker, **live)
    assert result.ok, ([r for r in result.rows if not r.met], result.checks)
    assert result.checks["checks"]["agreement"] == "ok" and set(result.checks["checks"].values()) == {"ok"}
    return result


def _decided_between(result: ScenarioResult, start_ms: int, end_ms: int) -> int:
    return sum(1 for h in result.record["heights"] if start_ms <= (h.get("decided_ms") or -1) <= end_ms)


def _at(result: ScenarioResult, label: str) -> int:
    return next(int(e["at_ms"]) for e in result.events if e["step"] == label)


@pytest.mark.skipif(mosquitto_missing(), reason="mosquitto is not installed")
def test_every_mqtt_fault_on_mosquitto_safety_holds_and_the_node_catches_up(tmp_path: Path) -> None:
    """On mosquitto (ACL, passwords): hkma gets every delivery twice half of the time, stale
    retained status records and votes are published again, sdb's session is taken over by a
    second connection with its client id, then hkma's connection is throttled to 2 kB/s. The
    other six decide heights all the while, sdb reconnects under a fresh id, hkma catches up
    once the throttle is lifted, and the stores agree at every height."""
    text = (_HEAD
            + _step("dup", fault="mqtt-duplicate", node="hkma", value=0.5) + _step("dup-time", wait_ms=1500)
            + _step("dup-off", fault="mqtt-duplicate", node="hkma", value=0)
            + _step("replay", fault="retained-replay")
            + _step("takeover", fault="session-takeover", node="sdb", value=500)
            + _step("slow", fault="slow-consumer", node="hkma", value=2000) + _step("slow-time", wait_ms=3000)
            + _step("fast", fault="slow-consumer", node="hkma", value=0) + _EXPECT)
    result = _run(_write(tmp_path, text), "mosquitto")
    mqtt = result.checks["mqtt"]
    assert mqtt["relays"]["hkma"]["duplicated"] > 10, mqtt  # the relay put PUBLISH packets twice on hkma's socket
    assert mqtt["replayed"] >= 7 and mqtt["captured"] == mqtt["replayed"], mqtt  # a status of each member, votes
    [take] = mqtt["takeovers"]
    assert take["reconnected"] and take["client_id"].startswith("sdb-") and take["client_id_after"] != take["client_id"]
    # the others decided while hkma was throttled (their pace: about a height a second)
    assert _decided_between(result, _at(result, "slow"), _at(result, "fast")) >= 2


def test_mqtt_faults_on_the_embedded_broker(tmp_path: Path) -> None:
    """amqtt too: duplicates to one node, stale retained records and votes, a session
    takeover (amqtt hands the session to the newcomer but leaves the node's socket open and
    answering pings, delivering nothing): the node notices that not even its own frames come
    back, reconnects, and the consortium keeps deciding and agrees."""
    text = (_HEAD
            + _step("dup", fault="mqtt-duplicate", node="bank-hk", value=1) + _step("dup-time", wait_ms=1000)
            + _step("replay", fault="retained-replay")
            + _step("takeover", fault="session-takeover", node="bank-hk", value=300)
            + _step("dup-off", fault="mqtt-duplicate", node="bank-hk", value=0) + _EXPECT)
    result = _run(_write(tmp_path, text), "embedded")
    mqtt = result.checks["mqtt"]
    assert mqtt["relays"]["bank-hk"]["duplicated"] > 10 and mqtt["replayed"] >= 7, mqtt
    # amqtt keeps the node's old socket open, answering pings: the node notices the silence and reconnects
    assert [(t["reconnected"], t["deaf"]) for t in mqtt["takeovers"]] == [(True, 1)], mqtt


@pytest.mark.skipif(mosquitto_missing(), reason="mosquitto is not installed")
def test_hong_kong_broker_kill_9_and_restart_in_the_bridged_topology(tmp_path: Path) -> None:
    """`consortium run --topology bridged` overrides the scenario's single broker; the Hong Kong
    broker (`broker = "hk"`) killed -9 and restarted on its port: the Hong Kong nodes and the
    bridge reconnect, a transaction after it is decided, every node agrees."""
    text = (_HEAD.replace('name = "mqtt-faults"', 'name = "hk-broker-restart"\nstart = 2026-03-02T18:00:00+08:00')
            + _step("hk-down", fault="broker-restart", broker="hk") + _step("back", wait_ms=1500)
            + _step("event", **{"as": "carrier-sh", "tx": "CARGO_EVENT"})
            + '\nbody = { events = "${example:tnt-load-events.json}" }\n'
            + '\n[[expect]]\nwhat = "tx"\nstep = "event"\ncode = "OK"\n'
            + _step("heights", wait_height=3) + _EXPECT)  # the run ends at once after its last step
    path = _write(tmp_path, text)
    out = subprocess.run([sys.executable, "-m", "consortium", "run", str(path), "--live", "--broker", "mosquitto",
                          "--topology", "bridged", "--json"], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert '"topology": "bridged"' in out.stdout


def test_bad_fault_fields_and_topology_are_one_line_exit_2(tmp_path: Path) -> None:
    """A bad field of an MQTT fault, an MQTT fault in a scenario that may run on the simulator,
    an unknown broker name, and `run --topology` with a bad value or without --live: one line
    naming the problem, exit 2, nothing started."""
    bad = {
        'fault = "mqtt-duplicate"\nnode = "hkma"\nvalue = 2': "probability 0..1",
        'fault = "slow-consumer"\nnode = "hkma"\nvalue = 10': "bytes per second",
        'fault = "slow-consumer"\nvalue = 5000': "field 'node' is missing",
        'fault = "session-takeover"\nnode = "hkma"\nvalue = -1': "holds the node's session",
        'fault = "retained-replay"\nnode = "hkma"': "does not apply to a retained-replay fault",
        'fault = "broker-restart"\nbroker = "mars"': "must name a jurisdiction's broker",
    }
    for fields, words in bad.items():
        with pytest.raises(UserError, match=words):
            parse(_HEAD + f"[[step]]\n{fields}\n", source="t.toml", base=tmp_path)
    with pytest.raises(UserError, match="runs on live processes only"):
        parse(_HEAD.replace('backends = ["live"]', "") + '[[step]]\nfault = "retained-replay"\n',
                       source="t.toml", base=tmp_path)
    path = _write(tmp_path, _HEAD + '[[step]]\nfault = "slow-consumer"\nnode = "hkma"\nvalue = 1\n')
    for args, words in (([str(path), "--live"], "bytes per second"),
                        (["broker-restart", "--live", "--topology", "ring"], "'ring' is not one of single, bridged"),
                        (["broker-restart", "--topology", "bridged"], "applies to live runs only")):
        out = subprocess.run([sys.executable, "-m", "consortium", "run", *args], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 2 and words in out.stderr, (args, out.stdout, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr, out.stderr
