"""One executor for `consortium explore` and `consortium sweep`: map jobs (the
arguments of a module-level function) to results somewhere, yield each result as
it finishes.

- `LocalPool`: a local process pool (all cores by default).
- `DaskCluster`: an existing Dask distributed scheduler (`--cluster tcp://HOST:PORT`;
  `pip install 'consortium[cluster]'`). Its workers import this package, so they
  run the same code (and read scenario files at the same paths).

A result depends only on its job (the function and its arguments: a seed and
options), never on where or in which order it ran, so callers sort results by
their job and get the same list from either executor. The module is generic: it
imports no layer of the package (the job functions are passed in), so every layer
above the simulator can use it."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol, TypeVar

from consortium import limits
from consortium.errors import ConsortiumError, UserError

R = TypeVar("R")
_ADDRESS = re.compile(r"^(tcp|tls)://(?P<host>[^\s:/]+):(?P<port>\d{1,5})$")


def _always() -> bool:
    return True


class Executor(Protocol):
    workers: int
    where: str  # "local" or the scheduler's address

    def map(self, fn: Callable[..., R], jobs: Iterable[tuple[Any, ...]],
            more: Callable[[], bool] = _always) -> Iterator[R]:
        """Run fn(*job) for each job (starting another only while `more()` allows),
        yield each result as it finishes."""
        ...

    def close(self) -> None:
        """Stop: cancel what has not started, wait for nothing else."""
        ...


def _ignore_sigint() -> None:
    """Workers ignore Ctrl-C: the parent stops them cleanly (no traceback per worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def _sigint_as_flag() -> Iterator[Callable[[], bool]]:
    """While inside: SIGINT only sets a flag (a list cell: no lock a signal could find
    held) that the caller polls; outside the main thread, where Python delivers no
    signals, a flag that never rises."""
    hit = [False]
    if threading.current_thread() is not threading.main_thread():
        yield lambda: hit[0]
        return

    def note(signum: int, frame: Any) -> None:
        hit[0] = True

    previous = signal.signal(signal.SIGINT, note)
    try:
        yield lambda: hit[0]
    finally:
        signal.signal(signal.SIGINT, previous)


class LocalPool:
    where = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool = ProcessPoolExecutor(max_workers=self.workers, initializer=_ignore_sigint)

    def map(self, fn: Callable[..., R], jobs: Iterable[tuple[Any, ...]],
            more: Callable[[], bool] = _always) -> Iterator[R]:
        """Ctrl-C raises KeyboardInterrupt here, between submits and waits, never inside
        the pool's own code: raised at an arbitrary bytecode (Python's default) it could
        land in submit() or in a queue's lock, after which shutdown() waited for ever
        (seen once jobs got short: the parent spends its time submitting)."""
        inflight: dict[Future[R], int] = {}
        window = self.workers * limits.executor_inflight_per_worker
        it = iter(jobs)
        exhausted = False
        n = 0
        with _sigint_as_flag() as interrupted:
            while True:
                while not exhausted and len(inflight) < window and more() and not interrupted():
                    job = next(it, None)
                    if job is None:
                        exhausted = True
                        break
                    inflight[self._pool.submit(fn, *job)] = n
                    n += 1
                if interrupted():
                    raise KeyboardInterrupt
                if not inflight:
                    return
                done, _ = wait(inflight, timeout=limits.executor_interrupt_poll_ms / 1000,
                               return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=inflight.__getitem__):  # same batch, job order
                    del inflight[fut]
                    yield fut.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskCluster:
    """Jobs go to an existing Dask distributed scheduler; `workers` is the number of
    worker threads it has (the window of jobs in flight scales with it)."""

    def __init__(self, address: str) -> None:
        m = _ADDRESS.match(address)
        if not m:
            raise UserError(f"--cluster {address!r}: expected a Dask scheduler address like tcp://HOST:PORT")
        try:  # a plain TCP connect first: a refused or silent address is reported at once, not after a handshake
            socket.create_connection((m["host"], int(m["port"])), limits.cluster_connect_timeout_ms / 1000).close()
        except OSError as exc:
            raise UserError(f"--cluster {address}: no scheduler reachable there "
                            f"({exc.strerror or exc.__class__.__name__})") from None
        try:
            import distributed
        except ImportError:
            raise UserError(f"--cluster {address}: needs dask.distributed (pip install 'consortium[cluster]')"
                            ) from None
        self._distributed: Any = distributed  # its Client is untyped (mypy)
        self.where = address
        try:
            self._client: Any = self._distributed.Client(address, timeout=limits.cluster_handshake_timeout_ms / 1000,
                                              set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise UserError(f"--cluster {address}: no Dask scheduler answers there within "
                            f"{limits.cluster_handshake_timeout_ms / 1000:g} s ({exc.__class__.__name__})") from None
        threads = sum(int(w.get("nthreads", 1)) for w in self._client.scheduler_info()["workers"].values())
        if threads == 0:
            self._client.close()
            raise UserError(f"--cluster {address}: the scheduler has no workers (start some: "
                            f"dask worker {address})")
        self.workers = threads
        self._inflight: dict[Any, int] = {}

    def map(self, fn: Callable[..., R], jobs: Iterable[tuple[Any, ...]],
            more: Callable[[], bool] = _always) -> Iterator[R]:
        dist = self._distributed
        inflight = self._inflight
        window = self.workers * limits.executor_inflight_per_worker
        it = iter(jobs)
        done = dist.as_completed(loop=self._client.loop)  # this client's futures (no default client)
        n = 0
        try:
            def fill() -> None:
                nonlocal n
                while len(inflight) < window and more():
                    job = next(it, None)
                    if job is None:
                        return
                    fut = self._client.submit(fn, *job, pure=False)
                    inflight[fut] = n
                    done.add(fut)
                    n += 1

            fill()
            for fut in done:
                del inflight[fut]
                yield fut.result()
                fill()
        except (OSError, TimeoutError, dist.CancelledError, dist.comm.CommClosedError) as exc:
            raise ConsortiumError(f"--cluster {self.where}: lost the Dask scheduler or its workers "
                                  f"({exc.__class__.__name__}: {exc})") from None

    def close(self) -> None:
        if self._inflight:
            self._client.cancel(list(self._inflight))
            self._inflight.clear()
        self._client.close()


def make_executor(workers: int | None = None, cluster: str | None = None) -> Executor:
    """The local pool (`workers` processes, default all cores) or, with `cluster`, the
    Dask scheduler at that address (UserError if it does not answer in time)."""
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    if cluster:
        if workers is not None:
            raise UserError("give --workers or --cluster, not both (a cluster's size is its workers')")
        return DaskCluster(cluster)
    return LocalPool(workers)
