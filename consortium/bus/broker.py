"""Start, find and stop the MQTT broker a consortium talks through.

Three kinds (DESIGN section 4):
- embedded: amqtt in a child process (`python -m consortium.bus.embedded_broker`),
  anonymous, nothing to install: the default for a laptop.
- mosquitto: Debian's mosquitto with a generated config in RUN/mosquitto/:
  per-member passwords, an ACL pinning each member to its own topics, one
  listener on 127.0.0.1, bounded packet size.
- external: any `mqtt://host:port` someone else runs (to span machines).

A started broker is recorded in RUN/broker.json (kind, host, port, pid) and
RUN/broker.pid, so that `consortium down` in another process can stop it
(`stop_recorded`). Local brokers start in their own session so that Ctrl-C in
the terminal reaches the CLI, which then stops things in order.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

from consortium import limits, proc
from consortium.errors import UserError
from consortium.home import load_credentials, load_genesis, topic_root

BrokerKind = Literal["embedded", "mosquitto", "external"]

LOCAL_HOST = "127.0.0.1"
DEFAULT_MQTT_PORT = 1883
#: The broker user that CLI `tx`, status readers and bench load processes use on
#: mosquitto: it may publish on every party's topics. '_' cannot start a member
#: id, so it never collides with a member's username.
CLIENT_USER = "_client"

RECORD_FILE = "broker.json"
PID_FILE = "broker.pid"
LOG_FILE = "broker.log"
CLIENT_FILE = "client.json"

_MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


@dataclass
class Broker:
    """A running (or external) broker. `stop()` is idempotent; use as a context manager."""

    kind: BrokerKind
    host: str
    port: int
    pid: int | None = None
    run_dir: Path | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def alive(self) -> bool:
        if self._process is not None:
            return self._process.poll() is None
        return self.pid is not None and proc.pid_alive(self.pid)

    def stop(self, timeout_ms: int = limits.broker_stop_timeout_ms) -> None:
        """SIGTERM, wait, then SIGKILL; forget the record. No-op for external brokers."""
        if self.pid is not None:
            _terminate(self.pid, self._process, timeout_ms)
        self._forget()

    def kill(self) -> None:
        """SIGKILL without any cleanup: a broker crash (tests use this)."""
        if self.pid is not None:
            proc.send_signal(self.pid, signal.SIGKILL)
            if self._process is not None:
                self._process.wait(timeout=limits.broker_stop_timeout_ms / 1000)
        self._forget()

    def _forget(self) -> None:
        if self.run_dir is not None and self.pid is not None:
            record = load_record(self.run_dir)
            if record is not None and record.pid == self.pid:
                for name in (RECORD_FILE, PID_FILE):
                    (self.run_dir / name).unlink(missing_ok=True)

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


# ---------------------------------------------------------------- one entry point


def start_broker(spec: str, *, home: Path, run_dir: Path, port: int | None = None,
                 detach: bool = False) -> Broker:
    """`spec` is "embedded", "mosquitto" or "mqtt://host:port" (the CLI's --broker)."""
    if spec == "embedded":
        return start_embedded(run_dir, port=port, detach=detach)
    if spec == "mosquitto":
        return start_mosquitto(home, run_dir, port=port, detach=detach)
    if spec.startswith("mqtt://"):
        return external(spec)
    raise UserError(f"--broker: {spec!r} is not 'embedded', 'mosquitto' or mqtt://host:port")


def external(url: str) -> Broker:
    host, port = parse_broker_url(url)
    return Broker(kind="external", host=host, port=port)


def parse_broker_url(url: str) -> tuple[str, int]:
    """`mqtt://host[:port]` -> (host, port); UserError naming what is wrong."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UserError(f"--broker: {url!r} is not a valid mqtt:// URL ({exc})") from None
    if parts.scheme != "mqtt":
        raise UserError(f"--broker: {url!r} must start with mqtt:// (TLS brokers are not supported)")
    if not parts.hostname:
        raise UserError(f"--broker: {url!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise UserError(f"--broker: {url!r}: put no credentials in the URL (they come from HOME/broker/)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UserError(f"--broker: {url!r} must be just mqtt://host:port")
    if port == 0:
        raise UserError(f"--broker: {url!r}: port must be 1..65535")
    return parts.hostname, port if port is not None else DEFAULT_MQTT_PORT


# ---------------------------------------------------------------- embedded (amqtt)


def start_embedded(run_dir: Path, *, port: int | None = None, host: str = LOCAL_HOST,
                   detach: bool = False) -> Broker:
    """Start amqtt in a child process and wait until it accepts connections.

    Unless `detach`, the child exits by itself when this process dies."""
    port = _pick_port(host, port)
    cmd = [sys.executable, "-m", "consortium.bus.embedded_broker", "--host", host, "--port", str(port)]
    if not detach:
        cmd.append("--exit-with-parent")
    return _launch("embedded", cmd, host, port, run_dir)


# ---------------------------------------------------------------- mosquitto


def find_mosquitto() -> Path:
    """The mosquitto binary; UserError with the fix when it is missing."""
    for candidate in (shutil.which("mosquitto"), *_MOSQUITTO_PATHS):
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise UserError("mosquitto is not installed (apt-get install mosquitto, or use --broker embedded)")


def start_mosquitto(home: Path, run_dir: Path, *, port: int | None = None, host: str = LOCAL_HOST,
                    detach: bool = False) -> Broker:
    """Generate RUN/mosquitto/{mosquitto.conf,passwd,acl} from HOME and start mosquitto."""
    binary = find_mosquitto()
    port = _pick_port(host, port)
    conf = write_mosquitto_config(home, run_dir, host=host, port=port)
    return _launch("mosquitto", [str(binary), "-c", str(conf)], host, port, run_dir)


@dataclass(frozen=True, slots=True)
class BrokerUser:
    username: str
    password: str
    write: tuple[str, ...]
    read: tuple[str, ...]


def broker_users(home: Path, run_dir: Path) -> list[BrokerUser]:
    """Members from HOME/broker (credentials + ACL) plus the CLI client user,
    whose password is created once and kept in RUN/client.json (0600)."""
    creds = load_credentials(home)
    acl = _load_acl(home)
    users = []
    for member, perms in sorted(acl.items()):
        cred = creds.get(member)
        if not isinstance(cred, dict) or not {"username", "password"} <= set(cred):
            raise UserError(f"{home / 'broker' / 'credentials.json'}: no username/password for {member!r}")
        users.append(BrokerUser(cred["username"], cred["password"], tuple(perms["write"]), tuple(perms["read"])))
    genesis = load_genesis(home)
    root = topic_root(genesis.chain_id)
    username, password = client_credentials(run_dir, create=True)
    users.append(BrokerUser(username, password, tuple(f"{root}/{p.id}/#" for p in genesis.parties), (f"{root}/#",)))
    return users


def client_credentials(run_dir: Path, *, create: bool = False) -> tuple[str, str]:
    """(username, password) of CLIENT_USER for this run directory."""
    path = run_dir / CLIENT_FILE
    if not path.exists() and create:
        proc.write_private(path, json.dumps({"username": CLIENT_USER, "password": secrets.token_urlsafe(24)}))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return str(data["username"]), str(data["password"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: cannot read broker client credentials ({exc})") from None


def write_mosquitto_config(home: Path, run_dir: Path, *, host: str, port: int) -> Path:
    """Write RUN/mosquitto/{mosquitto.conf, passwd, acl}; return the conf path.
    Regenerated on every start, so it always follows HOME."""
    passwd, acl = write_mosquitto_auth(home, run_dir)
    conf = passwd.parent / "mosquitto.conf"
    proc.write_private(conf, render_mosquitto_conf(host, port, passwd, acl))
    return conf


def write_mosquitto_auth(home: Path, run_dir: Path) -> tuple[Path, Path]:
    """Write RUN/mosquitto/passwd (hashed by mosquitto_passwd) and RUN/mosquitto/acl,
    and RUN/client.json; return (passwd, acl). Also used by docker/compose.yaml."""
    users = broker_users(home, run_dir)
    conf_dir = run_dir / "mosquitto"
    conf_dir.mkdir(parents=True, exist_ok=True)
    passwd, acl = conf_dir / "passwd", conf_dir / "acl"
    proc.write_private(passwd, "".join(f"{_safe(u.username)}:{_safe(u.password)}\n" for u in users))
    _hash_passwords(passwd)
    proc.write_private(acl, render_acl(users))
    return passwd, acl


def render_acl(users: list[BrokerUser]) -> str:
    lines = ["# generated by consortium: each member publishes only under its own id"]
    for u in users:
        lines += ["", f"user {_safe(u.username)}"]
        lines += [f"topic write {_safe(t)}" for t in u.write]
        lines += [f"topic read {_safe(t)}" for t in u.read]
    return "\n".join(lines) + "\n"


def render_mosquitto_conf(host: str, port: int, passwd: Path, acl: Path) -> str:
    lines = [
        "# generated by consortium (consortium.bus.broker); regenerated on every start",
        f"listener {port} {host}",
        "allow_anonymous false",
        f"password_file {passwd}",
        f"acl_file {acl}",
        "persistence false",
        f"max_packet_size {limits.broker_packet_bytes_max}",
        "set_tcp_nodelay true",  # consensus messages are small and latency-bound
        "max_queued_messages 10000",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "connection_messages false",
    ]
    if os.geteuid() == 0:
        # As root, mosquitto would switch to user 'mosquitto', who cannot read
        # our 0600 files; stay the user that generated them.
        lines.append(f"user {pwd.getpwuid(os.geteuid()).pw_name}")
    return "\n".join(lines) + "\n"


def _hash_passwords(passwd: Path) -> None:
    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    if not os.access(tool, os.X_OK):
        raise UserError("mosquitto_passwd is not installed (it comes with Debian's mosquitto package)")
    out = subprocess.run([tool, "-U", str(passwd)], capture_output=True, text=True,
                         timeout=limits.broker_passwd_timeout_ms / 1000)
    if out.returncode != 0:
        raise UserError(f"mosquitto_passwd failed: {(out.stderr or out.stdout).strip()}")


def _load_acl(home: Path) -> dict[str, dict[str, list[str]]]:
    path = home / "broker" / "acl.json"
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read broker ACL ({exc})") from None
    ok = isinstance(data, dict) and all(
        isinstance(p, dict) and all(isinstance(p.get(k), list) for k in ("write", "read")) for p in data.values())
    if not ok:
        raise UserError(f"{path}: must map each member to {{'write': [...], 'read': [...]}}")
    return data  # type: ignore[no-any-return]


def _safe(value: str) -> str:
    """Refuse what would break the line-based mosquitto files (or inject a line)."""
    if not value or any(c in value for c in "\n\r\0") or value != value.strip():
        raise UserError(f"broker credentials/ACL: value {value[:20]!r} is empty or has a line break")
    return value


# ---------------------------------------------------------------- records (for `down`)


@dataclass(frozen=True, slots=True)
class BrokerRecord:
    kind: BrokerKind
    host: str
    port: int
    pid: int


def load_record(run_dir: Path) -> BrokerRecord | None:
    """The broker recorded in `run_dir`, or None if there is none (or it is unreadable)."""
    try:
        data = json.loads((run_dir / RECORD_FILE).read_text(encoding="utf-8"))
        return BrokerRecord(kind=data["kind"], host=str(data["host"]), port=int(data["port"]), pid=int(data["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def attach_recorded(run_dir: Path) -> Broker | None:
    """A Broker handle for the running broker recorded in `run_dir`, or None."""
    record = load_record(run_dir)
    if record is None or not _is_our_broker(record):
        return None
    return Broker(kind=record.kind, host=record.host, port=record.port, pid=record.pid, run_dir=run_dir)


def stop_recorded(run_dir: Path, timeout_ms: int = limits.broker_stop_timeout_ms) -> bool:
    """Stop the broker recorded in `run_dir` (for `consortium down`). True if one was stopped;
    a stale record (process gone, or the pid reused by another program) is just removed."""
    record = load_record(run_dir)
    if record is None:
        return False
    running = _is_our_broker(record)
    if running:
        _terminate(record.pid, None, timeout_ms)
    for name in (RECORD_FILE, PID_FILE):
        (run_dir / name).unlink(missing_ok=True)
    return running


def restart_recorded(home: Path, run_dir: Path) -> Broker:
    """Start the broker recorded in `run_dir` again, same kind, host and port (a
    mosquitto config is regenerated from HOME), detached; a recorded broker that
    still runs is stopped first. Running nodes reconnect by themselves (they retry
    the same address). UserError without a record, or if the port is taken."""
    record = load_record(run_dir)
    if record is None:
        raise UserError(f"no broker recorded in {run_dir} (start the consortium with `consortium up`)")
    if _is_our_broker(record):
        _terminate(record.pid, None, limits.broker_stop_timeout_ms)
    if record.kind == "embedded":
        return start_embedded(run_dir, port=record.port, host=record.host, detach=True)
    if record.kind == "mosquitto":
        return start_mosquitto(home, run_dir, port=record.port, host=record.host, detach=True)
    raise UserError(f"{run_dir / RECORD_FILE}: a {record.kind!r} broker is not started here")


def recorded_status(run_dir: Path) -> dict[str, Any] | None:
    """The recorded broker: kind, host, port, pid, url; `running` (its process is
    alive and still a broker) and `accepting` (its port takes connections). None
    without a record."""
    record = load_record(run_dir)
    if record is None:
        return None
    running = _is_our_broker(record)
    return {"kind": record.kind, "host": record.host, "port": record.port, "pid": record.pid,
            "url": f"mqtt://{record.host}:{record.port}", "running": running,
            "accepting": running and port_accepting(record.host, record.port)}


def _is_our_broker(record: BrokerRecord) -> bool:
    """True if `record.pid` is alive and still runs a broker (pids get reused)."""
    args = proc.cmdline(record.pid)
    if not args:
        # no such /proc entry: gone, unless this system has no /proc at all
        return not Path("/proc/self").exists() and proc.pid_alive(record.pid)
    cmdline = b" ".join(args)
    return b"mosquitto" in cmdline or b"consortium.bus.embedded_broker" in cmdline


# ---------------------------------------------------------------- processes and ports


def free_port(host: str = LOCAL_HOST) -> int:
    """A TCP port nobody listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_accepting(host: str, port: int, timeout_ms: int = limits.broker_probe_timeout_ms) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_ms / 1000):
            return True
    except OSError:
        return False


