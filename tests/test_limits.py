"""Every bound and timeout lives in consortium/limits.py (TIGER_STYLE: limits in one place).

The checker walks the package's syntax trees (`ast`), not its text: a bound
hidden behind a line break or inside a class body is found all the same.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from consortium import limits

PACKAGE = Path(limits.__file__).parent

#: A name that reads like a bound: a unit or bound word last (`settle_ms`,
#: `topic_bytes_max`, `keepalive_s`, `snapshot_every_heights`, `timeout`...) or
#: `max_`/`min_` first. Rates (`tx_per_s`) are workload figures, not timeouts.
BOUND_NAME = re.compile(
    r"(?i)((?<!_per)_s|_ms|_max|_min|_bytes|_heights|timeout|_interval|_every|_size|_frames|_count|_lines"
    r"|_slots|_limit|_delay|_wait|_window|_days|_chars|_depth|_high|_low|_retries|_attempts|_default)$|^(max|min)_")

#: Names that match BOUND_NAME but are facts, not bounds: changing one would
#: not trade safety against resources, it would be wrong.
NOT_BOUNDS = {
    "DEFAULT_GENESIS_TIME_MS": "a fixed calendar instant (genesis time of the default chain)",
    "DAY_MS": "a unit conversion",
    "LOCAL_OFFSET_MS": "Shanghai / Hong Kong local time is UTC+8",
    "EXIT_TIMEOUT": "a process exit code",
    "digest_size": "a hash output length (protocol, part of what is signed)",
    "min_len": "a text field is non-empty unless its declaration says otherwise",
}


def _numeric(node: ast.expr) -> bool:
    """A number, or arithmetic of numbers only (`8 * 1024`, `-2**63`)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
    if isinstance(node, ast.UnaryOp):
        return _numeric(node.operand)
    if isinstance(node, ast.BinOp):
        return _numeric(node.left) and _numeric(node.right)
    return False


def _bare_number(node: ast.expr | None) -> bool:
    """A numeric literal other than 0 (0 initialises a counter or means "none")."""
    return node is not None and _numeric(node) and eval(compile(ast.Expression(node), "<limit>", "eval")) != 0


def _bound_name(name: str | None) -> bool:
    return name is not None and name not in NOT_BOUNDS and BOUND_NAME.search(name) is not None


def _name(node: ast.expr) -> str | None:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def bounds_outside_limits(source: str) -> list[str]:
    """Each bare numeric bound in `source`, as "line: what"."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and _bare_number(node.value):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found += [f"{node.lineno}: {n} = {ast.unparse(node.value)}"
                      for n in map(_name, targets) if _bound_name(n)]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            positional = a.posonlyargs + a.args
            pairs = list(zip(positional[len(positional) - len(a.defaults):], a.defaults, strict=True))
            pairs += [(arg, d) for arg, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is not None]
            found += [f"{node.lineno}: parameter {arg.arg} = {ast.unparse(d)}"
                      for arg, d in pairs if _bound_name(arg.arg) and _bare_number(d)]
        elif isinstance(node, ast.Call):
            found += [f"{node.lineno}: {k.arg}={ast.unparse(k.value)}"
                      for k in node.keywords if _bound_name(k.arg) and _bare_number(k.value)]
            func = _name(node.func)
            if func == "sleep" and node.args and _bare_number(node.args[0]):
                found.append(f"{node.lineno}: sleep({ast.unparse(node.args[0])})")
            if func == "wait_for" and len(node.args) > 1 and _bare_number(node.args[1]):
                found.append(f"{node.lineno}: wait_for(..., {ast.unparse(node.args[1])})")
    return found


def test_no_numeric_timeout_or_size_bound_outside_limits() -> None:
    """No module of the package but limits.py assigns a numeric literal to a
    bound-like name (module, class or function level, parameter defaults
    included), passes one as a bound-like keyword (`timeout=10`) or sleeps /
    waits for a literal number of seconds: each such value lives in limits.py
    with its unit last in the name and is used as `limits.name`."""
    offenders = [f"{path.relative_to(PACKAGE.parent)}:{hit}"
                 for path in sorted(PACKAGE.rglob("*.py")) if path.name != "limits.py"
                 for hit in bounds_outside_limits(path.read_text(encoding="utf-8"))]
    assert offenders == [], "move these into consortium/limits.py:\n" + "\n".join(offenders)


def test_the_checker_catches_planted_bounds() -> None:
    """Each shape of a bare bound is reported (a checker that finds nothing
    proves nothing); zeros, `limits.x` references, rates and facts are not."""
    planted = """
import asyncio, time
from consortium import limits
retry_ms = 500
frames_queued_max = 8 * 1024
class Options:
    drain_s: float = 20.0
    tx_per_s: int = 20
    started_ms: int = 0
def wait(timeout_ms: int = 200, grace_ms: int = limits.node_stop_timeout_ms) -> None:
    delay_s = 0.02
    time.sleep(0.2)
    asyncio.sleep(0)
    proc.wait(timeout=10)
    asyncio.wait_for(stop.wait(), 5)
    run(timeout=limits.broker_stop_timeout_ms / 1000)
DAY_MS = 86_400_000
"""
    assert sorted(int(hit.split(":")[0]) for hit in bounds_outside_limits(planted)) == [4, 5, 7, 10, 11, 12, 14, 15]


def test_limits_have_their_unit_last() -> None:
    """Every limit is a lower_case int (or float) named with its unit or bound
    word last (`_ms`, `_bytes`, `_max`, `_heights`, `_per_worker`...), so a
    reader never guesses whether 500 means ms or s."""
    values = {k: v for k, v in vars(limits).items() if not k.startswith("_") and isinstance(v, (int, float))}
    assert len(values) > 50
    unnamed = [k for k in values
               if k != k.lower() or not (_bound_name(k) or re.search(r"(_delta|_per_[a-z]+)$", k))]
    assert unnamed == [], unnamed
