"""Executors for exploration: seeds -> Outcomes on the package's one executor
(consortium.executor: the local process pool or a Dask cluster, shared with
`consortium sweep`), yielded as they finish.

Results depend only on the seed and the options, never on where or in which
order they ran (callers sort by seed)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from consortium import executor as _executor
from consortium.explore.run import Outcome, run_seed
from consortium.explore.schedule import Options


class Executor(Protocol):
    workers: int

    def outcomes(self, seeds: Iterator[int], options: Options, more: Callable[[], bool]) -> Iterator[Outcome]:
        """Run the seeds (while `more()` allows starting another), yield each Outcome as it finishes."""
        ...

    def close(self) -> None: ...


class Explorer:
    """Explore's view of a generic executor: each job is run_seed(seed, options)."""

    def __init__(self, inner: _executor.Executor) -> None:
        self.inner = inner
        self.workers = inner.workers
        self.where = inner.where

    def outcomes(self, seeds: Iterator[int], options: Options, more: Callable[[], bool]) -> Iterator[Outcome]:
        return self.inner.map(run_seed, ((s, options) for s in seeds), more)

    def close(self) -> None:
        self.inner.close()


class LocalPool(Explorer):
    """The local process pool (all cores by default)."""

    def __init__(self, workers: int | None = None) -> None:
        super().__init__(_executor.LocalPool(workers))


def make_executor(workers: int | None, cluster: str | None) -> Explorer:
    """The local pool, or with `cluster` the Dask scheduler at tcp://HOST:PORT."""
    return Explorer(_executor.make_executor(workers, cluster))
