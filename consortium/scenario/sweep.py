"""Parameter sweeps: one scenario on the simulator over a grid of seeds and settings.

    from consortium import scenario
    runs = scenario.sweep("loss-20-percent", seeds="1..10", settings={"network.loss": [0, 0.1, 0.3]})
    import pandas as pd; df = pd.DataFrame(runs)      # one record per run
    runs.points                                       # one summary per grid point

The grid is the cartesian product of the settings' values (in the order given),
each point run once per seed. A run's record depends only on the scenario, the
point and the seed, never on where it ran (local pool or Dask cluster) or when:
records come back sorted by (point, seed).

Settable keys (SETTABLE): network.loss, network.jitter_ms, network.latency_ms.A/B
(every scenario); sim.nodes (alias consortium.nodes), sim.heights, sim.tx_per_s
([sim] scenarios: a synthetic consortium); step.LABEL.value and step.LABEL.at_ms
(a step of the scenario, e.g. a drop fault step).
The seed is the --seeds axis, not a setting."""

from __future__ import annotations

import csv
import dataclasses
import difflib
import itertools
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from consortium import limits
from consortium.errors import UserError
from consortium.executor import Executor, make_executor
from consortium.scenario.schema import Scenario, with_network, with_sim, with_step

#: settable keys -> (kind, what the value is); `A/B` and `LABEL` stand for a pair / a step label
SETTABLE: dict[str, tuple[str, str]] = {
    "network.loss": ("number", "message loss probability 0..1 from the start"),
    "network.jitter_ms": ("int", "latency jitter on every link, ms"),
    "network.latency_ms.A/B": ("int", "one-way latency between jurisdictions A and B, ms (e.g. CN-SH/HK)"),
    "sim.nodes": ("int", "[sim] validators (alias consortium.nodes); equal powers follow"),
    "sim.heights": ("int", "[sim] heights the run goes to"),
    "sim.tx_per_s": ("int", "[sim] transactions offered per virtual second"),
    "step.LABEL.value": ("number", "the value of the fault step LABEL (drop/duplicate probability, delay ms...)"),
    "step.LABEL.at_ms": ("int", "when step LABEL runs, virtual ms"),
}
_ALIASES = {"consortium.nodes": "sim.nodes"}
_PCTS = (50, 90, 99)


# ------------------------------------------------------------------ input


def parse_seeds(spec: str | int | Iterable[int]) -> list[int]:
    """'1..50' (inclusive), '7' or '1,4,9' (or ints) -> a list of distinct seeds >= 0."""
    if isinstance(spec, bool):
        raise UserError(f"seeds must be whole numbers >= 0, got {spec!r}")
    if isinstance(spec, int):
        spec = [spec]
    if isinstance(spec, str):
        seeds: list[int] = []
        for part in spec.split(","):
            lo, sep, hi = part.strip().partition("..")
            try:
                a, b = int(lo), int(hi) if sep else int(lo)
            except ValueError:
                raise UserError(f"--seeds {spec!r}: expected seeds like 1..50, 7 or 1,4,9") from None
            if a < 0 or b < a:
                raise UserError(f"--seeds {spec!r}: a range runs from a low seed >= 0 to a higher one "
                                f"(got {a}..{b})")
            if b - a >= limits.sweep_runs_max:
                raise UserError(f"--seeds {spec!r}: more than {limits.sweep_runs_max} seeds")
            seeds.extend(range(a, b + 1))
    else:
        seeds = list(spec)
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
            raise UserError(f"seeds must be whole numbers >= 0, got {seeds!r}")
    if not seeds:
        raise UserError("--seeds: no seed given")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds {spec!r}: a seed is given twice")
    return seeds


def key_kind(key: str) -> tuple[str, str]:
    """The canonical key and its kind ('int' or 'number'); UserError for a key that is not settable."""
    key = _ALIASES.get(key, key)
    if key in SETTABLE:
        return key, SETTABLE[key][0]
    parts = key.split(".")
    if parts[:2] == ["network", "latency_ms"] and len(parts) == 3 and parts[2].count("/") == 1:
        return key, "int"
    if parts[0] == "step" and len(parts) >= 3 and parts[-1] in ("value", "at_ms") and all(parts[1:-1]):
        return key, SETTABLE[f"step.LABEL.{parts[-1]}"][0]
    valid = sorted(SETTABLE) + sorted(_ALIASES)
    near = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean '{near[0]}'?)" if near else ""
    raise UserError(f"--set {key}: not a settable key{hint}; settable: {', '.join(valid)}")


