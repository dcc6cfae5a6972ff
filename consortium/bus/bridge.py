"""Two jurisdictions, two brokers: the bridged topology.

    CN-SH nodes -> Shanghai mosquitto --bridge--> link relay --> Hong Kong mosquitto <- HK nodes

`start_bridged` starts the Hong Kong broker (RUN/brokers/HK/), the link relay
(consortium.bus.relay: WAN latency and jitter, cut / heal / cut one way on
command) in front of it, and the Shanghai broker (RUN/, the consortium's
recorded broker, where `tx`, `status` and the dashboard connect), whose
mosquitto bridge (`connection` / `address` / `topic ... both`) logs into the
Hong Kong broker through the relay as the bridge user. Both brokers have the
same users and least-privilege ACL (consortium.bus.broker). Each member's node
connects to the broker of its jurisdiction (`Topology.url_for`).

Placement in network namespaces (the multi-host test): the environment
variable CONSORTIUM_NETNS holds a JSON plan

    {"CN-SH": {"netns": "c-sh", "addr": "10.77.1.1"}, "HK": {"netns": "c-hk", "addr": "10.77.2.1"},
     "link": {"netns": "c-wan", "addr": "10.77.1.2"}}

each broker (and its nodes, consortium.node.launch) then runs in its side's
namespace and also listens on its address there; the relay runs in the link's
namespace, listens on the link's address and forwards to the Hong Kong broker's
address. The process that starts it all runs in the Shanghai namespace.

RUN/topology.json records what runs: {"topology": "bridged", "brokers":
{jurisdiction: {"run_dir", "url"}}, "relay": {...}}; `stop_recorded` stops it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consortium import limits, proc
from consortium.bus import broker as bk
from consortium.bus import relay as relays
from consortium.errors import UserError
from consortium.home import load_genesis

TOPOLOGIES = ("single", "bridged")
TOPOLOGY_FILE = "topology.json"
NETNS_ENV = "CONSORTIUM_NETNS"
#: The side whose broker opens the bridge (and where clients of the consortium connect).
PRIMARY = "CN-SH"
FAR = "HK"
SIDES = (PRIMARY, FAR)


def check_topology(topology: str) -> str:
    if topology not in TOPOLOGIES:
        raise UserError(f"--topology: {topology!r} is not one of {', '.join(TOPOLOGIES)}")
    return topology


@dataclass(frozen=True, slots=True)
class Place:
    netns: str
    addr: str


@dataclass(frozen=True, slots=True)
class NetnsPlan:
    """Where each side and the link run (see the module docstring)."""

    sides: dict[str, Place]
    link: Place

    @staticmethod
    def from_env() -> NetnsPlan | None:
        text = os.environ.get(NETNS_ENV)
        if not text:
            return None
        try:
            data = json.loads(text)
            plan = NetnsPlan({j: Place(str(data[j]["netns"]), str(data[j]["addr"])) for j in SIDES},
                             Place(str(data["link"]["netns"]), str(data["link"]["addr"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{NETNS_ENV}: not a namespace plan ({exc}); see consortium.bus.bridge") from None
        if bk.find_ip() is None:
            raise UserError(f"{NETNS_ENV} is set but the `ip` command is missing (apt-get install iproute2)")
        for place in (*plan.sides.values(), plan.link):
            if not Path(f"/var/run/netns/{place.netns}").exists():
                raise UserError(f"{NETNS_ENV}: no network namespace {place.netns!r} (ip netns add {place.netns})")
        return plan

    def netns(self, jurisdiction: str) -> str:
        return self.sides[jurisdiction].netns


@dataclass
class RelayProcess:
    pid: int
    listen: tuple[str, int]
    target: tuple[str, int]
    run_dir: Path
    netns: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def stop(self) -> None:
        alive = proc.reaper({"relay": self.process} if self.process is not None else {},
                            lambda _i, pid: relays.is_relay(pid))
        proc.stop_all({"relay": self.pid}, alive, timeout_ms=limits.broker_stop_timeout_ms, what="relay")
        for name in (relays.RECORD_FILE, relays.CONTROL_FILE):  # its last state stays: counters to look at
            (self.run_dir / name).unlink(missing_ok=True)


@dataclass
class Topology:
    """The brokers a consortium's nodes connect to: one (single) or one per jurisdiction (bridged)."""

    kind: str
    brokers: dict[str, bk.Broker]
    relay: RelayProcess | None = None
    plan: NetnsPlan | None = None

    @property
    def primary(self) -> bk.Broker:
        return self.brokers[PRIMARY]

    @property
    def url(self) -> str:
        """Where clients of the consortium connect (the Shanghai broker, bridged)."""
        return self.primary.url

    @property
    def pid(self) -> int | None:
        return self.primary.pid

    def describe(self) -> dict[str, Any]:
        """What runs, for `up --json`: each side's broker and the relay."""
        return {"topology": self.kind,
                "brokers": {j: {"url": b.url, "pid": b.pid, "netns": self.netns_for(j)} for j, b in self.brokers.items()},
                "relay": None if self.relay is None else {"pid": self.relay.pid, "listen": list(self.relay.listen),
                                                          "target": list(self.relay.target)}}

    def url_for(self, jurisdiction: str) -> str:
        return self.brokers.get(jurisdiction, self.primary).url

    def netns_for(self, jurisdiction: str) -> str | None:
        return self.plan.netns(jurisdiction) if self.plan is not None else None

    def stop(self) -> None:
        """Stop the primary (its bridge goes first), the relay, the far broker; idempotent."""
        self.primary.stop()
        if self.relay is not None:
            self.relay.stop()
        for j, b in self.brokers.items():
            if j != PRIMARY:
                b.stop()
        if self.primary.run_dir is not None:
            (self.primary.run_dir / TOPOLOGY_FILE).unlink(missing_ok=True)


