"""Static checks run by the suite: layer contracts (import-linter), ruff, mypy.

The pure layers (types, limits, errors, crypto, codec, genesis, ledger,
consensus) must not import asyncio, aiomqtt, socket, threading, os, time or
random, and consensus must not import the ledger (pyproject [tool.importlinter])."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_import_contracts() -> None:
    out = _run(str(BIN / "lint-imports"), "--no-cache")
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff() -> None:
    out = _run(str(BIN / "ruff"), "check", "consortium", "tests")
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy() -> None:
    out = _run(str(BIN / "mypy"), "consortium")
    assert out.returncode == 0, out.stdout + out.stderr
