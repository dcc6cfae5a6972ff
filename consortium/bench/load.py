"""A load process for `consortium bench`: pre-signed ledger transactions, published at a rate.

    python -m consortium.bench.load      (one JSON spec line on stdin, then "go")

Protocol with the bench (lines): reads the spec from stdin; builds and signs
`count` transactions (ledger.workload flows for its own actors, so that no two
load processes share an actor's nonces), each wrapped in a TX envelope sealed
by `sender`; connects; prints "ready <count>"; waits for "go" on stdin;
publishes at `rate` tx/s (0: as fast as the consortium absorbs, pausing while
any node's mempool is above `mempool_high`, read from the status records) for
`duration_s` or until the transactions run out; writes one record per
published tx to `out` (32-byte tx hash + 8-byte float wall-clock send time);
prints "done <sent>".

Signing happens before "go", so the measured run spends no load-side CPU on
signatures; the load processes are separate processes so that their CPU is not
the bench's or a node's.
"""

from __future__ import annotations

import asyncio
import json
import random
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consortium import codec, crypto, limits
from consortium.bus import topics
from consortium.bus.endpoint import Endpoint, endpoint, mqtt_client
from consortium.codec import Kind
from consortium.home import load_genesis, load_key
from consortium.ledger.tx import tx_hash
from consortium.ledger.workload import Workload

RECORD = struct.Struct("<32sd")


@dataclass(frozen=True, slots=True)
class LoadSpec:
    home: Path
    broker: str
    actors: tuple[str, ...]
    sender: str
    prefix: str
    count: int
    rate: int  # tx/s, 0: as fast as the nodes' mempools allow
    seed: int
    duration_s: float
    out: Path
    mempool_high: int = limits.load_mempool_txs_max

    @staticmethod
    def from_json(line: str) -> LoadSpec:
        d: dict[str, Any] = json.loads(line)
        return LoadSpec(Path(d["home"]), d["broker"], tuple(d["actors"]), d["sender"], d["prefix"], int(d["count"]),
                        int(d["rate"]), int(d["seed"]), float(d["duration_s"]), Path(d["out"]),
                        int(d.get("mempool_high", limits.load_mempool_txs_max)))

    def to_json(self) -> str:
        return json.dumps({"home": str(self.home), "broker": self.broker, "actors": list(self.actors),
                           "sender": self.sender, "prefix": self.prefix, "count": self.count, "rate": self.rate,
                           "seed": self.seed, "duration_s": self.duration_s, "out": str(self.out),
                           "mempool_high": self.mempool_high})


def presign(spec: LoadSpec) -> tuple[list[bytes], list[bytes]]:
    """(TX frames, tx hashes): `count` workload transactions, signed and sealed."""
    genesis = load_genesis(spec.home)
    keys = {a: load_key(spec.home, a, genesis) for a in spec.actors}
    work = Workload(genesis, keys, random.Random(spec.seed), prefix=spec.prefix, concurrency=64)
    signer = crypto.Signer(keys[spec.sender])
    txs = work.take(spec.count, time.time_ns() // 1_000_000)
    frames = [codec.seal_envelope(genesis.chain_id, spec.sender, Kind.TX, {"tx": tx}, signer).encode() for tx in txs]
    return frames, [tx_hash(tx) for tx in txs]


class Mempools:
    """The newest mempool size per node, from the status records (unverified:
    only pacing depends on it, nothing is decided from it)."""

    def __init__(self) -> None:
        self.size: dict[str, int] = {}

    def on_status(self, payload: bytes) -> None:
        try:
            env = codec.decode_unverified(payload)
            info = env.body["info"]
            self.size[env.sender] = int(info.get("mempool", 0)) + int(info.get("tx_backlog", 0))
        except Exception:  # noqa: S110 - a broken record only leaves pacing unchanged
            pass

    @property
    def high(self) -> int:
        return max(self.size.values(), default=0)


async def publish(spec: LoadSpec, ep: Endpoint, frames: list[bytes], hashes: list[bytes]) -> list[float]:
    """Publish at the spec's rate; the wall-clock send time of each published frame."""
    sent: list[float] = []
    pools = Mempools()
    topic = topics.broadcast(ep.chain_id, spec.sender, Kind.TX)
    async with mqtt_client(ep, f"load-{spec.prefix}") as c:
        await c.subscribe(f"{topics.root(ep.chain_id)}/+/{Kind.STATUS}")
        reader = asyncio.create_task(_read_status(c, pools))
        print(f"ready {len(frames)}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "go"
        t0 = time.monotonic()
        cpu0 = time.process_time()
        while len(sent) < len(frames):
            elapsed = time.monotonic() - t0
            if elapsed >= spec.duration_s:
                break
            target = len(frames) if spec.rate == 0 else min(len(frames), int(spec.rate * elapsed) + 1)
            if spec.rate == 0 and pools.high > spec.mempool_high:
                target = len(sent)
            burst = 0
            while len(sent) < target and burst < limits.load_burst_frames_max:
                await c.publish(topic, frames[len(sent)], qos=0)
                sent.append(time.time())
                burst += 1
            await asyncio.sleep(0 if burst == limits.load_burst_frames_max else limits.load_tick_ms / 1000)
        reader.cancel()
    print(f"cpu {time.process_time() - cpu0:.3f}", flush=True)
    return sent


async def _read_status(c: Any, pools: Mempools) -> None:
    async for message in c.messages:
        if isinstance(message.payload, (bytes, bytearray)):
            pools.on_status(bytes(message.payload))


def main() -> None:
    spec = LoadSpec.from_json(sys.stdin.readline())
    frames, hashes = presign(spec)
    ep = endpoint(spec.home, spec.broker)
    sent = asyncio.run(publish(spec, ep, frames, hashes))
    with open(spec.out, "wb") as f:
        for h, t in zip(hashes, sent, strict=False):
            f.write(RECORD.pack(h, t))
    print(f"done {len(sent)}", flush=True)


def read_records(path: Path) -> list[tuple[bytes, float]]:
    data = path.read_bytes()
    return [RECORD.unpack_from(data, i) for i in range(0, len(data), RECORD.size)]


if __name__ == "__main__":
    main()