def single(broker: bk.Broker) -> Topology:
    return Topology("single", {PRIMARY: broker, FAR: broker})


def far_run_dir(run_dir: Path, jurisdiction: str = FAR) -> Path:
    return run_dir / "brokers" / jurisdiction


def start_bridged(home: Path, run_dir: Path, *, detach: bool, port: int | None = None,
                  relay_port: int | None = None, plan: NetnsPlan | None = None,
                  latency_ms: int | None = None, jitter_ms: int | None = None,
                  seed: int | None = None) -> Topology:
    """Start the Hong Kong broker, the link relay and the bridged Shanghai broker (on
    `port`, default a free one); UserError (one line) if one of them cannot start,
    and then nothing is left running."""
    bk.find_mosquitto()
    check_jurisdictions(home)
    run_dir.mkdir(parents=True, exist_ok=True)
    started: list[Any] = []
    try:
        far_place = plan.sides[FAR] if plan else None
        far = bk.start_mosquitto(
            home, far_run_dir(run_dir), detach=detach,
            site=bk.Site(run_dir, far_place.addr if far_place else None, far_place.netns if far_place else None))
        started.append(far)
        relay = start_relay(run_dir, (far_place.addr if far_place else far.host, far.port), port=relay_port,
                            listen_host=plan.link.addr if plan else bk.LOCAL_HOST,
                            netns=plan.link.netns if plan else None, detach=detach,
                            latency_ms=latency_ms, jitter_ms=jitter_ms, seed=seed)
        started.append(relay)
        sh_place = plan.sides[PRIMARY] if plan else None
        primary = bk.start_mosquitto(
            home, run_dir, port=port, detach=detach,
            site=bk.Site(run_dir, sh_place.addr if sh_place else None, sh_place.netns if sh_place else None,
                              bridge=relay.listen))
        started.append(primary)
        topo = Topology("bridged", {PRIMARY: primary, FAR: far}, relay, plan)
        _wait_bridge(run_dir, primary)
        write_record(run_dir, topo)
        return topo
    except BaseException:
        for thing in reversed(started):
            thing.stop()
        raise


def check_jurisdictions(home: Path) -> None:
    """Every member is in one of the two jurisdictions the bridged topology has brokers for."""
    for m in load_genesis(home).members:
        if str(m.jurisdiction) not in SIDES:
            raise UserError(f"member {m.id}: jurisdiction {m.jurisdiction} has no broker in the bridged topology "
                            f"({', '.join(SIDES)})")


