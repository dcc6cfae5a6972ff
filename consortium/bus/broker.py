"""Start, find and stop the MQTT broker a consortium talks through.

Three kinds (DESIGN section 4):
- embedded: amqtt in a child process (`python -m consortium.bus.embedded_broker`),
  anonymous, nothing to install: the default for a laptop.
- mosquitto: Debian's mosquitto with a generated config in RUN/mosquitto/:
  per-member passwords, a least-privilege ACL (a member publishes only on its
  own fixed set of topics, reads only broadcasts and messages addressed to it),
  one listener on 127.0.0.1, bounded packet size and memory. With the bridged
  topology (consortium.bus.bridge) a second one, bridged to the first.
- external: any `mqtt://host:port` someone else runs (to span machines).

A started broker is recorded in RUN/broker.json (kind, host, port, pid) and
RUN/broker.pid, so that `consortium down` in another process can stop it
(`stop_recorded`). Local brokers start in their own session so that Ctrl-C in
the terminal reaches the CLI, which then stops things in order.
"""

from __future__ import annotations

import ctypes
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

from consortium import limits, proc
from consortium.codec import Kind
from consortium.errors import UserError
from consortium.home import load_credentials, load_genesis, topic_root

BrokerKind = Literal["embedded", "mosquitto", "external"]

LOCAL_HOST = "127.0.0.1"
DEFAULT_MQTT_PORT = 1883
#: The broker user that CLI `tx`, status readers and bench load processes use on
#: mosquitto: it may publish on every party's topics. '_' cannot start a member
#: id, so it never collides with a member's username.
CLIENT_USER = "_client"
#: The user the Shanghai broker's bridge logs into the Hong Kong broker as (bridged topology).
BRIDGE_USER = "_bridge"
#: The live trace's bus observer (consortium.bus.observer): reads only the broadcast
#: proposal, prevote, precommit and status topics, writes nothing.
OBSERVER_USER = "_observer"
OBSERVER_FILE = "observer.json"

RECORD_FILE = "broker.json"
PID_FILE = "broker.pid"
LOG_FILE = "broker.log"
CLIENT_FILE = "client.json"
BRIDGE_FILE = "bridge.json"

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
    site: Site | None = None  # one broker of a bridged topology (consortium.bus.bridge)

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
                    detach: bool = False, site: Site | None = None) -> Broker:
    """Generate RUN/mosquitto/{mosquitto.conf,passwd,acl} from HOME and start mosquitto
    (with `site`: one broker of the bridged topology, see consortium.bus.bridge)."""
    binary = find_mosquitto()
    netns = site.netns if site is not None else None
    port = _pick_port(host, port, netns)
    conf = write_mosquitto_config(home, run_dir, host=host, port=port, site=site)
    wrap = netns_exec(netns) if netns else []
    return _launch("mosquitto", [*wrap, str(binary), "-c", str(conf)], host, port, run_dir, site=site)


@dataclass(frozen=True, slots=True)
class Site:
    """One broker of a bridged topology: where its credentials live (the primary's
    RUN, shared by both brokers), the extra address it listens on (in a network
    namespace: its side of the link), and the bridge it opens (the Shanghai
    broker's, to the relay's address)."""

    creds_dir: Path
    listen: str | None = None  # listen on this address too (besides host)
    netns: str | None = None  # run inside this network namespace (`ip netns exec`)
    bridge: tuple[str, int] | None = None  # (host, port) the bridge connects to


_IP_PATHS = ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip")


def find_ip() -> str | None:
    """The `ip` command (iproute2), or None."""
    for candidate in (shutil.which("ip"), *_IP_PATHS):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def netns_exec(netns: str) -> list[str]:
    """The command prefix that runs a program inside network namespace `netns`."""
    ip = find_ip()
    if ip is None:
        raise UserError("running in a network namespace needs the `ip` command (apt-get install iproute2)")
    return [ip, "netns", "exec", netns]


@dataclass(frozen=True, slots=True)
class BrokerUser:
    username: str
    password: str
    write: tuple[str, ...]
    read: tuple[str, ...]