def wait_port(host: str, port: int, timeout_ms: int = limits.broker_ready_timeout_ms,
              process: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> None:
    """Poll until `host:port` accepts TCP connections; UserError (with the log's
    last lines) if `process` exits first or the timeout passes."""
    deadline = time.monotonic() + timeout_ms / 1000
    delay_ms = limits.broker_probe_delay_ms_min
    while not port_accepting(host, port):
        if process is not None and process.poll() is not None:
            raise UserError(f"broker exited with code {process.returncode} before accepting on "
                            f"{host}:{port}{_quoted(proc.log_tail(log))}")
        if time.monotonic() > deadline:
            raise UserError(f"broker did not accept connections on {host}:{port} within "
                            f"{timeout_ms} ms{_quoted(proc.log_tail(log))}")
        time.sleep(delay_ms / 1000)
        delay_ms = min(delay_ms * 2, limits.broker_probe_delay_ms_max)


def _pick_port(host: str, port: int | None) -> int:
    if port is None:
        return free_port(host)
    if not 1 <= port <= 65535:
        raise UserError(f"broker port {port} must be 1..65535")
    if port_accepting(host, port):
        raise UserError(f"{host}:{port} is already in use (is a broker running? try `consortium down`)")
    return port


def _launch(kind: BrokerKind, cmd: list[str], host: str, port: int, run_dir: Path) -> Broker:
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir / LOG_FILE
    with open(log, "ab") as log_file:  # the child keeps its own descriptor
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                                   start_new_session=True, close_fds=True)
    broker = Broker(kind=kind, host=host, port=port, pid=process.pid, run_dir=run_dir, _process=process)
    try:
        wait_port(host, port, process=process, log=log)
        _write_record(run_dir, broker)
    except BaseException:
        broker.stop()
        raise
    return broker


