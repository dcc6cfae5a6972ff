"""Static figures for papers (PNG or SVG, matplotlib), from the same data as the HTML
report: the timeline (lanes, faults, business lane) and latency/throughput."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from consortium.report import figures
from consortium.report.trace import Trace


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def timeline(trace: Trace, out: Path) -> Path:
    plt = _plt()
    ids = [n["id"] for n in trace.nodes]
    lane = {n: i for i, n in enumerate(ids)}
    fig, (ax, bx) = plt.subplots(2, 1, sharex=True, figsize=(11, 2.2 + 0.45 * len(ids) + 1.8),
                                 gridspec_kw={"height_ratios": [max(2, len(ids)), 3]})
    from matplotlib.collections import LineCollection

    steps: dict[str, list[dict[str, Any]]] = {}
    for x in trace["node_step"]:
        steps.setdefault(x["node"], []).append(x)
    segments: dict[str, list[list[tuple[float, float]]]] = {k: [] for k in figures.STEP_COLOURS}
    for node, xs in steps.items():
        if node not in lane:
            continue
        xs.sort(key=lambda x: x["t_ms"])
        for i, st in enumerate(xs):
            t0 = st["t_ms"] / 1000
            t1 = xs[i + 1]["t_ms"] / 1000 if i + 1 < len(xs) else t0
            segments[st["step"]].append([(t0, lane[node]), (t1, lane[node])])
    for step, segs in segments.items():  # one collection per step: fast for thousands of heights
        ax.add_collection(LineCollection(segs, colors=figures.STEP_COLOURS[step], linewidths=6, capstyle="butt"))
    ax.autoscale_view(scaley=False)
    tos = [t for t in trace["timeout"] if t["node"] in lane]
    ax.plot([t["t_ms"] / 1000 for t in tos], [lane[t["node"]] for t in tos], "x", color="#d62728", ms=6)
    for r in figures.fault_regions(trace):
        fill = figures.FAULT_FILL.get(r.op, "rgba(0,0,0,0.1)")
        rgba = [float(v) for v in fill[fill.index("(") + 1:-1].split(",")]
        colour = (rgba[0] / 255, rgba[1] / 255, rgba[2] / 255, rgba[3])
        if r.node in lane:
            ax.fill_between([r.start_s, r.end_s], lane[r.node] - 0.45, lane[r.node] + 0.45, color=colour)
        else:
            for a in (ax, bx):
                a.axvspan(r.start_s, r.end_s, color=colour)
            ax.text(r.start_s, -0.7, r.label, color="#b22222", fontsize=8, va="bottom")
    ax.set_yticks(range(len(ids)), ids)
    ax.set_ylim(len(ids) - 0.5, -1.0)
    ax.set_title(f"{trace.title}: consensus lanes", fontsize=10)
    handles = [plt.Line2D([], [], color=c, lw=6, label=k) for k, c in figures.STEP_COLOURS.items()]
    ax.legend(handles=handles, loc="upper right", fontsize=7, ncol=4)
    txs = [t for t in trace["tx"] if t.get("kind")]
    lanes = [k for k in figures.BUSINESS_LANES if any(t.get("lane", "other") == k for t in txs)] or ["other"]
    row = {k: i for i, k in enumerate(lanes)}
    for t in txs:
        at = t.get("decided_ms") if t.get("decided_ms") is not None else t.get("submit_ms")
        if at is None:
            continue
        y = row.get(t.get("lane", "other"), 0)
        if t.get("submit_ms") is not None and t.get("decided_ms") is not None:
            bx.plot([t["submit_ms"] / 1000, at / 1000], [y, y], ":", color="#999", lw=1)
        ok = t.get("code") == "OK"
        bx.plot(at / 1000, y, "o" if ok else "X", color="#2ca02c" if ok else "#d62728", ms=6)
        if len(txs) <= 60:
            bx.annotate(t.get("step") or t.get("kind", ""), (at / 1000, y), fontsize=6, rotation=30,
                        xytext=(2, 4), textcoords="offset points")
    bx.set_yticks(range(len(lanes)), [figures.BUSINESS_LANES[k] for k in lanes])
    bx.set_ylim(len(lanes) - 0.5, -0.7)
    bx.set_xlabel("time (s)")
    bx.set_title("business lane", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def latency(trace: Trace | None, bench: dict[str, Any] | None, out: Path) -> Path | None:
    d = figures.latency_data(trace, bench)
    if not d["latency_ms"] and not d["height_decided_s"]:
        return None
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.4))
    a.hist(d["latency_ms"], bins=40, color="#1f77b4")
    a.set_xlabel("commit latency (ms)")
    a.set_ylabel("transactions")
    txs = Counter(int(t) for t in d["tx_decided_s"])
    hs = Counter(int(t) for t in d["height_decided_s"])
    top = max(list(txs) + list(hs), default=0)
    secs = list(range(top + 1))
    b.bar(secs, [txs.get(i, 0) for i in secs], color="#2ca02c", label="txs decided / s", width=1.0)
    b.plot(secs, [hs.get(i, 0) for i in secs], color="#ff7f0e", label="heights decided / s")
    b.set_xlabel("time (s)")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def write(out_dir: Path, fmt: str, trace: Trace | None, bench: dict[str, Any] | None) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if trace is not None:
        written.append(timeline(trace, out_dir / f"timeline.{fmt}"))
    lat = latency(trace, bench, out_dir / f"latency.{fmt}")
    if lat is not None:
        written.append(lat)
    return written
