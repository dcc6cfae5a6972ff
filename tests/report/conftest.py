"""The flagship scenario's trace and report, made once for tests/report (the real CLI:
`consortium run flagship --trace T --report R` on the simulator)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "consortium", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=timeout)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="session")
def flagship(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("flagship")
    trace, report = d / "flagship.jsonl", d / "flagship.html"
    r = cli("run", "flagship", "--trace", str(trace), "--report", str(report))
    assert trace.is_file() and report.is_file(), r.stderr
    return {"trace": trace, "report": report}
