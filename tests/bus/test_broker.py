"""Broker launch: URLs, generated mosquitto files, records for `down`, no orphans."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from consortium import limits, proc
from consortium.bus import broker as brokers
from consortium.errors import UserError
from tests.bus.conftest import CHAIN, Home, mosquitto_missing, start

ROOT_DIR = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("url, expected", [
    ("mqtt://broker.example:1884", ("broker.example", 1884)),
    ("mqtt://10.0.0.5", ("10.0.0.5", 1883)),
    ("mqtt://[::1]:1885/", ("::1", 1885)),
])
def test_external_urls(url: str, expected: tuple[str, int]) -> None:
    assert brokers.parse_broker_url(url) == expected
    b = brokers.external(url)
    assert (b.kind, b.host, b.port, b.pid) == ("external", *expected, None)
    b.stop()  # nothing to stop, no error


@pytest.mark.parametrize("url", ["http://h:1", "mqtt://", "mqtt://h:99999", "mqtt://h:x", "mqtt://u:p@h:1",
                                 "mqtt://h:1/path", "mqtt://h:0", "mqtts://h:1"])
def test_bad_external_urls(url: str) -> None:
    with pytest.raises(UserError, match="--broker"):
        brokers.parse_broker_url(url)


def test_unknown_broker_spec(home: Home, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--broker"):
        brokers.start_broker("rabbit", home=home.path, run_dir=tmp_path)


def test_mosquitto_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(brokers.shutil, "which", lambda name: None)
    monkeypatch.setattr(brokers, "_MOSQUITTO_PATHS", ("/nonexistent/mosquitto",))
    with pytest.raises(UserError, match="mosquitto is not installed"):
        brokers.find_mosquitto()


@pytest.mark.skipif(mosquitto_missing() is not None, reason="needs mosquitto_passwd")
def test_generated_mosquitto_files(home: Home, tmp_path: Path) -> None:
    conf = brokers.write_mosquitto_config(home.path, tmp_path, host="127.0.0.1", port=18999)
    text = conf.read_text()
    assert "listener 18999 127.0.0.1" in text and "allow_anonymous false" in text
    assert "persistence false" in text
    packet_max = int(text.split("max_packet_size ")[1].split()[0])
    assert packet_max > limits.frame_bytes_max
    acl = (tmp_path / "mosquitto" / "acl").read_text()
    for member in home.genesis.members:  # own fixed topics only; broadcasts and its own direct topics read
        block = acl.split(f"user {member.id}\n")[1].split("\n\n")[0].splitlines()
        assert f"topic write consortium/{CHAIN}/{member.id}/prevote" in block
        assert all(ln.startswith(f"topic write consortium/{CHAIN}/{member.id}/") for ln in block
                   if ln.startswith("topic write"))
        assert [ln for ln in block if ln.startswith("topic read")] == [
            f"topic read consortium/{CHAIN}/+/+", f"topic read consortium/{CHAIN}/+/to/{member.id}/+"]
    client_block = acl.split(f"user {brokers.CLIENT_USER}\n")[1]
    assert {p.id for p in home.genesis.parties} == {
        line.split("/")[2] for line in client_block.splitlines() if line.startswith("topic write")}
    passwd = (tmp_path / "mosquitto" / "passwd").read_text()
    for member, cred in home.creds.items():
        assert f"{cred['username']}:$7$" in passwd and cred["password"] not in passwd  # hashed
    for name in ("mosquitto/passwd", "mosquitto/acl", "client.json"):
        assert (tmp_path / name).stat().st_mode & 0o077 == 0
    assert brokers.client_credentials(tmp_path)[0] == brokers.CLIENT_USER


def test_line_breaks_in_credentials_are_refused() -> None:
    with pytest.raises(UserError, match="line break"):
        brokers.render_acl([brokers.BrokerUser("evil\nuser admin", "p", (), ())])


def test_stale_record_is_removed_without_killing_anyone(tmp_path: Path) -> None:
    # a record whose pid is now some other program (here: this test process)
    (tmp_path / brokers.RECORD_FILE).write_text(
        f'{{"kind": "embedded", "host": "127.0.0.1", "port": 1, "pid": {os.getpid()}}}')
    assert brokers.attach_recorded(tmp_path) is None
    assert brokers.stop_recorded(tmp_path) is False
    assert brokers.load_record(tmp_path) is None
    assert brokers.stop_recorded(tmp_path) is False  # nothing recorded: fine


def test_wait_port_reports_a_broker_that_died(tmp_path: Path) -> None:
    log = tmp_path / "broker.log"
    log.write_text("Error: Address already in use\n")
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait(timeout=10)
    with pytest.raises(UserError, match="exited with code 3.*Address already in use"):
        brokers.wait_port("127.0.0.1", brokers.free_port(), process=proc, log=log)
    with pytest.raises(UserError, match="within 100 ms"):
        brokers.wait_port("127.0.0.1", brokers.free_port(), timeout_ms=100)


@pytest.mark.broker
@pytest.mark.parametrize("kind", ["embedded", "mosquitto"])
def test_start_record_stop(kind: str, home: Home, tmp_path: Path) -> None:
    if kind == "mosquitto" and (missing := mosquitto_missing()):
        pytest.skip(f"mosquitto broker tests need mosquitto: {missing}")
    run_dir = tmp_path / "run"
    broker = start(kind, home, run_dir)
    try:
        assert brokers.port_accepting(broker.host, broker.port)
        record = brokers.load_record(run_dir)
        assert record is not None and (record.kind, record.port, record.pid) == (kind, broker.port, broker.pid)
        assert (run_dir / brokers.PID_FILE).read_text().strip() == str(broker.pid)
        with pytest.raises(UserError, match="already in use"):
            start(kind, home, tmp_path / "other", port=broker.port)
        attached = brokers.attach_recorded(run_dir)
        assert attached is not None and attached.pid == broker.pid
        assert brokers.stop_recorded(run_dir) is True  # as `consortium down` would, from another process
        deadline = time.monotonic() + 5
        while brokers.port_accepting(broker.host, broker.port):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert not broker.alive() and brokers.load_record(run_dir) is None
    finally:
        broker.stop()


@pytest.mark.broker
def test_embedded_broker_dies_with_its_parent(tmp_path: Path) -> None:
    """A CLI or test run that crashes leaves no embedded broker behind."""
    script = ("import sys; from pathlib import Path; from consortium.bus import broker as b; "
              "x = b.start_embedded(Path(sys.argv[1])); print(x.pid, x.port, flush=True)")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT_DIR, capture_output=True,
                         text=True, timeout=30)
    pid, port = map(int, out.stdout.split())
    deadline = time.monotonic() + 10
    while proc.pid_alive(pid):
        assert time.monotonic() < deadline, "embedded broker outlived its parent"
        time.sleep(0.1)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
