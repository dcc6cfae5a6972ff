"""The link between two jurisdictions' brokers, as a fault-injecting TCP relay.

The Shanghai broker's bridge connection (mosquitto's own bridge) runs through
this relay to the Hong Kong broker: `python -m consortium.bus.relay --listen
H:P --target H:P --run-dir RUN`. Every chunk of bytes is held for the WAN's
one-way latency plus a random jitter (order is kept: a chunk never overtakes
the one before it), and the relay obeys commands (`consortium link ...`):

- `cut`: every connection through the link is reset at once and new ones are
  refused (as a router answering "unreachable"); the bridge retries by itself.
- `cut-oneway` (from A or from B): bytes in that direction are silently lost;
  the other direction flows. MQTT's keepalive on the bridge notices within
  1.5 keepalive intervals and reconnects, which then cannot complete.
- `heal`: forward again; every connection that lost bytes is reset first (a
  TCP stream with a hole in it is no MQTT stream any more).
- `set`: new latency / jitter.
- MQTT-level faults (consortium.bus.nemesis, a relay in front of one node's broker
  connection): `rate_bps` caps the bytes per second each direction carries (a slow
  consumer: what does not fit waits in the relay, then in the broker, TCP backpressure),
  and with `--mqtt` the relay reads the broker-to-client direction ("b-a") as MQTT
  packets and delivers each PUBLISH twice with probability `duplicate` (what a QoS 1
  redelivery puts on the subscriber's socket: the same PUBLISH again, DUP set where its
  QoS allows), counted in `duplicated`.

Control is a file, so that it works across network namespaces and needs no
port: the CLI writes RUN/link.json `{"seq": n, "mode": ..., ...}` atomically,
the relay polls it every `limits.relay_control_poll_ms`, applies it and writes
RUN/link.state.json with the applied `seq` and its counters (the CLI waits for
that `seq`). RUN/relay.json records the relay process (pid, addresses).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from consortium import limits, proc
from consortium.errors import UserError

CONTROL_FILE = "link.json"
STATE_FILE = "link.state.json"
RECORD_FILE = "relay.json"
LOG_FILE = "relay.log"

Mode = Literal["up", "cut", "cut-oneway"]
#: The two directions of the link: "a" is the side that connects (the bridge's
#: origin, Shanghai), "b" the side it connects to (Hong Kong).
DIRECTIONS = ("a-b", "b-a")


@dataclass(frozen=True, slots=True)
class LinkCommand:
    seq: int
    mode: Mode = "up"
    lost: str | None = None  # with cut-oneway: the direction whose bytes are lost ("a-b" or "b-a")
    latency_ms: int = limits.relay_rtt_ms_default // 2  # one way
    jitter_ms: int = limits.relay_jitter_ms_default
    rate_bps: int = 0  # bytes per second each direction carries; 0: no limit
    duplicate: float = 0.0  # with --mqtt: probability that a PUBLISH to the client is delivered twice

    @staticmethod
    def parse(data: Any) -> LinkCommand:
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        mode = data.get("mode", "up")
        if mode not in ("up", "cut", "cut-oneway"):
            raise ValueError(f"mode {mode!r}")
        lost = data.get("lost")
        if (mode == "cut-oneway") != (lost in DIRECTIONS):
            raise ValueError(f"lost {lost!r} with mode {mode!r}")
        latency, jitter = data.get("latency_ms", 0), data.get("jitter_ms", 0)
        for name, v in (("latency_ms", latency), ("jitter_ms", jitter)):
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= limits.relay_latency_ms_max:
                raise ValueError(f"{name} {v!r} is not 0..{limits.relay_latency_ms_max}")
        seq = data.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise ValueError("seq is not a number")
        rate, dup = data.get("rate_bps", 0), data.get("duplicate", 0.0)
        if not isinstance(rate, int) or isinstance(rate, bool) or not (
                rate == 0 or limits.relay_rate_bps_min <= rate <= limits.relay_rate_bps_max):
            raise ValueError(f"rate_bps {rate!r} is not 0 or {limits.relay_rate_bps_min}..{limits.relay_rate_bps_max}")
        if not isinstance(dup, (int, float)) or isinstance(dup, bool) or not 0 <= dup <= 1:
            raise ValueError(f"duplicate {dup!r} is not a probability 0..1")
        return LinkCommand(seq, mode, lost if mode == "cut-oneway" else None, latency, jitter, rate, float(dup))


@dataclass
class Counters:
    connections: int = 0
    refused: int = 0
    resets: int = 0
    bytes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DIRECTIONS, 0))
    lost_bytes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DIRECTIONS, 0))
    duplicated: int = 0  # PUBLISH packets delivered twice (--mqtt, `duplicate`)


class _Pipe:
    """One TCP connection through the relay: two pumps, each holding chunks for the latency."""

    def __init__(self, relay: Relay, a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 b: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        self.relay = relay
        self.writers = (a[1], b[1])
        self.lost_bytes = False  # a chunk was discarded: reset on heal
        self.tasks = [asyncio.create_task(self._pump(a[0], b[1], "a-b")),
                      asyncio.create_task(self._pump(b[0], a[1], "b-a"))]

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, direction: str) -> None:
        queue: deque[tuple[float, bytes]] = deque()
        ready = asyncio.Event()
        sender = asyncio.create_task(self._send(queue, ready, dst))
        last_due = 0.0
        packets = MqttFramer() if self.relay.mqtt and direction == "b-a" else None
        try:
            while True:
                while len(queue) * limits.relay_chunk_bytes_max > limits.relay_held_bytes_max:
                    await asyncio.sleep(limits.relay_control_poll_ms / 1000)  # the far side is slow: stop reading
                chunk = await src.read(limits.relay_chunk_bytes_max)
                if not chunk:
                    break
                cmd = self.relay.command
                if cmd.mode == "cut" or (cmd.mode == "cut-oneway" and cmd.lost == direction):
                    self.lost_bytes = True
                    self.relay.counters.lost_bytes[direction] += len(chunk)
                    continue
                if packets is not None:
                    chunk = self._duplicate(packets.feed(chunk), cmd.duplicate)
                    if not chunk:
                        continue
                self.relay.counters.bytes[direction] += len(chunk)
                delay_ms = cmd.latency_ms + (self.relay.rng.uniform(-cmd.jitter_ms, cmd.jitter_ms)
                                             if cmd.jitter_ms else 0.0)
                last_due = max(time.monotonic() + max(delay_ms, 0.0) / 1000, last_due)  # order kept
                if cmd.rate_bps:  # a slow link: a chunk leaves once the ones before it are through
                    last_due += len(chunk) / cmd.rate_bps
                queue.append((last_due, chunk))
                ready.set()
        except (ConnectionError, OSError):
            pass
        finally:
            queue.append((0.0, b""))  # end of stream: the sender closes after what is queued
            ready.set()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await sender
            self.close()

    def _duplicate(self, packets: list[bytes], p: float) -> bytes:
        """The packets again as bytes, each PUBLISH twice with probability p (the copy
        with DUP set when its QoS is 1 or 2; MQTT forbids DUP on QoS 0)."""
        out = []
        for pkt in packets:
            out.append(pkt)
            if p and pkt[0] >> 4 == _PUBLISH and self.relay.rng.random() < p:
                out.append(bytes([pkt[0] | 0x08]) + pkt[1:] if pkt[0] & 0x06 else pkt)
                self.relay.counters.duplicated += 1
        return b"".join(out)

    @staticmethod
    async def _send(queue: deque[tuple[float, bytes]], ready: asyncio.Event, dst: asyncio.StreamWriter) -> None:
        while True:
            while not queue:
                ready.clear()
                await ready.wait()
            due, chunk = queue.popleft()
            if not chunk:
                return
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            dst.write(chunk)
            await dst.drain()

    def close(self) -> None:
        for w in self.writers:
            with contextlib.suppress(Exception):
                w.transport.abort()  # an RST, not a polite close: what a cut link looks like
        self.relay.pipes.discard(self)


_PUBLISH = 3  # MQTT control packet type


class MqttFramer:
    """Cuts a byte stream into whole MQTT control packets (fixed header: type and flags,
    then the remaining length as 1-4 bytes of 7 bits); keeps an incomplete tail."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        self.buf += chunk
        out, i, n = [], 0, len(self.buf)
        while n - i >= 2:
            length, shift, j = 0, 0, i + 1
            while j < n and shift <= 21:
                byte = self.buf[j]
                length |= (byte & 0x7F) << shift
                j += 1
                shift += 7
                if not byte & 0x80:
                    break
            else:
                if shift > 21:  # not MQTT: pass the rest through as it is
                    out.append(bytes(self.buf[i:]))
                    i = n
                break  # the length is not complete yet
            if j + length > n:
                break
            out.append(bytes(self.buf[i:j + length]))
            i = j + length
        del self.buf[:i]
        return out