def start_relay(run_dir: Path, target: tuple[str, int], *, port: int | None, listen_host: str,
                netns: str | None, detach: bool, latency_ms: int | None = None, jitter_ms: int | None = None,
                seed: int | None = None) -> RelayProcess:
    """Start the link relay in front of `target`; UserError if its port is taken."""
    if port is not None and bk.port_accepting(listen_host, port, netns=netns):
        raise UserError(f"relay port {listen_host}:{port} is already in use (pick another --relay-port, "
                        "or `consortium down` the consortium using it)")
    if port is None:
        with bk.netns_socket(netns) as s:
            s.bind((listen_host, 0))
            port = int(s.getsockname()[1])
    cmd = [sys.executable, "-m", "consortium.bus.relay", "--listen", f"{listen_host}:{port}",
           "--target", f"{target[0]}:{target[1]}", "--run-dir", str(run_dir),
           "--latency-ms", str(limits.relay_rtt_ms_default // 2 if latency_ms is None else latency_ms),
           "--jitter-ms", str(limits.relay_jitter_ms_default if jitter_ms is None else jitter_ms)]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    if not detach:
        cmd += ["--parent-pid", str(os.getpid())]
    if netns:
        cmd = [*bk.netns_exec(netns), *cmd]
    (run_dir / relays.STATE_FILE).unlink(missing_ok=True)
    log = run_dir / relays.LOG_FILE
    with open(log, "ab") as out:
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                   start_new_session=True, close_fds=True)
    relay = RelayProcess(process.pid, (listen_host, port), target, run_dir, netns, process)
    try:
        bk.wait_port(listen_host, port, process=process, log=log, netns=netns)
    except UserError as exc:
        relay.stop()
        raise UserError(f"link relay: {exc}".replace("broker ", "")) from None
    except BaseException:
        relay.stop()
        raise
    proc.write_private(run_dir / relays.RECORD_FILE, json.dumps(
        {"pid": relay.pid, "listen": list(relay.listen), "target": list(target), "netns": netns}) + "\n")
    return relay


def _wait_bridge(run_dir: Path, primary: bk.Broker) -> None:
    """Until the bridge is logged in through the relay: a connection is open and the
    far broker has answered (CONNACK, SUBACK came back through the link)."""
    deadline = time.monotonic() + limits.bridge_ready_timeout_ms / 1000
    while True:
        state = relays.read_state(run_dir) or {}
        if state.get("open", 0) >= 1 and state.get("bytes", {}).get("b-a", 0) > 0:
            return
        if not primary.alive():
            raise UserError(f"the Shanghai broker exited at start{_tail(run_dir / bk.LOG_FILE)}")
        if time.monotonic() > deadline:
            raise UserError(f"the bridge did not connect through the link relay within "
                            f"{limits.bridge_ready_timeout_ms} ms{_tail(run_dir / bk.LOG_FILE)}")
        time.sleep(limits.relay_control_poll_ms / 1000)


def _tail(log: Path) -> str:
    tail = proc.log_tail(log)
    return f": {tail}" if tail else ""


# ---------------------------------------------------------------- records


def write_record(run_dir: Path, topo: Topology) -> None:
    data = {"topology": topo.kind,
            "brokers": {j: {"run_dir": str(b.run_dir), "url": b.url, "netns": topo.netns_for(j)}
                        for j, b in topo.brokers.items()},
            "relay": None if topo.relay is None else {"pid": topo.relay.pid, "listen": list(topo.relay.listen),
                                                      "target": list(topo.relay.target), "netns": topo.relay.netns}}
    proc.write_private(run_dir / TOPOLOGY_FILE, json.dumps(data, indent=2) + "\n")


def load_topology(run_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((run_dir / TOPOLOGY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("topology") == "bridged" else None


def recorded_urls(run_dir: Path) -> dict[str, str]:
    """jurisdiction -> broker url of a recorded bridged topology ({} when single)."""
    data = load_topology(run_dir)
    if data is None:
        return {}
    return {j: str(b["url"]) for j, b in data.get("brokers", {}).items() if isinstance(b, dict) and "url" in b}


def recorded_netns(run_dir: Path) -> dict[str, str]:
    """jurisdiction -> network namespace of a recorded bridged topology ({} when none)."""
    data = load_topology(run_dir)
    if data is None:
        return {}
    return {j: str(b["netns"]) for j, b in data.get("brokers", {}).items() if isinstance(b, dict) and b.get("netns")}


def stop_recorded(run_dir: Path) -> bool:
    """Stop the relay and the far broker of a recorded bridged topology (the primary is
    the consortium's recorded broker: `broker.stop_recorded`). True if one was running."""
    stopped = False
    record = relays.load_record(run_dir)
    if record is not None:
        if relays.is_relay(record["pid"]):
            proc.stop_all({"relay": record["pid"]}, proc.reaper({}, lambda _i, pid: relays.is_relay(pid)),
                          timeout_ms=limits.broker_stop_timeout_ms, what="relay")
            stopped = True
        for name in (relays.RECORD_FILE, relays.STATE_FILE, relays.CONTROL_FILE):
            (run_dir / name).unlink(missing_ok=True)
    for side in SIDES:
        if side != PRIMARY and far_run_dir(run_dir, side).is_dir():
            stopped = bk.stop_recorded(far_run_dir(run_dir, side)) or stopped
    (run_dir / TOPOLOGY_FILE).unlink(missing_ok=True)
    return stopped
