"""The report's data, drawn: one function per figure, from trace/bench/sweep records
only (no simulator, no ledger). Plotly figures for the HTML report; the same data
feeds the matplotlib figures (static.py)."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from consortium import limits
from consortium.report.trace import Trace

STEP_COLOURS = {"propose": "#1f77b4", "prevote": "#ff7f0e", "precommit": "#2ca02c", "commit": "#c7c7c7"}
STEP_NAMES = {"propose": "propose (the proposer)", "prevote": "prevote", "precommit": "precommit",
              "commit": "after commit (block interval)"}
KIND_COLOURS = {"proposal": "#1f77b4", "prevote": "#ff7f0e", "precommit": "#2ca02c"}
BUSINESS_LANES = {"ebl": "eBL", "lc": "letter of credit", "financing": "financing", "data": "data & consent",
                  "payment": "payment", "other": "other"}
PLACES = {"CN-SH": "Shanghai", "HK": "Hong Kong"}
NET_OPS = ("partition", "isolate", "drop", "duplicate", "delay")
FAULT_FILL = {"partition": "rgba(214,39,40,0.13)", "isolate": "rgba(214,39,40,0.13)",
              "drop": "rgba(148,103,189,0.12)", "duplicate": "rgba(148,103,189,0.12)",
              "delay": "rgba(148,103,189,0.12)", "crash": "rgba(0,0,0,0.22)", "pause": "rgba(31,119,180,0.22)",
              "byzantine": "rgba(214,39,40,0.30)"}


@dataclass
class Region:
    """A fault shaded on the timeline: the whole timeline (network faults) or one node's lane."""

    op: str
    label: str
    start_s: float
    end_s: float
    node: str = ""


def s(ms: float | None) -> float | None:
    return None if ms is None else round(ms / 1000, 3)


def end_ms(trace: Trace) -> int:
    times = [x.get("decided_ms") or 0 for x in trace["block"]] + [x["t_ms"] for x in trace["node_step"]]
    times += [x["t_ms"] for x in trace["fault"]] + [x.get("done_ms", 0) for x in trace["step"]]
    return max(times, default=0)


def place(trace: Trace, group: list[str]) -> str:
    where = {n["id"]: n.get("jurisdiction", "") for n in trace.nodes}
    places = {PLACES.get(where.get(n, ""), "?") for n in group}
    return places.pop() if len(places) == 1 and "?" not in places else ",".join(group)


def fault_regions(trace: Trace) -> list[Region]:
    """Intervals from each fault to what ends it (heal, restart, resume, behaviour none, value 0)."""
    t_end = s(end_ms(trace)) or 0.0
    open_: dict[tuple[str, str], Region] = {}
    out: list[Region] = []

    def close(key: tuple[str, str], at: float) -> None:
        r = open_.pop(key, None)
        if r is not None:
            r.end_s = at
            out.append(r)

    for f in sorted(trace["fault"], key=lambda f: f["t_ms"]):
        at, op, node = s(f["t_ms"]) or 0.0, f["op"], f.get("node", "")
        if op == "heal":
            for key in [k for k in open_ if k[0] in NET_OPS]:
                close(key, at)
        elif op == "partition":
            label = "partition " + " | ".join(place(trace, g) for g in f.get("groups", []))
            close((op, ""), at)
            open_[(op, "")] = Region(op, label, at, t_end)
        elif op == "isolate":
            open_[(op, node)] = Region(op, f"{node} isolated", at, t_end)
        elif op in ("drop", "duplicate", "delay"):
            close((op, ""), at)
            if f.get("value"):
                unit = " ms" if op == "delay" else ""
                open_[(op, "")] = Region(op, f"{op} {f['value']:g}{unit}", at, t_end)
        elif op in ("crash", "pause"):
            open_.setdefault((op, node), Region(op, f"{node} {'crashed' if op == 'crash' else 'paused'}",
                                                at, t_end, node))
        elif op in ("restart", "resume"):
            close(("crash" if op == "restart" else "pause", node), at)
        elif op == "byzantine":
            close((op, node), at)
            if f.get("behaviour") not in ("", "none"):
                open_[(op, node)] = Region(op, f"{node} Byzantine: {f['behaviour']}", at, t_end, node)
    for key in list(open_):
        close(key, t_end)
    byz = trace.header.get("byzantine") or {}
    for node, behaviour in sorted(byz.items()):  # `consortium sim --byzantine`: from the start
        out.append(Region("byzantine", f"{node} Byzantine: {behaviour}", 0.0, t_end, node))
    return sorted(out, key=lambda r: (r.start_s, r.label))


