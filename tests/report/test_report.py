"""`consortium report`: one self-contained HTML file (plotly's own script embedded,
nothing fetched), with bench and sweep charts, and static figures for papers."""

from __future__ import annotations

import base64
import gzip
import json
import re
from pathlib import Path

from tests.report.conftest import cli


def _figures(html: str) -> dict[str, dict]:
    packed = re.search(r'id="figures-gz">([^<]+)<', html)
    assert packed is not None
    return json.loads(gzip.decompress(base64.b64decode(packed.group(1))))


def test_the_report_is_self_contained_and_holds_every_figure(flagship: dict[str, Path], tmp_path: Path) -> None:
    """The flagship report embeds plotly's JavaScript (no <script src>, no http URL to load),
    and holds the timeline, the message sequence and the latency figures; --figures writes
    static PNG files."""
    html = flagship["report"].read_text()
    assert "<script src" not in html and not re.search(r'(src|href)="https?://', html)
    plotly = re.search(r'id="plotly-gz">([^<]+)<', html)
    assert plotly is not None and b"Plotly" in gzip.decompress(base64.b64decode(plotly.group(1)))[:5000]
    figs = _figures(html)
    assert set(figs) == {"timeline", "sequence", "latency"}
    r = cli("report", str(flagship["trace"]), "-o", str(tmp_path / "r.html"), "--heights", "2:3",
            "--figures", str(tmp_path / "fig"), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert sorted(Path(p).name for p in out["static"]) == ["latency.png", "timeline.png"]
    assert all(Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in out["static"])
    assert "heights 2-3" in _figures((tmp_path / "r.html").read_text())["sequence"]["layout"]["title"]["text"]


def test_bench_and_sweep_results_become_charts(tmp_path: Path) -> None:
    """A bench result (JSON with its samples) gives latency and throughput charts; a sweep CSV
    with one column per parameter, seed, passed and latency columns gives pass rate and latency
    against each parameter; a sweep CSV without `passed` is refused naming the file."""
    bench = {"nodes": 4, "broker": "mosquitto", "latency_ms": {"p50": 120.0, "p99": 300.0},
             "committed_tx_per_s": 400.0, "heights_per_s": 2.0,
             "samples": {"latency": [[i / 100, 100 + i % 50] for i in range(500)],
                         "decided": [[h, h / 2] for h in range(1, 11)]}}
    (tmp_path / "bench.json").write_text(json.dumps(bench))
    rows = ["network.loss,nodes,seed,passed,heights_per_s,latency_p50,latency_p99"]
    rows += [f"{loss},{n},{s},{loss < 0.3},{1.0 - loss},{100 + 500 * loss},{200 + 900 * loss}"
             for loss in (0.0, 0.2, 0.4) for n in (4, 7) for s in (1, 2)]
    (tmp_path / "sweep.csv").write_text("\n".join(rows) + "\n")
    r = cli("report", "--bench", str(tmp_path / "bench.json"), "--sweep", str(tmp_path / "sweep.csv"),
            "-o", str(tmp_path / "r.html"), "--json")
    assert r.returncode == 0, r.stderr
    figs = _figures((tmp_path / "r.html").read_text())
    assert set(figs) == {"latency", "sweep"}
    titles = [a["text"] for a in figs["sweep"]["layout"]["annotations"]]
    assert "pass rate vs network.loss" in titles and "latency_p50 vs nodes" in titles
    pass_rate = next(d for d in figs["sweep"]["data"] if d["name"] == "pass rate (network.loss)")
    assert pass_rate["y"] == [1.0, 1.0, 0.0]
    (tmp_path / "bad.csv").write_text("loss,seed\n0.1,1\n")
    bad = cli("report", "--sweep", str(tmp_path / "bad.csv"), "-o", str(tmp_path / "x.html"))
    assert bad.returncode == 2 and f"{tmp_path / 'bad.csv'}:1:" in " ".join(bad.stderr.split())