def _value(key: str, kind: str, v: Any) -> list[Any]:
    """One value (or, for whole numbers, an 'a..b' range) of `key`, checked for its type."""
    what = "a whole number" if kind == "int" else "a number"
    if isinstance(v, str):
        token = v.strip()
        lo, sep, hi = token.partition("..")
        try:
            if kind == "int" and sep:
                a, b = int(lo), int(hi)
                if b < a:
                    raise UserError(f"--set {key}={token}: a range runs from low to high")
                return list(range(a, b + 1))
            x: Any = int(token) if kind == "int" else float(token)
        except ValueError:
            raise UserError(f"--set {key}: {token!r} is not {what}"
                            f"{' (or a range like 4..7)' if kind == 'int' else ''}") from None
        v = int(x) if kind == "number" and float(x).is_integer() and "." not in token else x
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind == "int" and not isinstance(v, int)):
        raise UserError(f"--set {key}: {v!r} is not {what}")
    if not math.isfinite(v):
        raise UserError(f"--set {key}: {v!r} is not a finite number")
    return [v]


def parse_set(spec: str) -> tuple[str, list[Any]]:
    """'network.loss=0,0.1,0.2' -> ('network.loss', [0, 0.1, 0.2]); 'sim.nodes=4..7' is a range."""
    key, sep, values = spec.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise UserError(f"--set {spec!r}: expected KEY=VALUE[,VALUE...], e.g. network.loss=0,0.1,0.2")
    return settings_of({key.strip(): values.split(",")})[0]


def settings_of(settings: Mapping[str, Any] | Sequence[str] | None) -> list[tuple[str, list[Any]]]:
    """Settings as given (a mapping of key -> values or 'v1,v2', or a list of 'KEY=V1,V2' strings)
    -> [(canonical key, [typed values])] in the order given."""
    if settings is None:
        return []
    if not isinstance(settings, Mapping):
        return [parse_set(s) for s in settings]
    out: list[tuple[str, list[Any]]] = []
    for raw, values in settings.items():
        key, kind = key_kind(str(raw))
        if key in (k for k, _ in out):
            raise UserError(f"--set {key}: given twice")
        items = values.split(",") if isinstance(values, str) else values
        if not isinstance(items, Iterable) or isinstance(items, (bytes, Mapping)):
            items = [items]
        typed = [x for v in items for x in _value(key, kind, v)]
        if not typed:
            raise UserError(f"--set {key}: no value")
        if len(set(typed)) != len(typed):
            raise UserError(f"--set {key}: a value is given twice ({typed})")
        out.append((key, typed))
    return out


def apply(sc: Scenario, point: Mapping[str, Any]) -> Scenario:
    """`sc` with one grid point's settings applied, each checked as in a scenario file."""
    where = ", ".join(f"{k}={v}" for k, v in point.items())
    try:
        for key, v in point.items():
            parts = key.split(".")
            if parts[0] == "network":
                sc = with_network(sc, {parts[1]: v} if len(parts) == 2 else {"latency_ms": {parts[2]: v}})
            elif parts[0] == "sim":
                sc = with_sim(sc, {parts[1]: v})
            else:
                sc = with_step(sc, ".".join(parts[1:-1]), {parts[-1]: v})
    except UserError as exc:
        raise UserError(f"--set {where}: {exc}") from None
    return sc


@dataclasses.dataclass(frozen=True)
class Grid:
    scenario: Scenario
    keys: tuple[str, ...]
    points: tuple[dict[str, Any], ...]  # settings of each point, in grid order
    scenarios: tuple[Scenario, ...]  # the scenario of each point
    seeds: tuple[int, ...]
    notes: tuple[str, ...]  # warnings about the grid (a setting a step overrides)

    @property
    def runs(self) -> int:
        return len(self.points) * len(self.seeds)

    def jobs(self) -> Iterable[tuple[Scenario, int, int]]:
        for i, sc in enumerate(self.scenarios):
            for seed in self.seeds:
                yield (sc, i, seed)