def _hover_tx(t: dict[str, Any], heights: dict[int, dict[str, Any]]) -> str:
    parts = [f"<b>{t.get('kind', '?')}</b> by {t.get('actor', '?')}" + (f" (step {t['step']})" if t.get("step") else "")]
    h = t.get("height")
    if h:
        b = heights.get(h, {})
        parts.append(f"committed at height {h} (round {b.get('round', '?')}, proposer {b.get('proposer', '?')}) "
                     f"at {s(t.get('decided_ms'))} s")
    else:
        parts.append("not in any block")
    if t.get("submit_ms") is not None:
        lat = t.get("latency_ms")
        parts.append(f"submitted at {s(t['submit_ms'])} s" + (f", latency {lat} ms" if lat is not None else ""))
    parts.append(f"outcome {t.get('code', '?')}" + (f": {t['detail']}" if t.get("detail") else ""))
    for key, label in (("ebl_status", "eBL"), ("possessor", "possessor"), ("pledgee", "pledgee"),
                       ("lc_status", "LC"), ("presentation_status", "presentation"), ("deadline",
                       "examination deadline"), ("financing_status", "financing"), ("consent_status", "consent")):
        if t.get(key):
            parts.append(f"{label}: {t[key]}")
    text = "<br>".join(parts)
    return text[: limits.report_business_hover_chars_max]


