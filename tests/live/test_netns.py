"""Two jurisdictions on two (virtual) hosts: the bridged topology across network namespaces.

Three namespaces this test creates (and deletes in a finalizer, also on failure):
Shanghai (its broker and its four validators), Hong Kong (its broker and its
three validators) and the WAN between them (the link relay), joined by two veth
pairs on private addresses:

    [sh] 10.77.1.1 <-veth-> 10.77.1.2 [wan: relay, no forwarding] 10.77.2.2 <-veth-> 10.77.2.1 [hk]

Invariants: a node on one side cannot reach the other side's broker at all (no
route; only the relay in the WAN namespace reaches the Hong Kong broker); the
bridge through the relay carries the consortium; the flagship and the Shanghai |
Hong Kong partition scenarios, whose partition is a cut of the link here, end
with the same ledger facts as on the simulator, every node agreeing, and the
chain deciding again after the link heals (the time to recover is printed).

Skipped, with the reason, when not root or without `ip` or mosquitto."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from consortium import scenario
from consortium.bus import broker as brokers
from consortium.errors import UserError
from consortium.scenario.runner import ScenarioResult

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("flagship", "sh-hk-partition-transfer")
IP = shutil.which("ip") or ("/usr/sbin/ip" if Path("/usr/sbin/ip").exists() else None)
pytestmark = pytest.mark.broker


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "creating network namespaces needs root (make test as root runs it)"
    if IP is None:
        return "the `ip` command (iproute2) is missing"
    try:
        brokers.find_mosquitto()
    except UserError as exc:
        return str(exc)
    return None


def _ip(*args: str) -> None:
    assert IP is not None
    subprocess.run([IP, *args], check=True, capture_output=True, timeout=20)


@pytest.fixture
def plan() -> Iterator[dict[str, dict[str, str]]]:
    if reason := _skip_reason():
        pytest.skip(reason)
    tag = f"cst{os.getpid() % 100_000}"  # interface names stay under 16 characters
    ns = {side: f"{tag}-{side}" for side in ("sh", "hk", "wan")}
    created: list[str] = []
    try:
        for name in ns.values():
            _ip("netns", "add", name)
            created.append(name)
            _ip("-n", name, "link", "set", "lo", "up")
        for side, (mine, wan) in {"sh": ("10.77.1.1", "10.77.1.2"), "hk": ("10.77.2.1", "10.77.2.2")}.items():
            a, b = f"{tag}{side}a", f"{tag}{side}b"
            _ip("link", "add", a, "netns", ns[side], "type", "veth", "peer", "name", b, "netns", ns["wan"])
            _ip("-n", ns[side], "addr", "add", f"{mine}/24", "dev", a)
            _ip("-n", ns["wan"], "addr", "add", f"{wan}/24", "dev", b)
            _ip("-n", ns[side], "link", "set", a, "up")
            _ip("-n", ns["wan"], "link", "set", b, "up")
        subprocess.run([IP, "netns", "exec", ns["wan"], "sysctl", "-qw", "net.ipv4.ip_forward=0"], check=True,
                       timeout=20)  # the WAN namespace routes nothing: only the relay crosses it
        yield {"CN-SH": {"netns": ns["sh"], "addr": "10.77.1.1"}, "HK": {"netns": ns["hk"], "addr": "10.77.2.1"},
               "link": {"netns": ns["wan"], "addr": "10.77.1.2"}}
    finally:
        for name in created:  # anything still running in them (only ours: we made them) goes first
            pids = subprocess.run([IP, "netns", "pids", name], capture_output=True, text=True, timeout=20).stdout
            for pid in pids.split():
                subprocess.run(["kill", "-9", pid], capture_output=True, timeout=20)
            subprocess.run([IP, "netns", "del", name], capture_output=True, timeout=20)  # its veth ends go too


#: Runs inside the Shanghai namespace: both scenarios, live and bridged, plus the reachability checks
#: while the first one runs. Prints one JSON line per scenario.
DRIVER = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    from consortium import scenario
    from consortium.bus import bridge, broker as brokers
    from consortium.scenario import runner

    plan, out_dir = json.loads(sys.argv[1]), Path(sys.argv[2])

    def reach(rd):
        topo = json.loads((rd / "topology.json").read_text())
        port = {j: int(b["url"].rsplit(":", 1)[1]) for j, b in topo["brokers"].items()}
        sh, hk, wan = plan["CN-SH"], plan["HK"], plan["link"]
        return {
            "sh_to_hk_broker": brokers.port_accepting(hk["addr"], port["HK"]),
            "hk_to_sh_broker": brokers.port_accepting(sh["addr"], port["CN-SH"], netns=hk["netns"]),
            "wan_to_hk_broker": brokers.port_accepting(hk["addr"], port["HK"], netns=wan["netns"]),
            "sh_to_own_broker": brokers.port_accepting("127.0.0.1", port["CN-SH"]),
            "hk_to_own_broker": brokers.port_accepting("127.0.0.1", port["HK"], netns=hk["netns"]),
            "node_netns": bridge.recorded_netns(rd),
        }

    for name in sys.argv[3:]:
        home = out_dir / name
        seen = {}
        def progress(i, n, label, home=home, seen=seen):
            if not seen:
                seen.update(reach(home / "run"))
        r = runner.run(scenario.load(name), backend="live", progress=progress,
                       live={"topology": "bridged", "home": home})
        link = json.loads((home / "run" / "link.state.json").read_text()) if (home / "run" / "link.state.json").exists() else {}
        print(json.dumps({"name": name, "result": r.to_dict(), "reach": seen, "link": link}), flush=True)
''')


def _ledger_facts(rows: list[dict[str, object]], steps: list[dict[str, object]]) -> tuple[object, object]:
    codes = [(e["step"], e.get("code", "")) for e in steps if e["action"] == "tx"]
    observed = [(r["expectation"], r["observed"]) for r in rows if not str(r["expectation"]).startswith("consensus")]
    return codes, observed


def _sim_facts(name: str) -> tuple[ScenarioResult, tuple[object, object]]:
    r = scenario.run(name)
    d = r.to_dict()
    return r, _ledger_facts(d["expectations"], d["steps"])


def test_flagship_and_partition_across_two_namespaces_same_facts_as_simulator(
        plan: dict[str, dict[str, str]], tmp_path: Path) -> None:
    assert IP is not None
    env = {**os.environ, "CONSORTIUM_NETNS": json.dumps(plan), "TMPDIR": str(tmp_path)}
    cmd = [IP, "netns", "exec", plan["CN-SH"]["netns"], sys.executable, "-c", DRIVER, json.dumps(plan),
           str(tmp_path), *SCENARIOS]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    runs = {d["name"]: d for d in map(json.loads, out.stdout.splitlines())}
    assert set(runs) == set(SCENARIOS), out.stderr[-3000:]

    reach = runs[SCENARIOS[0]]["reach"]
    assert reach["sh_to_own_broker"] and reach["hk_to_own_broker"]  # each side reaches its own broker
    assert reach["wan_to_hk_broker"]  # the relay's namespace reaches Hong Kong's
    assert not reach["sh_to_hk_broker"] and not reach["hk_to_sh_broker"]  # but no side the other's
    assert reach["node_netns"] == {"CN-SH": plan["CN-SH"]["netns"], "HK": plan["HK"]["netns"]}

    for name in SCENARIOS:
        live = runs[name]["result"]
        sim, sim_facts = _sim_facts(name)
        assert _ledger_facts(live["expectations"], live["steps"]) == sim_facts, name
        assert live["checks"]["ok"], (name, live["checks"])
        consensus = {r["expectation"]: r["met"] for r in live["expectations"]
                     if r["expectation"].startswith("consensus")}
        assert consensus and all(consensus.values()), (name, consensus)
        assert live["ok"] == sim.ok, name
        link = runs[name]["link"]
        assert link["seq"] == 2 and link["mode"] == "up" and link["resets"] >= 1, link  # cut, then healed
        assert link["refused"] + link["resets"] >= 1 and link["bytes"]["a-b"] > 0 and link["bytes"]["b-a"] > 0
        heal = next(e for e in live["steps"] if e.get("fault") == "heal")
        waiting = next(e for e in live["steps"] if e["action"] == "tx" and e["at_ms"] < heal["at_ms"]
                       and e.get("decided_ms", 0) > heal["at_ms"] or e["step"] in ("present", "transfer"))
        if "decided_ms" in waiting or name == "sh-hk-partition-transfer":  # the tx sent into the cut
            recover_ms = waiting["decided_ms"] - heal["at_ms"]
            print(f"{name}: {waiting['step']} decided {recover_ms} ms after the link healed; link {link['bytes']}")
            assert 0 < recover_ms < 20_000, (name, recover_ms)
