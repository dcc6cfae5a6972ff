"""Scenario files (TOML): the consortium, the network, timed or height-triggered
steps, and expectations. Every problem is a UserError naming the file, the step
(or expectation) and the field.

    name = "lc-happy-path"
    description = "..."
    seed = 7
    backends = ["sim", "live"]            # where it can run (default both)
    [consortium]  members = "nodes"       # default: the repository's nodes/
    [network]     latency_ms = {"CN-SH/HK" = 30}   jitter_ms = 5   loss = 0.0

    [[step]]  label = "issue"  at_ms = 1000  as = "carrier-sh"  tx = "ISSUE"
              document = "example:transport-document-to-order.json"  reference = "R1"
              issue_to = "sh-exporter"  save = "bl"
    [[step]]  after_height = 5  fault = "crash"  node = "carrier-sh"
    [[step]]  wait_ms = 3000
    [[expect]] what = "ebl"  id = "${bl}"  status = "SURRENDERED"  possessor = "carrier-sh"

See docs/SCENARIOS.md for every step and expectation kind.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consortium.errors import UserError
from consortium.genesis import DEFAULT_GENESIS_TIME_MS
from consortium.sim.byzantine import BEHAVIOURS

FAULTS = ("crash", "restart", "pause", "resume", "isolate", "partition", "heal", "drop", "duplicate",
          "delay", "byzantine", "advance", "broker-restart")
EXPECT_KINDS = ("ebl", "ebl_ref", "lc", "financing", "consent", "data", "party", "collateral", "tx",
                "consensus", "share")
_TOP = {"name", "description", "seed", "start", "backends", "consortium", "network", "step", "expect"}
_STEP_ACTIONS = ("tx", "fault", "wait_ms", "wait_height", "wait_for")
_STEP_COMMON = {"label", "at_ms", "after_height", "note"}
_TX_FIELDS = {"tx", "as", "body", "document", "reference", "issue_to", "consignee", "endorsee", "supersedes",
              "save", "payload", "wait", "timeout_ms", "unchecked", "forge", "new_party_key"}
_FAULT_FIELDS = {"fault", "node", "groups", "symmetric", "value", "behaviour"}


@dataclass(frozen=True, slots=True)
class ScenarioStep:
    index: int
    label: str
    action: str  # tx | fault | wait_ms | wait_height
    at_ms: int | None
    after_height: int | None
    fields: dict[str, Any]

    def where(self, source: str) -> str:
        return f"{source}: step {self.index + 1} ({self.label})"


@dataclass(frozen=True, slots=True)
class Expect:
    index: int
    what: str
    fields: dict[str, Any]

    @property
    def label(self) -> str:
        ident = self.fields.get("id") or self.fields.get("step") or ""
        return f"{self.what} {ident}".strip()


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    source: str
    seed: int
    backends: tuple[str, ...]
    start_ms: int  # ledger time at genesis (block time starts here)
    members_dir: Path | None
    network: dict[str, Any]
    steps: tuple[ScenarioStep, ...]
    expects: tuple[Expect, ...]
    text: str = field(repr=False, default="")  # the file as read, kept in traces for replay


def load(path: Path) -> Scenario:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot read scenario ({exc.__class__.__name__})") from None
    return parse(text, source=str(path), base=path.parent)


def parse(text: str, *, source: str, base: Path) -> Scenario:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{source}: not valid TOML ({exc})") from None
    unknown = sorted(set(data) - _TOP)
    if unknown:
        raise UserError(f"{source}: unknown top-level field '{unknown[0]}' (allowed: {sorted(_TOP)})")
    name = _req(data, "name", str, source)
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise UserError(f"{source}: field 'seed' must be a whole number >= 0")
    backends = tuple(data.get("backends", ["sim", "live"]))
    if not backends or any(b not in ("sim", "live") for b in backends):
        raise UserError(f"{source}: field 'backends' must list 'sim' and/or 'live'")
    members = (data.get("consortium") or {}).get("members")
    members_dir = None if members in (None, "nodes") else (base / str(members)).resolve()
    steps = tuple(_step(i, s, source) for i, s in enumerate(_tables(data, "step", source)))
    labels = [s.label for s in steps]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise UserError(f"{source}: step label {dup[0]!r} is used twice")
    for st in steps:
        if st.action == "wait_for" and st.fields["wait_for"] not in labels[: st.index]:
            raise UserError(f"{st.where(source)}: field 'wait_for' names no earlier step "
                            f"({st.fields['wait_for']!r})")
    expects = tuple(_expect(i, e, source, set(labels)) for i, e in enumerate(_tables(data, "expect", source)))
    return Scenario(name=name, description=str(data.get("description", "")), source=source, seed=seed,
                    backends=backends, start_ms=_start(data, source), members_dir=members_dir, network=_network(data, source),
                    steps=steps, expects=expects, text=text)


def _start(data: dict[str, Any], source: str) -> int:
    start = data.get("start")
    if start is None:
        return DEFAULT_GENESIS_TIME_MS
    if isinstance(start, dt.datetime) and start.tzinfo is not None:
        return int(start.timestamp() * 1000)
    raise UserError(f"{source}: field 'start' must be a date-time with offset, e.g. 2026-03-02T18:00:00+08:00")


def _tables(data: dict[str, Any], key: str, source: str) -> list[dict[str, Any]]:
    items = data.get(key, [])
    if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
        raise UserError(f"{source}: '{key}' must be an array of tables ([[{key}]])")
    return items


def _req(data: dict[str, Any], name: str, kind: type, where: str) -> Any:
    if name not in data:
        raise UserError(f"{where}: field '{name}' is missing")
    v = data[name]
    if (kind is int and isinstance(v, bool)) or not isinstance(v, kind):
        raise UserError(f"{where}: field '{name}' must be {kind.__name__}, got {v!r}")
    return v


def _network(data: dict[str, Any], source: str) -> dict[str, Any]:
    net = data.get("network") or {}
    where = f"{source}: [network]"
    extra = sorted(set(net) - {"latency_ms", "jitter_ms", "loss"})
    if extra:
        raise UserError(f"{where}: unknown field '{extra[0]}'")
    lat = net.get("latency_ms", {})
    if not isinstance(lat, dict) or not all(
            isinstance(k, str) and k.count("/") == 1 and isinstance(v, int) and v >= 0 for k, v in lat.items()):
        raise UserError(f"{where}: field 'latency_ms' must map 'A/B' jurisdiction pairs to whole ms")
    jitter = net.get("jitter_ms", None)
    if jitter is not None and (not isinstance(jitter, int) or jitter < 0):
        raise UserError(f"{where}: field 'jitter_ms' must be a whole number >= 0")
    loss = net.get("loss", 0.0)
    if not isinstance(loss, (int, float)) or not 0 <= loss <= 1:
        raise UserError(f"{where}: field 'loss' must be a probability 0..1")
    return {"latency_ms": lat, "jitter_ms": jitter, "loss": float(loss)}


def _step(i: int, s: dict[str, Any], source: str) -> ScenarioStep:
    label = s.get("label", f"step-{i + 1}")
    where = f"{source}: step {i + 1} ({label})"
    if not isinstance(label, str) or not label:
        raise UserError(f"{where}: field 'label' must be a non-empty string")
    actions = [a for a in _STEP_ACTIONS if a in s]
    if len(actions) != 1:
        unknown = sorted(set(s) - _STEP_COMMON - _TX_FIELDS - _FAULT_FIELDS - set(_STEP_ACTIONS))
        hint = f" (unknown field '{unknown[0]}')" if unknown else ""
        raise UserError(f"{where}: needs exactly one of {', '.join(_STEP_ACTIONS)}{hint}")
    action = actions[0]
    allowed = _STEP_COMMON | {"tx": _TX_FIELDS, "fault": _FAULT_FIELDS,
                              "wait_for": {"wait_for", "timeout_ms"}}.get(action, {action})
    extra = sorted(set(s) - allowed)
    if extra:
        raise UserError(f"{where}: unknown field '{extra[0]}' for a {action} step")
    at_ms, after = s.get("at_ms"), s.get("after_height")
    for name, v in (("at_ms", at_ms), ("after_height", after)):
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise UserError(f"{where}: field '{name}' must be a whole number >= 0")
    if at_ms is not None and after is not None:
        raise UserError(f"{where}: give at most one of 'at_ms' and 'after_height'")
    if action == "tx":
        _req(s, "tx", str, where)
        _req(s, "as", str, where)
        if "body" in s and not isinstance(s["body"], dict):
            raise UserError(f"{where}: field 'body' must be a table")
    elif action == "fault":
        _check_fault(s, where)
    elif action == "wait_for":
        _req(s, "wait_for", str, where)
    else:
        _req(s, action, int, where)
    return ScenarioStep(i, label, action, at_ms, after, {k: v for k, v in s.items() if k not in _STEP_COMMON})


def _check_fault(s: dict[str, Any], where: str) -> None:
    f = _req(s, "fault", str, where)
    if f not in FAULTS:
        raise UserError(f"{where}: field 'fault' must be one of {', '.join(FAULTS)}, got {f!r}")
    if f in ("crash", "restart", "pause", "resume", "isolate", "byzantine"):
        _req(s, "node", str, where)
    if f == "partition":
        g = s.get("groups")
        if not (isinstance(g, list) and len(g) >= 2 and all(
                isinstance(x, list) and x and all(isinstance(n, str) for n in x) for x in g)):
            raise UserError(f"{where}: field 'groups' must be a list of at least two lists of node ids")
    if f in ("drop", "duplicate", "delay", "advance"):
        v = s.get("value")
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0 or (f in ("drop", "duplicate") and v > 1):
            raise UserError(f"{where}: field 'value' must be a number (probability 0..1 for {f}; ms otherwise)")
    if f == "byzantine" and s.get("behaviour") not in BEHAVIOURS:
        raise UserError(f"{where}: field 'behaviour' must be one of {', '.join(BEHAVIOURS)}")


def _expect(i: int, e: dict[str, Any], source: str, labels: set[str]) -> Expect:
    where = f"{source}: expect {i + 1}"
    what = _req(e, "what", str, where)
    if what not in EXPECT_KINDS:
        raise UserError(f"{where}: field 'what' must be one of {', '.join(EXPECT_KINDS)}, got {what!r}")
    fields = {k: v for k, v in e.items() if k != "what"}
    if what == "tx":
        step = _req(e, "step", str, where)
        if step not in labels:
            raise UserError(f"{where}: field 'step' names no step label ({step!r})")
        extra = sorted(set(fields) - {"step", "code", "height_min"})
        if extra or "code" not in fields:
            raise UserError(f"{where}: a tx expectation has 'step' and 'code' (\"OK\" or a reason code)")
    elif what == "consensus":
        allowed = {"min_height", "agreement", "liveness", "evidence_min", "max_round_max"}
        extra = sorted(set(fields) - allowed)
        if extra or not fields:
            raise UserError(f"{where}: consensus facts are {sorted(allowed)}")
    elif what == "share":
        _req(e, "id", str, where)
        if not set(fields) - {"id"} <= {"readable_by", "not_readable_by"}:
            raise UserError(f"{where}: a share expectation has 'readable_by' and/or 'not_readable_by' lists")
    elif what == "consent":
        for k in ("data_id", "grantee", "purpose"):
            _req(e, k, str, where)
    else:
        _req(e, "id", str, where)
        if len(fields) < 2:
            raise UserError(f"{where}: name at least one field to compare besides 'id'")
    return Expect(i, what, fields)
