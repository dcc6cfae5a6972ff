"""The simulated network: per-link latency and jitter, loss, duplication,
reordering, partitions. Verbs (etcd-io/raft's test network, TigerBeetle's
packet simulator): partition, isolate, drop, duplicate, delay, heal.

All randomness comes from the simulation's one seeded random.Random."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from consortium.types import Jurisdiction


@dataclass(frozen=True, slots=True)
class LinkModel:
    latency_ms: int
    jitter_ms: int


#: Defaults: inside a city a few ms; Shanghai <-> Hong Kong ~ 30 ms one way.
DEFAULT_LINKS: dict[tuple[str, str], LinkModel] = {
    ("CN-SH", "CN-SH"): LinkModel(3, 2),
    ("HK", "HK"): LinkModel(2, 1),
    ("CN-SH", "HK"): LinkModel(30, 8),
}


class Network:
    def __init__(self, rng: random.Random, jurisdictions: Mapping[str, Jurisdiction | str],
                 links: Mapping[tuple[str, str], LinkModel] | None = None) -> None:
        self.rng = rng
        self.where = {n: str(j) for n, j in jurisdictions.items()}
        self.links = dict(links or DEFAULT_LINKS)
        self.blocked: set[tuple[str, str]] = set()  # directed (src, dst) pairs cut
        self.loss = 0.0
        self.dup = 0.0
        self.extra_delay_ms = 0
        self.sent = self.lost = self.cut = self.duplicated = 0
        self._link_of: dict[tuple[str, str], tuple[int, int]] = {}  # (src, dst) -> (latency, jitter), see _latency

    # ------------------------------------------------------------ verbs

    def partition(self, groups: Iterable[Iterable[str]], *, symmetric: bool = True) -> None:
        """Cut every link between different groups (only from earlier to later
        groups if not symmetric). Nodes in no group keep all their links."""
        gs = [sorted(g) for g in groups]
        for i, a in enumerate(gs):
            for j, b in enumerate(gs):
                if i == j or (not symmetric and j < i):
                    continue
                self.blocked.update((x, y) for x in a for y in b)

    def isolate(self, node: str) -> None:
        for other in self.where:
            if other != node:
                self.blocked.update({(node, other), (other, node)})

    def drop(self, probability: float) -> None:
        assert 0.0 <= probability <= 1.0
        self.loss = probability

    def duplicate(self, probability: float) -> None:
        assert 0.0 <= probability <= 1.0
        self.dup = probability

    def delay(self, extra_ms: int) -> None:
        assert extra_ms >= 0
        self.extra_delay_ms = extra_ms

    def heal(self) -> None:
        self.blocked.clear()
        self.loss = self.dup = 0.0
        self.extra_delay_ms = 0

    # ------------------------------------------------------------ transport

    def plan(self, src: str, dst: str) -> list[int]:
        """Delays (ms) at which one message from src reaches dst: [] if lost,
        two entries if duplicated. Jitter reorders messages on a link."""
        self.sent += 1
        if not (self.blocked or self.loss or self.dup):  # a healthy network: one copy, on time
            pair = self._link_of.get((src, dst))
            if pair is not None:  # _latency, inlined (once per message and receiver)
                latency, j = pair
                jitter = self.rng._randbelow(2 * j + 1) - j if j else 0  # type: ignore[attr-defined]
                return [max(1, latency + jitter + self.extra_delay_ms)]
            return [self._latency(src, dst)]
        if (src, dst) in self.blocked:
            self.cut += 1
            return []
        if self.loss and self.rng.random() < self.loss:
            self.lost += 1
            return []
        copies = 2 if self.dup and self.rng.random() < self.dup else 1
        self.duplicated += copies - 1
        out = []
        for _ in range(copies):
            out.append(self._latency(src, dst))
        return out

    def _latency(self, src: str, dst: str) -> int:
        pair = self._link_of.get((src, dst))
        if pair is None:  # where and links never change after construction
            a, b = sorted((self.where.get(src, "HK"), self.where.get(dst, "HK")))
            link = self.links.get((a, b)) or LinkModel(10, 5)
            pair = self._link_of[(src, dst)] = (link.latency_ms, link.jitter_ms)
        latency, j = pair
        # rng.randint(-j, j), as CPython computes it (randrange: start + _randbelow(width)),
        # without its argument checks: the same draws, so the same trace digests
        jitter = self.rng._randbelow(2 * j + 1) - j if j else 0  # type: ignore[attr-defined]
        return max(1, latency + jitter + self.extra_delay_ms)

    def stats(self) -> dict[str, int]:
        return {"sent": self.sent, "lost": self.lost, "cut": self.cut, "duplicated": self.duplicated}