def grid(sc: Scenario, seeds: str | int | Iterable[int], settings: Mapping[str, Any] | Sequence[str] | None
         ) -> Grid:
    """Check everything before anything runs: seeds, keys, values, each point's scenario."""
    if "sim" not in sc.backends:
        raise UserError(f"{sc.source}: a sweep runs on the simulator, and this scenario does not "
                        f"(backends = {list(sc.backends)})")
    seed_list = parse_seeds(seeds)
    sets = settings_of(settings)
    points = [dict(zip([k for k, _ in sets], combo, strict=True))
              for combo in itertools.product(*(v for _, v in sets))]
    if len(points) * len(seed_list) > limits.sweep_runs_max:
        raise UserError(f"the grid has {len(points) * len(seed_list)} runs, more than {limits.sweep_runs_max}")
    # workers (local or on a cluster) read the scenario's documents relative to its file
    base = dataclasses.replace(sc, source=str(Path(sc.source).resolve()))
    scenarios = tuple(apply(base, p) for p in points)
    notes = []
    if any(k == "network.loss" for k, _ in sets):
        for st in sc.steps:
            if st.action == "fault" and st.fields["fault"] == "drop":
                notes.append(f"step {st.label!r} sets the loss to {st.fields.get('value')} when it runs, "
                             f"overriding network.loss from then on (sweep step.{st.label}.value instead)")
    return Grid(sc, tuple(k for k, _ in sets), tuple(points), scenarios, tuple(seed_list), tuple(notes))


# ------------------------------------------------------------------ one run (what a worker does)


def _pct(xs: Sequence[int], p: int) -> int | None:
    """Nearest-rank percentile of sorted `xs` (None if empty)."""
    if not xs:
        return None
    return xs[max(0, math.ceil(p / 100 * len(xs)) - 1)]


def run_point(sc: Scenario, point: int, seed: int) -> dict[str, Any]:
    """Run one grid point with one seed on the simulator: its measurements as a flat
    record (plus `latencies_ms`, every decided tx's commit latency, for pooled percentiles)."""
    from consortium.scenario.runner import run

    rec: dict[str, Any] = {"point": point, "seed": seed}
    try:
        r = run(sc, backend="sim", seed=seed)
    except Exception as exc:  # noqa: BLE001 - a run that cannot finish is a failed run, not a failed sweep
        return {**rec, "ok": False, "failed": f"error: {exc}"[:300], "heights": 0, "virtual_ms": 0,
                "heights_per_s": 0.0, "latency_p50_ms": None, "latency_p90_ms": None, "latency_p99_ms": None,
                "latency_max_ms": None, "txs": 0, "rounds_per_height": None, "max_round": None, "frames": 0,
                "messages_per_height": None, "trace_digest": "", "latencies_ms": []}
    s = r.stats
    failed = [row.expectation for row in r.rows if not row.met]
    failed += [c for c, v in r.checks.get("checks", {}).items() if v != "ok"]
    lat, heights, rounds = s["latencies_ms"], s["heights"], s["rounds"]
    return {**rec, "ok": r.ok, "failed": "; ".join(failed), "heights": heights, "virtual_ms": s["virtual_ms"],
            "heights_per_s": round(heights * 1000 / s["virtual_ms"], 4) if s["virtual_ms"] else 0.0,
            **{f"latency_p{p}_ms": _pct(lat, p) for p in _PCTS}, "latency_max_ms": lat[-1] if lat else None,
            "txs": len(lat), "rounds_per_height": round(sum(x + 1 for x in rounds) / len(rounds), 4) if rounds else None,
            "max_round": max(rounds, default=None), "frames": s["frames"],
            "messages_per_height": round(s["frames"] / heights, 2) if heights else None,
            "trace_digest": r.trace_digest, "latencies_ms": lat}


# ------------------------------------------------------------------ the sweep


class SweepResult(list[dict[str, Any]]):
    """The records (one per run, sorted by point and seed; `pandas.DataFrame(result)`),
    with the grid's summary per point (`points`), and whether Ctrl-C cut it short."""

    def __init__(self, g: Grid, records: list[dict[str, Any]], latencies: dict[tuple[int, int], list[int]],
                 *, interrupted: bool, seconds: float, workers: int, where: str) -> None:
        super().__init__(records)
        self.grid = g
        self.interrupted = interrupted
        self.seconds = seconds
        self.workers = workers
        self.where = where
        self.notes = list(g.notes)
        self.points = summarize(g, records, latencies)

    def summary(self) -> dict[str, Any]:
        return {"scenario": self.grid.scenario.name, "runs": len(self), "planned": self.grid.runs,
                "passed": sum(r["ok"] for r in self), "interrupted": self.interrupted,
                "seconds": round(self.seconds, 2), "per_second": round(len(self) / self.seconds, 2) if self.seconds else 0.0,
                "workers": self.workers, "where": self.where, "keys": list(self.grid.keys),
                "seeds": f"{self.grid.seeds[0]}..{self.grid.seeds[-1]}" if self.grid.seeds else "",
                "notes": self.notes, "points": self.points}

    def write(self, out: Path) -> tuple[Path, Path]:
        """One row per run as CSV and Parquet in `out` (NAME-runs.csv, NAME-runs.parquet)."""
        return write_records(list(self), self.grid, out)


