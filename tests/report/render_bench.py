"""Benchmark (not a test): how long a report takes to render in headless Chromium.

    .venv/bin/python tests/report/render_bench.py REPORT.html [REPORT.html ...]

Prints per file: its size, the wall time until every figure is drawn (the page's own
timing: unpacking plotly, evaluating it, each figure), the time the page's main thread
was busy (Chromium's TaskDuration: what rendering costs on an idle core; the wall time
also depends on what else the machine runs) and the CPU seconds of all browser processes. docs/REPORTS.md quotes its output."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright


def _cpu_s(root_pid: int) -> float:
    """utime + stime of a process and all its descendants (Linux /proc)."""
    total, ticks = 0.0, os.sysconf("SC_CLK_TCK")
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        pid, ppid = int(d.name), int(fields[1])
        if pid == root_pid or _descends(ppid, root_pid):
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _descends(pid: int, root: int) -> bool:
    for _ in range(20):
        if pid == root:
            return True
        if pid <= 1:
            return False
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat[stat.rindex(")") + 2:].split()[1])
    return False


def main(paths: list[str]) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        for path in paths:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")
            cpu0 = _cpu_s(os.getpid())
            t0 = time.perf_counter()
            page.goto(Path(path).resolve().as_uri())
            page.wait_for_selector("body[data-rendered]", timeout=300_000)
            wall = time.perf_counter() - t0
            cpu = _cpu_s(os.getpid()) - cpu0
            metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
            size = Path(path).stat().st_size
            timing = json.loads(page.evaluate("document.body.dataset.timing"))
            ready = (page.evaluate("window.__reportReady") or max(timing.values())) / 1000  # older reports: timing
            print(f"{path}: {size / 1e6:.2f} MB, every figure drawn {ready:.2f} s after navigation start "
                  f"(window.__reportReady), {wall:.2f} s wall; main thread busy "
                  f"{metrics['TaskDuration']:.2f} s (script {metrics['ScriptDuration']:.2f} s, layout "
                  f"{metrics['LayoutDuration']:.2f} s), browser CPU {cpu:.2f} s "
                  f"(load average {os.getloadavg()[0]:.1f}); page timing ms: "
                  + ", ".join(f"{k} {v:.0f}" for k, v in timing.items()))
            page.close()
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1:])