def _write_record(run_dir: Path, broker: Broker) -> None:
    assert broker.pid is not None
    record = {"kind": broker.kind, "host": broker.host, "port": broker.port, "pid": broker.pid}
    proc.write_private(run_dir / RECORD_FILE, json.dumps(record) + "\n")
    proc.write_private(run_dir / PID_FILE, f"{broker.pid}\n")


def _terminate(pid: int, process: subprocess.Popen[bytes] | None, timeout_ms: int) -> None:
    alive = proc.reaper({"broker": process} if process is not None else {})
    proc.stop_all({"broker": pid}, alive, timeout_ms=timeout_ms, what="broker")


def _quoted(tail: str) -> str:
    return f": {tail}" if tail else ""


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    """`python -m consortium.bus.broker auth --home H --run-dir R`: write the
    mosquitto password and ACL files for a broker started by someone else
    (docker compose). Brokers the CLI starts write them themselves."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m consortium.bus.broker")
    sub = parser.add_subparsers(dest="command", required=True)
    auth = sub.add_parser("auth", help="write RUN/mosquitto/{passwd,acl} and RUN/client.json from HOME")
    auth.add_argument("--home", type=Path, required=True)
    auth.add_argument("--run-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        passwd, acl = write_mosquitto_auth(args.home, args.run_dir)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {passwd} and {acl}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
