"""`consortium bench`: committed tx/s and commit latency of a real consortium on this machine.

What one run does:
1. measures this machine's single-core Ed25519 verify rate (the ceiling every
   node's signature checks are bounded by) and one validator's whole ledger path
   per CPU-second (bench.ledger: the ceiling of the ledger work each node repeats;
   measured again after the run, the higher rate counts);
2. builds a fresh home in a temp directory: `nodes` validators and, per load
   process, its own four trading parties (carrier, bank, shipper, consignee:
   no two load processes share an actor, hence no nonce conflicts);
3. starts the broker and one `consortium node` process per validator, waits
   for their status records;
4. starts the load processes (bus.load), which pre-sign their transactions,
   then publishes them at --rate (or as fast as the mempools absorb, --max)
   for --duration seconds;
5. an observer on the bus notes when each height is decided (the first moment
   a quorum of voting power has precommitted one block: unverified, it only
   measures); after the load stops it waits for the backlog (--drain);
6. reads the first node's store: which block holds each submitted tx, and its
   result code. Commit latency = decision time of the tx's block - send time
   (paced --rate: the moment the tx was due, so its wait in a batch counts).
   Committed tx/s = txs in blocks decided in the steady window (after --warmup
   seconds of load, until the load stops) / its length; latency_ms covers txs
   sent in that window, latency_ms_all every tx;
7. with --against-raft, then runs a PySyncObj Raft log of the same n on this
   machine for as long (bench.raft) and reports its ops/s and our ratio to it.
Every node checks every tx's signature (check_tx) and every consensus frame's
envelope signature (TX frames are batches whose envelope signature nodes never
check, docs/CONSENSUS.md); nothing is skipped for the benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consortium import codec, crypto, limits
from consortium.bench import ledger, load, raft
from consortium.bus import broker as brokers
from consortium.bus import topics
from consortium.bus.endpoint import Endpoint, endpoint, mqtt_client
from consortium.codec import Kind
from consortium.consensus.validators import ValidatorSet
from consortium.errors import UserError
from consortium.genesis import Genesis
from consortium.home import init_home, load_genesis
from consortium.node import launch
from consortium.node.livestore import LiveStore, decode_results
from consortium.node.runtime import validator_set

CHAIN = "bench-1"


@dataclass(frozen=True, slots=True)
class BenchOptions:
    nodes: int = 4
    broker: str = "mosquitto"
    rate: int = 500  # offered tx/s in total; 0 with max=True
    max: bool = False
    duration_s: float = limits.bench_duration_ms / 1000
    loaders: int = 2
    block_interval_ms: int = limits.bench_block_interval_ms
    drain_s: float = limits.bench_drain_ms / 1000
    warmup_s: float = limits.bench_warmup_ms / 1000  # excluded from committed tx/s and latency_ms (start-up transient)
    keep: Path | None = None  # keep the run's home here (logs, stores)
    profile: bool = False  # nodes write cProfile stats into HOME/run/<id>.prof
    against_raft: bool = False  # then run a PySyncObj Raft log with the same n (bench.raft) and give the ratio
    samples: bool = False  # add "samples" (each tx's send time and latency, each height's decision) for a report


@dataclass
class Decisions:
    """Height -> wall-clock time a quorum of precommits for one block was first seen."""

    validators: ValidatorSet
    at: dict[int, float] = field(default_factory=dict)
    _power: dict[tuple[int, int, bytes], dict[str, int]] = field(default_factory=dict)

    def on_precommit(self, payload: bytes, now: float) -> None:
        try:
            env = codec.decode_unverified(payload)
        except Exception:
            return
        b = env.body
        if env.kind != Kind.PRECOMMIT or b["block_id"] is None or b["height"] in self.at:
            return
        voters = self._power.setdefault((b["height"], b["round"], b["block_id"]), {})
        voters[env.sender] = self.validators.power(env.sender)
        if sum(voters.values()) >= self.validators.quorum:
            self.at[b["height"]] = now
            for key in [k for k in self._power if k[0] <= b["height"]]:
                del self._power[key]


# ---------------------------------------------------------------- the run


def run_bench(opts: BenchOptions, progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    _check(opts)
    progress("measuring the Ed25519 verify rate and the ledger path")
    verify_rate = verify_per_s()
    ledger_rates = [ledger.node_path_per_cpu_s()]
    base = Path(tempfile.mkdtemp(prefix="consortium-bench-"))
    home = base / "home"
    try:
        genesis = make_home(home, opts.nodes, opts.loaders)
        result = asyncio.run(_run(opts, home, genesis, progress))
    finally:
        if opts.keep is not None:
            shutil.copytree(home, opts.keep, dirs_exist_ok=True)
        shutil.rmtree(base, ignore_errors=True)
    result["verify_per_s_one_core"] = verify_rate
    result["ceiling"] = _ceiling(verify_rate, opts.nodes, result)
    progress("measuring the ledger path again")
    ledger_rates.append(ledger.node_path_per_cpu_s())  # the host's speed drifts over a run
    result["ledger_ceiling"] = _ledger_ceiling(ledger_rates, opts.nodes, result)
    if opts.against_raft:
        result["raft"] = raft.run_raft(opts.nodes, opts.duration_s, progress)
        ops = result["raft"]["ops_per_s"]
        result["ratio_vs_raft"] = round(result["committed_tx_per_s"] / ops, 3) if ops else None
    result["machine"] = machine()
    return result


def _check(opts: BenchOptions) -> None:
    if not 1 <= opts.nodes <= limits.bench_nodes_max:
        raise UserError(f"--nodes must be 1..{limits.bench_nodes_max}")
    if not 1 <= opts.loaders <= limits.bench_loaders_max:
        raise UserError(f"--loaders must be 1..{limits.bench_loaders_max}")
    if opts.duration_s <= 0 or (not opts.max and opts.rate <= 0):
        raise UserError("--duration must be > 0 and --rate > 0 (or --max)")
    if opts.against_raft and (problem := raft.available()) is not None:
        raise UserError(problem)


async def _run(opts: BenchOptions, home: Path, genesis: Genesis, progress: Callable[[str], None]) -> dict[str, Any]:
    rd = launch.run_dir(home)
    broker = brokers.start_broker(opts.broker, home=home, run_dir=rd)
    nodes: dict[str, launch.NodeProcess] = {}
    loaders: list[asyncio.subprocess.Process] = []
    try:
        progress(f"starting {opts.nodes} nodes on {broker.kind}")
        nodes.update(await asyncio.to_thread(
            launch.start_nodes, home, [m.id for m in genesis.validators], broker.url, detach=False,
            block_interval_ms=opts.block_interval_ms, profile=opts.profile))
        await asyncio.to_thread(launch.wait_ready, home, broker.url, nodes, limits.bench_ready_wait_ms / 1000)
        ep = endpoint(home, broker.url)
        decisions = Decisions(validator_set(genesis))
        observer = asyncio.create_task(_observe(ep, decisions))
        progress(f"pre-signing transactions in {opts.loaders} load processes")
        loaders, outs = await _start_loaders(opts, home, broker.url)
        cpu0 = _cpu(nodes, broker)
        progress(f"offering {'max' if opts.max else opts.rate} tx/s for {opts.duration_s:.0f} s")
        t_go = time.time()
        for p in loaders:
            assert p.stdin is not None
            p.stdin.write(b"go\n")
            await p.stdin.drain()
        sent, load_cpu = await _finish_loaders(loaders, opts.duration_s + limits.bench_load_slack_ms / 1000)
        t_end = time.time()
        cpu1 = _cpu(nodes, broker)
        cpu1["load"] = cpu0["load"] + load_cpu
        progress("draining the backlog")
        records = [r for out in outs for r in load.read_records(out)]
        blocks = await _drain(home, genesis, nodes, records, opts.drain_s)
        await asyncio.sleep(limits.bench_settle_ms / 1000)  # the last decisions reach the observer
        observer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await observer
        return _report(opts, broker, records, blocks, decisions, t_go, t_end, sent,
                       {k: cpu1[k] - cpu0.get(k, 0.0) for k in cpu1})
    finally:
        for p in loaders:
            if p.returncode is None:
                p.kill()
                await p.wait()
        launch.stop_pids({i: n.pid for i, n in nodes.items()},
                         processes={i: n.process for i, n in nodes.items() if n.process is not None})
        broker.stop()


async def _observe(ep: Endpoint, decisions: Decisions) -> None:
    while True:
        try:
            async with mqtt_client(ep, "bench-observer") as c:
                await c.subscribe(f"{topics.root(ep.chain_id)}/+/{Kind.PRECOMMIT}")
                async for message in c.messages:
                    if isinstance(message.payload, (bytes, bytearray)):
                        decisions.on_precommit(bytes(message.payload), time.time())
        except Exception:  # noqa: S110 - a broker hiccup: reconnect, keep measuring
            await asyncio.sleep(limits.bench_observer_reconnect_ms / 1000)


async def _start_loaders(opts: BenchOptions, home: Path, url: str) -> tuple[list[asyncio.subprocess.Process], list[Path]]:
    per_rate = 0 if opts.max else max(1, opts.rate // opts.loaders)
    total = (limits.bench_presign_tx_per_s_max if opts.max else opts.rate) * opts.duration_s
    count = int(total / opts.loaders * 1.05) + 10
    procs, outs = [], []
    for k in range(1, opts.loaders + 1):
        out = launch.run_dir(home) / f"load-{k}.bin"
        actors = tuple(f"l{k}-{r}" for r in ("carrier", "bank", "shipper", "consignee"))
        spec = load.LoadSpec(home, url, actors, f"l{k}-shipper", f"L{k}", count, per_rate, k, opts.duration_s, out)
        p = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "consortium.bench.load", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, start_new_session=True)
        assert p.stdin is not None
        p.stdin.write(spec.to_json().encode() + b"\n")
        await p.stdin.drain()
        procs.append(p)
        outs.append(out)
    for p in procs:
        assert p.stdout is not None
        line = await asyncio.wait_for(p.stdout.readline(), timeout=limits.bench_presign_timeout_ms / 1000)
        if not line.startswith(b"ready"):
            raise UserError(f"a load process failed to start (exit {await p.wait()})")
    return procs, outs


async def _finish_loaders(procs: list[asyncio.subprocess.Process], timeout_s: float) -> tuple[int, float]:
    """(txs sent, CPU seconds the load processes spent publishing)."""
    sent, cpu = 0, 0.0
    for p in procs:
        assert p.stdout is not None
        while line := await asyncio.wait_for(p.stdout.readline(), timeout=timeout_s):
            if line.startswith(b"done"):
                sent += int(line.split()[1])
            elif line.startswith(b"cpu"):
                cpu += float(line.split()[1])
        await p.wait()
    return sent, cpu


async def _drain(home: Path, genesis: Genesis, nodes: dict[str, launch.NodeProcess],
                 records: list[tuple[bytes, float]], drain_s: float) -> dict[bytes, tuple[int, str]]:
    """tx hash -> (height, code) from the first node's store, once every sent tx is
    decided or drain_s passed."""
    first = sorted(nodes)[0]
    store = LiveStore.open_for(home, first, genesis)
    try:
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline:
            missing = sum(1 for h, _ in records[-limits.bench_drain_txs_max:] if store.find_tx(h) is None)
            if missing == 0:
                break
            await asyncio.sleep(limits.bench_drain_poll_ms / 1000)
        return _decided(store)
    finally:
        store.close()


def _decided(store: LiveStore) -> dict[bytes, tuple[int, str]]:
    out: dict[bytes, tuple[int, str]] = {}
    for h in range(1, store.last_height() + 1):
        raw = store.results(h)
        assert raw is not None
        for tx, code, _ in decode_results(raw):
            out.setdefault(tx, (h, code))
    return out


# ---------------------------------------------------------------- numbers


def _report(opts: BenchOptions, broker: brokers.Broker, records: list[tuple[bytes, float]],
            blocks: dict[bytes, tuple[int, str]], decisions: Decisions, t_go: float, t_end: float, sent: int,
            cpu: dict[str, float]) -> dict[str, Any]:
    """Throughput and latency over the steady window [go + warmup, end of load];
    latency also over every tx (`latency_ms_all`, start-up transient included)."""
    window = max(1e-3, t_end - t_go)
    steady_from = t_go + min(opts.warmup_s, window / 2)
    steady = max(1e-3, t_end - steady_from)
    heights = {h for h, t in decisions.at.items() if steady_from <= t <= t_end}
    committed = sum(1 for _, (h, _c) in blocks.items() if h in heights)
    latencies = [((decisions.at[hc[0]] - t) * 1000, t) for h, t in records
                 if (hc := blocks.get(h)) is not None and hc[0] in decisions.at]
    decided = [blocks[h] for h, _ in records if h in blocks]
    accepted = sum(1 for _, code in decided if code == "OK")
    return {
        "nodes": opts.nodes, "broker": broker.kind, "offered_tx_per_s": "max" if opts.max else opts.rate,
        "duration_s": round(window, 2), "warmup_s": round(steady_from - t_go, 2), "load_processes": opts.loaders,
        "block_interval_ms": opts.block_interval_ms,
        "txs_sent": sent, "txs_decided": len(decided), "txs_accepted": accepted,
        "txs_undecided": sent - len(decided),
        "committed_tx_per_s": round(committed / steady, 1),
        "heights_in_window": len(heights), "heights_per_s": round(len(heights) / steady, 2),
        "latency_ms": _percentiles([ms for ms, t in latencies if t >= steady_from]),
        "latency_ms_all": _percentiles([ms for ms, _ in latencies]),
        "latency_from": "handoff" if opts.max else "due",  # a tx's start: frame handed to the bus / its due time
        "cpu_s": {k: round(v, 1) for k, v in sorted(cpu.items())},
        "cpu_share": {k: round(v / window, 2) for k, v in sorted(cpu.items())},
        **({"samples": {"latency": [[round(t - t_go, 3), round(ms, 1)] for ms, t in latencies],
                        "decided": [[h, round(t - t_go, 3)] for h, t in sorted(decisions.at.items())]}}
           if opts.samples else {}),
    }


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None, "n": 0}
    q = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {"p50": round(q[49], 1), "p95": round(q[94], 1), "p99": round(q[98], 1),
            "max": round(max(values), 1), "n": len(values)}


def _ceiling(verify_rate: float, n: int, result: dict[str, Any]) -> dict[str, Any]:
    """Every node verifies every tx once (in check_tx at admission; the TX frame's
    envelope signature is not checked, and proposals reuse the admission memo):
    with all cores doing nothing else, n nodes sustain at most this."""
    cores = os.cpu_count() or 1
    ceiling = cores * verify_rate / n
    return {"verifies_per_tx_per_node": 1, "cores": cores, "tx_per_s": round(ceiling),
            "fraction_reached": _reached(ceiling, result)}


def _ledger_ceiling(rates: list[int], n: int, result: dict[str, Any]) -> dict[str, Any]:
    """Every node runs every tx through its ledger (admission, proposal check, apply, state
    root; bench.ledger.node_path_per_cpu_s, Ed25519 included): with all cores doing only
    that, no consensus, bus, store or load, n nodes sustain at most this. Four ledgers
    run at once on 2 cores keep the same rate per CPU-second (docs/PERFORMANCE.md), so
    cores x rate / n holds for n > cores too. `rates` were measured before and after the
    run (a VM's speed drifts by tens of percent within minutes); the higher one bounds it."""
    cores = os.cpu_count() or 1
    per_cpu_s = max(rates)
    ceiling = cores * per_cpu_s / n
    return {"tx_per_cpu_s_one_core": per_cpu_s, "samples": rates, "cores": cores, "tx_per_s": round(ceiling),
            "fraction_reached": _reached(ceiling, result)}


def _reached(ceiling: float, result: dict[str, Any]) -> float | None:
    """The committed rate's share of a ceiling (None for a ceiling of 0)."""
    return round(result["committed_tx_per_s"] / ceiling, 3) if ceiling else None


def verify_per_s(seconds: float = limits.bench_verify_ms / 1000) -> int:
    kp = crypto.keypair_from_entropy(b"bench")
    msg = b"x" * 400  # about a workload tx
    sig = crypto.Signer(kp).sign(msg)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(100):
            crypto.verify(kp.public_key, msg, sig)
        n += 100
    return int(n / (time.perf_counter() - t0))


def _cpu(nodes: dict[str, launch.NodeProcess], broker: brokers.Broker) -> dict[str, float]:
    """CPU seconds so far: nodes (sum), broker, this process (the load processes report their own)."""
    out = {"nodes": sum(_proc_cpu(n.pid) for n in nodes.values()),
           "broker": _proc_cpu(broker.pid) if broker.pid else 0.0,
           "load": 0.0, "bench": time.process_time()}
    return out


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gib = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_gib = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    return {"cores": os.cpu_count(), "cpu": model, "mem_gib": round(mem_gib, 1),
            "python": platform.python_version(), "platform": platform.platform()}


# ---------------------------------------------------------------- the bench consortium


def make_home(home: Path, n: int, loaders: int) -> Genesis:
    """n validators (val-1..val-n, alternating Shanghai / Hong Kong) and four
    trading parties per load process."""
    members = home.parent / "members"
    members.mkdir(parents=True)
    for i in range(1, n + 1):
        jur = "CN-SH" if i % 2 else "HK"
        (members / f"val-{i}.toml").write_text(
            f'id = "val-{i}"\nname = "Validator {i}"\nrole = "tech_center"\njurisdiction = "{jur}"\n'
            "validator = true\npower = 10\n")
    parties = []
    for k in range(1, loaders + 1):
        for role, jur in (("carrier", "CN-SH"), ("bank", "HK"), ("shipper", "CN-SH"), ("consignee", "HK")):
            parties.append(f'[[party]]\nid = "l{k}-{role}"\nname = "Load {k} {role}"\nrole = "{role}"\n'
                           f'jurisdiction = "{jur}"\n')
    (members / "parties.toml").write_text("\n".join(parties))
    init_home(home, members, CHAIN, force=True)
    return load_genesis(home)