def timeline(trace: Trace) -> Any:
    """Lanes per validator (propose/prevote/precommit/commit, timeouts, faults shaded) above
    a business lane (eBL, LC, financing, consent) on the same time axis."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    ids = [n["id"] for n in trace.nodes]
    lane = {n: i for i, n in enumerate(ids)}
    heights = {b["height"]: b for b in trace["block"]}
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.62, 0.38], vertical_spacing=0.07,
                        subplot_titles=("", "business lane"))
    per_node: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for x in trace["node_step"]:
        per_node[x["node"]].append(x)
    segs: dict[str, tuple[list[Any], list[Any], list[Any]]] = {k: ([], [], []) for k in STEP_COLOURS}
    ticks: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
    detailed = len(trace["node_step"]) <= limits.report_step_hover_max  # else hover on the commit ticks only
    binned = len(trace["node_step"]) >= limits.report_lanes_binned_steps_min  # a long run: lanes as an image
    for node, steps in per_node.items():
        if node not in lane:
            continue
        steps.sort(key=lambda x: x["t_ms"])
        y = lane[node]
        for i, st in enumerate(steps):
            t0 = s(st["t_ms"])
            t1 = s(steps[i + 1]["t_ms"]) if i + 1 < len(steps) else t0
            xs, ys, hs = segs[st["step"]]
            text = f"{node} {st['step']} h{st['height']} r{st['round']} at {t0} s"
            xs += [t0, t1, None]
            ys += [y, y, None]
            if detailed:
                hs += [text, None, None]
            if st["step"] == "commit":
                ticks[0].extend([t0, t0, None])
                ticks[1].extend([y - 0.38, y + 0.38, None])
                ticks[2].extend([text, None, None])
    if binned:
        _binned_lanes(fig, per_node, lane, heights)
        segs = {k: ([], [], []) for k in segs}  # the legend's colours only
        ticks = ([], [], [])
    for step, (xs, ys, hs) in segs.items():
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=STEP_NAMES[step], line={"color": STEP_COLOURS[step], "width": 9},
                                 hovertext=hs or None, hoverinfo="text" if hs else "skip", legendgroup="steps"),
                      row=1, col=1)
    if not binned:
        fig.add_trace(go.Scatter(x=ticks[0], y=ticks[1], mode="lines", name="commit (height decided)",
                                 line={"color": "#222", "width": 1.5}, hovertext=ticks[2], hoverinfo="text"),
                      row=1, col=1)
    tos = trace["timeout"]
    fig.add_trace(go.Scatter(x=[s(t["t_ms"]) for t in tos], y=[lane.get(t["node"], -1) for t in tos],
                             mode="markers", name="timeout", marker={"symbol": "x-thin", "size": 9, "color": "#d62728",
                                                                      "line": {"width": 2, "color": "#d62728"}},
                             hovertext=[f"{t['node']}: {t['kind']} timeout h{t['height']} r{t['round']}" for t in tos],
                             hoverinfo="text"), row=1, col=1)
    # faults: shaded regions, named, with their label on hover (a marker at the start)
    shapes: list[dict[str, Any]] = []
    marks: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
    for r in fault_regions(trace):
        fill = FAULT_FILL.get(r.op, "rgba(0,0,0,0.1)")
        if r.node and r.node in lane:
            shapes.append({"type": "rect", "xref": "x", "yref": "y", "x0": r.start_s, "x1": r.end_s,
                           "y0": lane[r.node] - 0.48, "y1": lane[r.node] + 0.48, "fillcolor": fill,
                           "line": {"width": 0}, "layer": "below", "name": f"fault: {r.label}"})
            marks[1].append(lane[r.node])
        else:
            shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": r.start_s, "x1": r.end_s,
                           "y0": 0, "y1": 1, "fillcolor": fill, "line": {"width": 0}, "layer": "below",
                           "name": f"fault: {r.label}"})
            fig.add_annotation(x=r.start_s, y=1.0, xref="x", yref="paper", text=r.label, showarrow=False,
                               xanchor="left", yanchor="bottom", font={"color": "#b22222", "size": 12})
            marks[1].append(-0.6)
        marks[0].append(r.start_s)
        marks[2].append(f"{r.label}: {r.start_s} s - {r.end_s} s")
    fig.add_trace(go.Scatter(x=marks[0], y=marks[1], mode="markers", name="fault", hovertext=marks[2],
                             hoverinfo="text", marker={"symbol": "triangle-down", "size": 10, "color": "#b22222"}),
                  row=1, col=1)
    _business(fig, trace, heights, shapes)
    fig.update_layout(shapes=shapes, height=max(520, 60 * len(ids) + 330), hovermode="closest",
                      title=f"{trace.title}: consensus and business on one timeline",
                      legend={"orientation": "h", "y": -0.08}, margin={"l": 130, "r": 30, "t": 90, "b": 60},
                      plot_bgcolor="white")
    fig.update_yaxes(tickvals=list(range(len(ids))), ticktext=ids, autorange="reversed", row=1, col=1,
                     range=None, showgrid=False, title_text="validator")
    fig.update_xaxes(title_text="time (s)" + (", virtual" if trace.header.get("clock") == "virtual" else ""),
                     row=2, col=1, showgrid=True, gridcolor="#eee")
    fig.update_xaxes(showgrid=True, gridcolor="#eee", row=1, col=1)
    return fig


def _binned_lanes(fig: Any, per_node: dict[str, list[dict[str, Any]]], lane: dict[str, int],
                  heights: dict[int, dict[str, Any]]) -> None:
    """The lanes of a long run as one heatmap (an image: ~0.2 s to draw where ~90k SVG line
    points take ~3 s): per validator, time bins of at least limits.report_lane_bin_ms_min
    (at most limits.report_lane_bins_max of them) coloured by the step the validator is in
    at the bin's start, black where it committed; one hover mark per decided height."""
    import bisect

    import plotly.graph_objects as go

    times = [st["t_ms"] for steps in per_node.values() for st in steps]
    lo, hi = min(times, default=0), max(times, default=0)
    bin_ms = max(limits.report_lane_bin_ms_min, (hi - lo) / limits.report_lane_bins_max)
    n = int((hi - lo) / bin_ms) + 1
    code = {k: i for i, k in enumerate(STEP_COLOURS)}  # propose 0 ... commit 3; 4: a commit in the bin
    z: list[list[int | None]] = [[None] * n for _ in lane]
    for node, steps in per_node.items():
        if node not in lane:
            continue
        row, at = z[lane[node]], [st["t_ms"] for st in steps]  # sorted by the caller
        for i in range(n):
            j = bisect.bisect_right(at, lo + i * bin_ms) - 1
            row[i] = code[steps[j]["step"]] if j >= 0 else None
        for st in steps:
            if st["step"] == "commit":
                row[min(n - 1, int((st["t_ms"] - lo) / bin_ms))] = len(code)
    colours = [*STEP_COLOURS.values(), "#222"]
    scale = [[edge, c] for i, c in enumerate(colours) for edge in (i / len(colours), (i + 1) / len(colours))]
    fig.add_trace(go.Heatmap(z=z, x0=s(lo + bin_ms / 2), dx=bin_ms / 1000, y=list(range(len(lane))), zmin=-0.5,
                             zmax=len(colours) - 0.5, colorscale=scale, showscale=False, ygap=8, hoverinfo="skip",
                             name=f"lanes ({bin_ms:.0f} ms bins)"), row=1, col=1)
    blocks = sorted(heights.values(), key=lambda b: b["height"])
    decided = [b for b in blocks if b.get("decided_ms") is not None and b.get("proposer") in lane]
    fig.add_trace(go.Scatter(x=[s(b["decided_ms"]) for b in decided], y=[lane[b["proposer"]] for b in decided],
                             mode="markers", name="commit (height decided)",
                             marker={"symbol": "line-ns-open", "size": 14, "color": "#222", "line": {"width": 1.5}},
                             hovertext=[f"height {b['height']} decided at {s(b['decided_ms'])} s, round {b.get('round')}, "
                                        f"proposer {b['proposer']}, {b.get('txs', 0)} txs" for b in decided],
                             hoverinfo="text"), row=1, col=1)


