"""Shared test setup: Hypothesis profiles.

- ci (default): sized so the whole suite fits 15 minutes on 2 cores.
- deep: long exploration (`make test-deep`, or HYPOTHESIS_PROFILE=deep).
"""

from __future__ import annotations

import os
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
NODES = ROOT / "nodes"
SHARED_DCSA = ROOT.parent / "shared" / "dcsa"
