"""docker/: the compose services match nodes/, and every file parses (docker cannot run here).

The mosquitto.conf of the compose deployment is also started for real with
Debian's mosquitto (paths and port rewritten), so every directive is known to it."""

from __future__ import annotations

import os
import pwd
import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml  # PyYAML: a dependency of amqtt, hence always installed with the package

from consortium import limits
from consortium.bus import broker as brokers
from consortium.home import init_home
from tests.conftest import NODES, ROOT

DOCKER = ROOT / "docker"
DOCKERFILE_INSTRUCTIONS = {"FROM", "RUN", "COPY", "ADD", "WORKDIR", "USER", "ENV", "ARG", "VOLUME", "EXPOSE",
                           "ENTRYPOINT", "CMD", "LABEL", "HEALTHCHECK", "SHELL", "STOPSIGNAL"}


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def _member_ids() -> set[str]:
    return {tomllib.loads(p.read_text())["id"] for p in NODES.glob("*.toml") if p.name != "parties.toml"}


def _conf(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition(" ")
            out.setdefault(key, value)
    return out


def test_compose_has_one_node_service_per_member() -> None:
    services = _compose()["services"]
    assert set(services) == _member_ids() | {"init", "broker", "cli"}
    for member in _member_ids():
        svc = services[member]
        cmd = svc["command"]
        assert cmd[0] == "node" and cmd[cmd.index("--id") + 1] == member
        assert cmd[cmd.index("--home") + 1] == "/data/home"
        assert cmd[cmd.index("--broker") + 1] == "mqtt://broker:1883"
        assert svc["depends_on"]["broker"]["condition"] == "service_healthy"
        assert svc["depends_on"]["init"]["condition"] == "service_completed_successfully"
        assert "consortium-data:/data" in svc["volumes"]
        assert svc["build"]["dockerfile"] == "docker/Dockerfile"
    assert "consortium-data" in _compose()["volumes"]


def test_compose_broker_and_init_agree_with_mosquitto_conf() -> None:
    services = _compose()["services"]
    conf = _conf(DOCKER / "mosquitto.conf")
    broker = services["broker"]
    assert broker["entrypoint"][-1] == "/etc/consortium/mosquitto.conf"
    assert "./mosquitto.conf:/etc/consortium/mosquitto.conf:ro" in broker["volumes"]
    assert conf["listener"].split()[0] == "1883" and "127.0.0.1:1883:1883" in broker["ports"]
    init = " ".join(services["init"]["command"])
    run_dir = Path(shlex.split(init.split("--run-dir", 1)[1])[0])
    assert "python -m consortium.bus.broker auth" in init
    assert conf["password_file"] == str(run_dir / "mosquitto" / "passwd")
    assert conf["acl_file"] == str(run_dir / "mosquitto" / "acl")
    assert conf["allow_anonymous"] == "false" and conf["persistence"] == "false"
    assert int(conf["max_packet_size"]) == limits.broker_packet_bytes_max


def test_dockerfile_parses_and_copies_what_exists() -> None:
    lines = [ln for ln in (DOCKER / "Dockerfile").read_text().splitlines()]
    instructions = []
    continued = False
    for ln in lines:
        if not continued and ln.strip() and not ln.startswith("#"):
            instructions.append(ln.split()[0])
        continued = ln.rstrip().endswith("\\")
    assert instructions[0] == "FROM"
    assert set(instructions) <= DOCKERFILE_INSTRUCTIONS
    for ln in lines:
        if ln.startswith("COPY "):
            for src in ln.split()[1:-1]:
                assert (ROOT / src).exists(), src
    user = next(ln.split()[1] for ln in lines if ln.startswith("USER "))
    assert user != "root"
    assert 'ENTRYPOINT ["consortium"]' in lines


@pytest.mark.broker
def test_compose_mosquitto_conf_runs_on_real_mosquitto(tmp_path: Path) -> None:
    try:
        binary = brokers.find_mosquitto()
    except Exception as exc:
        pytest.skip(f"needs mosquitto: {exc}")
    home = tmp_path / "home"
    init_home(home, NODES, "sh-hk-cargo-1", force=False)
    run_dir = tmp_path / "broker"
    assert brokers.main(["auth", "--home", str(home), "--run-dir", str(run_dir)]) == 0  # as `init` does
    port = brokers.free_port()
    text = (DOCKER / "mosquitto.conf").read_text()
    text = text.replace("listener 1883 0.0.0.0", f"listener {port} 127.0.0.1").replace("/data/broker", str(run_dir))
    if os.geteuid() == 0:  # the image runs it as a normal user; root would switch to 'mosquitto'
        text += f"user {pwd.getpwuid(0).pw_name}\n"
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(text)
    log = tmp_path / "mosquitto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(binary), "-c", str(conf)], stdout=out, stderr=out)
    try:
        brokers.wait_port("127.0.0.1", port, timeout_ms=10_000, process=proc, log=log)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
