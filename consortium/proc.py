"""Process control shared by everything that starts child processes (brokers,
node processes): is a pid alive, stop a group of processes (SIGTERM, wait,
SIGKILL, wait), the tail of a log, files written atomically or privately.

One copy for the broker launcher (consortium.bus.broker) and the node launcher
(consortium.node.launch), so both stop their children the same way."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from consortium import limits
from consortium.errors import LocalError

#: alive(ident, pid): is that process still running (and still ours)?
Alive = Callable[[str, int], bool]


def send_signal(pid: int, sig: signal.Signals) -> bool:
    """Send `sig`; False if there is no such process."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def proc_state(pid: int) -> str | None:
    """The state letter of /proc/PID/stat (R, S, T, Z, ...), None if unreadable."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return None


def pid_alive(pid: int) -> bool:
    """True if `pid` exists and is not a zombie waiting to be reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return proc_state(pid) != "Z"


def cmdline(pid: int) -> list[bytes]:
    """The argument vector of `pid` (empty if it is gone or unreadable)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def wait_all_gone(pids: Mapping[str, int], alive: Alive, timeout_ms: int) -> bool:
    """Poll until none of `pids` is alive; False if some still are at the timeout."""
    deadline = time.monotonic() + timeout_ms / 1000
    while any(alive(i, p) for i, p in pids.items()):
        if time.monotonic() > deadline:
            return False
        time.sleep(limits.process_poll_ms / 1000)
    return True


def stop_all(pids: Mapping[str, int], alive: Alive, *, timeout_ms: int,
             kill_timeout_ms: int = limits.process_kill_timeout_ms, what: str = "process") -> list[str]:
    """SIGTERM every live process, wait up to `timeout_ms` for all of them,
    SIGKILL the rest and wait for those too; the ids that were asked to stop.
    LocalError if a process survives SIGKILL (it cannot, unless not ours)."""
    for ident, pid in pids.items():
        if alive(ident, pid):
            send_signal(pid, signal.SIGTERM)
    if not wait_all_gone(pids, alive, timeout_ms):
        for ident, pid in pids.items():
            if alive(ident, pid):
                send_signal(pid, signal.SIGKILL)
        if not wait_all_gone(pids, alive, kill_timeout_ms):
            left = sorted(f"{i} (pid {p})" for i, p in pids.items() if alive(i, p))
            raise LocalError(f"{what} {', '.join(left)} survived SIGKILL")
    return sorted(pids)


def log_tail(path: Path | None, lines_max: int = limits.log_tail_lines_max) -> str:
    """The last lines of a log joined by " | " ("" if there is none)."""
    if path is None:
        return ""
    try:
        lines = path.read_text(errors="replace").strip().splitlines()[-lines_max:]
    except OSError:
        return ""
    return " | ".join(lines)


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` in one rename (readers never see half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (passwords live in some of them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def reaper(processes: Mapping[str, subprocess.Popen[bytes]], other: Alive = lambda _i, pid: pid_alive(pid)
           ) -> Alive:
    """An `Alive` for processes we may have started ourselves: a child we hold
    a Popen for is polled (which also reaps it), any other pid asked of `other`."""

    def alive(ident: str, pid: int) -> bool:
        proc = processes.get(ident)
        if proc is not None:
            return proc.poll() is None
        return other(ident, pid)

    return alive