def summarize(g: Grid, records: list[dict[str, Any]], latencies: dict[tuple[int, int], list[int]]
              ) -> list[dict[str, Any]]:
    """Per grid point: runs, passed, pass rate, mean heights per virtual second, commit latency
    percentiles pooled over every decided tx of its runs, mean rounds and messages per height."""
    out = []
    for i, settings in enumerate(g.points):
        rs = [r for r in records if r["point"] == i]
        if not rs:
            continue
        lat = sorted(x for r in rs for x in latencies.get((i, r["seed"]), []))

        def mean(field: str, rs: list[dict[str, Any]] = rs) -> float | None:
            xs = [r[field] for r in rs if r[field] is not None]
            return round(sum(xs) / len(xs), 3) if xs else None

        out.append({"point": i, **settings, "runs": len(rs), "passed": sum(r["ok"] for r in rs),
                    "pass_rate": round(sum(r["ok"] for r in rs) / len(rs), 4),
                    "heights_per_s": mean("heights_per_s"),
                    **{f"latency_p{p}_ms": _pct(lat, p) for p in _PCTS},
                    "rounds_per_height": mean("rounds_per_height"),
                    "messages_per_height": mean("messages_per_height")})
    return out


def sweep(scenario: Scenario | str | Path, *, seeds: str | int | Iterable[int] = "1..10",
          settings: Mapping[str, Any] | Sequence[str] | None = None, executor: Executor | None = None,
          workers: int | None = None, cluster: str | None = None,
          on_record: Callable[[dict[str, Any]], None] | None = None) -> SweepResult:
    """Run `scenario` (a Scenario, a file or a shipped scenario's name) on the simulator for
    every seed at every point of the settings' grid, e.g. settings={"network.loss": [0, 0.1]}.
    Runs go to `executor`, else to the local pool (`workers`, default all cores) or the Dask
    scheduler at `cluster` (tcp://HOST:PORT), which this call then closes. Ctrl-C stops it:
    the result holds the runs done, with interrupted=True."""
    from consortium import scenario as api

    sc = scenario if isinstance(scenario, Scenario) else api.load(scenario)
    g = grid(sc, seeds, settings)
    own = executor is None
    ex = make_executor(workers, cluster) if executor is None else executor
    records: list[dict[str, Any]] = []
    latencies: dict[tuple[int, int], list[int]] = {}
    interrupted = False
    started = time.monotonic()
    try:
        for rec in ex.map(run_point, g.jobs()):
            lat = rec.pop("latencies_ms")
            latencies[(rec["point"], rec["seed"])] = lat
            row = {"scenario": sc.name, "point": rec["point"], **g.points[rec["point"]],
                   **{k: v for k, v in rec.items() if k != "point"}}
            records.append(row)
            if on_record is not None:
                on_record(row)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        seconds = time.monotonic() - started
        if own or interrupted:
            ex.close()
    records.sort(key=lambda r: (r["point"], r["seed"]))
    return SweepResult(g, records, latencies, interrupted=interrupted, seconds=seconds, workers=ex.workers,
                       where=ex.where)


def write_records(records: list[dict[str, Any]], g: Grid, out: Path) -> tuple[Path, Path]:
    """CSV (csv module) and Parquet (pyarrow), each written to a temp file and renamed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    stem = g.scenario.name
    csv_path, pq_path = out / f"{stem}-runs.csv", out / f"{stem}-runs.parquet"
    columns = (["scenario", "point", *g.keys, "seed"]
               + [k for k in (records[0] if records else {}) if k not in ("scenario", "point", "seed", *g.keys)])
    tmp = csv_path.with_name(csv_path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(records)
    os.replace(tmp, csv_path)
    tmp = pq_path.with_name(pq_path.name + ".tmp")
    table = pa.Table.from_pylist(records) if records else pa.table({c: [] for c in columns})
    pq.write_table(table.select(columns) if records else table, tmp)
    os.replace(tmp, pq_path)
    return csv_path, pq_path