def broker_users(home: Path, run_dir: Path, *, bridge: bool = False) -> list[BrokerUser]:
    """Members from HOME/broker (credentials) plus the CLI client user, whose
    password is created once and kept in RUN/client.json (0600); with `bridge`,
    also the bridge user (RUN/bridge.json). Least privilege (`member_topics`):
    HOME/broker/acl.json names the members; their topics are computed here."""
    creds = load_credentials(home)
    acl = _load_acl(home)
    genesis = load_genesis(home)
    root = topic_root(genesis.chain_id)
    members = [m.id for m in genesis.members]
    parties = [p.id for p in genesis.parties]
    users = []
    for member in sorted(acl):
        cred = creds.get(member)
        if not isinstance(cred, dict) or not {"username", "password"} <= set(cred):
            raise UserError(f"{home / 'broker' / 'credentials.json'}: no username/password for {member!r}")
        write, read = member_topics(root, member, members, parties)
        users.append(BrokerUser(cred["username"], cred["password"], write, read))
    username, password = client_credentials(run_dir, create=True)
    users.append(BrokerUser(username, password, tuple(f"{root}/{p}/{Kind.TX}" for p in parties),
                            (f"{root}/+/+", *(f"{root}/+/to/{p}/{Kind.TX_REFUSED}" for p in parties))))
    if bridge:
        username, password = bridge_credentials(run_dir, create=True)
        users.append(BrokerUser(username, password, (f"{root}/#",), (f"{root}/#",)))
    from consortium.bus.observer import observer_filters

    username, password = observer_credentials(run_dir, create=True)
    users.append(BrokerUser(username, password, (), observer_filters(root)))
    return users


#: What a member sends to one peer only: its round's signed messages to a lagging peer, sync.
_DIRECT_TO_MEMBERS = (Kind.PROPOSAL, Kind.PREVOTE, Kind.PRECOMMIT, Kind.SYNC_REQUEST, Kind.SYNC_RESPONSE)


