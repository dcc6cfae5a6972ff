"""Shared test setup: Hypothesis profiles.

- ci (default): sized so the whole suite fits 15 minutes on 2 cores.
- deep: long exploration (`make test-deep`, or HYPOTHESIS_PROFILE=deep).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    derandomize=False, print_blob=True,
)
settings.register_profile(
    "deep", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("dev", max_examples=20, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROOT = Path(__file__).resolve().parents[1]


def interrupt_once_pool_runs(p: subprocess.Popen[str], workers: int, deadline_s: float, after_s: float = 2) -> None:
    """Ctrl-C (SIGINT) to `p` once its process pool is up (`workers` children) and has run
    for `after_s`: a fixed sleep instead lands in the imports on a loaded machine (the
    traceback of a KeyboardInterrupt before any handler exists)."""
    children = Path(f"/proc/{p.pid}/task/{p.pid}/children")
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and len(children.read_text().split()) < workers:
        time.sleep(0.1)
    time.sleep(after_s)
    p.send_signal(signal.SIGINT)
NODES = ROOT / "nodes"
SHARED_DCSA = ROOT.parent / "shared" / "dcsa"


# ---------------------------------------------------------------- parallel runs (make test: pytest -n 2)
# Tests that start brokers, node processes, namespaces, a Dask cluster or a browser mostly
# wait on real time; the pure ones (simulator, ledger, consensus, explore) want CPU. Under
# pytest-xdist (`--dist loadgroup`) every process-starting test goes to ONE group, run in
# order on one worker, so two live consortia never compete for the machine, while the
# pure tests fill the other core.
_SERIAL_PATHS = ("tests/live/", "tests/bus/", "tests/bench/", "tests/report/test_live_trace.py",
                 "tests/report/test_browser.py", "tests/scenarios/test_live_scenarios.py",
                 "tests/scenarios/test_live_topology.py", "tests/explore/test_cluster.py",
                 "tests/test_docker.py", "tests/test_docker_bridged.py")


def pytest_collection_modifyitems(config, items):  # type: ignore[no-untyped-def]
    import pytest

    for item in items:
        where = Path(str(item.fspath)).relative_to(ROOT).as_posix()
        if item.get_closest_marker("broker") or where.startswith(_SERIAL_PATHS):
            item.add_marker(pytest.mark.xdist_group("processes"))