def _business(fig: Any, trace: Trace, heights: dict[int, dict[str, Any]], shapes: list[dict[str, Any]]) -> None:
    import plotly.graph_objects as go

    txs = [t for t in trace["tx"] if t.get("kind") or t.get("lane")]
    lanes = [k for k in BUSINESS_LANES if any(t.get("lane", "other") == k for t in txs)] or ["other"]
    row = {k: i for i, k in enumerate(lanes)}
    xs, ys, hover, custom, text, symbols, colours = [], [], [], [], [], [], []
    wait_x: list[Any] = []
    wait_y: list[Any] = []
    many = len(txs) > limits.report_sequence_messages_max // 10
    for t in txs:
        y = row.get(t.get("lane", "other"), row[lanes[-1]])
        at = t.get("decided_ms") if t.get("decided_ms") is not None else t.get("submit_ms")
        if at is None:
            continue
        xs.append(s(at))
        ys.append(y)
        hover.append(_hover_tx(t, heights))
        custom.append([t.get("kind", ""), t.get("height") or 0, t.get("step", ""), t.get("code", "")])
        text.append("" if many else (t.get("step") or t.get("kind", "")))
        code = t.get("code")
        symbols.append("circle" if code == "OK" else "hourglass" if code == "PENDING" else "x")
        colours.append("#2ca02c" if code == "OK" else "#7f7f7f" if code == "PENDING" else "#d62728")
        if t.get("submit_ms") is not None and t.get("decided_ms") is not None and not many:
            wait_x += [s(t["submit_ms"]), s(t["decided_ms"]), None]
            wait_y += [y, y, None]
            shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": s(t["decided_ms"]),
                           "x1": s(t["decided_ms"]), "y0": 0.0, "y1": 1.0, "layer": "below",
                           "line": {"color": "rgba(90,90,90,0.25)", "width": 1, "dash": "dot"},
                           "name": f"height {t.get('height')}: {t.get('kind')}"})
        if t.get("kind") == "LC_PRESENT" and t.get("height"):
            what = (f"examination deadline {t['deadline']} (5 banking days after {t.get('deemed_date', '?')}, "
                    "UCP 600 14(b))" if t.get("deadline") else f"refused: {t.get('code')}")
            fig.add_annotation(x=s(at), y=y, xref="x2", yref="y2", ax=30, ay=-40, showarrow=True, arrowhead=2,
                               text=f"LC presentation {t.get('presentation', '')} at height {t['height']}<br>{what}",
                               font={"size": 11}, align="left", bgcolor="rgba(255,255,255,0.85)")
    fig.add_trace(go.Scatter(x=wait_x, y=wait_y, mode="lines", name="waiting for a decision",
                             line={"color": "#999", "width": 1.5, "dash": "dot"}, hoverinfo="skip"), row=2, col=1)
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers+text" if not many else "markers", name="business",
                             text=text, textposition="top center", textfont={"size": 9}, hovertext=hover,
                             hoverinfo="text", customdata=custom,
                             marker={"symbol": symbols, "size": 11, "color": colours,
                                     "line": {"width": 1, "color": "#333"}}), row=2, col=1)
    fig.update_yaxes(tickvals=list(range(len(lanes))), ticktext=[BUSINESS_LANES[k] for k in lanes],
                     autorange="reversed", range=None, row=2, col=1, title_text="business",
                     showgrid=True, gridcolor="#f3f3f3")
    if not txs:
        fig.add_annotation(x=0.5, y=0, xref="x2 domain", yref="y2", text="no business transactions in this run",
                           showarrow=False, font={"color": "#777"})


