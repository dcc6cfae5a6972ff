"""The flagship report opened in a real headless Chromium (Debian's `chromium`, which
`make test` installs as it does mosquitto), driven by Playwright with the system browser
(no browser download): it renders with no console error, one lane per validator plus the
business lane, the Shanghai | Hong Kong partition shaded, and the LC presentation at the
height that committed it. A screenshot is saved in pytest's temporary directory."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.report.conftest import lines

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (`make test` installs Debian's "
                                             "chromium when run as root; apt-get install chromium)")
def test_flagship_report_renders_in_chromium(flagship: dict[str, Path], tmp_path: Path) -> None:
    """No console error or page error; the timeline's validator axis lists exactly the seven
    validators and a business axis exists below it; a shaded region is the partition between
    Shanghai and Hong Kong and is drawn; the LC_PRESENT marker sits at the height the trace
    says committed the presentation, at that height's decision time."""
    sync_playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed "
                                          "(pip install -e '.[test]')").sync_playwright
    trace = lines(flagship["trace"])
    validators = [n["id"] for n in trace[0]["nodes"]]
    present = next(x for x in trace if x["type"] == "tx" and x.get("kind") == "LC_PRESENT")
    decided_s = next(b["decided_ms"] for b in trace if b["type"] == "block"
                     and b["height"] == present["height"]) / 1000
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("request", lambda r: problems.append(f"network request: {r.url}")
                    if not r.url.startswith(("file:", "data:", "blob:")) else None)
            page.goto(flagship["report"].resolve().as_uri())
            page.wait_for_selector("body[data-rendered]", timeout=120_000)
            seen: dict[str, Any] = page.evaluate("""() => {
                const g = document.getElementById('timeline');
                const text = sel => Array.from(g.querySelectorAll(sel)).map(e => e.textContent);
                const biz = g.data.find(d => d.name === 'business');
                return {lanes: text('.yaxislayer-above .ytick text'), business: text('.yaxislayer-above .y2tick text'),
                        axes: text('.g-ytitle text, .g-y2title text'),
                        shapes: g.layout.shapes.filter(s => (s.name || '').startsWith('fault:'))
                                 .map(s => [s.name, s.x0, s.x1]),
                        drawn: g.querySelectorAll('.shapelayer path').length,
                        present: biz.customdata.map((c, i) => [c[0], c[1], biz.x[i]]).filter(c => c[0] === 'LC_PRESENT'),
                        title: document.title};
            }""")
            page.screenshot(path=str(tmp_path / "flagship-report.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert seen["lanes"] == validators and len(validators) == 7
    assert seen["business"] and "letter of credit" in seen["business"] and "business" in seen["axes"]
    partition = [s for s in seen["shapes"] if s[0] == "fault: partition Shanghai | Hong Kong"]
    assert len(partition) == 1 and partition[0][1] < decided_s and seen["drawn"] >= 1
    assert seen["present"] == [["LC_PRESENT", present["height"], pytest.approx(decided_s)]]
    assert partition[0][1] <= present["submit_ms"] / 1000 < partition[0][2] < decided_s  # sent during, decided after
    assert (tmp_path / "flagship-report.png").stat().st_size > 10_000


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (`make test` installs Debian's "
                                             "chromium when run as root; apt-get install chromium)")
def test_a_long_runs_lanes_are_one_heatmap_and_the_page_uses_plotlys_cartesian_bundle(tmp_path: Path) -> None:
    """A run with more than limits.report_lanes_binned_steps_min node steps (250 heights, 7
    validators) draws its lanes as one heatmap (one row per validator, an image: what makes
    the 1,000-height report render in under 3 s, docs/REPORTS.md) with a hover mark per
    decided height; the page runs plotly.js's cartesian partial bundle of the plotly
    package's version, renders every figure with no console or page error and sets
    window.__reportReady (ms since navigation start, what render_bench.py reports)."""
    from plotly.offline import get_plotlyjs

    from consortium import limits
    from consortium.report import html
    from tests.report.conftest import cli

    sync_playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed "
                                          "(pip install -e '.[test]')").sync_playwright
    assert html.plotly_source()[0] == "cartesian"
    trace, report = tmp_path / "long.jsonl", tmp_path / "long.html"
    r = cli("sim", "--nodes", "7", "--heights", "250", "--seed", "2", "--trace", str(trace), "--report", str(report))
    assert r.returncode == 0, r.stderr
    t = lines(trace)
    assert sum(1 for x in t if x["type"] == "node_step") > limits.report_lanes_binned_steps_min
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.goto(report.resolve().as_uri())
            page.wait_for_selector("body[data-rendered]", timeout=120_000)
            seen: dict[str, Any] = page.evaluate("""() => {
                const g = document.getElementById('timeline');
                const heat = g._fullData.filter(d => d.type === 'heatmap');
                const ticks = g._fullData.find(d => d.name === 'commit (height decided)');
                return {heat: heat.map(d => d.z.length), images: g.querySelectorAll('.hm image').length,
                        ticks: ticks.x.length, lanes: Array.from(g.querySelectorAll('.yaxislayer-above .ytick text'))
                                                     .map(e => e.textContent),
                        version: Plotly.version, ready: window.__reportReady,
                        rendered: document.body.dataset.rendered};
            }""")
        finally:
            browser.close()
    validators = [n["id"] for n in t[0]["nodes"]]
    assert problems == []
    assert seen["heat"] == [len(validators)] and seen["images"] == 1 and seen["lanes"] == validators
    assert seen["ticks"] == sum(1 for x in t if x["type"] == "block")
    assert f"v{seen['version']}" in get_plotlyjs()[:200] and seen["rendered"] == "3" and seen["ready"] > 0
