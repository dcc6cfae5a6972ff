"""Where a client of the bus connects and as whom: the broker's address (given
or recorded in HOME/run), the credentials to use, and a one-shot aiomqtt
connection. Shared by the node runtime, the CLI clients and the benchmarks."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt

from consortium import limits
from consortium.bus import broker as brokers
from consortium.errors import UserError
from consortium.genesis import Genesis
from consortium.home import load_credentials, load_genesis


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a client connects and as whom."""

    host: str
    port: int
    chain_id: str
    keys: Mapping[str, bytes]
    username: str | None = None
    password: str | None = None
    genesis: Genesis | None = field(default=None, compare=False)


def broker_address(home: Path, spec: str | None) -> tuple[str, int]:
    """host, port of `spec` (mqtt://...), else of the broker recorded in HOME/run."""
    if spec:
        return brokers.parse_broker_url(spec)
    record = brokers.load_record(home / "run")
    if record is None:
        raise UserError(f"no broker recorded in {home / 'run'}: pass --broker mqtt://host:port "
                        "or start one with `consortium up`")
    return record.host, record.port


def endpoint(home: Path, broker: str | None, *, as_member: str | None = None) -> Endpoint:
    """A client endpoint for HOME: the given or recorded broker, with credentials.

    Credentials, first found: `as_member`'s own (a member publishing as itself),
    the CLI client user of a broker started from HOME (HOME/run/client.json,
    may publish as any trading party), any member's (read-only use, e.g. in
    docker where client.json lives elsewhere), none (embedded or open brokers)."""
    genesis = load_genesis(home)
    host, port = broker_address(home, broker)
    user, password = _credentials(home, as_member)
    return Endpoint(host, port, genesis.chain_id, genesis.keys(), user, password, genesis)


def _credentials(home: Path, as_member: str | None) -> tuple[str | None, str | None]:
    creds: dict[str, dict[str, str]] = {}
    if (home / "broker" / "credentials.json").exists():
        creds = load_credentials(home)
    if as_member is not None and as_member in creds:
        return creds[as_member]["username"], creds[as_member]["password"]
    if (home / "run" / brokers.CLIENT_FILE).exists():
        return brokers.client_credentials(home / "run")
    if as_member is None:
        for cred in creds.values():
            return cred["username"], cred["password"]
    return None, None


def mqtt_client(ep: Endpoint, name: str) -> aiomqtt.Client:
    """A one-shot MQTT connection to `ep` under a unique client id `name-xxxxxxxx`."""
    return aiomqtt.Client(ep.host, ep.port, username=ep.username, password=ep.password,
                          identifier=f"{name}-{secrets.token_hex(4)}", timeout=limits.client_connect_timeout_ms / 1000)


def connect_problem(ep: Endpoint, exc: BaseException) -> str:
    """One line for a failed MQTT connect: the address and the reason in words,
    e.g. "cannot connect to broker 127.0.0.1:1: connection refused"."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, aiomqtt.MqttCodeError):  # the broker answered and said no (credentials, ACL)
        why = f"refused by the broker ({exc})"
    elif isinstance(cause, ConnectionRefusedError):
        why = "connection refused"
    elif isinstance(cause, socket.gaierror):
        why = f"unknown host ({cause.strerror or cause})"
    elif isinstance(cause, TimeoutError) or "timed out" in str(exc).lower():
        why = f"no answer within {limits.client_connect_timeout_ms / 1000:g} s"
    elif isinstance(cause, OSError) and cause.strerror:
        why = cause.strerror[:1].lower() + cause.strerror[1:]
    else:
        why = str(exc) or type(exc).__name__
    return f"cannot connect to broker {ep.host}:{ep.port}: {why}"


async def check_broker(ep: Endpoint, name: str = "probe") -> None:
    """UserError naming the address and the reason unless the broker accepts an
    MQTT connection with `ep`'s credentials (at once for a refused connection,
    within limits.client_connect_timeout_ms for a silent one)."""
    try:
        async with mqtt_client(ep, name):
            pass
    except aiomqtt.MqttError as exc:
        raise UserError(connect_problem(ep, exc)) from None


def probe_broker(ep: Endpoint) -> None:
    """`check_broker` for code without an event loop."""
    asyncio.run(check_broker(ep))
