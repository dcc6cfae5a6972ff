"""Broker fixtures: real brokers as real processes on 127.0.0.1, killed in teardown.

`broker` is parametrized over the embedded broker (amqtt) and mosquitto; the
mosquitto cases are skipped, with the reason, only when mosquitto is absent.
Tests are plain functions that run their coroutine under `run()` with a hard
timeout, so no asyncio pytest plugin is needed and no test can hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from consortium import crypto
from consortium.bus import broker as brokers
from consortium.bus.adapter import BusAdapter
from consortium.errors import UserError
from consortium.genesis import Genesis
from consortium.home import init_home, load_credentials, load_key
from tests.conftest import NODES

CHAIN = "sh-hk-cargo-1"
TEST_TIMEOUT_S = 30


def run(coro: Coroutine[Any, Any, Any], timeout_s: float = TEST_TIMEOUT_S) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout_s))


def mosquitto_missing() -> str | None:
    try:
        brokers.find_mosquitto()
    except UserError as exc:
        return str(exc)
    return None


@dataclass
class Home:
    path: Path
    genesis: Genesis
    creds: dict[str, dict[str, str]]

    def signer(self, ident: str) -> crypto.Signer:
        return crypto.Signer(load_key(self.path, ident, self.genesis))


@pytest.fixture(scope="session")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    path = tmp_path_factory.mktemp("bus") / "home"
    genesis = init_home(path, NODES, CHAIN, force=False)
    return Home(path, genesis, load_credentials(path))


def start(kind: str, home: Home, run_dir: Path, port: int | None = None) -> brokers.Broker:
    return brokers.start_broker(kind, home=home.path, run_dir=run_dir, port=port)


@pytest.fixture(params=["embedded", "mosquitto"])
def broker(request: pytest.FixtureRequest, home: Home, tmp_path: Path) -> Iterator[brokers.Broker]:
    kind = request.param
    if kind == "mosquitto" and (missing := mosquitto_missing()):
        pytest.skip(f"mosquitto broker tests need mosquitto: {missing}")
    handle = start(kind, home, tmp_path / "run")
    try:
        yield handle
    finally:
        handle.stop()  # also after a failed test: no orphan broker


@contextlib.contextmanager
def running_mosquitto(home: Home, run_dir: Path) -> Iterator[brokers.Broker]:
    """A mosquitto for one test (skipped, with the reason, when mosquitto is absent);
    stopped afterwards, also when the test had SIGSTOPped it and failed."""
    if missing := mosquitto_missing():
        pytest.skip(f"mosquitto broker tests need mosquitto: {missing}")
    handle = start("mosquitto", home, run_dir)
    try:
        yield handle
    finally:
        if handle.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(handle.pid, signal.SIGCONT)
        handle.stop()


@pytest.fixture
def mosquitto(home: Home, tmp_path: Path) -> Iterator[brokers.Broker]:
    with running_mosquitto(home, tmp_path / "run") as handle:
        yield handle


def adapter(broker: brokers.Broker, home: Home, node_id: str | None, *,
            password: str | None = None, **kw: Any) -> BusAdapter:
    """A member's adapter with its broker credentials (ignored by the embedded broker);
    an observer uses the CLI client user."""
    username = node_id if node_id in home.creds else None
    if username is not None and password is None:
        password = home.creds[username]["password"]
    if node_id is None and broker.kind == "mosquitto":
        assert broker.run_dir is not None
        username, password = brokers.client_credentials(broker.run_dir)
    return BusAdapter(host=broker.host, port=broker.port, chain_id=CHAIN, node_id=node_id,
                      keys=home.genesis.keys(), username=username, password=password, **kw)