def default_heights(trace: Trace) -> tuple[int, int]:
    """The heights the sequence diagram shows by default: those around the first fault, else the first."""
    n = limits.report_sequence_heights_default
    blocks = sorted(trace["block"], key=lambda b: b["height"])
    faults = sorted(f["t_ms"] for f in trace["fault"] if f["op"] != "drop" or f.get("value"))
    if faults:
        later = [b["height"] for b in blocks if (b.get("decided_ms") or 0) > faults[0]]
        if later:
            return later[0], later[0] + n - 1
    return 1, n


def sequence(trace: Trace, heights: tuple[int, int] | None = None) -> Any:
    """Messages between validators for a range of heights: one arrow per message, from its
    sending to its delivery (dropped ones end in a cross)."""
    import plotly.graph_objects as go

    lo, hi = heights or default_heights(trace)
    ids = [n["id"] for n in trace.nodes]
    lane = {n: i for i, n in enumerate(ids)}
    in_range = [m for m in trace["msg"] if lo <= m.get("height", 0) <= hi and m["src"] in lane]
    msgs = [m for m in in_range if m["dst"] in lane or m["dst"] == "*"]
    shown = msgs[: limits.report_sequence_messages_max]
    fig = go.Figure()
    # a live run's messages are broadcasts as the bus observer saw them (dst "*"): a mark on the sender's lane
    casts: dict[str, tuple[list[Any], list[Any], list[Any]]] = defaultdict(lambda: ([], [], []))
    for m in [m for m in shown if m["dst"] == "*"]:
        xs, ys, hs = casts[m["kind"]]
        xs.append(s(m["t_ms"]))
        ys.append(lane[m["src"]])
        hs.append(f"{m['kind']} h{m['height']} r{m['round']} broadcast by {m['src']}, seen on the bus at "
                  f"{s(m['t_ms'])} s")
    for kind, (xs, ys, hs) in sorted(casts.items()):
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=f"{kind} (broadcast)", hovertext=hs,
                                 hoverinfo="text", marker={"symbol": "line-ns-open", "size": 16,
                                                           "color": KIND_COLOURS.get(kind, "#8c564b"),
                                                           "line": {"width": 2}}))
    shown = [m for m in shown if m["dst"] != "*"]
    by_kind: dict[str, tuple[list[Any], list[Any], list[Any]]] = defaultdict(lambda: ([], [], []))
    drops: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
    for m in shown:
        t0 = s(m["t_ms"])
        text = f"{m['kind']} h{m['height']} r{m['round']}: {m['src']} -> {m['dst']}, sent {t0} s"
        if m.get("recv_ms") is not None:
            xs, ys, hs = by_kind[m["kind"]]
            t1 = s(m["recv_ms"])
            xs += [t0, t1, None]
            ys += [lane[m["src"]], lane[m["dst"]], None]
            hs += [text, f"{text}, delivered {t1} s", None]
        else:
            mid = (lane[m["src"]] + lane[m["dst"]]) / 2
            drops[0].extend([t0])
            drops[1].extend([mid])
            drops[2].append(f"{text}: {'dropped' if m.get('dropped') else 'never delivered'}")
            xs, ys, hs = by_kind["dropped"]
            xs += [t0, t0 + 0.02 if t0 is not None else None, None]
            ys += [lane[m["src"]], mid, None]
            hs += [text, text, None]
    for kind, (xs, ys, hs) in sorted(by_kind.items()):
        colour = KIND_COLOURS.get(kind, "#8c564b") if kind != "dropped" else "#d62728"
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=kind, hovertext=hs, hoverinfo="text",
                                 line={"color": colour, "width": 1, "dash": "dash" if kind == "dropped" else "solid"}))
    fig.add_trace(go.Scatter(x=drops[0], y=drops[1], mode="markers", name="lost or cut", hovertext=drops[2],
                             hoverinfo="text", marker={"symbol": "x", "size": 7, "color": "#d62728"}))
    drawn = len(shown) + sum(len(c[0]) for c in casts.values())
    more = f" (first {drawn} of {len(msgs)})" if drawn < len(msgs) else ""
    if casts and shown:  # a live run with its nodes' input logs
        more += ": broadcasts as the bus observer saw them, each receipt from its receiver's input log"
    elif casts:
        more += ": broadcasts as the bus observer saw them (per-receiver delivery is not observed live)"
    none = "" if trace["msg"] else " - this trace lists no messages"
    fig.update_layout(title=f"messages of heights {lo}-{hi}{more}{none}", height=max(380, 45 * len(ids) + 160),
                      plot_bgcolor="white", margin={"l": 130, "r": 30, "t": 60, "b": 50}, hovermode="closest")
    fig.update_yaxes(tickvals=list(range(len(ids))), ticktext=ids, autorange="reversed", showgrid=True,
                     gridcolor="#eee")
    fig.update_xaxes(title_text="time (s)", showgrid=True, gridcolor="#eee")
    return fig


