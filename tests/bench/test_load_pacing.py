"""The paced load process of `consortium bench --rate` against a real broker: which txs
leave, in which frames, and the send time each tx is measured from."""

from __future__ import annotations

import asyncio
import io
import math
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from consortium import codec, limits
from consortium.bench import live, load
from consortium.bus import broker as brokers
from consortium.bus import topics
from consortium.bus.endpoint import Endpoint, endpoint, mqtt_client
from consortium.node import launch
from tests.bus.conftest import mosquitto_missing

pytestmark = pytest.mark.broker

RATE = 250  # tx/s: one tx due every 4 ms
DURATION_S = 1.0


@pytest.fixture(scope="module")
def bench_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    home = tmp_path_factory.mktemp("load") / "home"
    live.make_home(home, 1, 1)
    b = brokers.start_broker("embedded" if mosquitto_missing() else "mosquitto", home=home,
                             run_dir=launch.run_dir(home))
    try:
        yield home, b.url
    finally:
        b.stop()


class Observer(threading.Thread):
    """A subscriber on its own thread and event loop: (receipt wall-clock time, TX frame)."""

    def __init__(self, ep: Endpoint) -> None:
        super().__init__(daemon=True)
        self.ep, self.frames = ep, []  # type: ignore[var-annotated]
        self.ready, self.stop = threading.Event(), threading.Event()

    def run(self) -> None:
        async def watch() -> None:
            async with mqtt_client(self.ep, "test-observer") as c:
                await c.subscribe(f"{topics.root(self.ep.chain_id)}/+/tx")
                self.ready.set()
                async for m in c.messages:
                    self.frames.append((time.time(), bytes(m.payload)))  # type: ignore[arg-type]

        async def main() -> None:
            task = asyncio.create_task(watch())
            while not self.stop.is_set():
                await asyncio.sleep(0.01)
            task.cancel()

        asyncio.run(main())


def test_paced_load_sends_every_due_tx_once_in_full_frames_stamped_before_the_hand_off(
        bench_home: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A paced load process (rate R, limits.load_flush_ms = F) sends exactly the txs due
    before the end of its run (tx i is due i / R s after the start), each once and in
    order; every frame but the last carries every tx due by its first tx's due time + F,
    so at least ceil(R * F) txs; and each tx's latency starts at its due time (go + i / R:
    its wait in a batch and any lag of the publisher count, no coordinated omission),
    never after a subscriber received its frame, even when other work holds the
    publisher's event loop (a neighbour blocking it 5 ms per turn here)."""
    home, url = bench_home
    actors = tuple(f"l1-{r}" for r in ("carrier", "bank", "shipper", "consignee"))
    spec = load.LoadSpec(home, url, actors, "l1-shipper", "L1", int(RATE * DURATION_S) + 50, RATE, 1,
                         DURATION_S, tmp_path / "load.bin")
    txs, _hashes, batcher = load.presign(spec)
    ep = endpoint(home, url)
    observer = Observer(ep)
    observer.start()
    assert observer.ready.wait(10)

    async def run() -> list[float]:
        async def neighbour() -> None:  # other work on the publisher's loop
            while True:
                time.sleep(0.005)
                await asyncio.sleep(0)

        busy = asyncio.create_task(neighbour())
        try:
            return await load.publish(spec, ep, txs, batcher)
        finally:
            busy.cancel()

    monkeypatch.setattr(sys, "stdin", io.StringIO("go\n"))  # the bench's start signal
    sent = asyncio.run(run())
    deadline = time.monotonic() + 10
    while sum(len(codec.decode_unverified(f).body["txs"]) for _, f in observer.frames) < len(sent):
        assert time.monotonic() < deadline, "the subscriber did not get every frame"
        time.sleep(0.02)
    observer.stop.set()
    observer.join(10)

    assert len(sent) == math.ceil(RATE * DURATION_S)
    on_wire = [(t, codec.decode_unverified(f).body["txs"]) for t, f in observer.frames]
    assert [tx for _, batch in on_wire for tx in batch] == txs[:len(sent)]
    least = math.ceil(RATE * limits.load_flush_ms / 1000)  # the tx due at the deadline itself may miss it
    assert all(len(batch) >= least for _, batch in on_wire[:-1]), [len(b) for _, b in on_wire]
    assert all(abs(s - (sent[0] + i / RATE)) < 1e-6 for i, s in enumerate(sent)), "not the due times"
    received = [t for t, batch in on_wire for _ in batch]
    late = [(s, r) for s, r in zip(sent, received, strict=True) if s > r]
    assert not late, f"{len(late)} txs stamped after their frame arrived, e.g. {late[0]}"
