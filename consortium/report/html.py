"""One self-contained HTML file: plotly's own JavaScript (its cartesian partial
bundle, `CARTESIAN`, else the plotly package's full bundle) and the figures,
embedded, so the report opens offline, from a mail attachment or a file share,
with no network.

The script and the figures are embedded gzip-compressed (base64) and unpacked in
the browser with DecompressionStream (every current browser): ~0.66 MB for the
cartesian bundle (1.5 MB), ~1.9 MB for the full one (4.8 MB)."""

from __future__ import annotations

import base64
import gzip
import html
import json
import re
from pathlib import Path
from typing import Any

from consortium.report import figures
from consortium.report.trace import Trace

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em; color: #222; }}
h1 {{ font-size: 1.4em; margin-bottom: 0.2em; }} h2 {{ font-size: 1.1em; margin-top: 1.6em; }}
table.summary {{ border-collapse: collapse; font-size: 0.9em; }}
table.summary td, table.summary th {{ border: 1px solid #ddd; padding: 0.2em 0.6em; text-align: left; }}
.note {{ color: #666; font-size: 0.85em; }} .fig {{ width: 100%; }}
#status {{ color: #666; }}
</style></head>
<body>
<h1>{title}</h1>
<p id="status">rendering...</p>
{summary}
{sections}
<script type="application/octet-stream" id="plotly-gz">{plotly}</script>
<script type="application/octet-stream" id="figures-gz">{data}</script>
<script>
async function unpack(id) {{
  const text = document.getElementById(id).textContent.trim();
  const bin = atob(text);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return await new Response(stream).text();
}}
(async () => {{
  const times = {{start: performance.now()}};
  const code = await unpack("plotly-gz");
  times.unpacked = performance.now();
  const s = document.createElement("script");
  s.textContent = code;
  document.head.appendChild(s);
  times.plotly = performance.now();
  const figs = JSON.parse(await unpack("figures-gz"));
  for (const [id, fig] of Object.entries(figs)) {{
    await Plotly.newPlot(id, fig.data, fig.layout, {{responsive: true, displaylogo: false}});
    times[id] = performance.now();
  }}
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));  // drawn, also what waits a frame
  document.getElementById("status").textContent = "";
  window.__reportReady = performance.now();  // ms since navigation start: every figure drawn
  document.body.dataset.timing = JSON.stringify(times);
  document.body.dataset.rendered = Object.keys(figs).length;
}})().catch(e => {{ document.getElementById("status").textContent = "could not render: " + e; throw e; }});
</script>
</body></html>
"""


#: plotly.js's cartesian partial bundle (scatter, bar, histogram, heatmap...: every trace type the report
#: draws), 1.5 MB against the full bundle's 4.8 MB: a browser starts it in a third of the time. From the
#: npm package plotly.js-cartesian-dist-min of the version the plotly package bundles (MIT licence beside it;
#: docs/REPORTS.md says how to refresh it). Another version: the plotly package's full bundle is used.
CARTESIAN = Path(__file__).with_name("plotly-cartesian.min.js")


def plotly_source() -> tuple[str, str]:
    """(which bundle, its JavaScript): the cartesian partial bundle when it is the plotly
    package's plotly.js version, else the package's full bundle."""
    from plotly.offline import get_plotlyjs

    full = get_plotlyjs()
    if CARTESIAN.is_file():
        part = CARTESIAN.read_text(encoding="utf-8")
        if _version(part) is not None and _version(part) == _version(full):
            return "cartesian", part
    return "full", full


def _version(js: str) -> str | None:
    m = re.search(r"plotly\.js[^\n]*\bv(\d+\.\d+\.\d+)", js[:2000])
    return m.group(1) if m else None


def _plotly_js() -> str:
    return base64.b64encode(gzip.compress(plotly_source()[1].encode("utf-8"), 9, mtime=0)).decode("ascii")


def _summary(trace: Trace | None, bench: dict[str, Any] | None, sweep_rows: int | None) -> str:
    rows: list[tuple[str, str]] = []
    if trace is not None:
        h, r = trace.header, trace.result
        checks = r.get("checks", {}).get("checks", {}) if isinstance(r.get("checks"), dict) else {}
        bad = {k: v for k, v in checks.items() if v != "ok"}
        rows += [("run", f"{h.get('kind', 'scenario')} {h.get('scenario', '')} on the {h.get('backend')} back-end, "
                         f"seed {h.get('seed')}"),
                 ("verdict", ("PASSED" if r.get("ok") else "FAILED") + (f" ({bad})" if bad else "")),
                 ("validators", ", ".join(n["id"] for n in trace.nodes)),
                 ("heights decided", str(len(trace["block"]))),
                 ("transactions", str(len(trace["tx"]))),
                 ("faults", "; ".join(f.get("describe") or f["op"] for f in trace["fault"]) or "none"),
                 ("trace digest", str(r.get("trace_digest", ""))[:16] + "...")]
        if r.get("messages_omitted"):
            rows.append(("messages", f"{r['messages_omitted']} sent after the trace's message list was full "
                                     "are counted only"))
        for e in r.get("expectations", []):
            rows.append(("expect " + e.get("expectation", ""), f"{e.get('observed')} "
                                                               f"({'met' if e.get('met') else 'NOT met'})"))
    if bench is not None:
        lat = bench.get("latency_ms", {})
        rows += [("bench", f"{bench.get('nodes')} validators over {bench.get('broker')}: "
                           f"{bench.get('committed_tx_per_s')} tx/s, {bench.get('heights_per_s')} heights/s, "
                           f"latency p50 {lat.get('p50')} ms, p99 {lat.get('p99')} ms")]
    if sweep_rows is not None:
        rows.append(("sweep", f"{sweep_rows} runs"))
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="summary">{cells}</table>'


def build(out: Path, *, trace: Trace | None = None, bench: dict[str, Any] | None = None,
          sweep: tuple[list[str], list[dict[str, Any]]] | None = None,
          heights: tuple[int, int] | None = None) -> dict[str, Any]:
    """Write the report; returns what it holds (figure ids, bytes)."""
    import plotly.io as pio

    figs: dict[str, Any] = {}
    sections = []
    if trace is not None:
        figs["timeline"] = figures.timeline(trace)
        sections.append(("timeline", "Timeline", "One lane per validator: the bar's colour is the step the "
                         "validator is in (propose, prevote, precommit, after commit), black ticks are commits, "
                         "red crosses timeouts; faults are shaded. Below, on the same time axis, the business "
                         "lane: each transaction where its height was decided (hover for the height, round, "
                         "outcome and the document's state), dotted from its submission."))
        lo, hi = heights or figures.default_heights(trace)
        figs["sequence"] = figures.sequence(trace, (lo, hi))
        sections.append(("sequence", "Message sequence", f"Every message of heights {lo}-{hi}, from sending to "
                         "delivery (`consortium report --heights A:B` chooses others)."))
    lat = figures.latency(trace, bench)
    if lat is not None:
        figs["latency"] = lat
        sections.append(("latency", "Latency and throughput", "Commit latency of every transaction (decision "
                         "time of its height minus its submission) and what was decided each second."))
    if sweep is not None:
        figs["sweep"] = figures.sweep(*sweep)
        sections.append(("sweep", "Sweep", "Pass rate and latency against each swept parameter."))
    data = {k: json.loads(pio.to_json(f, validate=False)) for k, f in figs.items()}
    packed = base64.b64encode(gzip.compress(json.dumps(data, separators=(",", ":")).encode(), 6, mtime=0))
    title = trace.title if trace is not None else ("bench" if bench is not None else "sweep")
    body = "\n".join(f'<h2>{html.escape(h)}</h2><p class="note">{html.escape(note)}</p>'
                     f'<div id="{fid}" class="fig"></div>' for fid, h, note in sections)
    page = _PAGE.format(title=html.escape(f"consortium report: {title}"),
                        summary=_summary(trace, bench, len(sweep[1]) if sweep else None), sections=body,
                        plotly=_plotly_js(), data=packed.decode("ascii"))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return {"report": str(out), "bytes": out.stat().st_size, "figures": list(figs)}