def latency_data(trace: Trace | None, bench: dict[str, Any] | None) -> dict[str, Any]:
    """Latencies (ms) and decision times (s) from a trace's transactions and heights, or a bench's samples."""
    lat: list[float] = []
    decided_tx: list[float] = []
    decided_h: list[float] = []
    if trace is not None:
        for t in trace["tx"]:
            if t.get("latency_ms") is not None:
                lat.append(float(t["latency_ms"]))
            if t.get("decided_ms") is not None:
                decided_tx.append(t["decided_ms"] / 1000)
        decided_h = [b["decided_ms"] / 1000 for b in trace["block"] if b.get("decided_ms") is not None]
    if bench is not None:
        samples = bench.get("samples") or {}
        for t_send, ms in samples.get("latency", []):
            lat.append(float(ms))
            decided_tx.append(t_send + ms / 1000)
        decided_h = [t for _, t in samples.get("decided", [])] or decided_h
    return {"latency_ms": lat, "tx_decided_s": decided_tx, "height_decided_s": decided_h}


def latency(trace: Trace | None, bench: dict[str, Any] | None) -> Any | None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    d = latency_data(trace, bench)
    if not d["latency_ms"] and not d["height_decided_s"]:
        return None
    lat = d["latency_ms"]
    p = (f"p50 {statistics.median(lat):.0f} ms, max {max(lat):.0f} ms, n {len(lat)}" if lat else "no latencies")
    fig = make_subplots(rows=1, cols=2, subplot_titles=(f"commit latency ({p})", "throughput per second"))
    fig.add_trace(go.Histogram(x=lat, nbinsx=40, name="latency (ms)", marker={"color": "#1f77b4"}), row=1, col=1)
    txs = Counter(int(t) for t in d["tx_decided_s"])
    hs = Counter(int(t) for t in d["height_decided_s"])
    top = max(list(txs) + list(hs), default=0)
    secs = list(range(top + 1))
    fig.add_trace(go.Scatter(x=secs, y=[txs.get(i, 0) for i in secs], name="txs decided / s", mode="lines",
                             line={"color": "#2ca02c", "shape": "hv"}, fill="tozeroy"), row=1, col=2)
    fig.add_trace(go.Scatter(x=secs, y=[hs.get(i, 0) for i in secs], name="heights decided / s", mode="lines",
                             line={"color": "#ff7f0e", "shape": "hv"}), row=1, col=2)
    fig.update_xaxes(title_text="latency (ms)", row=1, col=1)
    fig.update_xaxes(title_text="time (s)", row=1, col=2)
    source = "bench" if bench is not None else "trace"
    fig.update_layout(title=f"latency and throughput ({source})", height=420, bargap=0.05, plot_bgcolor="white")
    return fig