def member_topics(root: str, member: str, members: list[str],
                  parties: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(write, read) topics of `member`: it publishes its broadcasts, its direct
    messages to each other member, and its tx refusals to each member or party,
    all under its own id and each on one fixed topic (no wildcard: a member can
    hold at most len(write) retained messages, each at most max_packet_size); it
    reads every broadcast and the direct messages addressed to it, nobody else's."""
    write = [f"{root}/{member}/{k}" for k in Kind if k != Kind.TX_REFUSED]
    write += [f"{root}/{member}/to/{peer}/{k}" for peer in members if peer != member for k in _DIRECT_TO_MEMBERS]
    write += [f"{root}/{member}/to/{actor}/{Kind.TX_REFUSED}" for actor in (*members, *parties) if actor != member]
    return tuple(write), (f"{root}/+/+", f"{root}/+/to/{member}/+")


def client_credentials(run_dir: Path, *, create: bool = False) -> tuple[str, str]:
    """(username, password) of CLIENT_USER for this run directory."""
    return _user_credentials(run_dir / CLIENT_FILE, CLIENT_USER, create)


def observer_credentials(run_dir: Path, *, create: bool = False) -> tuple[str, str]:
    """(username, password) of OBSERVER_USER for this run directory (the live trace's bus observer)."""
    return _user_credentials(run_dir / OBSERVER_FILE, OBSERVER_USER, create)


def bridge_credentials(run_dir: Path, *, create: bool = False) -> tuple[str, str]:
    """(username, password) of BRIDGE_USER for this run directory (bridged topology)."""
    return _user_credentials(run_dir / BRIDGE_FILE, BRIDGE_USER, create)


def _user_credentials(path: Path, username: str, create: bool) -> tuple[str, str]:
    if not path.exists() and create:
        proc.write_private(path, json.dumps({"username": username, "password": secrets.token_urlsafe(24)}))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return str(data["username"]), str(data["password"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: cannot read broker client credentials ({exc})") from None


def write_mosquitto_config(home: Path, run_dir: Path, *, host: str, port: int, site: Site | None = None) -> Path:
    """Write RUN/mosquitto/{mosquitto.conf, passwd, acl}; return the conf path.
    Regenerated on every start, so it always follows HOME. With `site` (bridged
    topology): the users of `site.creds_dir`, the bridge user, its extra listener
    and its bridge connection."""
    if site is None:
        passwd, acl = write_mosquitto_auth(home, run_dir)
        extra: list[str] = []
    else:
        passwd, acl = write_mosquitto_auth(home, site.creds_dir, conf_dir=run_dir / "mosquitto", bridge=True)
        extra = render_site(site, port, load_genesis(home).chain_id)
    conf = passwd.parent / "mosquitto.conf"
    proc.write_private(conf, render_mosquitto_conf(host, port, passwd, acl) + "".join(f"{ln}\n" for ln in extra))
    return conf


def render_site(site: Site, port: int, chain_id: str) -> list[str]:
    """The extra listener and the bridge of one broker of the bridged topology."""
    lines = [] if site.listen is None else [f"listener {port} {_safe(site.listen)}"]
    if site.bridge is not None:
        username, password = bridge_credentials(site.creds_dir)
        lines += [
            "connection consortium-link",
            f"address {_safe(site.bridge[0])}:{site.bridge[1]}",
            f"topic {topic_root(chain_id)}/# both 0",  # QoS 0: what a cut link loses is lost, as in the simulator
            f"remote_username {_safe(username)}",
            f"remote_password {_safe(password)}",
            f"remote_clientid consortium-link-{chain_id}",
            "cleansession true",
            "try_private true",  # the far broker knows it is a bridge and never echoes back what it sent
            "bridge_protocol_version mqttv311",
            f"keepalive_interval {limits.bridge_keepalive_s}",
            # "base cap" form: mosquitto 2.0.11 retried only every ~6.5 s with a single value
            f"restart_timeout {limits.bridge_restart_s} {limits.bridge_restart_s}",
            "start_type automatic",
            "notifications false",
        ]
    return lines


def write_mosquitto_auth(home: Path, run_dir: Path, *, conf_dir: Path | None = None,
                         bridge: bool = False) -> tuple[Path, Path]:
    """Write RUN/mosquitto/passwd (hashed by mosquitto_passwd) and RUN/mosquitto/acl,
    and RUN/client.json; return (passwd, acl). Also used by docker/compose.yaml.
    `conf_dir` puts passwd and acl elsewhere (the second broker of a bridged
    topology: same users, its own files); `bridge` adds the bridge user."""
    users = broker_users(home, run_dir, bridge=bridge)
    conf_dir = conf_dir or run_dir / "mosquitto"
    conf_dir.mkdir(parents=True, exist_ok=True)
    passwd, acl = conf_dir / "passwd", conf_dir / "acl"
    proc.write_private(passwd, "".join(f"{_safe(u.username)}:{_safe(u.password)}\n" for u in users))
    _hash_passwords(passwd)
    proc.write_private(acl, render_acl(users))
    return passwd, acl


def render_acl(users: list[BrokerUser]) -> str:
    lines = ["# generated by consortium: each member publishes only under its own id, on fixed topics,",
             "# and reads only broadcasts and what is addressed to it"]
    for u in users:
        lines += ["", f"user {_safe(u.username)}"]
        both = [t for t in u.write if t in u.read]
        lines += [f"topic readwrite {_safe(t)}" for t in both]
        lines += [f"topic write {_safe(t)}" for t in u.write if t not in both]
        lines += [f"topic read {_safe(t)}" for t in u.read if t not in both]
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
        f"memory_limit {limits.broker_memory_bytes_max}",
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
    site: Site | None = None


def load_record(run_dir: Path) -> BrokerRecord | None:
    """The broker recorded in `run_dir`, or None if there is none (or it is unreadable)."""
    try:
        data = json.loads((run_dir / RECORD_FILE).read_text(encoding="utf-8"))
        site = data.get("site")
        if site is not None:
            bridge = site["bridge"]
            site = Site(Path(site["creds_dir"]), site["listen"], site["netns"],
                        (str(bridge[0]), int(bridge[1])) if bridge else None)
        return BrokerRecord(kind=data["kind"], host=str(data["host"]), port=int(data["port"]), pid=int(data["pid"]),
                            site=site)
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
        return start_mosquitto(home, run_dir, port=record.port, host=record.host, detach=True, site=record.site)
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
            "accepting": running and port_accepting(record.host, record.port,
                                                    netns=record.site.netns if record.site else None)}


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


def port_accepting(host: str, port: int, timeout_ms: int = limits.broker_probe_timeout_ms,
                   netns: str | None = None) -> bool:
    """True if `host:port` takes TCP connections (seen from network namespace `netns`)."""
    try:
        with netns_socket(netns) as s:
            s.settimeout(timeout_ms / 1000)
            s.connect((host, port))
            return True
    except OSError:
        return False


def netns_socket(netns: str | None) -> socket.socket:
    """A TCP socket of network namespace `netns` (this process's own when None). A
    socket belongs to the namespace it was created in: a short-lived thread enters
    the namespace (setns only moves the calling thread), creates it and ends."""
    if netns is None:
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    made: list[socket.socket | BaseException] = []

    def enter_and_create() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/var/run/netns/{netns}", os.O_RDONLY)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {netns}: {os.strerror(err)}")
                made.append(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            finally:
                os.close(fd)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            made.append(exc)

    worker = threading.Thread(target=enter_and_create, name=f"netns-{netns}")
    worker.start()
    worker.join()
    result = made[0]
    if isinstance(result, BaseException):
        raise result
    return result


_CLONE_NEWNET = 0x40000000  # <sched.h>


def wait_port(host: str, port: int, timeout_ms: int = limits.broker_ready_timeout_ms,
              process: subprocess.Popen[bytes] | None = None, log: Path | None = None,
              netns: str | None = None) -> None:
    """Poll until `host:port` accepts TCP connections; UserError (with the log's
    last lines) if `process` exits first or the timeout passes."""
    deadline = time.monotonic() + timeout_ms / 1000
    delay_ms = limits.broker_probe_delay_ms_min
    while not port_accepting(host, port, netns=netns):
        if process is not None and process.poll() is not None:
            raise UserError(f"broker exited with code {process.returncode} before accepting on "
                            f"{host}:{port}{_quoted(proc.log_tail(log))}")
        if time.monotonic() > deadline:
            raise UserError(f"broker did not accept connections on {host}:{port} within "
                            f"{timeout_ms} ms{_quoted(proc.log_tail(log))}")
        time.sleep(delay_ms / 1000)
        delay_ms = min(delay_ms * 2, limits.broker_probe_delay_ms_max)


def _pick_port(host: str, port: int | None, netns: str | None = None) -> int:
    if port is None:
        if netns is None:
            return free_port(host)
        with netns_socket(netns) as s:
            s.bind((host, 0))
            return int(s.getsockname()[1])
    if not 1 <= port <= 65535:
        raise UserError(f"broker port {port} must be 1..65535")
    if port_accepting(host, port, netns=netns):
        raise UserError(f"{host}:{port} is already in use (is a broker running? try `consortium down`)")
    return port


def _launch(kind: BrokerKind, cmd: list[str], host: str, port: int, run_dir: Path,
            site: Site | None = None) -> Broker:
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir / LOG_FILE
    with open(log, "ab") as log_file:  # the child keeps its own descriptor
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                                   start_new_session=True, close_fds=True)
    broker = Broker(kind=kind, host=host, port=port, pid=process.pid, run_dir=run_dir, _process=process, site=site)
    try:
        wait_port(host, port, process=process, log=log, netns=site.netns if site is not None else None)
        _write_record(run_dir, broker)
    except BaseException:
        broker.stop()
        raise
    return broker


def _write_record(run_dir: Path, broker: Broker) -> None:
    assert broker.pid is not None
    record: dict[str, Any] = {"kind": broker.kind, "host": broker.host, "port": broker.port, "pid": broker.pid}
    if broker.site is not None:
        s = broker.site
        record["site"] = {"creds_dir": str(s.creds_dir), "listen": s.listen, "netns": s.netns,
                          "bridge": list(s.bridge) if s.bridge is not None else None}
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
    auth.add_argument("--bridge-address", default=None, metavar="HOST:PORT",
                      help="bridged topology (docker/compose.bridged.yaml): add the bridge user and write "
                           "RUN/bridge/bridge.conf, the Shanghai broker's bridge to this address (the link relay)")
    args = parser.parse_args(argv)
    try:
        bridged = args.bridge_address is not None
        passwd, acl = write_mosquitto_auth(args.home, args.run_dir, bridge=bridged)
        if bridged:
            host, _, port = args.bridge_address.rpartition(":")
            if not host or not port.isdigit():
                raise UserError(f"--bridge-address: {args.bridge_address!r} is not HOST:PORT")
            lines = render_site(Site(args.run_dir, bridge=(host, int(port))), 0, load_genesis(args.home).chain_id)
            conf = args.run_dir / "bridge" / "bridge.conf"
            conf.parent.mkdir(parents=True, exist_ok=True)
            proc.write_private(conf, "# generated by consortium: the Shanghai broker's bridge\n"
                               + "".join(f"{ln}\n" for ln in lines))
            print(f"wrote {conf}")
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {passwd} and {acl}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
