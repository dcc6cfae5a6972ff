"""Executors: map seeds to Outcomes somewhere, yield them as they finish.

`LocalPool` runs them on a local process pool (all cores by default). The seam
for a cluster is the `Executor` protocol: anything that takes (seed, options)
jobs and yields (seed, Outcome) pairs. Results depend only on the seed and the
options, never on where or in which order they ran (callers sort by seed)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Protocol

from consortium import limits
from consortium.errors import UserError
from consortium.explore.run import Outcome, run_seed
from consortium.explore.schedule import Options


class Executor(Protocol):
    workers: int

    def outcomes(self, seeds: Iterator[int], options: Options, more: Callable[[], bool]) -> Iterator[Outcome]:
        """Run the seeds (while `more()` allows starting another), yield each Outcome as it finishes."""
        ...

    def close(self) -> None: ...


def _ignore_sigint() -> None:
    """Workers ignore Ctrl-C: the parent stops them cleanly (no traceback per worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class LocalPool:
    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool = ProcessPoolExecutor(max_workers=self.workers, initializer=_ignore_sigint)

    def outcomes(self, seeds: Iterator[int], options: Options, more: Callable[[], bool]) -> Iterator[Outcome]:
        inflight: set[Future[Outcome]] = set()
        window = self.workers * limits.explore_inflight_per_worker
        exhausted = False
        while True:
            while not exhausted and len(inflight) < window and more():
                seed = next(seeds, None)
                if seed is None:
                    exhausted = True
                    break
                inflight.add(self._pool.submit(run_seed, seed, options))
            if not inflight:
                return
            done, inflight = wait(inflight, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: f.result().seed):
                yield fut.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def make_executor(workers: int | None, cluster: str | None) -> Executor:
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    if cluster:
        raise UserError(f"--cluster {cluster}: a Dask cluster is not yet supported (run on the local pool: "
                        "leave --cluster out)")
    return LocalPool(workers)
