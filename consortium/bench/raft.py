"""`consortium bench --against-raft`: a Raft log in Python on the same machine, as a baseline.

    python -m consortium.bench.raft      (one JSON spec line on stdin, then "go")

What is measured: n PySyncObj (pip `pysyncobj`, extra `consortium[bench]`) processes
on 127.0.0.1, one replicated log, n the same as the consortium's validators. The
leader appends operations of `op_bytes` random bytes (about a workload tx), in
batches of limits.bench_raft_ops_per_turn with at most limits.bench_raft_inflight_max
uncommitted (PySyncObj batches them into append-entries messages); every process
applies each committed operation (a counter). Committed ops/s = operations the
leader applied in the window / its length. No signatures, no fsync (PySyncObj's
in-memory log): it is the cost of replication in Python on these cores, which is
what our figures are compared with.

Protocol of one process with the bench (lines, like bench.load): reads the spec
from stdin; starts its SyncObj; prints "ready" once a leader is known; waits for
"go"; for `duration_s` the leader submits; prints "result <json>" with the applied
counts at the start and end of the window, whether it was the leader, and its CPU.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from consortium import limits
from consortium.errors import UserError

LIBRARY = "pysyncobj"


def available() -> str | None:
    """None if PySyncObj can be imported, else why not (for a one-line UserError)."""
    try:
        import pysyncobj  # noqa: F401
    except ImportError:
        return "--against-raft needs PySyncObj: pip install 'consortium[bench]' (or pysyncobj)"
    return None


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version(LIBRARY)
    except PackageNotFoundError:
        return "unknown"


def free_ports(n: int) -> list[int]:
    """n loopback ports nobody listens on now (the OS picks them)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def run_raft(n: int, duration_s: float, progress: Callable[[str], None] = lambda _: None,
             op_bytes: int = limits.bench_raft_op_bytes) -> dict[str, Any]:
    """Run the Raft baseline: n processes, `duration_s` of load; its committed ops/s."""
    problem = available()
    if problem is not None:
        raise UserError(problem)
    ports = free_ports(n)
    addrs = [f"127.0.0.1:{p}" for p in ports]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        progress(f"starting a {n}-node PySyncObj Raft log on loopback")
        for i, me in enumerate(addrs):
            spec = {"me": me, "partners": addrs[:i] + addrs[i + 1:], "duration_s": duration_s, "op_bytes": op_bytes}
            p = subprocess.Popen([sys.executable, "-m", "consortium.bench.raft"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, start_new_session=True)
            assert p.stdin is not None
            p.stdin.write(json.dumps(spec).encode() + b"\n")
            p.stdin.flush()
            procs.append(p)
        for p in procs:
            line = _line(p, limits.bench_raft_ready_wait_ms / 1000)
            if line != "ready":
                raise UserError(f"a Raft baseline process did not start ({line or 'no answer'})")
        progress(f"Raft baseline: offering max ops for {duration_s:.0f} s")
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(b"go\n")
            p.stdin.flush()
        results = []
        for p in procs:
            line = _line(p, duration_s + limits.bench_load_slack_ms / 1000)
            if not line.startswith("result "):
                raise UserError(f"a Raft baseline process failed ({line or 'no answer'})")
            results.append(json.loads(line.split(" ", 1)[1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    leaders = [r for r in results if r["leader"]]
    ref = leaders[0] if leaders else max(results, key=lambda r: r["applied_end"] - r["applied_go"])
    window = max(1e-3, ref["t_end"] - ref["t_go"])
    ops = ref["applied_end"] - ref["applied_go"]
    return {"library": f"{LIBRARY} {version()}", "nodes": n, "duration_s": round(window, 2), "ops": ops,
            "ops_per_s": round(ops / window, 1), "op_bytes": op_bytes, "signatures": False, "fsync": False,
            "leaders": sum(1 for r in results if r["leader"]),  # processes that led at some point (1: stable)
            "cpu_s": round(sum(r["cpu_s"] for r in results), 1)}


def _line(p: subprocess.Popen[bytes], timeout_s: float) -> str:
    """The next stdout line of `p` within timeout_s ('' if none)."""
    assert p.stdout is not None
    out: list[bytes] = []
    reader = threading.Thread(target=lambda: out.append(p.stdout.readline() if p.stdout else b""), daemon=True)
    reader.start()
    reader.join(timeout_s)
    return out[0].decode(errors="replace").strip() if out else ""


# ---------------------------------------------------------------- one Raft process


def _serve(spec: dict[str, Any]) -> None:
    from pysyncobj import SyncObj, SyncObjConf, replicated

    class Log(SyncObj):  # type: ignore[misc]
        def __init__(self, me: str, partners: list[str]) -> None:
            super().__init__(me, partners, SyncObjConf(dynamicMembershipChange=False))
            self.applied = 0

        @replicated  # type: ignore[untyped-decorator]
        def add(self, op: bytes) -> None:
            self.applied += 1

    log = Log(spec["me"], spec["partners"])
    while log.getStatus()["leader"] is None or not log.isReady():
        time.sleep(limits.load_tick_ms / 1000)
    print("ready", flush=True)
    sys.stdin.readline()  # "go"
    op = os.urandom(int(spec["op_bytes"]))
    lock = threading.Lock()
    inflight = [0]

    def done(result: Any, error: Any) -> None:
        with lock:
            inflight[0] -= 1

    cpu0 = time.process_time()
    t_go, applied_go = time.time(), log.applied
    deadline = time.monotonic() + float(spec["duration_s"])
    was_leader = False
    while time.monotonic() < deadline:
        leader = log.getStatus()["leader"]
        if leader is None or str(leader) != spec["me"] or inflight[0] >= limits.bench_raft_inflight_max:
            time.sleep(limits.load_tick_ms / 1000)
            continue
        was_leader = True
        with lock:
            inflight[0] += limits.bench_raft_ops_per_turn
        for _ in range(limits.bench_raft_ops_per_turn):
            log.add(op, callback=done)
        time.sleep(0)  # yield the GIL to PySyncObj's thread
    t_end, applied_end = time.time(), log.applied
    print("result " + json.dumps({"leader": was_leader, "t_go": t_go, "t_end": t_end, "applied_go": applied_go,
                                  "applied_end": applied_end, "cpu_s": time.process_time() - cpu0}), flush=True)
    log.destroy()


def main() -> None:
    _serve(json.loads(sys.stdin.readline()))


if __name__ == "__main__":
    main()
