"""One executor, two places: a real Dask scheduler and two workers, each its own OS
process on 127.0.0.1, run a small exploration and a small sweep (the CLI's
`--cluster`) to exactly the results the local process pool gives for the same
seeds (results depend only on the seed and the options)."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from consortium import scenario  # noqa: E402
from consortium.executor import DaskCluster  # noqa: E402
from consortium.explore.executor import LocalPool, make_executor  # noqa: E402
from consortium.explore.schedule import Options  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SIM = (ROOT / "tests" / "scenarios" / "tiny-sim.toml").read_text(encoding="utf-8")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`dask scheduler` and two `dask worker`s (one process, one thread each) on loopback;
    the workers run in a scratch directory, not the checkout."""
    work = tmp_path_factory.mktemp("dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "dask"]
    procs = [subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard",
                               "--dashboard-address", "127.0.0.1:0"], cwd=work,
                              stdout=subprocess.DEVNULL, stderr=open(work / "scheduler.log", "w"))]
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                time.sleep(0.2)
        for i in range(2):
            procs.append(subprocess.Popen([*dask, "worker", address, "--nworkers", "1", "--nthreads", "1",
                                           "--no-dashboard", "--no-nanny", "--local-directory", str(work / f"w{i}")],
                                          cwd=work, stdout=subprocess.DEVNULL, stderr=open(work / f"w{i}.log", "w")))
        from distributed import Client

        with Client(address, timeout=20, set_as_default=False) as c:
            c.wait_for_workers(2, timeout=90)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def test_explore_and_sweep_on_a_real_dask_cluster_equal_the_local_pool(cluster: str, tmp_path: Path) -> None:
    """Explore's executor and `consortium sweep --cluster` on a real scheduler with two
    worker processes give exactly the outcomes / records of the local pool for the same
    seeds: every field, trace digests included, sorted by seed (and grid point)."""
    opt = Options(4, 5, heights=4)
    outcomes = []
    for ex in (make_executor(None, cluster), LocalPool(2)):  # explore's executors (no shrinking here)
        assert ex.workers == 2
        try:
            outcomes.append(sorted(ex.outcomes(iter(range(30, 36)), opt, lambda: True), key=lambda o: o.seed))
        finally:
            ex.close()
    assert [o.seed for o in outcomes[0]] == list(range(30, 36))
    assert outcomes[0] == outcomes[1]

    path = tmp_path / "tiny.toml"
    path.write_text(SIM, encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "consortium", "sweep", str(path), "--seeds", "1..2",
                        "--set", "network.loss=0,0.2", "--cluster", cluster, "--out", str(tmp_path / "out"), "--json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120,
                       env=dict(os.environ, COLUMNS="200"))
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["where"] == cluster and summary["runs"] == 4 and summary["workers"] == 2
    with open(summary["csv"], newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    mine = scenario.sweep(path, seeds="1..2", settings={"network.loss": [0, 0.2]}, workers=2)
    assert [(row["point"], row["seed"], row["trace_digest"], row["frames"], row["latency_p90_ms"]) for row in rows] == [
        (str(m["point"]), str(m["seed"]), m["trace_digest"], str(m["frames"]), str(m["latency_p90_ms"])) for m in mine]
    assert summary["points"] == json.loads(json.dumps(mine.points))


def test_a_cluster_without_workers_or_with_a_bad_address_is_a_user_error(cluster: str) -> None:
    """A malformed address is refused before any connection; the executor counts the
    cluster's worker threads (what its window of jobs in flight scales with)."""
    from consortium.errors import UserError

    with pytest.raises(UserError, match="tcp://HOST:PORT"):
        DaskCluster("127.0.0.1:8786")
    ex = DaskCluster(cluster)
    try:
        assert ex.workers == 2
        assert sorted(ex.map(pow, [(2, 3), (3, 2), (2, 0)])) == [1, 8, 9]
    finally:
        ex.close()