class Relay:
    """The relay process's state: connections, command in force, counters."""

    def __init__(self, target: tuple[str, int], run_dir: Path, seed: int | None, mqtt: bool = False) -> None:
        self.mqtt = mqtt  # frame the b-a direction as MQTT packets (duplication)
        self.target = target
        self.run_dir = run_dir
        self.rng = random.Random(seed)
        self.command = LinkCommand(0)
        self.counters = Counters()
        self.pipes: set[_Pipe] = set()

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.command.mode == "cut":
            self.counters.refused += 1
            writer.transport.abort()
            return
        try:
            b = await asyncio.wait_for(asyncio.open_connection(*self.target),
                                       limits.relay_connect_timeout_ms / 1000)
        except (OSError, TimeoutError):
            self.counters.refused += 1
            writer.transport.abort()
            return
        self.counters.connections += 1
        self.pipes.add(_Pipe(self, (reader, writer), b))

    def apply(self, cmd: LinkCommand) -> None:
        old = self.command
        self.command = cmd
        if cmd.mode == "cut":
            self._reset(lambda p: True)
        elif old.mode != "up" and cmd.mode == "up" or cmd.mode == "cut-oneway" and old.lost != cmd.lost:
            self._reset(lambda p: p.lost_bytes)

    def _reset(self, which: Any) -> None:
        for pipe in list(self.pipes):
            if which(pipe):
                self.counters.resets += 1
                pipe.close()

    def state(self) -> dict[str, Any]:
        return {"seq": self.command.seq, "mode": self.command.mode, "lost": self.command.lost,
                "latency_ms": self.command.latency_ms, "jitter_ms": self.command.jitter_ms,
                "rate_bps": self.command.rate_bps, "duplicate": self.command.duplicate,
                "open": len(self.pipes), **asdict(self.counters), "pid": os.getpid(),
                "time_ms": time.time_ns() // 1_000_000}

    def write_state(self) -> None:
        proc.write_atomic(self.run_dir / STATE_FILE, json.dumps(self.state()) + "\n")

    async def watch_control(self) -> None:
        path = self.run_dir / CONTROL_FILE
        seen: float | None = None
        written = 0.0
        while True:
            try:
                mtime = path.stat().st_mtime_ns
            except FileNotFoundError:
                mtime = None
            if mtime is not None and mtime != seen:
                seen = mtime
                try:
                    self.apply(LinkCommand.parse(json.loads(path.read_text(encoding="utf-8"))))
                    written = 0.0  # confirm at once
                except (OSError, ValueError) as exc:
                    print(f"relay: ignoring {path}: {exc}", file=sys.stderr, flush=True)
            if time.monotonic() - written >= limits.relay_state_heartbeat_ms / 1000:
                self.write_state()  # also a heartbeat: readers in other pid namespaces (docker) see it runs
                written = time.monotonic()
            await asyncio.sleep(limits.relay_control_poll_ms / 1000)


# ---------------------------------------------------------------- control (the CLI side)


def write_command(run_dir: Path, mode: Mode, *, lost: str | None = None, latency_ms: int | None = None,
                  jitter_ms: int | None = None, wait: bool = True, rate_bps: int | None = None,
                  duplicate: float | None = None) -> dict[str, Any]:
    """Ask the relay of RUN to cut / heal / cut one way / change latency; wait until it
    applied it (its state file shows the new seq) and return that state. Latency and
    jitter not given stay as they are."""
    current = read_state(run_dir)
    if current is None:
        raise UserError(f"no link relay recorded in {run_dir} (start a bridged consortium: "
                        "`consortium up --topology bridged`)")
    if not is_fresh(current):
        raise UserError(f"the link relay of {run_dir} is not running (its state is older than "
                        f"{limits.relay_state_stale_ms} ms; pid {current.get('pid')})")
    seq = int(current["seq"]) + 1
    data = {"seq": seq, "mode": mode, "lost": lost,
            "latency_ms": current["latency_ms"] if latency_ms is None else latency_ms,
            "jitter_ms": current["jitter_ms"] if jitter_ms is None else jitter_ms,
            "rate_bps": current.get("rate_bps", 0) if rate_bps is None else rate_bps,
            "duplicate": current.get("duplicate", 0.0) if duplicate is None else duplicate}
    try:
        LinkCommand.parse(data)
    except ValueError as exc:
        raise UserError(f"link: {exc}") from None
    proc.write_atomic(run_dir / CONTROL_FILE, json.dumps(data) + "\n")
    if not wait:
        return data
    deadline = time.monotonic() + limits.relay_ack_timeout_ms / 1000
    while True:
        state = read_state(run_dir)
        if state is not None and state.get("seq") == seq:
            return state
        if time.monotonic() > deadline:
            raise UserError(f"the link relay did not apply the command within {limits.relay_ack_timeout_ms} ms")
        time.sleep(limits.relay_control_poll_ms / 1000)


def read_state(run_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((run_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "seq" in data else None


def is_fresh(state: dict[str, Any]) -> bool:
    """The relay wrote this state lately: it runs (works across pid namespaces, unlike a pid)."""
    age_ms = time.time_ns() // 1_000_000 - int(state.get("time_ms", 0))
    return age_ms < limits.relay_state_stale_ms


def load_record(run_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((run_dir / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("pid"), int) else None


def is_relay(pid: int) -> bool:
    args = proc.cmdline(pid)
    return bool(args) and b"consortium.bus.relay" in b" ".join(args)


# ---------------------------------------------------------------- the process


async def _serve(args: argparse.Namespace) -> None:
    relay = Relay((args.target_host, args.target_port), args.run_dir, args.seed, mqtt=args.mqtt)
    relay.command = LinkCommand(0, "up", None, args.latency_ms, args.jitter_ms)
    (args.run_dir / CONTROL_FILE).unlink(missing_ok=True)  # a command of an earlier run is not ours
    relay.write_state()
    server = await asyncio.start_server(relay.accept, args.listen_host, args.listen_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.create_task(relay.watch_control())
    parent = asyncio.create_task(_watch_parent(args.parent_pid, stop)) if args.parent_pid else None
    async with server:
        await stop.wait()
    for task in (watcher, parent):
        if task is not None:
            task.cancel()
    relay._reset(lambda p: True)


async def _watch_parent(pid: int, stop: asyncio.Event) -> None:
    while proc.pid_alive(pid):
        await asyncio.sleep(limits.relay_control_poll_ms / 1000)
    stop.set()


def _addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m consortium.bus.relay", description=__doc__.split("\n\n")[0])
    p.add_argument("--listen", type=_addr, required=True)
    p.add_argument("--target", type=_addr, required=True)
    p.add_argument("--run-dir", type=Path, required=True)
    p.add_argument("--latency-ms", type=int, default=limits.relay_rtt_ms_default // 2, help="one way")
    p.add_argument("--jitter-ms", type=int, default=limits.relay_jitter_ms_default)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--parent-pid", type=int, default=None)
    p.add_argument("--mqtt", action="store_true", help="read the target-to-client direction as MQTT packets "
                   "(needed for `duplicate`)")
    args = p.parse_args(argv)
    args.listen_host, args.listen_port = args.listen
    args.target_host, args.target_port = args.target
    try:
        asyncio.run(_serve(args))
    except OSError as exc:
        print(f"error: relay cannot listen on {args.listen_host}:{args.listen_port}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