def sweep(params: list[str], rows: list[dict[str, Any]]) -> Any:
    """Pass rate and latency against each swept parameter (mean over seeds)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    params = params or ["seed"]
    lat_col = next((c for c in ("latency_p50", "latency_ms_p50") if rows and c in rows[0]),
                   next((c for c in (rows[0] if rows else {}) if c.startswith("latency")), None))
    fig = make_subplots(rows=2, cols=len(params), shared_xaxes="columns",
                        subplot_titles=[f"pass rate vs {p}" for p in params]
                        + [f"{lat_col or 'latency'} vs {p}" for p in params])
    for i, p in enumerate(params, start=1):
        groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            groups[r.get(p)].append(r)
        keys = sorted(groups, key=lambda v: (isinstance(v, str), v))
        passed = [sum(1 for r in groups[k] if r.get("passed", r.get("ok")) in (True, 1, "True")) / len(groups[k])
                  for k in keys]
        fig.add_trace(go.Scatter(x=keys, y=passed, mode="lines+markers", name=f"pass rate ({p})",
                                 line={"color": "#2ca02c"}), row=1, col=i)
        if lat_col:
            vals = [[r[lat_col] for r in groups[k] if isinstance(r.get(lat_col), (int, float))] for k in keys]
            fig.add_trace(go.Scatter(x=keys, y=[statistics.mean(v) if v else None for v in vals],
                                     mode="lines+markers", name=f"{lat_col} ({p})", line={"color": "#1f77b4"}),
                          row=2, col=i)
        fig.update_xaxes(title_text=p, row=2, col=i)
        fig.update_yaxes(range=[0, 1.05], row=1, col=i)
    fig.update_layout(title=f"sweep: {len(rows)} runs", height=560, showlegend=False, plot_bgcolor="white")
    return fig
