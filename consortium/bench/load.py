"""A load process for `consortium bench`: pre-signed ledger transactions, published at a rate.

    python -m consortium.bench.load      (one JSON spec line on stdin, then "go")

Protocol with the bench (lines): reads the spec from stdin; builds and signs
`count` transactions (ledger.workload flows for its own actors, so that no two
load processes share an actor's nonces); connects; prints "ready <count>";
waits for "go" on stdin; publishes at `rate` tx/s (0: as fast as the consortium
absorbs, pausing while any node's mempool plus backlog, read from the status
records, plus what this process sent since the last record, is above
`mempool_high`) for `duration_s` or until the transactions run out; writes one
record per published tx to `out` (32-byte tx hash + 8-byte float wall-clock send
time); prints "done <sent>".

Transactions leave in batches (client.submit.TxBatcher), TX frames sealed by
`sender`; a full frame leaves at once. Paced (`rate` > 0): tx i is due i / rate s
after "go"; the process sleeps until limits.load_flush_ms after the due time of
the first tx not yet sent, then sends every tx due by then (one wake-up per
frame, no fixed tick). `--max`: every limits.load_tick_ms the txs the mempools
have room for, a partial batch within limits.tx_batch_flush_ms. A tx's send time
is the moment it was due when paced (its wait in a batch counts), else the moment
just before its frame is handed to the broker connection (never after it left). Transaction signing happens before "go", so the
measured run spends load-side CPU only on one envelope seal per frame; the load
processes are separate processes so that their CPU is not the bench's or a node's.
"""

from __future__ import annotations

import asyncio
import json
import math
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
from consortium.client.submit import TxBatcher
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


def presign(spec: LoadSpec) -> tuple[list[bytes], list[bytes], TxBatcher]:
    """(signed txs, their hashes, the batcher that seals them into TX frames as `sender`)."""
    genesis = load_genesis(spec.home)
    keys = {a: load_key(spec.home, a, genesis) for a in spec.actors}
    work = Workload(genesis, keys, random.Random(spec.seed), prefix=spec.prefix, concurrency=64)
    txs = work.take(spec.count, time.time_ns() // 1_000_000)
    batcher = TxBatcher(genesis.chain_id, spec.sender, crypto.Signer(keys[spec.sender]))
    return txs, [tx_hash(tx) for tx in txs], batcher


class Mempools:
    """The newest mempool size per node, from the status records (unverified:
    only pacing depends on it, nothing is decided from it)."""

    def __init__(self) -> None:
        self.size: dict[str, int] = {}
        self.records = 0  # status records read so far

    def on_status(self, payload: bytes) -> None:
        try:
            env = codec.decode_unverified(payload)
            info = env.body["info"]
            self.size[env.sender] = int(info.get("mempool", 0)) + int(info.get("tx_backlog", 0))
            self.records += 1
        except Exception:  # noqa: S110 - a broken record only leaves pacing unchanged
            pass

    @property
    def high(self) -> int:
        return max(self.size.values(), default=0)


async def publish(spec: LoadSpec, ep: Endpoint, txs: list[bytes], batcher: TxBatcher) -> list[float]:
    """Publish at the spec's rate (paced) or as fast as the nodes absorb (rate 0), in batches;
    the wall-clock start of each published tx's latency. Paced: the moment the tx was due
    (go + i / rate), so the wait in a batch and any lag of this process count (no
    coordinated omission). --max: the moment its frame is handed to the broker connection
    (read just before the hand-off, so a tx's latency never starts after it left)."""
    sent: list[float] = []
    queued = 0  # txs handed to the batcher (sent + those waiting in it)
    since_record = 0  # this process's txs published since the last status record
    topic = topics.broadcast(ep.chain_id, spec.sender, Kind.TX)
    async with mqtt_client(ep, f"load-{spec.prefix}") as c:

        async def send(frame: bytes | None) -> None:
            nonlocal since_record
            if frame is None:
                return
            k = queued - len(batcher) - len(sent)
            if spec.rate:  # paced: latency starts when the tx was due (its batching wait counts)
                sent.extend(wall0 + i / spec.rate for i in range(len(sent), len(sent) + k))
            else:
                sent.extend([time.time()] * k)
            since_record += k
            await c.publish(topic, frame, qos=0)

        pools = Mempools()
        reader = None
        if spec.rate == 0:  # only --max paces by the nodes' status records
            await c.subscribe(f"{topics.root(ep.chain_id)}/+/{Kind.STATUS}")
            reader = asyncio.create_task(_read_status(c, pools))
        print(f"ready {len(txs)}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "go"
        t0, wall0 = time.monotonic(), time.time()
        cpu0 = time.process_time()
        if spec.rate:
            # One wake-up per frame, at the flush deadline of the first tx not yet sent (tx i
            # is due i / rate s after the start); every tx due by then goes into the frame.
            last = min(len(txs), math.ceil(spec.rate * spec.duration_s))  # the txs due before the end
            end = t0 + spec.duration_s
            while queued < last:
                flush_at = min(t0 + queued / spec.rate + limits.load_flush_ms / 1000, end)
                await asyncio.sleep(max(0.0, flush_at - time.monotonic()))
                due = min(last, int(spec.rate * (time.monotonic() - t0)) + 1)
                while queued < due:
                    frame = batcher.add(txs[queued], 0.0)
                    queued += 1
                    await send(frame)  # a full frame leaves at once
                await send(batcher.seal())
        seen_records = 0
        while spec.rate == 0 and len(sent) < len(txs) and time.monotonic() - t0 < spec.duration_s:
            if pools.records != seen_records:
                seen_records, since_record = pools.records, 0
            # keep the nodes' mempools fed, not flooded
            target = min(len(txs), queued + max(0, spec.mempool_high - pools.high - since_record))
            frames = 0
            while queued < target and frames < limits.load_burst_frames_max:
                frame = batcher.add(txs[queued], time.monotonic() * 1000)
                queued += 1
                if frame is not None:
                    await send(frame)
                    frames += 1
            if batcher.due(time.monotonic() * 1000) or (len(batcher) and queued == target):
                await send(batcher.seal())
            await asyncio.sleep(0 if frames == limits.load_burst_frames_max else limits.load_tick_ms / 1000)
        if reader is not None:
            reader.cancel()
    print(f"cpu {time.process_time() - cpu0:.3f}", flush=True)
    return sent


async def _read_status(c: Any, pools: Mempools) -> None:
    async for message in c.messages:
        if isinstance(message.payload, (bytes, bytearray)):
            pools.on_status(bytes(message.payload))


def main() -> None:
    spec = LoadSpec.from_json(sys.stdin.readline())
    txs, hashes, batcher = presign(spec)
    ep = endpoint(spec.home, spec.broker)
    sent = asyncio.run(publish(spec, ep, txs, batcher))
    with open(spec.out, "wb") as f:
        for h, t in zip(hashes, sent, strict=False):
            f.write(RECORD.pack(h, t))
    print(f"done {len(sent)}", flush=True)


def read_records(path: Path) -> list[tuple[bytes, float]]:
    data = path.read_bytes()
    return [RECORD.unpack_from(data, i) for i in range(0, len(data), RECORD.size)]


if __name__ == "__main__":
    main()
